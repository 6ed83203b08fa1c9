// CSV files (include/cudl/csv.hpp, issue 21): the committed files of tests/data/csv read value for
// value (names and numbers as labels, regression values, quoting, CRLF, tabs, no header), the
// target and header options, the missing-value policies, every broken file refused in one
// sentence naming file, line and column, and a network trained on a CsvDataset.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "cudl/cpu_backend.hpp"
#include "cudl/csv.hpp"
#include "cudl/data.hpp"
#include "cudl/trainer.hpp"
#include "test_support.hpp"

using namespace cudl;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

namespace {

const std::string kData = std::string(CUDL_SOURCE_DIR) + "/tests/data/csv/";

CsvOptions target(CsvColumn column) {
  CsvOptions o;
  o.target = std::move(column);
  return o;
}

// Every row of d: x (rows × features) and y (rows × target size), through fill.
struct Rows {
  std::vector<float> x, y;
};
Rows all_rows(const Dataset& d) {
  std::vector<int64_t> idx(static_cast<size_t>(d.size()));
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<int64_t>(i);
  Rows r{std::vector<float>(idx.size() * static_cast<size_t>(d.example_numel())),
         std::vector<float>(idx.size() * static_cast<size_t>(d.target_numel()))};
  d.fill(idx.data(), d.size(), r.x.data(), r.y.data());
  return r;
}

std::string error_reading(const std::string& file, const CsvOptions& o = {}) {
  return cudl::testing::error_of([&] { CsvDataset::read(kData + file, o); });
}

}  // namespace

TEST(Csv, ReadsNamedClassesWithAHeader) {
  const auto d = CsvDataset::read(kData + "iris.csv");
  EXPECT_TRUE(d->has_header());
  EXPECT_EQ(d->size(), 12);
  EXPECT_EQ(d->example_shape(), (Shape{4}));
  EXPECT_EQ(d->target_shape(), (Shape{}));
  EXPECT_EQ(d->num_classes(), 3);
  EXPECT_THAT(d->class_names(), ElementsAre("setosa", "versicolor", "virginica"));
  EXPECT_THAT(d->feature_names(), ElementsAre("sepal_length", "sepal_width", "petal_length", "petal_width"));
  EXPECT_EQ(d->target_name(), "species");
  const std::vector<int64_t> idx{4, 0, 11};
  std::vector<float> x(12), y(3);
  d->fill(idx.data(), 3, x.data(), y.data());
  // The nearest floats to the decimal texts, as the compiler reads the same literals.
  EXPECT_EQ(x, (std::vector<float>{7.0f, 3.2f, 4.7f, 1.4f, 5.1f, 3.5f, 1.4f, 0.2f, 6.3f, 2.9f, 5.6f, 1.8f}));
  EXPECT_EQ(y, (std::vector<float>{1, 0, 2}));
  EXPECT_EQ(d->describe(), kData + "iris.csv: 12 rows × 4 features, target 'species' (3 classes: setosa, versicolor, virginica)");
  std::vector<float> only(3);
  d->fill_targets(idx.data(), 3, only.data());
  EXPECT_EQ(only, y);
}

TEST(Csv, ReadsRegressionValuesByTargetNameAndLeavesOutIgnoredColumns) {
  CsvOptions o = target("price");
  o.ignore = {"id"};
  const auto d = CsvDataset::read(kData + "houses.csv", o);
  EXPECT_EQ(d->num_classes(), 0);  // 245000 is not below 1000: values, although written as integers
  EXPECT_EQ(d->target_shape(), (Shape{1}));
  EXPECT_THAT(d->feature_names(), ElementsAre("rooms", "area", "age"));
  const Rows r = all_rows(*d);
  EXPECT_EQ(r.x, (std::vector<float>{3, 72.5f, 12, 4, 95, 3, 2, 48.25f, 40, 5, 130, 1, 3, 80, 25}));
  EXPECT_EQ(r.y, (std::vector<float>{245000, 310500.5f, 180000, 455000, 262750.25f}));
  EXPECT_EQ(d->describe(), kData + "houses.csv: 5 rows × 3 features, target 'price' (values)");

  // The same column by index, from the start and from the end; an ignored column by index.
  CsvOptions by_index = target(size_t{3});  // any integer type names an index
  by_index.ignore = {0};
  EXPECT_EQ(all_rows(*CsvDataset::read(kData + "houses.csv", by_index)).y, r.y);
  by_index.target = -2;
  EXPECT_EQ(all_rows(*CsvDataset::read(kData + "houses.csv", by_index)).x, r.x);
  // Asked for as classes, a price is a class index only below CsvOptions::classes.
  CsvOptions as_classes = target("price");
  as_classes.targets = CsvOptions::Targets::kClasses;
  EXPECT_EQ(error_reading("houses.csv", as_classes),
            kData + "houses.csv: line 3, column 4 ('price'): the label '310500.5' is not a class index (a whole number ≥ 0)");
}

TEST(Csv, DetectsTheHeaderBothWaysAndObeysWhenTold) {
  const auto d = CsvDataset::read(kData + "digits_crlf.csv");  // CRLF, no header, integer labels last
  EXPECT_FALSE(d->has_header());
  EXPECT_EQ(d->size(), 4);
  EXPECT_EQ(d->num_classes(), 3);
  EXPECT_THAT(d->feature_names(), ElementsAre("column 1", "column 2", "column 3"));
  const Rows r = all_rows(*d);
  EXPECT_EQ(r.x, (std::vector<float>{0.5f, 1.25f, -3, 1e-3f, 2.5e2f, 7, -0.0f, 4, 0.125f, 3, 2, 1}));
  EXPECT_EQ(r.y, (std::vector<float>{0, 1, 2, 1}));
  EXPECT_EQ(d->describe(), kData + "digits_crlf.csv: 4 rows × 3 features, target 'column 4' (3 classes)");

  CsvOptions yes;
  yes.header = CsvOptions::Header::kYes;  // the first row taken as names: three rows remain
  const auto h = CsvDataset::read(kData + "digits_crlf.csv", yes);
  EXPECT_EQ(h->size(), 3);
  EXPECT_THAT(h->feature_names(), ElementsAre("0.5", "1.25", "-3"));
  CsvOptions no;
  no.header = CsvOptions::Header::kNo;
  EXPECT_EQ(error_reading("iris.csv", no),
            kData + "iris.csv: line 1, column 1: 'sepal_length' is not a number (if the first row names the columns, set "
                    "CsvOptions::header to kYes)");
  // In memory: text above text is no header (string labels in the first row); a byte-order mark is dropped.
  EXPECT_FALSE(CsvDataset::parse("1,2,cat\n3,4,dog\n", "pets")->has_header());
  const auto bom = CsvDataset::parse("\xEF\xBB\xBFx,y\n1,2\n", "bom.csv", target("y"));
  EXPECT_EQ(bom->feature_names(), std::vector<std::string>{"x"});
}

TEST(Csv, ReadsQuotedCellsTabsAndLoneCarriageReturns) {
  CsvOptions o = target("price");
  o.ignore = {"name"};
  const auto q = CsvDataset::read(kData + "quoted.csv", o);
  EXPECT_THAT(q->feature_names(), ElementsAre("area, m²", "rooms"));
  const Rows r = all_rows(*q);
  EXPECT_EQ(r.x, (std::vector<float>{120.5f, 4, 60, 2}));
  EXPECT_EQ(r.y, (std::vector<float>{350000, 199000.5f}));

  CsvOptions tabs;
  tabs.separator = '\t';
  const auto t = CsvDataset::read(kData + "tabs.tsv", tabs);
  EXPECT_EQ(all_rows(*t).x, (std::vector<float>{1, 2, 3, 4}));
  EXPECT_EQ(t->num_classes(), 2);

  const auto cr = CsvDataset::parse("a,b\r1,0\r2,1", "mac.csv");
  EXPECT_EQ(all_rows(*cr).x, (std::vector<float>{1, 2}));
  EXPECT_THAT(cudl::testing::error_of([] { CsvDataset::parse("a,b\r1,0\rx,1", "mac.csv"); }),
              HasSubstr("mac.csv: line 3, column 1 ('a'): 'x' is not a number"));
}

TEST(Csv, ChoosesTheTargetKind) {
  // Integers below 1000 with no gap in 0..largest: classes; written with a point, with a gap or
  // asked as values: values.
  EXPECT_EQ(CsvDataset::parse("x,y\n1,0\n2,2\n3,1\n", "m")->num_classes(), 3);
  EXPECT_EQ(CsvDataset::parse("x,y\n1,0.0\n2,3.0\n", "m")->num_classes(), 0);
  EXPECT_EQ(CsvDataset::parse("x,y\n1,0\n2,1000\n", "m")->num_classes(), 0);
  EXPECT_EQ(CsvDataset::parse("x,y\n1,0\n2,2\n", "m")->num_classes(), 0);  // no label 1: a gap, so values
  EXPECT_EQ(CsvDataset::read(kData + "houses.csv")->num_classes(), 0);        // the ages 1 to 40 leave gaps
  EXPECT_EQ(CsvDataset::read(kData + "broken_label.csv")->describe(), kData + "broken_label.csv: 2 rows × 1 feature, target 'label' (values)");
  CsvOptions values;
  values.targets = CsvOptions::Targets::kValues;
  EXPECT_EQ(CsvDataset::parse("x,y\n1,0\n2,3\n", "m", values)->target_shape(), (Shape{1}));
  CsvOptions classes;
  classes.targets = CsvOptions::Targets::kClasses;
  EXPECT_EQ(CsvDataset::parse("x,y\n1,0.0\n2,3e0\n", "m", classes)->num_classes(), 4);
  classes.classes = 10;
  EXPECT_EQ(CsvDataset::parse("x,y\n1,0\n2,3\n", "m", classes)->num_classes(), 10);
  CsvOptions auto_ten;  // kAuto with a class count: classes
  auto_ten.classes = 10;
  EXPECT_EQ(CsvDataset::parse("x,y\n1,0.0\n2,3.0\n", "m", auto_ten)->num_classes(), 10);
  // Any text makes every target a name, numbers included; names sort as text.
  const auto named = CsvDataset::parse("x,y\n1,b\n2,10\n3,a\n4,2\n5,b\n", "m");
  EXPECT_THAT(named->class_names(), ElementsAre("10", "2", "a", "b"));
  EXPECT_EQ(all_rows(*named).y, (std::vector<float>{3, 0, 2, 1, 3}));
  CsvOptions five_names;
  five_names.classes = 5;
  EXPECT_EQ(CsvDataset::parse("x,y\n1,b\n2,a\n", "m", five_names)->num_classes(), 5);
}

TEST(Csv, FillsMissingCellsOnlyWhenAPolicyIsAsked) {
  EXPECT_EQ(error_reading("missing.csv"), kData + "missing.csv: line 2, column 2 ('x2'): missing value (''), refused unless "
                                                  "CsvOptions::missing is kZero or kMean");
  CsvOptions zero;
  zero.missing = CsvOptions::Missing::kZero;
  const auto z = CsvDataset::read(kData + "missing.csv", zero);
  EXPECT_EQ(z->missing_filled(), 4);
  EXPECT_EQ(all_rows(*z).x, (std::vector<float>{1, 0, 3, 0, 2, 6, 3, 0, 9.5f, 5, 4, 0}));
  EXPECT_THAT(z->describe(), HasSubstr("4 rows × 3 features, target 'y' (2 classes), 4 missing cells filled with 0"));
  CsvOptions mean;
  mean.missing = CsvOptions::Missing::kMean;
  const auto m = CsvDataset::read(kData + "missing.csv", mean);
  const float x3 = static_cast<float>((3.0 + 6.0 + 9.5) / 3.0);
  EXPECT_EQ(all_rows(*m).x, (std::vector<float>{1, 3, 3, 3, 2, 6, 3, 3, 9.5f, 5, 4, x3}));
  EXPECT_THAT(m->describe(), HasSubstr("4 missing cells filled with the column means"));
  EXPECT_EQ(error_reading("broken_all_missing.csv", mean),
            kData + "broken_all_missing.csv: column 1 ('x') has no value to take the mean of (every cell is missing)");
  // A missing target is refused under every policy.
  EXPECT_EQ(error_reading("broken_missing_target.csv", mean),
            kData + "broken_missing_target.csv: line 3, column 2 ('y'): the target is missing (''), and a row without one "
                    "cannot be trained on");
}

TEST(Csv, RefusesEveryBrokenFileInOneSentence) {
  CsvOptions classes;
  classes.targets = CsvOptions::Targets::kClasses;
  const struct {
    const char* file;
    CsvOptions options;
    std::string message;
  } cases[] = {
      {"broken_empty.csv", {}, "broken_empty.csv: empty file, no CSV rows"},
      {"broken_blank.csv", {}, "broken_blank.csv: holds no rows (the file is blank)"},
      {"broken_header_only.csv", {}, "broken_header_only.csv: holds a header row and no rows of data"},
      {"broken_ragged.csv", {}, "broken_ragged.csv: line 3 has 2 cells, expected 3 (as line 1 has)"},
      {"broken_not_a_number.csv", {}, "broken_not_a_number.csv: line 3, column 2 ('sepal_width'): '3.O' is not a number"},
      {"broken_nan.csv", {}, "broken_nan.csv: line 3, column 1 ('x'): missing value ('NaN'), refused unless"},
      {"broken_inf.csv", {}, "broken_inf.csv: line 3, column 1 ('x'): 'inf' is not a finite number"},
      {"broken_out_of_range.csv", {}, "broken_out_of_range.csv: line 3, column 1 ('x'): '1e39' is beyond float's range"},
      {"broken_bad_quote.csv", {}, "broken_bad_quote.csv: line 3, column 2 ('y'): malformed quoting (a '\"' inside an unquoted cell"},
      {"broken_unclosed_quote.csv", {}, "broken_unclosed_quote.csv: the '\"' that opens a cell on line 3 is never closed"},
      {"broken_label.csv", classes, "broken_label.csv: line 3, column 2 ('label'): the label '1.5' is not a class index (a whole number ≥ 0)"},
      {"broken_negative_label.csv", classes, "broken_negative_label.csv: line 3, column 2 ('label'): the label '-1' is not a class index"},
      {"iris.csv", target("price"), "iris.csv: no column is named 'price' for the target (the header has 'sepal_length', 'sepal_width', "
                                    "'petal_length', 'petal_width', 'species')"},
      {"iris.csv", target(5), "iris.csv: the target index 5 is outside its 5 columns (0 to 4, or -5 to -1)"},
      {"iris.csv", target(-6), "iris.csv: the target index -6 is outside its 5 columns"},
      {"digits_crlf.csv", target("label"), "digits_crlf.csv: the target 'label' is named, but the file has no header row"},
      {"digits_crlf.csv", [] { CsvOptions o = target(0); o.ignore = {1, 2, 3}; return o; }(),
       "digits_crlf.csv: no feature column is left of its 4 (one is the target, the others ignored)"},
      {"iris.csv", [] { CsvOptions o; o.ignore = {"species"}; return o; }(),
       "iris.csv: column 5 is the target, so CsvOptions::ignore cannot leave it out"},
      {"iris.csv", [] { CsvOptions o; o.classes = 2; return o; }(),
       "iris.csv: column 5 ('species') holds 3 distinct class names, more than CsvOptions::classes = 2"},
      {"iris.csv", [] { CsvOptions o; o.targets = CsvOptions::Targets::kValues; return o; }(),
       "iris.csv: line 2, column 5 ('species'): 'setosa' is not a number (CsvOptions::targets is kValues)"},
      {"digits_crlf.csv", [] { CsvOptions o; o.classes = 2; return o; }(),
       "digits_crlf.csv: line 3, column 4: the label 2 is not below CsvOptions::classes = 2"},
  };
  for (const auto& c : cases) EXPECT_THAT(error_reading(c.file, c.options), HasSubstr(c.message)) << c.file;
  EXPECT_THAT(error_reading("absent.csv"), HasSubstr("absent.csv: cannot open: No such file or directory"));
  EXPECT_THAT(cudl::testing::error_of([] { CsvDataset::read(kData); }), HasSubstr("csv/: not a regular file"));
  EXPECT_THAT(cudl::testing::error_of([] { CsvDataset::parse("a;b\n1;2\n", "m", target(2)); }),
              HasSubstr("m: the target index 2 is outside its 1 columns"));  // ';' is not the separator
  EXPECT_THAT(cudl::testing::error_of([] { CsvDataset::parse("a,a,y\n1,2,0\n", "m", target("a")); }),
              HasSubstr("m: the target 'a' is ambiguous: columns 1 and 2 have that name"));
  CsvOptions quote;
  quote.separator = '"';
  EXPECT_THAT(cudl::testing::error_of([&] { CsvDataset::parse("1\n", "m", quote); }),
              HasSubstr("m: CsvOptions::separator cannot be"));
  // Control bytes in a cell are shown escaped, long cells cut.
  EXPECT_THAT(cudl::testing::error_of([] { CsvDataset::parse("1,0\n\x01" + std::string(60, 'z') + ",1\n", "m"); }),
              HasSubstr("m: line 2, column 1: '\\x01zzz"));
}

TEST(Csv, FillsRowsByAnIndexListAndChecksIt) {
  const auto d = CsvDataset::read(kData + "iris.csv");
  const std::vector<int64_t> idx{11, 11, 3};
  std::vector<float> x(12), y(3);
  d->fill(idx.data(), 3, x.data(), y.data());
  EXPECT_EQ(x, (std::vector<float>{6.3f, 2.9f, 5.6f, 1.8f, 6.3f, 2.9f, 5.6f, 1.8f, 4.6f, 3.1f, 1.5f, 0.2f}));
  EXPECT_EQ(y, (std::vector<float>{2, 2, 0}));
  const std::vector<int64_t> bad{0, 12};
  EXPECT_THAT([&] { d->fill(bad.data(), 2, x.data(), y.data()); },
              ThrowsMessage<Error>(HasSubstr("row index 12 (entry 1 of the request) is outside [0, 12)")));
}

TEST(Csv, TrainsAsTheSameRowsInMemory) {
  const cudl::testing::Blobs b(256);
  cudl::testing::TempDir dir;
  const std::string path = (dir.path() / "blobs.csv").string();
  {
    std::ofstream out(path);
    out << "f1,f2,f3,f4,f5,f6,f7,f8,label\n";
    char cell[32];
    for (size_t r = 0; r < 256; ++r) {
      for (size_t c = 0; c < 8; ++c) {
        std::snprintf(cell, sizeof cell, "%.9g,", static_cast<double>(b.x[r * 8 + c]));  // round-trips a float
        out << cell;
      }
      out << (b.y[r] > 0.5f ? "pos" : "neg") << (r % 3 == 0 ? "\r\n" : "\n");
    }
  }
  const auto csv = CsvDataset::read(path);
  ASSERT_THAT(csv->class_names(), ElementsAre("neg", "pos"));  // neg = 0 = Blobs' label 0
  const InMemoryDataset mem = b.dataset();
  CpuBackend cpu(1);
  const auto train = [&](const Dataset& data, History* h) {
    Network net(cpu, {8});
    net.add(dense(8, Activation::kRelu)).add(dense(2));
    net.initialize(3, 0.1f);
    Sgd opt(net.param_set(), SgdOptions{0.1f});
    FitOptions o;
    o.epochs = 4;
    o.progress = Progress::kNone;
    *h = fit(net, SoftmaxCrossEntropy(), opt, data, o);
    return net.params().to_vector();
  };
  History from_csv, from_memory;
  EXPECT_EQ(train(*csv, &from_csv), train(mem, &from_memory));
  ASSERT_EQ(from_csv.epochs.size(), 4u);
  EXPECT_LT(from_csv.epochs.back().loss, from_csv.epochs.front().loss);
}

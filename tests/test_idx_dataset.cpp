// IdxDataset (include/cudl/data.hpp): an IDX folder kept as bytes must fill the very floats of
// load_idx_dataset, in its row order, split as train_test_split splits, and refuse every file that
// load_idx_dataset refuses with the same sentence, whichever of its two readers (libdeflate whole,
// zlib's stream) read the file.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

#include "cudl/cpu_backend.hpp"
#include "cudl/data.hpp"
#include "cudl/error.hpp"
#include "data/dataset_internal.hpp"
#include "test_support.hpp"

namespace {

using cudl::IdxDataset;
using cudl::testing::Bytes;
using cudl::testing::error_of;
using cudl::testing::gzip;
using cudl::testing::idx_images;
using cudl::testing::idx_labels;
using cudl::testing::shared_mnist_dir;
using cudl::testing::TempDir;
using cudl::testing::why_no_shared_mnist;
using cudl::testing::write_split;
using ::testing::HasSubstr;

// Every row of `d` through fill(), in the order `idx` gives (all rows in order by default).
struct Filled {
  std::vector<float> x, y;
};
Filled fill_all(const cudl::Dataset& d, std::vector<int64_t> idx = {}) {
  if (idx.empty()) {
    idx.resize(static_cast<size_t>(d.size()));
    std::iota(idx.begin(), idx.end(), int64_t{0});
  }
  const auto n = static_cast<int64_t>(idx.size());
  Filled f{std::vector<float>(static_cast<size_t>(n * d.example_numel())), std::vector<float>(idx.size())};
  d.fill(idx.data(), n, f.x.data(), f.y.data());
  return f;
}

// The folder's rows both ways must be the same floats, in every order asked.
void expect_same_as_load_idx_dataset(const TempDir& dir) {
  const cudl::InMemoryDataset floats = cudl::load_idx_dataset(dir.str(), "MNIST");
  const IdxDataset bytes = IdxDataset::load(dir.str(), "MNIST");
  ASSERT_EQ(bytes.size(), floats.rows);
  EXPECT_EQ(bytes.example_shape(), (cudl::Shape{floats.features}));
  EXPECT_EQ(bytes.num_classes(), 10);
  const Filled all = fill_all(bytes);
  EXPECT_EQ(all.x, floats.x);
  EXPECT_EQ(all.y, floats.y);
  std::vector<int64_t> backwards(static_cast<size_t>(bytes.size()));
  for (size_t i = 0; i < backwards.size(); ++i) backwards[i] = bytes.size() - 1 - static_cast<int64_t>(i);
  backwards.push_back(0);  // a row twice
  const Filled rev = fill_all(bytes, backwards);
  const Filled rev_floats = fill_all(floats, backwards);
  EXPECT_EQ(rev.x, rev_floats.x);
  EXPECT_EQ(rev.y, rev_floats.y);
  std::vector<float> y(backwards.size());
  bytes.fill_targets(backwards.data(), static_cast<int64_t>(backwards.size()), y.data());
  EXPECT_EQ(y, rev_floats.y);
}

TEST(IdxDataset, FillsTheFloatsOfLoadIdxDatasetTrainRowsFirst) {
  TempDir gz, plain, mixed, members;
  write_split(gz.path(), "train", 300, 7, 5, /*gz=*/true);
  write_split(gz.path(), "t10k", 41, 7, 5, /*gz=*/true, /*first=*/300);
  expect_same_as_load_idx_dataset(gz);
  write_split(plain.path(), "t10k", 9, 3, 3, /*gz=*/false);
  expect_same_as_load_idx_dataset(plain);
  write_split(mixed.path(), "train", 5, 2, 3, /*gz=*/false);
  write_split(mixed.path(), "t10k", 4, 2, 3, /*gz=*/true, /*first=*/5);
  expect_same_as_load_idx_dataset(mixed);
  // Two gzip members (as pigz writes): valid gzip, read by the stream reader.
  Bytes pixels(6 * 16);
  std::iota(pixels.begin(), pixels.end(), uint8_t{0});
  const Bytes file = idx_images(6, 4, 4, pixels);
  Bytes two = gzip(Bytes(file.begin(), file.begin() + 40));
  const Bytes rest = gzip(Bytes(file.begin() + 40, file.end()));
  two.insert(two.end(), rest.begin(), rest.end());
  members.write("t10k-images-idx3-ubyte.gz", two);
  members.write("t10k-labels-idx1-ubyte.gz", gzip(idx_labels(Bytes{1, 2, 3, 4, 5, 6})));
  expect_same_as_load_idx_dataset(members);
  const IdxDataset d = IdxDataset::load(gz.str(), "Fashion-MNIST");
  EXPECT_EQ(d.name(), "Fashion-MNIST");
  EXPECT_EQ(d.describe(), "Fashion-MNIST: 341 rows of 35 features (bytes), 10 classes (" + gz.str() + ")");
  EXPECT_THAT(error_of([&] {
                const int64_t bad = 341;
                float x[35], y[1];
                d.fill(&bad, 1, x, y);
              }),
              HasSubstr("IdxDataset::fill: row index 341 (entry 0 of the request) is outside [0, 341)"));
}

TEST(IdxDataset, RandomSplitAndToDeviceGiveTrainTestSplitsRowsAndBits) {
  TempDir dir;
  write_split(dir.path(), "train", 500, 6, 6, /*gz=*/true);
  write_split(dir.path(), "t10k", 120, 6, 6, /*gz=*/true, /*first=*/500);
  const cudl::Split copied = cudl::train_test_split(cudl::load_idx_dataset(dir.str(), "MNIST"), 0.33, 42);
  const IdxDataset bytes = IdxDataset::load(dir.str(), "MNIST");
  const cudl::DatasetSplit views = cudl::random_split(bytes, 0.33, 42);
  cudl::CpuBackend cpu(2);
  const cudl::DeviceData train = cudl::to_device(views.train, cpu, 3);
  const cudl::DeviceData test = cudl::to_device(views.valid, cpu, 3);
  EXPECT_EQ(train.x.to_vector(), copied.train.x);
  EXPECT_EQ(train.y.to_vector(), copied.train.y);
  EXPECT_EQ(test.x.to_vector(), copied.test.x);
  EXPECT_EQ(test.y.to_vector(), copied.test.y);
}

// Each damaged folder: IdxDataset::load must fail with load_idx_dataset's sentence (the
// whole-file reader declines, the stream reader says why).
TEST(IdxDataset, RefusesWhatLoadIdxDatasetRefusesWithTheSameSentence) {
  Bytes pixels(5 * 9, 3);
  const Bytes images = idx_images(5, 3, 3, pixels);
  const Bytes labels = gzip(idx_labels(Bytes{0, 1, 2, 3, 4}));
  Bytes cut = gzip(images);
  cut.resize(cut.size() - 6);  // inside the trailer
  Bytes trailing = gzip(images);
  trailing.push_back(0x42);
  Bytes bad_crc = gzip(images);
  bad_crc[bad_crc.size() - 8] ^= 1;
  Bytes longer = images;
  longer.push_back(9);  // a byte more than the header promises
  Bytes shorter = images;
  shorter.pop_back();
  struct Case {
    const char* what;
    Bytes images_gz;
    Bytes labels_gz;
    const char* expected;
  };
  const std::vector<Case> cases{
      {"cut short", cut, labels, "the gzip stream is cut short"},
      {"data after the member", trailing, labels, "unexpected data after the end of the gzip stream"},
      {"wrong CRC", bad_crc, labels, "corrupt gzip stream"},
      {"a byte too many", gzip(longer), labels, "1 bytes of unexpected data after the 45-byte payload"},
      {"a byte too few", gzip(shorter), labels, "truncated payload: the header promises 5 images of 3×3"},
      {"a label out of range", gzip(images), gzip(idx_labels(Bytes{0, 1, 2, 10, 4})), "label 10 at index 3"},
      {"fewer labels", gzip(images), gzip(idx_labels(Bytes{0, 1, 2, 3})), "holds 5 images but"},
  };
  for (const Case& c : cases) {
    TempDir dir;
    dir.write("t10k-images-idx3-ubyte.gz", c.images_gz);
    dir.write("t10k-labels-idx1-ubyte.gz", c.labels_gz);
    const std::string expected = error_of([&] { cudl::load_idx_dataset(dir.str(), "MNIST"); });
    EXPECT_THAT(expected, HasSubstr(c.expected)) << c.what;
    EXPECT_EQ(error_of([&] { IdxDataset::load(dir.str(), "MNIST"); }), expected) << c.what;
  }
  TempDir dir;
  dir.write("t10k-images-idx3-ubyte.gz", gzip(images));
  dir.write("t10k-labels-idx1-ubyte.gz", labels);
  cudl::LoadOptions options;
  options.max_float_bytes = 0;
  EXPECT_THAT(error_of([&] { IdxDataset::load(dir.str(), "MNIST", options); }),
              HasSubstr("IdxDataset::load: LoadOptions::max_float_bytes must be positive, got 0"));
  options.max_float_bytes = 179;  // 5 × 9 × 4 = 180 bytes of floats
  EXPECT_THAT(error_of([&] { IdxDataset::load(dir.str(), "MNIST", options); }),
              HasSubstr("that is 180 bytes, over the cap of 179 bytes"));
}

// Which reader read what: one gzip member of exactly the header's payload is inflated whole
// (libdeflate); a plain file, two members, or a header that changed since go to the stream reader.
TEST(IdxDataset, TheWholeFileReaderTakesOneMemberAndLeavesTheRestToTheStream) {
  Bytes pixels(4 * 6);
  std::iota(pixels.begin(), pixels.end(), uint8_t{100});
  const Bytes file = idx_images(4, 2, 3, pixels);
  const cudl::IdxHeader header{cudl::kIdxImagesMagic, 4, 2, 3};
  TempDir dir;
  Bytes two = gzip(Bytes(file.begin(), file.begin() + 20));
  const Bytes rest = gzip(Bytes(file.begin() + 20, file.end()));
  two.insert(two.end(), rest.begin(), rest.end());
  dir.write("one.gz", gzip(file));
  dir.write("plain", file);
  dir.write("two.gz", two);
  for (const char* name : {"one.gz", "plain", "two.gz"}) {
    const cudl::detail::IdxPayload p = cudl::detail::read_idx_images_whole(dir.str(name), header);
    EXPECT_EQ(p.whole != nullptr, std::string(name) == "one.gz") << name;
    ASSERT_EQ(p.size, pixels.size()) << name;
    EXPECT_EQ(Bytes(p.data, p.data + p.size), pixels) << name;
  }
  EXPECT_THAT(error_of([&] {
                cudl::detail::read_idx_images_whole(dir.str("one.gz"), cudl::IdxHeader{cudl::kIdxImagesMagic, 4, 3, 2});
              }),
              HasSubstr("the file changed while it was being loaded: its header gave 4 images of 3×2, now 4 images of "
                        "2×3"));
}

TEST(IdxDataset, RealMnistT10kFillsWhatLoadIdxDatasetLoads) {
  if (const std::string why = why_no_shared_mnist(); !why.empty()) GTEST_SKIP() << why;
  const cudl::InMemoryDataset floats = cudl::load_idx_dataset(shared_mnist_dir(), "MNIST");
  const IdxDataset bytes = IdxDataset::load(shared_mnist_dir(), "MNIST");
  const Filled all = fill_all(bytes);
  EXPECT_EQ(bytes.size(), 10000);
  EXPECT_EQ(all.x, floats.x);
  EXPECT_EQ(all.y, floats.y);
}

}  // namespace

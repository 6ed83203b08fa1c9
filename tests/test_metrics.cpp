// Metrics: the classification report on hand-worked confusion data (and sklearn's convention
// for zero denominators), its text layout, the errors for bad input, and predict() on a network
// whose weights are set by hand so that every argmax is known.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "cudl/cpu_backend.hpp"
#include "cudl/error.hpp"
#include "cudl/layers.hpp"
#include "cudl/metrics.hpp"
#include "cudl/network.hpp"
#include "test_support.hpp"

namespace {

using cudl::testing::error_of;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// 3 classes, 10 samples. Confusion matrix [true][predicted]:
//            pred 0  pred 1  pred 2 | support
//   true 0      2       1       1   |   4
//   true 1      1       2       0   |   3
//   true 2      0       1       2   |   3
//   predicted   3       4       3
const std::vector<int> kTruth = {0, 0, 0, 0, 1, 1, 1, 2, 2, 2};
const std::vector<int> kPredicted = {0, 0, 1, 2, 1, 1, 0, 2, 2, 1};

TEST(ClassificationReport, MatchesHandWorkedConfusionData) {
  const cudl::ClassificationReport r = cudl::classification_report(kTruth, kPredicted, 3);
  EXPECT_EQ(r.classes, 3);
  EXPECT_EQ(r.confusion,
            (std::vector<std::vector<int64_t>>{{2, 1, 1}, {1, 2, 0}, {0, 1, 2}}));
  EXPECT_THAT(r.support, ElementsAre(4, 3, 3));
  EXPECT_EQ(r.total, 10);

  // precision = tp / predicted: 2/3, 2/4, 2/3.
  ASSERT_EQ(r.precision.size(), 3u);
  EXPECT_NEAR(r.precision[0], 0.6666666667, 1e-9);
  EXPECT_NEAR(r.precision[1], 0.5, 1e-9);
  EXPECT_NEAR(r.precision[2], 0.6666666667, 1e-9);
  // recall = tp / support: 2/4, 2/3, 2/3.
  ASSERT_EQ(r.recall.size(), 3u);
  EXPECT_NEAR(r.recall[0], 0.5, 1e-9);
  EXPECT_NEAR(r.recall[1], 0.6666666667, 1e-9);
  EXPECT_NEAR(r.recall[2], 0.6666666667, 1e-9);
  // f1 = 2pr / (p + r): class 0 and 1: 2·(2/3)(1/2) / (7/6) = 4/7; class 2: 2/3.
  ASSERT_EQ(r.f1.size(), 3u);
  EXPECT_NEAR(r.f1[0], 0.5714285714, 1e-9);
  EXPECT_NEAR(r.f1[1], 0.5714285714, 1e-9);
  EXPECT_NEAR(r.f1[2], 0.6666666667, 1e-9);

  // Support-weighted averages:
  //   precision (4·2/3 + 3·1/2 + 3·2/3) / 10 = (37/6) / 10 = 37/60
  //   recall    (4·1/2 + 3·2/3 + 3·2/3) / 10 = 6/10
  //   f1        (4·4/7 + 3·4/7 + 3·2/3) / 10 = (4 + 2) / 10 = 6/10
  EXPECT_NEAR(r.avg_precision, 0.6166666667, 1e-9);
  EXPECT_NEAR(r.avg_recall, 0.6, 1e-9);
  EXPECT_NEAR(r.avg_f1, 0.6, 1e-9);
  // accuracy = (2 + 2 + 2) / 10.
  EXPECT_NEAR(r.accuracy, 0.6, 1e-9);
}

TEST(ClassificationReport, ZeroDenominatorGivesZero) {
  // 4 classes, 5 samples: class 2 occurs but is never predicted; class 3 never occurs at all.
  //   class 0: tp 1, predicted 2 (samples 0 and 4), support 2 → p 1/2, r 1/2, f1 1/2
  //   class 1: tp 2, predicted 3, support 2                  → p 2/3, r 1,   f1 4/5
  //   class 2: tp 0, predicted 0, support 1                  → p 0/0 := 0, r 0, f1 0
  //   class 3: tp 0, predicted 0, support 0                  → p 0, r 0/0 := 0, f1 0
  const std::vector<int> truth = {0, 0, 1, 1, 2};
  const std::vector<int> predicted = {0, 1, 1, 1, 0};
  const cudl::ClassificationReport r = cudl::classification_report(truth, predicted, 4);
  ASSERT_EQ(r.precision.size(), 4u);
  EXPECT_NEAR(r.precision[0], 0.5, 1e-9);
  EXPECT_NEAR(r.recall[0], 0.5, 1e-9);
  EXPECT_NEAR(r.f1[0], 0.5, 1e-9);
  EXPECT_NEAR(r.precision[1], 0.6666666667, 1e-9);
  EXPECT_NEAR(r.recall[1], 1.0, 1e-9);
  EXPECT_NEAR(r.f1[1], 0.8, 1e-9);
  for (int c : {2, 3}) {
    EXPECT_EQ(r.precision[c], 0.0) << "class " << c;
    EXPECT_EQ(r.recall[c], 0.0) << "class " << c;
    EXPECT_EQ(r.f1[c], 0.0) << "class " << c;
  }
  EXPECT_THAT(r.support, ElementsAre(2, 2, 1, 0));
  // avg precision (2·1/2 + 2·2/3 + 1·0 + 0·0) / 5 = (7/3) / 5 = 7/15
  // avg recall    (2·1/2 + 2·1   + 1·0) / 5 = 3/5 (the accuracy)
  // avg f1        (2·1/2 + 2·4/5 + 1·0) / 5 = (13/5) / 5 = 13/25
  EXPECT_NEAR(r.avg_precision, 0.4666666667, 1e-9);
  EXPECT_NEAR(r.avg_recall, 0.6, 1e-9);
  EXPECT_NEAR(r.avg_f1, 0.52, 1e-9);
  EXPECT_NEAR(r.accuracy, 0.6, 1e-9);
}

TEST(ClassificationReport, EmptyInputHasZeroTotalsAndNoNaN) {
  const cudl::ClassificationReport r = cudl::classification_report({}, {}, 2);
  EXPECT_EQ(r.total, 0);
  EXPECT_THAT(r.support, ElementsAre(0, 0));
  EXPECT_THAT(r.precision, ElementsAre(0.0, 0.0));
  EXPECT_EQ(r.avg_precision, 0.0);
  EXPECT_EQ(r.avg_recall, 0.0);
  EXPECT_EQ(r.avg_f1, 0.0);
  EXPECT_EQ(r.accuracy, 0.0);
}

TEST(ClassificationReport, MismatchedLengthsThrowNamingBothCounts) {
  EXPECT_THAT(error_of([] { cudl::classification_report({0, 1, 2}, {0, 1}, 3); }),
              AllOf(HasSubstr("classification_report"), HasSubstr("3 labels but 2 predictions")));
}

TEST(ClassificationReport, OutOfRangeLabelThrowsNamingSampleAndRange) {
  EXPECT_THAT(error_of([] { cudl::classification_report({0, 3, 1}, {0, 0, 1}, 3); }),
              AllOf(HasSubstr("classification_report"), HasSubstr("sample 1"), HasSubstr("label 3"),
                    HasSubstr("outside [0, 3)")));
  EXPECT_THAT(error_of([] { cudl::classification_report({0, 1, 1}, {0, 1, -1}, 3); }),
              AllOf(HasSubstr("sample 2"), HasSubstr("prediction -1"), HasSubstr("outside [0, 3)")));
}

TEST(ClassificationReport, NonPositiveClassCountThrows) {
  EXPECT_THAT(error_of([] { cudl::classification_report({}, {}, 0); }), HasSubstr("classes must be positive"));
}

TEST(FormatReport, HasHeaderOneLinePerClassAndTotals) {
  const std::string text = cudl::format_report(cudl::classification_report(kTruth, kPredicted, 3));
  const std::vector<std::string> lines = lines_of(text);
  // header, blank, 3 classes, blank, avg / total
  ASSERT_EQ(lines.size(), 7u) << text;
  EXPECT_THAT(lines[0], AllOf(HasSubstr("precision"), HasSubstr("recall"), HasSubstr("f1-score"),
                              HasSubstr("support")));
  EXPECT_LT(lines[0].find("precision"), lines[0].find("recall"));
  EXPECT_LT(lines[0].find("recall"), lines[0].find("f1-score"));
  EXPECT_LT(lines[0].find("f1-score"), lines[0].find("support"));
  EXPECT_EQ(lines[1], "");
  EXPECT_EQ(lines[5], "");

  // Each class line: the class index, then p, r, f1 with two decimals, then the support
  // (the hand-worked values of MatchesHandWorkedConfusionData, rounded).
  const char* expected[4][5] = {{"0", "0.67", "0.50", "0.57", "4"},
                                {"1", "0.50", "0.67", "0.57", "3"},
                                {"2", "0.67", "0.67", "0.67", "3"},
                                {"avg / total", "0.62", "0.60", "0.60", "10"}};
  const size_t line_index[4] = {2, 3, 4, 6};
  for (int row = 0; row < 4; ++row) {
    const std::string& line = lines[line_index[row]];
    std::string label = line.substr(0, 11);
    label.erase(0, label.find_first_not_of(' '));
    EXPECT_EQ(label, expected[row][0]) << line;
    std::istringstream fields(line.substr(11));
    std::vector<std::string> values;
    for (std::string v; fields >> v;) values.push_back(v);
    EXPECT_THAT(values, ElementsAre(expected[row][1], expected[row][2], expected[row][3], expected[row][4]))
        << line;
  }
}

TEST(FormatReport, NumbersAreRightAlignedUnderTheirHeadings) {
  const std::string text = cudl::format_report(cudl::classification_report(kTruth, kPredicted, 3));
  const std::vector<std::string> lines = lines_of(text);
  ASSERT_EQ(lines.size(), 7u) << text;
  const std::string& header = lines[0];
  for (const char* heading : {"precision", "recall", "f1-score", "support"}) {
    const size_t end = header.find(heading) + std::string(heading).size();  // one past the heading
    for (size_t i : {2u, 3u, 4u, 6u}) {
      ASSERT_GE(lines[i].size(), end) << heading << "\n" << text;
      EXPECT_NE(lines[i][end - 1], ' ') << "column " << heading << " is not right-aligned in\n" << text;
      if (end < lines[i].size()) {
        EXPECT_EQ(lines[i][end], ' ') << heading << "\n" << text;
      }
    }
  }
  // The class column is right-aligned in the width of "avg / total".
  EXPECT_THAT(lines[2], StartsWith("          0 "));
  EXPECT_THAT(lines[6], StartsWith("avg / total "));
}

TEST(FormatReport, MatchesSklearnLayoutExactly) {
  // sklearn 0.15: "%11s" name column, two spaces, then "% 9s" per field separated by one space.
  const std::string text = cudl::format_report(cudl::classification_report(kTruth, kPredicted, 3));
  EXPECT_EQ(text,
            "             precision    recall  f1-score   support\n"
            "\n"
            "          0       0.67      0.50      0.57         4\n"
            "          1       0.50      0.67      0.57         3\n"
            "          2       0.67      0.67      0.67         3\n"
            "\n"
            "avg / total       0.62      0.60      0.60        10\n");
}

TEST(ToLabels, ConvertsFloatClassIndices) {
  EXPECT_THAT(cudl::to_labels({0.0f, 2.0f, 1.0f, 9.0f}), ElementsAre(0, 2, 1, 9));
  EXPECT_THAT(cudl::to_labels({2147483520.0f}), ElementsAre(2147483520));  // the last float < 2^31
}

// Each is checked before it is converted (converting NaN or 1e30 to int is undefined behaviour,
// which UBSan reports); the error names the index and the value.
TEST(ToLabels, RejectsWhatIsNotAClassIndexNamingIndexAndValue) {
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<std::pair<float, std::string>> bad = {
      {std::nanf(""), "nan"}, {inf, "inf"},         {-inf, "-inf"},         {-1.0f, "-1"},
      {0.5f, "0.5"},          {2147483648.0f, "2147483648"}, {1e30f, "1.00000002e+30"}};
  for (const auto& [value, shown] : bad) {
    const float label = value;  // a lambda may not capture a structured binding before C++20
    EXPECT_THAT(error_of([&] { cudl::to_labels({1.0f, 3.0f, label}); }),
                HasSubstr("to_labels: label " + shown + " at index 2 is not a class index (an "
                          "integer in [0, 2^31))"))
        << shown;
  }
}

// ---- predict ----

// Dense(3) on 2 features with W = [[1, 0, −1], [0, 1, −1]] and b = (0, 0, 0.5): the scores of
// (a, b) are (a, b, 0.5 − a − b), so a row's class is known by inspection.
class Predict : public ::testing::Test {
 protected:
  void SetUp() override {
    net_.add(cudl::dense(3));
    auto& layer = dynamic_cast<cudl::Dense&>(net_.layer(0));
    net_.params().copy_from(std::vector<float>(net_.params().size(), 0.0f));
    // weight() and bias() are const references to views of the network's flat parameters;
    // reshaped() gives writable views of the same storage.
    const float w[6] = {1, 0, -1, 0, 1, -1};
    layer.weight().reshaped({2, 3}).copy_from(std::vector<float>(w, w + 6));
    layer.bias().reshaped({3}).copy_from({0, 0, 0.5f});
    ASSERT_EQ(layer.weight().to_vector(), std::vector<float>(w, w + 6));
    const std::vector<float> flat = net_.params().to_vector();  // the writes reached the network
    EXPECT_EQ(std::count(flat.begin(), flat.end(), 0.5f), 1);
    ASSERT_EQ(layer.bias().to_vector(), (std::vector<float>{0, 0, 0.5f}));
  }

  cudl::CpuBackend cpu_{1};
  cudl::Network net_{cpu_, {2}};
};

// 7 rows; scores in the comments.
const std::vector<float> kRows = {
    2, 0,    // (2, 0, −1.5)  → 0
    0, 2,    // (0, 2, −1.5)  → 1
    -1, -1,  // (−1, −1, 2.5) → 2
    1, 3,    // (1, 3, −3.5)  → 1
    4, -2,   // (4, −2, −1.5) → 0
    -2, 0,   // (−2, 0, 2.5)  → 2
    0.5, 1,  // (0.5, 1, −1)  → 1
};
const std::vector<int> kClasses = {0, 1, 2, 1, 0, 2, 1};

TEST_F(Predict, ArgmaxOfHandSetWeightsWithPartialLastBatch) {
  cudl::Tensor x = cudl::Tensor::from_host(kRows, {7, 2}, cpu_);
  EXPECT_EQ(cudl::predict(net_, x, 3), kClasses);  // batches of 3, 3 and 1 rows
}

TEST_F(Predict, ResultDoesNotDependOnBatchSize) {
  cudl::Tensor x = cudl::Tensor::from_host(kRows, {7, 2}, cpu_);
  for (int64_t batch : {1, 2, 6, 7, 8, 1000}) EXPECT_EQ(cudl::predict(net_, x, batch), kClasses) << "batch " << batch;
}

TEST_F(Predict, NoRowsGivesNoPredictions) {
  cudl::Tensor x({0, 2}, cpu_);
  EXPECT_TRUE(cudl::predict(net_, x, 3).empty());
}

TEST_F(Predict, NonPositiveBatchThrows) {
  cudl::Tensor x = cudl::Tensor::from_host(kRows, {7, 2}, cpu_);
  EXPECT_THAT(error_of([&] { cudl::predict(net_, x, 0); }),
              AllOf(HasSubstr("predict"), HasSubstr("batch must be positive, got 0")));
}

// Non-finite input is an error naming the row and column of x, never a class (before: NaN
// scores lost every comparison of the argmax, which then answered class 0).
TEST_F(Predict, NonFiniteInputIsAnErrorNamingRowAndColumn) {
  const float inf = std::numeric_limits<float>::infinity();
  for (const auto& [value, shown] : {std::pair(std::nanf(""), "nan"), std::pair(inf, "inf"),
                                     std::pair(-inf, "-inf")}) {
    std::vector<float> rows = kRows;
    rows[4 * 2 + 1] = value;  // row 4 (in the second batch of 3), column 1
    const cudl::Tensor x = cudl::Tensor::from_host(rows, {7, 2}, cpu_);
    EXPECT_THAT(error_of([&] { cudl::predict(net_, x, 3); }),
                AllOf(HasSubstr("predict: row 4 of x gives the non-finite score "),
                      HasSubstr(std::string("x holds ") + shown + " at row 4, column 1")))
        << shown;
  }
}

TEST_F(Predict, NonFiniteParametersWithFiniteInputAreNamedAsSuch) {
  auto& layer = dynamic_cast<cudl::Dense&>(net_.layer(0));
  layer.bias().reshaped({3}).copy_from({0, std::nanf(""), 0.5f});
  const cudl::Tensor x = cudl::Tensor::from_host(kRows, {7, 2}, cpu_);
  EXPECT_THAT(error_of([&] { cudl::predict(net_, x, 3); }),
              AllOf(HasSubstr("row 0 of x gives the non-finite score nan for class 1"),
                    HasSubstr("every input value of the row is finite, so the network's "
                              "parameters are not")));
}

TEST_F(Predict, PredictionsFeedTheReport) {
  cudl::Tensor x = cudl::Tensor::from_host(kRows, {7, 2}, cpu_);
  const std::vector<int> truth = {0, 1, 2, 1, 0, 2, 0};  // the last row is predicted 1
  const cudl::ClassificationReport r = cudl::classification_report(truth, cudl::predict(net_, x, 3), 3);
  EXPECT_NEAR(r.accuracy, 6.0 / 7.0, 1e-12);
  EXPECT_EQ(r.confusion[0][1], 1);
}

}  // namespace

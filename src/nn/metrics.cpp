#include "cudl/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "cudl/error.hpp"
#include "formulas/loss_rules.hpp"

namespace cudl {

namespace {

// Integers below 2^53 in full, anything else with the 9 digits that tell floats apart; "nan",
// "inf" and "-inf" as such.
std::string show(float v) {
  const auto d = static_cast<double>(v);
  char buf[48];
  const bool integer = std::fabs(d) < 9007199254740992.0 && std::floor(d) == d;
  std::snprintf(buf, sizeof buf, integer ? "%.0f" : "%.9g", d);
  return buf;
}

// The error for row `row` of x, whose scores include the non-finite `score` in column `k`: it
// names the first non-finite value of that input row, read back now (only on this path).
[[noreturn]] void throw_non_finite(const Tensor& x, int64_t row, int64_t k, float score) {
  const std::vector<float> in = x.rows(row, row + 1).to_vector();
  const auto bad = std::find_if(in.begin(), in.end(), [](float v) { return !std::isfinite(v); });
  const std::string where =
      "predict: row " + std::to_string(row) + " of x gives the non-finite score " + show(score) +
      " for class " + std::to_string(k) + ": ";
  if (bad != in.end()) {
    throw Error(where + "x holds " + show(*bad) + " at row " + std::to_string(row) +
                ", column " + std::to_string(bad - in.begin()) +
                " (non-finite input has no class)");
  }
  throw Error(where + "every input value of the row is finite, so the network's parameters "
                      "are not, or the row overflows float (values near 3.4e38)");
}

}  // namespace

std::vector<int> predict(Network& net, const Tensor& x, int64_t batch) {
  CUDL_REQUIRE(batch > 0, "predict: batch must be positive, got " + std::to_string(batch));
  std::vector<int> out;
  out.reserve(static_cast<size_t>(x.rows()));
  for (int64_t begin = 0; begin < x.rows(); begin += batch) {
    const int64_t end = std::min(x.rows(), begin + batch);
    const Tensor& scores = net.forward(x.rows(begin, end), Mode::kInfer);  // (end − begin) × K
    CUDL_REQUIRE(scores.rank() == 2, "predict: the network's output must be N×K scores, got rank " +
                                         std::to_string(scores.rank()));
    // Non-finite input is found in the scores, not in x: one read of N×K scores replaces the
    // N class indices read before (and the argmax is done here), where a pass over x would read
    // N×D values (D = 784 for MNIST) and, for a GPU tensor, copy them all to the host. NaN
    // reaches the scores from any input position through every layer (products, sums, ReLU
    // written as z < 0 ? 0 : z, sigmoid, batch norm); ±Inf does too except where it only feeds
    // saturating units (sigmoid(±Inf) is 0 or 1), whose finite output is then a defined answer.
    // The input row is read back only to name the column in the error.
    const int64_t k = scores.dim(1);
    const std::vector<float> s = scores.to_vector();
    for (int64_t r = 0; r < end - begin; ++r) {
      const float* row = s.data() + r * k;
      for (int64_t c = 0; c < k; ++c) {
        if (!std::isfinite(row[c])) throw_non_finite(x, begin + r, c, row[c]);
      }
      out.push_back(static_cast<int>(formulas::argmax(row, k)));  // as Backend::argmax_rows
    }
  }
  return out;
}

ClassificationReport classification_report(const std::vector<int>& truth, const std::vector<int>& predicted,
                                           int classes) {
  CUDL_REQUIRE(truth.size() == predicted.size(), "classification_report: " + std::to_string(truth.size()) +
                                                     " labels but " + std::to_string(predicted.size()) +
                                                     " predictions");
  CUDL_REQUIRE(classes > 0, "classification_report: classes must be positive");
  ClassificationReport r;
  r.classes = classes;
  r.confusion.assign(classes, std::vector<int64_t>(classes, 0));
  for (size_t i = 0; i < truth.size(); ++i) {
    CUDL_REQUIRE(truth[i] >= 0 && truth[i] < classes && predicted[i] >= 0 && predicted[i] < classes,
                 "classification_report: sample " + std::to_string(i) + " has label " + std::to_string(truth[i]) +
                     " / prediction " + std::to_string(predicted[i]) + " outside [0, " + std::to_string(classes) +
                     ")");
    ++r.confusion[truth[i]][predicted[i]];
  }
  int64_t correct = 0;
  for (int c = 0; c < classes; ++c) {
    int64_t tp = r.confusion[c][c], actual = 0, guessed = 0;
    for (int k = 0; k < classes; ++k) {
      actual += r.confusion[c][k];
      guessed += r.confusion[k][c];
    }
    // sklearn's convention: a ratio with a zero denominator is 0.
    const double p = guessed ? static_cast<double>(tp) / guessed : 0.0;
    const double rc = actual ? static_cast<double>(tp) / actual : 0.0;
    r.precision.push_back(p);
    r.recall.push_back(rc);
    r.f1.push_back(p + rc > 0 ? 2 * p * rc / (p + rc) : 0.0);
    r.support.push_back(actual);
    r.total += actual;
    correct += tp;
    r.avg_precision += p * actual;
    r.avg_recall += rc * actual;
    r.avg_f1 += r.f1.back() * actual;
  }
  if (r.total > 0) {
    r.avg_precision /= r.total;
    r.avg_recall /= r.total;
    r.avg_f1 /= r.total;
    r.accuracy = static_cast<double>(correct) / r.total;
  }
  return r;
}

std::string format_report(const ClassificationReport& r) {
  char line[128];
  std::string s;
  std::snprintf(line, sizeof line, "%11s  %9s %9s %9s %9s\n\n", "", "precision", "recall", "f1-score", "support");
  s += line;
  for (int c = 0; c < r.classes; ++c) {
    std::snprintf(line, sizeof line, "%11d  %9.2f %9.2f %9.2f %9lld\n", c, r.precision[c], r.recall[c], r.f1[c],
                  static_cast<long long>(r.support[c]));
    s += line;
  }
  std::snprintf(line, sizeof line, "\n%11s  %9.2f %9.2f %9.2f %9lld\n", "avg / total", r.avg_precision, r.avg_recall,
                r.avg_f1, static_cast<long long>(r.total));
  s += line;
  return s;
}

std::vector<int> to_labels(const std::vector<float>& y) {
  std::vector<int> out(y.size());
  for (size_t i = 0; i < y.size(); ++i) {
    const float v = y[i];
    // Checked on the float before converting: converting NaN, ±Inf or a value outside int's
    // range is undefined behaviour. NaN fails both comparisons; 2^31 is exact in float.
    CUDL_REQUIRE(v >= 0.0f && v < 2147483648.0f && std::floor(v) == v,
                 "to_labels: label " + show(v) + " at index " + std::to_string(i) +
                     " is not a class index (an integer in [0, 2^31))");
    out[i] = static_cast<int>(v);
  }
  return out;
}

}  // namespace cudl

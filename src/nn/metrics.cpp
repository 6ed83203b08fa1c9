#include "cudl/metrics.hpp"

#include <algorithm>
#include <cstdio>

#include "cudl/error.hpp"

namespace cudl {

std::vector<int> predict(Network& net, const Tensor& x, int64_t batch) {
  CUDL_REQUIRE(batch > 0, "predict: batch must be positive, got " + std::to_string(batch));
  Backend& backend = net.backend();
  std::vector<int> out;
  out.reserve(static_cast<size_t>(x.rows()));
  Tensor classes({std::min(batch, std::max<int64_t>(x.rows(), 1))}, backend);
  for (int64_t begin = 0; begin < x.rows(); begin += batch) {
    const int64_t end = std::min(x.rows(), begin + batch);
    const Tensor& scores = net.forward(x.rows(begin, end), Mode::kInfer);
    Tensor cls = classes.rows(0, end - begin);
    backend.argmax_rows(scores, cls);
    for (float c : cls.to_vector()) out.push_back(static_cast<int>(c));
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
  std::transform(y.begin(), y.end(), out.begin(), [](float v) { return static_cast<int>(v); });
  return out;
}

}  // namespace cudl

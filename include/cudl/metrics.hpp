#pragma once
// Prediction and classification metrics (host side), including sklearn's classification report.
#include <cstdint>
#include <string>
#include <vector>

#include "cudl/network.hpp"

namespace cudl {

// Predicted class (argmax of the network's output) for every row of x (R × input shape),
// evaluated in batches of `batch` rows on the network's backend.
std::vector<int> predict(Network& net, const Tensor& x, int64_t batch = 1000);

struct ClassificationReport {
  int classes = 0;
  std::vector<double> precision, recall, f1;  // per class
  std::vector<int64_t> support;               // true samples per class
  double avg_precision = 0, avg_recall = 0, avg_f1 = 0;  // support-weighted ("avg / total")
  int64_t total = 0;
  double accuracy = 0;
  std::vector<std::vector<int64_t>> confusion;  // confusion[true][predicted]
};

// truth and predicted must have the same length; classes are 0..classes-1.
ClassificationReport classification_report(const std::vector<int>& truth, const std::vector<int>& predicted,
                                           int classes);
// The report in the layout of sklearn's classification_report of 2014 (0.15): a name column as
// wide as "avg / total", two spaces, then 9-wide precision, recall, f1-score and support.
std::string format_report(const ClassificationReport& report);

// Labels stored as floats (Dataset::y) converted to ints.
std::vector<int> to_labels(const std::vector<float>& y);

}  // namespace cudl

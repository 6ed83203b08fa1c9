#pragma once
// Prediction and classification metrics (host side), including sklearn's classification report.
#include <cstdint>
#include <string>
#include <vector>

#include "cudl/network.hpp"

namespace cudl {

// Predicted class (argmax of the network's output, first maximum on ties) for every row of x
// (R × input shape), evaluated in batches of `batch` rows on the network's backend. A row whose
// scores are not all finite is an Error naming the row and the first non-finite value of x in
// it (value and column), never a class: NaN or ±Inf in x, or non-finite parameters. (±Inf that
// reaches only saturating units, e.g. sigmoid(+Inf) = 1, gives finite scores and their class.)
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

// Labels stored as floats (InMemoryDataset::y) converted to ints. Each must be an integer in [0, 2^31):
// NaN, ±Inf, a negative or fractional value, or one ≥ 2^31 is an Error naming its index and
// value, checked before any conversion.
std::vector<int> to_labels(const std::vector<float>& y);

}  // namespace cudl

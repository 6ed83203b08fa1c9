#pragma once
// Prediction and classification metrics (host side), including sklearn's classification report.
#include <cstdint>
#include <string>
#include <vector>

#include "cudl/network.hpp"

namespace cudl {

/// Predicted class (argmax of the network's output, first maximum on ties) for every row of x
/// (R × input shape), evaluated in batches of `batch` rows on the network's backend. A row whose
/// scores are not all finite is an Error naming the row and the first non-finite value of x in
/// it (value and column), never a class: NaN or ±Inf in x, or non-finite parameters. (±Inf that
/// reaches only saturating units, e.g. sigmoid(+Inf) = 1, gives finite scores and their class.)
/// Each batch's scores are copied to the host. Throws Error too when batch is not positive or the
/// output is not N×K scores.
std::vector<int> predict(Network& net, const Tensor& x, int64_t batch = 1000);

/// Per-class precision, recall and F1, their averages, and the confusion matrix (as sklearn's).
struct ClassificationReport {
  int classes = 0;                   ///< K: classes 0..K−1.
  std::vector<double> precision;     ///< Per class: correct / predicted as it (0 when never predicted).
  std::vector<double> recall;        ///< Per class: correct / true samples of it (0 when none).
  std::vector<double> f1;            ///< Per class: harmonic mean of precision and recall.
  std::vector<int64_t> support;      ///< True samples per class.
  double avg_precision = 0;          ///< Support-weighted mean of precision ("avg / total").
  double avg_recall = 0;             ///< Support-weighted mean of recall.
  double avg_f1 = 0;                 ///< Support-weighted mean of f1.
  int64_t total = 0;                 ///< Samples.
  double accuracy = 0;               ///< Correct / total.
  std::vector<std::vector<int64_t>> confusion;  ///< confusion[true][predicted].
};

/// The report of predicted against truth. truth and predicted must have the same length and
/// classes be positive, with every label in 0..classes-1 (an Error otherwise).
ClassificationReport classification_report(const std::vector<int>& truth, const std::vector<int>& predicted,
                                           int classes);
/// The report as text, in the layout of sklearn's classification_report of 2014 (0.15): a name column as
/// wide as "avg / total", two spaces, then 9-wide precision, recall, f1-score and support.
std::string format_report(const ClassificationReport& report);

/// Labels stored as floats (InMemoryDataset::y) converted to ints. Each must be an integer in [0, 2^31):
/// NaN, ±Inf, a negative or fractional value, or one ≥ 2^31 is an Error naming its index and
/// value, checked before any conversion.
std::vector<int> to_labels(const std::vector<float>& y);

}  // namespace cudl

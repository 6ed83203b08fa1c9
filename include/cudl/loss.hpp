#pragma once
// Losses over a network's output (N × K or N × D) and the targets (class indices (N), or values
// (N × D)), each one fused Backend primitive
// that writes ∂L/∂output and adds the batch's statistics to a small tensor on the backend, so
// that a training step never reads anything back: the statistics are read once per epoch (or
// when a callback asks). A batch whose mean loss is not finite or exceeds max_loss is recorded
// (its step number, read from a counter when the work runs, and its loss) as divergence.
#include <cstdint>
#include <string>

#include "cudl/backend.hpp"
#include "cudl/tensor.hpp"

namespace cudl {

/// How the per-sample losses of a batch are combined into L (and so how large ∂L/∂output is):
/// kMean, PyTorch's default (learning rates are per sample), or kSum (the 2014 run, whose
/// optimizer divides by the batch size itself).
enum class Reduction {
  kMean,  ///< L is the mean of the per-sample losses (gradient scaled by 1/N).
  kSum,   ///< L is their sum.
};
const char* to_string(Reduction reduction);  ///< "mean" or "sum".

/// The statistics of a run of batches, as read from the device.
struct LossTotals {
  double loss_sum = 0.0;  ///< Σ per-sample loss.
  double errors = 0.0;    ///< Σ misclassified samples (classification losses; 0 for MeanSquaredError).
  int64_t bad_step = -1;  ///< The first diverged step's number (0-based), or -1.
  double bad_value = 0.0; ///< That step's mean loss.
};

/// A training loss: the loss of a batch, its gradient and its statistics in one queued primitive.
///
/// The work runs on the backend of the tensors given (asynchronously on a GPU backend) and reads
/// nothing back; read() is the one host read. A Loss holds only its settings (every member is
/// const), so one object may serve several networks.
class Loss {
 public:
  virtual ~Loss() = default;
  /// Queues: dlogits ← ∂L/∂logits for this batch (targets: as the loss says), stats += its totals
  /// (see make_stats), and the divergence check with the step number in `step` (a counter).
  virtual void forward_backward(const Tensor& logits, const Tensor& targets, const Tensor& step, Tensor& dlogits,
                                Tensor& stats) const = 0;
  /// A fixed name for logs, e.g. "softmax-cross-entropy".
  virtual std::string name() const = 0;
  /// How per-sample losses are combined.
  virtual Reduction reduction() const = 0;
  /// Whether the loss counts errors (misclassified samples or labels): false for a regression
  /// loss, whose LossTotals::errors is always 0 (progress output then shows no error rate).
  virtual bool counts_errors() const { return true; }

  /// A statistics tensor on `backend` (4 floats: loss sum, errors, diverged step, its loss), zeroed.
  static Tensor make_stats(Backend& backend);
  /// Zeroes `stats` again (no divergence recorded). Throws Error when it is not a tensor of
  /// make_stats's size.
  static void reset(Tensor& stats);
  /// The totals in `stats`: one host read (on a GPU backend it synchronises with the queued work).
  /// Throws Error when it is not a tensor of make_stats's size.
  static LossTotals read(const Tensor& stats);
};

/// Softmax cross-entropy of class scores (N × K) against class indices (N, stored as floats),
/// fused with its gradient: dlogits = (softmax − onehot)·s with s = 1/N (kMean) or 1 (kSum).
/// A label that is not a class index in [0, K) throws Error on the CPU backend; on the CUDA backend
/// it makes its row's loss NaN, reported as divergence. max_loss ≤ 0 means 100·ln K: a batch mean
/// above it is divergence (an initial loss is about ln K).
class SoftmaxCrossEntropy final : public Loss {
 public:
  /// The loss with this reduction and divergence bound (≤ 0: the class's default). Throws Error
  /// when max_loss is NaN.
  explicit SoftmaxCrossEntropy(Reduction reduction = Reduction::kMean, float max_loss = 0.0f);
  /// As Loss::forward_backward, with logits N × K (K ≥ 2; an Error otherwise) and targets N.
  void forward_backward(const Tensor& logits, const Tensor& targets, const Tensor& step, Tensor& dlogits,
                        Tensor& stats) const override;
  std::string name() const override { return "softmax-cross-entropy"; }
  Reduction reduction() const override { return reduction_; }
  /// The divergence bound as given (≤ 0: the default 100·ln K).
  float max_loss() const { return max_loss_; }
  /// The primitive's arguments for a batch of `rows` rows of `classes` scores: grad_scale 1/rows
  /// (kMean) or 1 (kSum), and max_loss or its default.
  CrossEntropyArgs args(int64_t rows, int64_t classes) const;

 private:
  Reduction reduction_;
  float max_loss_;
};

// The elementwise losses below take predictions (N × D) and targets (N × D), or targets (N) when
// D = 1. A sample's loss is the mean of its D element terms, so the epoch's mean loss (loss_sum/N)
// is PyTorch's reduction='mean' over all N·D elements, whatever D. The gradient is that of
// s·Σ per-sample losses with s = 1/N (kMean: exactly PyTorch's 'mean' gradient) or 1 (kSum: the
// sum of per-sample means, 1/D of PyTorch's reduction='sum', which also sums over D). Targets are
// checked for shape only; a NaN target makes the batch's loss NaN, reported as divergence.

/// Regression: per-sample loss Σ_d (p − t)²/D; dpred = s·2(p − t)/D; no errors (err reads 0).
/// max_loss ≤ 0 means 1e30: the loss is in the targets' squared units, which the loss cannot know,
/// so by default only a non-finite (or about to overflow) batch is divergence; give a bound that
/// suits the targets' scale to stop a run that explodes earlier.
class MeanSquaredError final : public Loss {
 public:
  /// The loss with this reduction and divergence bound (≤ 0: the class's default). Throws Error
  /// when max_loss is NaN.
  explicit MeanSquaredError(Reduction reduction = Reduction::kMean, float max_loss = 0.0f);
  /// As Loss::forward_backward, with predictions N × D (an Error otherwise).
  void forward_backward(const Tensor& pred, const Tensor& targets, const Tensor& step, Tensor& dpred,
                        Tensor& stats) const override;
  std::string name() const override { return "mean-squared-error"; }
  Reduction reduction() const override { return reduction_; }
  /// false: a regression loss.
  bool counts_errors() const override { return false; }
  /// The divergence bound as given (≤ 0: the default 1e30).
  float max_loss() const { return max_loss_; }

 private:
  Reduction reduction_;
  float max_loss_;
};

/// Multi-label classification (D independent binary labels, targets in [0, 1]) on logits:
/// per-sample loss Σ_d (max(x, 0) − x·t + log1p(exp(−|x|)))/D, PyTorch's BCEWithLogitsLoss;
/// dlogits = s·(σ(x) − t)/D. Errors: each sample adds the fraction of its D labels whose
/// prediction (x > 0) differs from (t > 0.5), so err is the mean fraction of wrong labels (the
/// Hamming loss). max_loss ≤ 0 means 100·ln 2 ≈ 69.3: logits near 0 give ln 2 per sample, the
/// same factor of 100 above the initial loss as SoftmaxCrossEntropy's 100·ln K.
class BinaryCrossEntropyWithLogits final : public Loss {
 public:
  /// The loss with this reduction and divergence bound (≤ 0: the class's default). Throws Error
  /// when max_loss is NaN.
  explicit BinaryCrossEntropyWithLogits(Reduction reduction = Reduction::kMean, float max_loss = 0.0f);
  /// As Loss::forward_backward, with logits N × D (an Error otherwise).
  void forward_backward(const Tensor& logits, const Tensor& targets, const Tensor& step, Tensor& dlogits,
                        Tensor& stats) const override;
  std::string name() const override { return "binary-cross-entropy-with-logits"; }
  Reduction reduction() const override { return reduction_; }
  /// The divergence bound as given (≤ 0: the default 100·ln 2).
  float max_loss() const { return max_loss_; }

 private:
  Reduction reduction_;
  float max_loss_;
};

}  // namespace cudl

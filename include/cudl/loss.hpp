#pragma once
// Losses over a network's output (N × K) and the targets (N), each one fused Backend primitive
// that writes ∂L/∂output and adds the batch's statistics to a small tensor on the backend, so
// that a training step never reads anything back: the statistics are read once per epoch (or
// when a callback asks). A batch whose mean loss is not finite or exceeds max_loss is recorded
// (its step number, read from a counter when the work runs, and its loss) as divergence.
#include <cstdint>
#include <string>

#include "cudl/backend.hpp"
#include "cudl/tensor.hpp"

namespace cudl {

// How the per-sample losses of a batch are combined into L (and so how large ∂L/∂output is):
// kMean, PyTorch's default (learning rates are per sample), or kSum (the 2014 run, whose
// optimizer divides by the batch size itself).
enum class Reduction { kMean, kSum };
const char* to_string(Reduction reduction);  // "mean", "sum"

// The statistics of a run of batches, as read from the device.
struct LossTotals {
  double loss_sum = 0.0;  // Σ per-sample loss
  double errors = 0.0;    // Σ misclassified samples (classification losses)
  int64_t bad_step = -1;  // the first diverged step's number (0-based), or -1
  double bad_value = 0.0; // that step's mean loss
};

class Loss {
 public:
  virtual ~Loss() = default;
  // Queues: dlogits ← ∂L/∂logits for this batch (targets: N values), stats += its totals (see
  // make_stats), and the divergence check with the step number in `step` (a counter).
  virtual void forward_backward(const Tensor& logits, const Tensor& targets, const Tensor& step, Tensor& dlogits,
                                Tensor& stats) const = 0;
  virtual std::string name() const = 0;
  virtual Reduction reduction() const = 0;

  // A statistics tensor on `backend`, zeroed (reset does it again).
  static Tensor make_stats(Backend& backend);
  static void reset(Tensor& stats);
  // One host read (synchronises with the queued work).
  static LossTotals read(const Tensor& stats);
};

// Softmax cross-entropy of class scores (N × K) against class indices (N, stored as floats),
// fused with its gradient: dlogits = (softmax − onehot)·s with s = 1/N (kMean) or 1 (kSum).
// Labels outside [0, K) are an error of the primitive. max_loss ≤ 0 means 100·ln K: a batch mean
// above it is divergence (an initial loss is about ln K).
class SoftmaxCrossEntropy final : public Loss {
 public:
  explicit SoftmaxCrossEntropy(Reduction reduction = Reduction::kMean, float max_loss = 0.0f);
  void forward_backward(const Tensor& logits, const Tensor& targets, const Tensor& step, Tensor& dlogits,
                        Tensor& stats) const override;
  std::string name() const override { return "softmax-cross-entropy"; }
  Reduction reduction() const override { return reduction_; }
  float max_loss() const { return max_loss_; }

 private:
  Reduction reduction_;
  float max_loss_;
};

}  // namespace cudl

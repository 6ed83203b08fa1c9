#pragma once
/// @file
/// The argument structs of Backend's loss and optimizer primitives (backend.hpp), and the layout
/// of the loss statistics tensor.
#include <cstdint>

namespace cudl {

/// Layout of the 4-float statistics tensor that the loss primitives (softmax_cross_entropy,
/// mean_squared_error, binary_cross_entropy_with_logits) accumulate into: indices of its floats.
struct LossStats {
  static constexpr int kLossSum = 0;     ///< Σ per-sample loss
  static constexpr int kErrors = 1;      ///< Σ misclassified samples (a fraction of one per sample for BCE; 0 for MSE)
  static constexpr int kBadStep = 2;     ///< first step whose mean loss was non-finite or > max_loss; -1 if none
  static constexpr int kBadValue = 3;    ///< that step's mean loss
  static constexpr int kSize = 4;        ///< floats in the tensor
};

/// Arguments of Backend::softmax_cross_entropy.
struct CrossEntropyArgs {
  float grad_scale = 1.0f;     ///< dlogits = grad_scale · (softmax − onehot)
  int64_t step = 0;            ///< step number recorded in kBadStep when this batch diverges
  float max_loss = 1e30f;      ///< a batch whose mean loss exceeds this counts as diverged
};

/// Arguments of the elementwise losses (mean_squared_error, binary_cross_entropy_with_logits);
/// the step number comes from a counter.
struct ElementwiseLossArgs {
  float grad_scale = 1.0f;  ///< the gradient of grad_scale · Σ per-sample losses
  float max_loss = 1e30f;   ///< a batch whose mean per-sample loss exceeds this counts as diverged
};

// The optimizers' fused updates (optimizer.hpp), each over all P parameters in one pass, with the
// learning rate read from a one-float tensor when the work runs; weight decay applies to the
// first `decayed` elements only (the weights; the rest are biases).

/// Arguments of Backend::nesterov_step: gdbn's Nesterov step (GdbnNesterov in optimizer.hpp has
/// the derivation). Between steps w holds the look-ahead point W + momentum·V and v the
/// velocity V:
///
///     d = lr · (−grad_scale·g − l2·w)   for the first `decayed` elements (weights),
///     d = lr · (−grad_scale·g)          for the rest (biases);
///     v ← momentum·v + d;   w ← w + d + momentum·v   (the new look-ahead point).
struct NesterovArgs {
  float momentum = 0.0f;    ///< μ
  float grad_scale = 1.0f;  ///< multiplies the gradient (1/B for a loss summed over a batch of B)
  float l2 = 0.0f;          ///< L2 cost on the weights
  int64_t decayed = 0;      ///< leading elements that take the decay (the weights)
};

/// Arguments of Backend::sgd_step: PyTorch's SGD (Sgd in optimizer.hpp), with t the step
/// counter's value when the work runs:
///
///     g ← g + weight_decay·w (weights);  buf ← g if t = 0, else momentum·buf + (1 − dampening)·g;
///     g ← g + momentum·buf if nesterov, else buf;  w ← w − lr·g.  (momentum = 0: no buffer.)
struct SgdArgs {
  float momentum = 0.0f;      ///< 0: plain SGD, no momentum buffer
  float dampening = 0.0f;     ///< scales the new gradient's share of the buffer by (1 − dampening)
  bool nesterov = false;      ///< Nesterov's form of the momentum
  float weight_decay = 0.0f;  ///< L2 added to the weights' gradient
  int64_t decayed = 0;        ///< leading elements that take the decay (the weights)
};

/// Arguments of Backend::adam_step: PyTorch's Adam, or AdamW when decoupled (Adam in
/// optimizer.hpp), with t ≥ 1 the step counter's value when the work runs (the caller advances
/// it first):
///
///     g ← g + weight_decay·w (Adam) or w ← w·(1 − lr·weight_decay) (AdamW), on weights;
///     m ← β₁m + (1 − β₁)g;  v ← β₂v + (1 − β₂)g²;  vmax ← max(vmax, v) (amsgrad);
///     w ← w − (lr / (1 − β₁ᵗ))·m / (√(vmax or v) / √(1 − β₂ᵗ) + eps).
struct AdamArgs {
  float beta1 = 0.9f;         ///< β₁, the first moment's decay
  float beta2 = 0.999f;       ///< β₂, the second moment's decay
  float eps = 1e-8f;          ///< added to the denominator, outside the square root
  float weight_decay = 0.0f;  ///< L2 (Adam) or decoupled (AdamW) decay of the weights
  bool decoupled = false;     ///< AdamW's decoupled decay instead of Adam's L2
  bool amsgrad = false;       ///< divide by the running maximum of v
  int64_t decayed = 0;        ///< leading elements that take the decay (the weights)
};

/// Arguments of Backend::momentum_step: gdbn's RBM update (the RbmMomentum optimizer).
struct MomentumArgs {
  float momentum = 0.0f;    ///< μ
  float grad_scale = 1.0f;  ///< multiplies the gradient (1/B for a gradient summed over B rows)
  float l2 = 0.0f;          ///< weight decay applied to the weights directly
  int64_t decayed = 0;      ///< leading elements that take the decay (the weights)
};

/// Arguments of Backend::cosine_learning_rate: CosineSchedule's per-step learning rate
/// (schedule.hpp), base·f(t), warm-up over warmup_steps, then a half cosine to base·min_factor
/// at total_steps.
struct CosineArgs {
  float base = 0.0f;         ///< the peak rate (finite, ≥ 0)
  int64_t warmup_steps = 0;  ///< steps of linear warm-up (≥ 0)
  int64_t total_steps = 1;   ///< the step at which the rate reaches base·min_factor (≥ 1)
  float min_factor = 0.0f;   ///< the final rate as a fraction of base
};

}  // namespace cudl

#pragma once
/// @file
/// The arguments of Backend::fused_mlp_steps: the 2014 run's training step (an MLP of Dense
/// layers, softmax cross-entropy, gdbn's Nesterov momentum, minibatches drawn with replacement or
/// shuffled from resident data) as one piece of work for many steps, where a backend has such a
/// form (the CUDA backend: one persistent kernel, docs/design/gpu-step.md). fit() uses it by
/// itself where it applies (EpochReport::fused); nothing else needs these.
#include <cstdint>

#include "cudl/backend.hpp"

namespace cudl {

/// One Dense layer of FusedMlpArgs: its parameters at gdbn's look-ahead point, and their velocities
/// (GdbnNesterov's state), all on the backend.
struct FusedMlpLayer {
  int64_t in = 0;                          ///< inputs: W is in × out
  int64_t out = 0;                         ///< outputs
  Activation act = Activation::kIdentity;  ///< the top layer's must be kIdentity (its outputs are the logits)
  float* w = nullptr;                      ///< in × out, row-major
  float* b = nullptr;                      ///< out
  float* vw = nullptr;                     ///< W's velocities, in W's layout
  float* vb = nullptr;                     ///< b's velocities
  /// Where not null (both or neither): the last step of each call also stores the layer's gradients
  /// here, in W's and b's layouts, before its update — what Network::grads() holds after an unfused
  /// step (the products' sums, before the optimizer's grad_scale).
  float* gw = nullptr;
  float* gb = nullptr;  ///< the bias gradient (see gw)
};

/// Arguments of Backend::fused_mlp_steps. Each of the `steps` steps does what these calls do,
/// up to the order of the products' sums: sample_rows (or shuffled_rows) of x, y, seed and *draw
/// into a batch, gemm_bias_activation per layer, softmax_cross_entropy(loss, step counter) into stats,
/// gemm_activation_backward and gemm_sum_rows per layer, then nesterov_step of every layer's W
/// (L2 `update.l2`) and b (no L2), with the learning rate in `lr`; the counters advance as
/// add_to_counter would. The layers' gradients are stored only by the last step, and only where a
/// layer has gw and gb.
struct FusedMlpArgs {
  const FusedMlpLayer* layers = nullptr;  ///< bottom first
  int num_layers = 0;                     ///< 1 or more; each layer's `in` is the one below's `out`
  int64_t batch = 0;                      ///< rows per step
  const float* x = nullptr;               ///< rows × layers[0].in
  const float* y = nullptr;               ///< rows class indices (as floats)
  int64_t rows = 0;                       ///< of x and y
  uint64_t seed = 0;                      ///< the draws' seed
  bool shuffled = false;                  ///< draws as Backend::shuffled_rows (true) or sample_rows
  uint64_t* draw = nullptr;               ///< counter: the first draw of the first step; += steps · batch
  uint64_t* step = nullptr;               ///< counter: the step a diverging batch records; += steps
  uint64_t* updates = nullptr;            ///< counter (may be null): the optimizer's step count; += steps
  float* stats = nullptr;                 ///< LossStats, added to
  CrossEntropyArgs loss;                  ///< grad_scale and max_loss (the step number comes from `step`)
  const float* lr = nullptr;              ///< one float: the learning rate, read when the steps start
  NesterovArgs update;                    ///< momentum, grad_scale and l2 (`decayed` is not read)
  int64_t steps = 0;                      ///< steps to run (≥ 1)
};

}  // namespace cudl

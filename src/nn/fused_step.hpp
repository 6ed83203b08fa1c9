#pragma once
// Whether fit()'s epoch can run as the backend's fused training step (Backend::fused_mlp_steps,
// cudl/fused_mlp.hpp), and its arguments: what in the network, loss and optimizer it needs.
#include <string>
#include <vector>

#include "cudl/fused_mlp.hpp"
#include "cudl/loss.hpp"
#include "cudl/network.hpp"
#include "cudl/optimizer.hpp"
#include "cudl/schedule.hpp"
#include "cudl/trainer.hpp"
#include "nn/epoch_loop.hpp"

namespace cudl::detail {

struct FusedStep {
  std::string why;  // empty where the fused step applies; else why fit() queues its own steps
  std::vector<FusedMlpLayer> layers;
  FusedMlpArgs args;  // all but args.layers (point it at `layers` before use), the data, the draw
                      // counter and the steps
};

// The network's Dense layers (the top one linear), softmax cross-entropy over class indices, and
// GdbnNesterov at its look-ahead point with the network's weights as its decayed parameters: the
// arguments for batches of `batch` rows, the loss adding to `stats` with the step from `step`.
// Where any of that does not hold, `why` says what (the backend's own conditions are
// Backend::fused_mlp_refusal's).
FusedStep fused_step(Network& net, const Loss& loss, Optimizer& opt, int64_t batch, Tensor& step, Tensor& stats);

// Whether Trainer's epoch fuses: the run is one the fused step can take (StepLaunch::kAuto, one
// process, resident class-indexed data on the network's backend, no per-step
// schedule, and fused_step's conditions), and the backend runs it (Backend::fused_mlp_refusal).
// `why` says why not; otherwise `args` holds the data too (args.layers points into `layers`: point
// it there again after copying the result).
FusedStep fused_epoch(Network& net, const Loss& loss, Optimizer& opt, const Schedule* schedule, StepLaunch launch,
                      bool several_processes, const EpochSource& data, int64_t batch, Tensor& step, Tensor& stats);

}  // namespace cudl::detail

#pragma once
/// @file
/// StepLaunch: how a training loop (fit, Trainer, Rbm::train_epoch) queues its steps.

namespace cudl {

/// How the steps of an epoch are queued. kCaptured: on a backend that can capture (a GPU) and a
/// step that can be captured (a network whose layers all can, Layer::capturable; any RBM), the
/// run's first step is queued eagerly (so that libraries initialise outside a capture), the next
/// one is captured once (a CUDA graph) and replayed for every later step of every epoch,
/// everything that changes between steps living in device memory (counters, the learning rate).
/// kAuto: as kCaptured, except that fit() runs the backend's fused training step where it has
/// one for the run (Backend::fused_mlp_steps: on a GPU, one persistent kernel for many steps of
/// an MLP under softmax cross-entropy and GdbnNesterov; EpochReport::fused says so, and
/// EpochReport::not_fused why not). Otherwise, and with kEager, each primitive is queued one by
/// one. All give the same arithmetic, up to the order of the products' sums.
enum class StepLaunch { kAuto, kEager, kCaptured };

}  // namespace cudl

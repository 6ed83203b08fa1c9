#pragma once
/// @file
/// StepLaunch: how a training loop (fit, Trainer, Rbm::train_epoch) queues its steps.

namespace cudl {

/// How the steps of an epoch are queued. kAuto: on a backend that can capture (a GPU) and a
/// step that can be captured (a network whose layers all can, Layer::capturable; any RBM), the
/// run's first step is queued eagerly (so that libraries initialise outside a capture), the next
/// one is captured once (a CUDA graph) and replayed for every later step of every epoch,
/// everything that changes between steps living in device memory (counters, the learning rate).
/// Otherwise, and with kEager, each primitive is queued one by one. Both give the same arithmetic.
enum class StepLaunch { kAuto, kEager };

}  // namespace cudl

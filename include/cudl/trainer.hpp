#pragma once
// The training loop of the 2014 run (nolearn.dbn over gdbn): each epoch draws floor(R/B)
// minibatches of B rows uniformly with replacement (on the backend, counter-based), takes a
// Nesterov step on the summed softmax cross-entropy, and reports the mean loss and error rate
// over the epoch's draws (measured at the look-ahead weights, as gdbn did); the learning rate
// is multiplied by `decay` after each epoch. Divergence (a non-finite or exploding minibatch
// loss) stops training with cudl::Diverged.
#include <cstdint>
#include <functional>
#include <vector>

#include "cudl/error.hpp"
#include "cudl/network.hpp"

namespace cudl {

// How the steps of an epoch are queued. kAuto: on a backend that can capture (a GPU) and a
// network whose layers all can (Layer::capturable), one step is captured per epoch (a CUDA
// graph: the learning rate is fixed within an epoch) and replayed for every step, the
// minibatch draw and the step number advancing in device counters; otherwise each primitive is
// queued one by one. kEager: always one by one. Both give the same arithmetic.
enum class StepLaunch { kAuto, kEager };

struct TrainConfig {
  int epochs = 10;
  int64_t batch = 64;
  float learn_rate = 0.3f;
  float decay = 0.9f;
  float momentum = 0.9f;
  float l2 = 1e-4f;
  uint64_t seed = 2014;   // minibatch draws
  float max_loss = 0.0f;  // a minibatch mean loss above this is divergence; 0: 100·ln(K)
  StepLaunch launch = StepLaunch::kAuto;
};

struct EpochReport {
  int epoch = 0;          // 1-based
  int64_t steps = 0;      // minibatches
  int64_t samples = 0;    // steps · batch
  double loss = 0.0;      // mean per-sample cross-entropy over the epoch's draws
  double err = 0.0;       // training misclassification rate over the same draws
  double seconds = 0.0;   // wall time of the epoch, queued work included
  float learn_rate = 0.0f;
  bool captured = false;  // whether the epoch replayed one captured step (StepLaunch)
};

class Diverged : public Error {
 public:
  Diverged(int epoch, int64_t minibatch, double value, float learn_rate);
  int epoch;          // 1-based
  int64_t minibatch;  // 1-based within the epoch
  double value;       // that minibatch's mean loss
};

// Trains net on x (R × features) and y (R, class indices as floats), both on net's backend.
// on_epoch, if given, is called after every epoch. Returns one report per epoch.
std::vector<EpochReport> train(Network& net, const Tensor& x, const Tensor& y, const TrainConfig& config,
                               const std::function<void(const EpochReport&)>& on_epoch = {});

}  // namespace cudl

#pragma once
// NesterovSgd: the momentum update of gdbn (the 2014 run), with L2 decay on weights only.
// With B the batch size, μ the momentum, λ the L2 cost, gdbn's step is
//   V ← μV;  W ← W + V                       (move to the look-ahead point)
//   g ← ∂L/∂W at W, L summed over the batch
//   D ← lr·(−g/B − λW);  V ← V + D;  W ← W + D
// (biases: D ← −(lr/B)·g). We keep the parameters at the look-ahead point between steps, so
// the two halves fuse into one pass over all parameters (Backend::nesterov_step):
//   d ← lr·(−g/B − λw);  v ← μv + d;  w ← w + d + μv
// where w = W + μV. begin() enters that form (w ← W + μV), end() leaves it (W ← w − μV);
// the iterates are gdbn's, up to float rounding.
#include <cstdint>

#include "cudl/network.hpp"

namespace cudl {

struct NesterovConfig {
  float learn_rate = 0.3f;
  float momentum = 0.9f;
  float l2 = 1e-4f;
};

class NesterovSgd {
 public:
  // Velocities start at zero.
  NesterovSgd(Network& net, const NesterovConfig& config);

  // Moves the network's parameters to the look-ahead point; gradients for step() must be
  // computed there. Idempotent while active.
  void begin();
  // One update from net.grads() (∂L/∂params at the look-ahead point, L summed over `batch`
  // samples). Requires begin().
  void step(int64_t batch);
  // Moves the parameters back to the true weights W (before evaluating or saving).
  void end();
  bool active() const { return active_; }

  float learn_rate() const { return config_.learn_rate; }
  void set_learn_rate(float lr) { config_.learn_rate = lr; }
  const NesterovConfig& config() const { return config_; }
  const Tensor& velocity() const { return velocity_; }

 private:
  Network& net_;
  NesterovConfig config_;
  Tensor velocity_;
  bool active_ = false;
};

}  // namespace cudl

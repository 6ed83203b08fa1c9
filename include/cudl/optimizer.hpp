#pragma once
// Optimizers over a flat parameter set (docs/design/training-core.md). Each update is one fused
// Backend primitive over all P parameters (one pass on the CPU, one launch on the GPU) that reads
// its learning rate from a one-float tensor on the backend (learning_rate()), so a captured GPU
// step follows a schedule without being captured again. Constant hyperparameters are arguments.
// An optimizer's state is a list of named flat tensors (state()), which a checkpoint saves as is.
//
//   cudl::AdamOptions o;  o.learn_rate = 1e-3f;  o.weight_decay = 1e-2f;
//   cudl::Adam opt = cudl::Adam::adamw(net.param_set(), o);
//   ... net.backward(...);  opt.step();
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "cudl/backend.hpp"
#include "cudl/tensor.hpp"

namespace cudl {

// The parameters one optimizer updates: P values, their gradients (P), and how many of the
// leading values are weights that take weight decay (the rest, biases, do not). Network and Rbm
// keep theirs in this layout (Network::param_set()).
struct ParamSet {
  Tensor* params = nullptr;
  Tensor* grads = nullptr;
  int64_t decayed = 0;
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // Queues one update of params from grads (as the loss left them: a mean or a sum, see Loss),
  // with the learning rate in learning_rate() when the work runs; advances step_count().
  virtual void step() = 0;
  // Before a run of steps and after it. Optimizers whose gradients are taken at another point
  // than the weights (GdbnNesterov's look-ahead) move the parameters there in begin() and back
  // in end(); call end() before evaluating or saving the network. Others do nothing.
  virtual void begin() {}
  virtual void end() {}
  // The optimizer's state, by name, in the layout of params (or one counter): what a checkpoint
  // saves and loads. E.g. Adam: "exp_avg", "exp_avg_sq" [, "max_exp_avg_sq"], "step".
  virtual std::vector<std::pair<std::string, Tensor*>> state() = 0;
  // "sgd", "adam", "adamw", "gdbn-nesterov".
  virtual std::string name() const = 0;
  // Whether begin() has moved the parameters to a point end() has not yet undone (GdbnNesterov's
  // look-ahead): a checkpoint written then records it, and assume_lookahead(true) on loading
  // puts the optimizer back in that state without moving the parameters.
  virtual bool in_lookahead() const { return false; }
  virtual void assume_lookahead(bool lookahead) { (void)lookahead; }

  // The configured learning rate (schedules scale it) and the one-float tensor the update reads.
  float base_learning_rate() const { return base_learn_rate_; }
  Tensor& learning_rate() { return lr_; }
  // Writes the learning rate the next steps use (a host transfer: not while capturing).
  void set_learning_rate(float lr);
  // The learning rate now in learning_rate() (a host read: synchronises).
  float current_learning_rate() const;
  // Steps taken so far (a counter tensor, see make_counter): Adam's bias correction and per-step
  // schedules read it on the device.
  Tensor& step_count() { return step_; }
  const ParamSet& params() const { return params_; }
  Backend& backend() const { return params_.params->backend(); }

 protected:
  // Checks the set (params and grads: same backend, same size; 0 ≤ decayed ≤ P; lr finite ≥ 0);
  // `who` ("Adam") begins the error messages.
  Optimizer(ParamSet params, float learn_rate, const char* who);

  ParamSet params_;
  float base_learn_rate_;
  Tensor lr_;    // {1}
  Tensor step_;  // a counter
};

// PyTorch's torch.optim.SGD, with weight decay applied to the decayed prefix only (PyTorch
// applies it to every parameter given to it; give biases their own optimizer there to compare):
//   g ← grad + weight_decay·w (weights);  b ← momentum·b + (1 − dampening)·g (b ← g on the first
//   step);  g ← g + momentum·b if nesterov else b;  w ← w − lr·g.   (momentum 0: w ← w − lr·g)
struct SgdOptions {
  float learn_rate = 0.01f;
  float momentum = 0.0f;
  float dampening = 0.0f;
  bool nesterov = false;  // requires momentum > 0 and dampening = 0, as PyTorch
  float weight_decay = 0.0f;
};

class Sgd final : public Optimizer {
 public:
  Sgd(ParamSet params, const SgdOptions& options);
  void step() override;
  std::vector<std::pair<std::string, Tensor*>> state() override;  // "momentum_buffer", "step"
  std::string name() const override { return "sgd"; }
  const SgdOptions& options() const { return options_; }

 private:
  SgdOptions options_;
  Tensor momentum_;  // P (allocated when momentum > 0)
};

// PyTorch's torch.optim.Adam / AdamW (bias-corrected, eps outside the square root, amsgrad
// optional), with t the step count after this step:
//   g ← grad (+ weight_decay·w on weights, Adam's L2 form);  w ← w·(1 − lr·weight_decay) on
//   weights (AdamW's decoupled form instead);  m ← β₁m + (1 − β₁)g;  v ← β₂v + (1 − β₂)g²;
//   v̂max ← max(v̂max, v) (amsgrad);  w ← w − lr · (m / (1 − β₁ᵗ)) / (√(v or v̂max) / √(1 − β₂ᵗ) + eps).
struct AdamOptions {
  float learn_rate = 1e-3f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
  float weight_decay = 0.0f;  // L2 (Adam) or decoupled (adamw); 0 by default, as PyTorch's Adam
  bool amsgrad = false;
};

class Adam final : public Optimizer {
 public:
  enum class Decay { kL2, kDecoupled };
  Adam(ParamSet params, const AdamOptions& options, Decay decay = Decay::kL2);
  // AdamW: decoupled weight decay (PyTorch's AdamW; its default weight_decay is 1e-2, ours the
  // options' value).
  static Adam adamw(ParamSet params, const AdamOptions& options) { return Adam(params, options, Decay::kDecoupled); }

  void step() override;
  // "exp_avg", "exp_avg_sq", ["max_exp_avg_sq",] "step".
  std::vector<std::pair<std::string, Tensor*>> state() override;
  std::string name() const override { return decay_ == Decay::kDecoupled ? "adamw" : "adam"; }
  const AdamOptions& options() const { return options_; }

 private:
  AdamOptions options_;
  Decay decay_;
  Tensor m_, v_, vmax_;
};

// The 2014 run's update: gdbn's Nesterov momentum with L2 decay on weights only. With B the
// batch size, μ the momentum, λ the L2 cost and g the gradient of the loss summed over the batch,
// gdbn's step is
//   V ← μV;  W ← W + V                       (move to the look-ahead point)
//   g ← ∂L/∂W at W
//   D ← lr·(−g·grad_scale − λW);  V ← V + D;  W ← W + D        (biases: D ← −lr·grad_scale·g)
// with grad_scale = 1/B. The parameters are kept at the look-ahead point between steps, so the
// two halves fuse into one pass (Backend::nesterov_step):
//   d ← lr·(−grad_scale·g − λw);  v ← μv + d;  w ← w + d + μv      where w = W + μV.
// begin() enters that form (w ← W + μV), end() leaves it (W ← w − μV); the iterates are gdbn's,
// up to float rounding. Give grad_scale = 1 when the loss is already a mean (Reduction::kMean).
struct GdbnNesterovOptions {
  float learn_rate = 0.3f;
  float momentum = 0.9f;
  float l2 = 1e-4f;
  float grad_scale = 1.0f;
};

class GdbnNesterov final : public Optimizer {
 public:
  // Velocities start at zero.
  GdbnNesterov(ParamSet params, const GdbnNesterovOptions& options);
  void step() override;  // requires begin()
  void begin() override;  // idempotent while active
  void end() override;
  bool active() const { return active_; }
  bool in_lookahead() const override { return active_; }
  void assume_lookahead(bool lookahead) override { active_ = lookahead; }
  std::vector<std::pair<std::string, Tensor*>> state() override;  // "velocity", "step"
  std::string name() const override { return "gdbn-nesterov"; }
  const GdbnNesterovOptions& options() const { return options_; }
  const Tensor& velocity() const { return velocity_; }

 private:
  GdbnNesterovOptions options_;
  Tensor velocity_;
  bool active_ = false;
};

// gdbn's RBM update (its CDStep), used by Rbm: momentum averaging the gradient, weight decay on
// the weights directly. With f = 1 − μ and g the gradient of the summed objective:
//   v ← μv − f·lr·grad_scale·g;  w ← w·(1 − f·lr·l2) + v    (biases: no decay factor).
struct RbmMomentumOptions {
  float learn_rate = 0.1f;
  float momentum = 0.5f;
  float l2 = 2e-4f;
  float grad_scale = 1.0f;  // 1/B for a gradient summed over a batch of B
};

class RbmMomentum final : public Optimizer {
 public:
  // Velocities start at zero.
  RbmMomentum(ParamSet params, const RbmMomentumOptions& options);
  void step() override;
  std::vector<std::pair<std::string, Tensor*>> state() override;  // "velocity", "step"
  std::string name() const override { return "rbm-momentum"; }
  const RbmMomentumOptions& options() const { return options_; }
  // Velocities back to zero and the step count to 0 (a fresh start of the same parameters).
  void reset();
  // For a batch of another size (grad_scale = 1/B): takes effect at the next step.
  void set_grad_scale(float grad_scale);

 private:
  RbmMomentumOptions options_;
  Tensor velocity_;
};

}  // namespace cudl

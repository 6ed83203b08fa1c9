#pragma once
/// @file
/// Optimizers over a flat parameter set (docs/design/training-core.md). Each update is one fused
/// Backend primitive over all P parameters (one pass on the CPU, one launch on the GPU) that reads
/// its learning rate from a one-float tensor on the backend (learning_rate()), so a captured GPU
/// step follows a schedule without being captured again. Constant hyperparameters are arguments.
/// An optimizer's state is a list of named flat tensors (state()), which a checkpoint saves as is.
///
///     cudl::AdamOptions o;  o.learn_rate = 1e-3f;  o.weight_decay = 1e-2f;
///     cudl::Adam opt = cudl::Adam::adamw(net.param_set(), o);
///     ... net.backward(...);  opt.step();
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "cudl/backend.hpp"
#include "cudl/tensor.hpp"

namespace cudl {

/// The parameters one optimizer updates: P values, their gradients (P), and how many of the
/// leading values are weights that take weight decay (the rest, biases, do not). Network and Rbm
/// keep theirs in this layout (Network::param_set()).
struct ParamSet {
  Tensor* params = nullptr;  ///< the P values, weights first
  Tensor* grads = nullptr;   ///< their gradients, same size and backend
  int64_t decayed = 0;       ///< leading values that take weight decay (0 ≤ decayed ≤ P)
};

/// Updates a ParamSet from its gradients, one fused Backend primitive per step.
///
/// Constructors check the set and the options and throw Error naming the optimizer and the value
/// (params and grads missing, empty, of different sizes or backends; a learning rate or other
/// hyperparameter out of range). The update runs where the parameters are, with the same
/// arithmetic on the CPU and the GPU. One optimizer is used from one thread at a time, like the
/// backend it queues on.
class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  /// Queues one update of params from grads (as the loss left them: a mean or a sum, see Loss),
  /// with the learning rate in learning_rate() when the work runs; advances step_count().
  virtual void step() = 0;
  /// Before a run of steps and after it. Optimizers whose gradients are taken at another point
  /// than the weights (GdbnNesterov's look-ahead) move the parameters there in begin() and back
  /// in end(); call end() before evaluating or saving the network. Others do nothing.
  virtual void begin() {}
  /// Undoes begin(): moves the parameters back from the point the gradients are taken at.
  virtual void end() {}
  /// The optimizer's state, by name, in the layout of params (or one counter): what a checkpoint
  /// saves and loads. E.g. Adam: "exp_avg", "exp_avg_sq" [, "max_exp_avg_sq"], "step".
  virtual std::vector<std::pair<std::string, Tensor*>> state() = 0;
  /// "sgd", "adam", "adamw", "gdbn-nesterov" or "rbm-momentum".
  virtual std::string name() const = 0;
  /// Whether begin() has moved the parameters to a point end() has not yet undone (GdbnNesterov's
  /// look-ahead): a checkpoint written then records it, and assume_lookahead(true) on loading
  /// puts the optimizer back in that state without moving the parameters.
  virtual bool in_lookahead() const { return false; }
  /// Declares the parameters to be at the look-ahead point (true) or not, without moving them: for
  /// loading a checkpoint written with in_lookahead(). Optimizers without one ignore it.
  virtual void assume_lookahead(bool lookahead) { (void)lookahead; }

  /// The configured learning rate (schedules scale it).
  float base_learning_rate() const { return base_learn_rate_; }
  /// The one-float tensor, on the parameters' backend, that the update reads when it runs.
  Tensor& learning_rate() { return lr_; }
  /// Writes the learning rate the next steps use (a host transfer: not while capturing). Throws
  /// Error unless lr is finite and ≥ 0.
  void set_learning_rate(float lr);
  /// The learning rate now in learning_rate() (a host read: synchronises).
  float current_learning_rate() const;
  /// Steps taken so far (a counter tensor, see make_counter): Adam's bias correction and per-step
  /// schedules read it on the device.
  Tensor& step_count() { return step_; }
  /// The parameter set this optimizer updates.
  const ParamSet& params() const { return params_; }
  /// The backend the parameters, and so the updates, are on.
  Backend& backend() const { return params_.params->backend(); }

 protected:
  /// Checks the set (params and grads: same backend, same size; 0 ≤ decayed ≤ P; lr finite ≥ 0)
  /// and throws Error if not; `who` ("Adam") begins the error messages.
  Optimizer(ParamSet params, float learn_rate, const char* who);

  ParamSet params_;          ///< what step() updates
  float base_learn_rate_;    ///< the configured learning rate
  Tensor lr_;    ///< {1}: the learning rate the update reads
  Tensor step_;  ///< a counter: steps taken
};

/// PyTorch's torch.optim.SGD, with weight decay applied to the decayed prefix only (PyTorch
/// applies it to every parameter given to it; give biases their own optimizer there to compare):
///
///     g ← grad + weight_decay·w (weights);  b ← momentum·b + (1 − dampening)·g (b ← g on the first
///     step);  g ← g + momentum·b if nesterov else b;  w ← w − lr·g.   (momentum 0: w ← w − lr·g)
struct SgdOptions {
  float learn_rate = 0.01f;   ///< lr (finite, ≥ 0)
  float momentum = 0.0f;      ///< in [0, 1); 0: no momentum buffer
  float dampening = 0.0f;     ///< in [0, 1]
  bool nesterov = false;  ///< requires momentum > 0 and dampening = 0, as PyTorch
  float weight_decay = 0.0f;  ///< L2 on the decayed prefix (≥ 0)
};

/// PyTorch's SGD with optional momentum, Nesterov momentum and weight decay (SgdOptions).
class Sgd final : public Optimizer {
 public:
  /// Throws Error when an option is out of range (see SgdOptions) or the set is invalid.
  Sgd(ParamSet params, const SgdOptions& options);
  void step() override;
  /// "momentum_buffer" (only with momentum > 0), "step".
  std::vector<std::pair<std::string, Tensor*>> state() override;
  std::string name() const override { return "sgd"; }
  /// The options it was made with.
  const SgdOptions& options() const { return options_; }

 private:
  SgdOptions options_;
  Tensor momentum_;  // P (allocated when momentum > 0)
};

/// PyTorch's torch.optim.Adam / AdamW (bias-corrected, eps outside the square root, amsgrad
/// optional), with t the step count after this step:
///
///     g ← grad (+ weight_decay·w on weights, Adam's L2 form);  w ← w·(1 − lr·weight_decay) on
///     weights (AdamW's decoupled form instead);  m ← β₁m + (1 − β₁)g;  v ← β₂v + (1 − β₂)g²;
///     v̂max ← max(v̂max, v) (amsgrad);  w ← w − lr · (m / (1 − β₁ᵗ)) / (√(v or v̂max) / √(1 − β₂ᵗ) + eps).
struct AdamOptions {
  float learn_rate = 1e-3f;   ///< lr (finite, ≥ 0)
  float beta1 = 0.9f;         ///< β₁ in [0, 1)
  float beta2 = 0.999f;       ///< β₂ in [0, 1)
  float eps = 1e-8f;          ///< finite, > 0
  float weight_decay = 0.0f;  ///< L2 (Adam) or decoupled (adamw); 0 by default, as PyTorch's Adam
  bool amsgrad = false;       ///< divide by the running maximum of v̂
};

/// PyTorch's Adam, or AdamW with Decay::kDecoupled (AdamOptions has the update).
class Adam final : public Optimizer {
 public:
  /// How weight decay enters the update.
  enum class Decay {
    kL2,        ///< Adam: weight_decay·w added to the gradient
    kDecoupled  ///< AdamW: w ← w·(1 − lr·weight_decay) before the update
  };
  /// Throws Error when an option is out of range (see AdamOptions) or the set is invalid.
  Adam(ParamSet params, const AdamOptions& options, Decay decay = Decay::kL2);
  /// AdamW: decoupled weight decay (PyTorch's AdamW; its default weight_decay is 1e-2, ours the
  /// options' value).
  static Adam adamw(ParamSet params, const AdamOptions& options) { return Adam(params, options, Decay::kDecoupled); }

  void step() override;
  /// "exp_avg", "exp_avg_sq", ["max_exp_avg_sq",] "step".
  std::vector<std::pair<std::string, Tensor*>> state() override;
  std::string name() const override { return decay_ == Decay::kDecoupled ? "adamw" : "adam"; }
  /// The options it was made with.
  const AdamOptions& options() const { return options_; }

 private:
  AdamOptions options_;
  Decay decay_;
  Tensor m_, v_, vmax_;
};

/// The 2014 run's update: gdbn's Nesterov momentum with L2 decay on weights only. With B the
/// batch size, μ the momentum, λ the L2 cost and g the gradient of the loss summed over the batch,
/// gdbn's step is
///
///     V ← μV;  W ← W + V                       (move to the look-ahead point)
///     g ← ∂L/∂W at W
///     D ← lr·(−g·grad_scale − λW);  V ← V + D;  W ← W + D        (biases: D ← −lr·grad_scale·g)
///
/// with grad_scale = 1/B. The parameters are kept at the look-ahead point between steps, so the
/// two halves fuse into one pass (Backend::nesterov_step):
///
///     d ← lr·(−grad_scale·g − λw);  v ← μv + d;  w ← w + d + μv      where w = W + μV.
///
/// begin() enters that form (w ← W + μV), end() leaves it (W ← w − μV); the iterates are gdbn's,
/// up to float rounding. Give grad_scale = 1 when the loss is already a mean (Reduction::kMean).
struct GdbnNesterovOptions {
  float learn_rate = 0.3f;  ///< lr (finite, ≥ 0)
  float momentum = 0.9f;    ///< μ in [0, 1)
  float l2 = 1e-4f;         ///< λ, the L2 cost on the weights (≥ 0)
  float grad_scale = 1.0f;  ///< multiplies the gradient (finite, > 0): 1/B for a summed loss
};

/// gdbn's Nesterov momentum (GdbnNesterovOptions has the update), the 2014 run's optimizer. Its
/// gradients are taken at the look-ahead point: call begin() before the first step() and end()
/// before evaluating or saving the network.
class GdbnNesterov final : public Optimizer {
 public:
  /// Velocities start at zero. Throws Error when an option is out of range or the set is invalid.
  GdbnNesterov(ParamSet params, const GdbnNesterovOptions& options);
  /// Queues one update (see Optimizer::step). Throws Error unless begin() is in effect.
  void step() override;
  /// Moves the parameters to the look-ahead point (w ← W + μV); idempotent while active.
  void begin() override;
  /// Moves the parameters back from the look-ahead point (W ← w − μV).
  void end() override;
  /// Whether begin() is in effect (the parameters are at the look-ahead point).
  bool active() const { return active_; }
  bool in_lookahead() const override { return active_; }
  void assume_lookahead(bool lookahead) override { active_ = lookahead; }
  /// "velocity", "step".
  std::vector<std::pair<std::string, Tensor*>> state() override;
  std::string name() const override { return "gdbn-nesterov"; }
  /// The options it was made with.
  const GdbnNesterovOptions& options() const { return options_; }
  /// V, in the layout of the parameters.
  const Tensor& velocity() const { return velocity_; }

 private:
  GdbnNesterovOptions options_;
  Tensor velocity_;
  bool active_ = false;
};

/// gdbn's RBM update (its CDStep), used by Rbm: momentum averaging the gradient, weight decay on
/// the weights directly. With f = 1 − μ and g the gradient of the summed objective:
///
///     v ← μv − f·lr·grad_scale·g;  w ← w·(1 − f·lr·l2) + v    (biases: no decay factor).
struct RbmMomentumOptions {
  float learn_rate = 0.1f;  ///< lr (finite, ≥ 0)
  float momentum = 0.5f;    ///< μ in [0, 1)
  float l2 = 2e-4f;         ///< weight decay (≥ 0)
  float grad_scale = 1.0f;  ///< 1/B for a gradient summed over a batch of B
};

/// gdbn's RBM update (RbmMomentumOptions has the formula), the optimizer of Rbm's training.
class RbmMomentum final : public Optimizer {
 public:
  /// Velocities start at zero. Throws Error when an option is out of range or the set is invalid.
  RbmMomentum(ParamSet params, const RbmMomentumOptions& options);
  void step() override;
  /// "velocity", "step".
  std::vector<std::pair<std::string, Tensor*>> state() override;
  std::string name() const override { return "rbm-momentum"; }
  /// The options it was made with (grad_scale as last set).
  const RbmMomentumOptions& options() const { return options_; }
  /// Velocities back to zero and the step count to 0 (a fresh start of the same parameters).
  void reset();
  /// For a batch of another size (grad_scale = 1/B): takes effect at the next step. Throws Error
  /// unless grad_scale is finite and > 0.
  void set_grad_scale(float grad_scale);

 private:
  RbmMomentumOptions options_;
  Tensor velocity_;
};

}  // namespace cudl

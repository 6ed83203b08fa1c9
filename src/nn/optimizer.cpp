// The optimizers (optimizer.hpp): each step() queues one fused Backend update over the whole
// parameter set and advances the step counter, with no host transfer, so it can be captured.
#include "cudl/optimizer.hpp"

#include <cmath>
#include <vector>

#include "cudl/error.hpp"

namespace cudl {
namespace {

std::string str(float x) { return std::to_string(x); }

// Throws unless lo ≤ x < hi (x finite).
void require_in(float x, float lo, float hi, const char* who, const char* what) {
  CUDL_REQUIRE(std::isfinite(x) && x >= lo && x < hi, std::string(who) + ": " + what + " must be in [" + str(lo) +
                                                          ", " + str(hi) + "), got " + str(x));
}

// Throws unless x is finite and ≥ 0.
void require_non_negative(float x, const char* who, const char* what) {
  CUDL_REQUIRE(std::isfinite(x) && x >= 0.0f,
               std::string(who) + ": " + what + " must be finite and ≥ 0, got " + str(x));
}

ParamSet checked(ParamSet p, float learn_rate, const char* who) {
  const std::string w(who);
  CUDL_REQUIRE(p.params != nullptr && p.grads != nullptr, w + ": the parameter set has no params or no grads tensor");
  CUDL_REQUIRE(!p.params->empty(), w + ": the parameter set is empty");
  CUDL_REQUIRE(&p.params->backend() == &p.grads->backend(),
               w + ": params live on " + p.params->backend().describe() + " but grads on " +
                   p.grads->backend().describe());
  CUDL_REQUIRE(p.params->size() == p.grads->size(), w + ": params " + to_string(p.params->shape()) + " and grads " +
                                                        to_string(p.grads->shape()) + " differ in size");
  CUDL_REQUIRE(p.decayed >= 0 && p.decayed <= p.params->size(),
               w + ": decayed count " + std::to_string(p.decayed) + " outside [0, " +
                   std::to_string(p.params->size()) + "]");
  require_non_negative(learn_rate, who, "learning rate");
  return p;
}

// A state tensor of P zeros.
Tensor zeros_like(const Tensor& t) {
  Tensor z(t.shape(), t.backend());
  t.backend().fill(z, 0.0f);
  return z;
}

}  // namespace

// ---- Optimizer ----

Optimizer::Optimizer(ParamSet params, float learn_rate, const char* who)
    : params_(checked(params, learn_rate, who)),
      base_learn_rate_(learn_rate),
      lr_({1}, params_.params->backend()),
      step_(make_counter(params_.params->backend())) {
  set_learning_rate(learn_rate);
}

void Optimizer::set_learning_rate(float lr) {
  require_non_negative(lr, "set_learning_rate", "learning rate");
  backend().copy_from_host(&lr, lr_.data(), sizeof lr);
}

float Optimizer::current_learning_rate() const {
  float lr = 0.0f;
  backend().copy_to_host(lr_.data(), &lr, sizeof lr);
  return lr;
}

// ---- Sgd ----

Sgd::Sgd(ParamSet params, const SgdOptions& options) : Optimizer(params, options.learn_rate, "Sgd"), options_(options) {
  require_in(options.momentum, 0.0f, 1.0f, "Sgd", "momentum");
  CUDL_REQUIRE(std::isfinite(options.dampening) && options.dampening >= 0.0f && options.dampening <= 1.0f,
               "Sgd: dampening must be in [0, 1], got " + str(options.dampening));
  require_non_negative(options.weight_decay, "Sgd", "weight decay");
  CUDL_REQUIRE(!options.nesterov || (options.momentum > 0.0f && options.dampening == 0.0f),
               "Sgd: Nesterov momentum requires momentum > 0 and dampening 0, got momentum " + str(options.momentum) +
                   " and dampening " + str(options.dampening));
  if (options.momentum > 0.0f) momentum_ = zeros_like(*params_.params);
}

void Sgd::step() {
  SgdArgs args;
  args.momentum = options_.momentum;
  args.dampening = options_.dampening;
  args.nesterov = options_.nesterov;
  args.weight_decay = options_.weight_decay;
  args.decayed = params_.decayed;
  backend().sgd_step(*params_.params, momentum_, *params_.grads, lr_, step_, args);  // reads step = t − 1
  backend().add_to_counter(step_, 1);
}

std::vector<std::pair<std::string, Tensor*>> Sgd::state() {
  std::vector<std::pair<std::string, Tensor*>> s;
  if (!momentum_.empty()) s.emplace_back("momentum_buffer", &momentum_);
  s.emplace_back("step", &step_);
  return s;
}

// ---- Adam ----

Adam::Adam(ParamSet params, const AdamOptions& options, Decay decay)
    : Optimizer(params, options.learn_rate, decay == Decay::kDecoupled ? "AdamW" : "Adam"),
      options_(options),
      decay_(decay) {
  const char* who = decay == Decay::kDecoupled ? "AdamW" : "Adam";
  require_in(options.beta1, 0.0f, 1.0f, who, "beta1");
  require_in(options.beta2, 0.0f, 1.0f, who, "beta2");
  CUDL_REQUIRE(std::isfinite(options.eps) && options.eps > 0.0f,
               std::string(who) + ": eps must be finite and > 0, got " + str(options.eps));
  require_non_negative(options.weight_decay, who, "weight decay");
  m_ = zeros_like(*params_.params);
  v_ = zeros_like(*params_.params);
  if (options.amsgrad) vmax_ = zeros_like(*params_.params);
}

void Adam::step() {
  AdamArgs args;
  args.beta1 = options_.beta1;
  args.beta2 = options_.beta2;
  args.eps = options_.eps;
  args.weight_decay = options_.weight_decay;
  args.decoupled = decay_ == Decay::kDecoupled;
  args.amsgrad = options_.amsgrad;
  args.decayed = params_.decayed;
  backend().add_to_counter(step_, 1);  // the update reads t ≥ 1, this step's number
  backend().adam_step(*params_.params, m_, v_, vmax_, *params_.grads, lr_, step_, args);
}

std::vector<std::pair<std::string, Tensor*>> Adam::state() {
  std::vector<std::pair<std::string, Tensor*>> s{{"exp_avg", &m_}, {"exp_avg_sq", &v_}};
  if (options_.amsgrad) s.emplace_back("max_exp_avg_sq", &vmax_);
  s.emplace_back("step", &step_);
  return s;
}

// ---- GdbnNesterov ----

namespace {
// The settings the two momentum updates (GdbnNesterov, RbmMomentum) share.
void require_momentum_options(float momentum, float l2, float grad_scale, const char* who) {
  require_in(momentum, 0.0f, 1.0f, who, "momentum");
  require_non_negative(l2, who, "L2 cost");
  CUDL_REQUIRE(std::isfinite(grad_scale) && grad_scale > 0.0f,
               std::string(who) + ": grad_scale must be finite and > 0, got " + str(grad_scale));
}
}  // namespace

GdbnNesterov::GdbnNesterov(ParamSet params, const GdbnNesterovOptions& options)
    : Optimizer(params, options.learn_rate, "GdbnNesterov"), options_(options) {
  require_momentum_options(options.momentum, options.l2, options.grad_scale, "GdbnNesterov");
  velocity_ = zeros_like(*params_.params);
}

void GdbnNesterov::begin() {
  if (active_) return;
  backend().axpy(options_.momentum, velocity_, *params_.params);
  active_ = true;
}

void GdbnNesterov::step() {
  CUDL_REQUIRE(active_, "GdbnNesterov::step: call begin() first (the gradients must be taken at the look-ahead point)");
  NesterovArgs args;
  args.momentum = options_.momentum;
  args.grad_scale = options_.grad_scale;
  args.l2 = options_.l2;
  args.decayed = params_.decayed;
  backend().nesterov_step(*params_.params, velocity_, *params_.grads, lr_, args);
  backend().add_to_counter(step_, 1);
}

void GdbnNesterov::end() {
  if (!active_) return;
  backend().axpy(-options_.momentum, velocity_, *params_.params);
  active_ = false;
}

std::vector<std::pair<std::string, Tensor*>> GdbnNesterov::state() {
  return {{"velocity", &velocity_}, {"step", &step_}};
}

// ---- RbmMomentum ----

RbmMomentum::RbmMomentum(ParamSet params, const RbmMomentumOptions& options)
    : Optimizer(params, options.learn_rate, "RbmMomentum"), options_(options) {
  require_momentum_options(options.momentum, options.l2, options.grad_scale, "RbmMomentum");
  velocity_ = zeros_like(*params_.params);
}

void RbmMomentum::step() {
  MomentumArgs args;
  args.momentum = options_.momentum;
  args.grad_scale = options_.grad_scale;
  args.l2 = options_.l2;
  args.decayed = params_.decayed;
  backend().momentum_step(*params_.params, velocity_, *params_.grads, lr_, args);
  backend().add_to_counter(step_, 1);
}

void RbmMomentum::set_grad_scale(float grad_scale) {
  require_momentum_options(options_.momentum, options_.l2, grad_scale, "RbmMomentum");
  options_.grad_scale = grad_scale;
}

void RbmMomentum::reset() {
  backend().fill(velocity_, 0.0f);
  backend().set_counter(step_, 0);
}

std::vector<std::pair<std::string, Tensor*>> RbmMomentum::state() {
  return {{"velocity", &velocity_}, {"step", &step_}};
}

}  // namespace cudl

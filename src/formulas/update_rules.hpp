#pragma once
// The optimizers' per-parameter update rules, written once for the CPU loops (src/cpu/optim.cpp)
// and the CUDA kernels (cuda/optim.cu): each backend reads its scalars once per launch (the
// learning rate from its tensor, the step from its counter) and calls one of these per element.
// The float operations and their order are the contract both backends share; the CPU and GPU
// compilers may still contract a multiply and an add into an FMA, so the two agree to a few ulps,
// except in gdbn_nesterov_update, written in repro's rounded operations (never contracted): there
// the two agree bit for bit, and so does the GPU's fused training step (cuda/mlp_step_plan.hpp).
#include <cmath>
#include <cstdint>

#include "cudl/backend.hpp"
#include "cudl/rng.hpp"  // CUDL_HD: __host__ __device__ under nvcc, inline otherwise
#include "formulas/repro_math.hpp"

namespace cudl::formulas {

// ---- gdbn's Nesterov step (Backend::nesterov_step, GdbnNesterov) ----
// w is the look-ahead point, v the velocity; l2 is the L2 cost for a weight and 0 for a bias
// (the caller passes 0 rather than skipping the term, as the 2014 code did, so the result is bit
// for bit the one it gave).
CUDL_HD void gdbn_nesterov_update(float& w, float& v, float g, float lr, float momentum, float grad_scale, float l2) {
  using repro::add_f;
  using repro::mul_f;
  const float d = mul_f(lr, repro::sub_f(mul_f(-grad_scale, g), mul_f(l2, w)));  // lr·(−s·g − λw)
  const float vn = add_f(mul_f(momentum, v), d);
  v = vn;
  w = add_f(w, add_f(d, mul_f(momentum, vn)));
}

// ---- gdbn's RBM update (Backend::momentum_step, RbmMomentum) ----
// Momentum averaging the gradient (f = 1 − μ), weight decay applied to the weight directly; l2 is
// the L2 cost for a weight and 0 for a bias (1 − f·lr·0 = 1 exactly, as the 2014 code had it).
CUDL_HD void rbm_momentum_update(float& w, float& v, float g, float lr, float momentum, float grad_scale, float l2) {
  const float f = 1.0f - momentum;
  const float keep = 1.0f - f * lr * l2;
  const float vn = momentum * v - f * lr * grad_scale * g;
  v = vn;
  w = w * keep + vn;
}

// ---- PyTorch's SGD (Backend::sgd_step, Sgd) ----
// weight_decay is the argument's value for a weight and 0 for a bias; buf (the momentum buffer)
// is read and written only when momentum ≠ 0; first: this is the buffer's first step (the step
// counter was 0), so it takes the gradient as it is.
CUDL_HD void sgd_update(float& w, float& buf, float g, float lr, const SgdArgs& a, float weight_decay, bool first) {
  if (weight_decay != 0.0f) g = g + weight_decay * w;
  if (a.momentum != 0.0f) {
    buf = first ? g : a.momentum * buf + (1.0f - a.dampening) * g;
    g = a.nesterov ? g + a.momentum * buf : buf;
  }
  w = w - lr * g;
}

// ---- PyTorch's Adam and AdamW (Backend::adam_step, Adam) ----
// The scalars of step t ≥ 1, computed once per launch. PyTorch computes them from Python floats
// (doubles) and rounds them to float when it applies them to float tensors; so do we:
//   step_size = lr / (1 − β₁ᵗ),  bias_correction2_sqrt = √(1 − β₂ᵗ),  decay_keep = 1 − lr·λ (AdamW).
struct AdamScalars {
  float step_size;
  float bias_correction2_sqrt;
  float decay_keep;
};

CUDL_HD AdamScalars adam_scalars(float lr, const AdamArgs& a, uint64_t t) {
  const double steps = static_cast<double>(t);
  const double bias_correction1 = 1.0 - pow(static_cast<double>(a.beta1), steps);
  const double bias_correction2 = 1.0 - pow(static_cast<double>(a.beta2), steps);
  AdamScalars s;
  s.step_size = static_cast<float>(static_cast<double>(lr) / bias_correction1);
  s.bias_correction2_sqrt = static_cast<float>(sqrt(bias_correction2));
  s.decay_keep = static_cast<float>(1.0 - static_cast<double>(lr) * static_cast<double>(a.weight_decay));
  return s;
}

// One parameter's Adam step in the order of PyTorch's implementation (torch/optim/adam.py,
// _single_tensor_adam; its fused CUDA kernel forms m as written here, its for-loop form with
// lerp, which rounds differently). decay: whether this element is a weight (weight decay
// applies); vmax is read and written only when a.amsgrad.
CUDL_HD void adam_update(float& w, float& m, float& v, float* vmax, float g, const AdamArgs& a, const AdamScalars& s,
                         bool decay) {
  if (decay && a.weight_decay != 0.0f) {
    if (a.decoupled)
      w = w * s.decay_keep;
    else
      g = g + a.weight_decay * w;
  }
  m = a.beta1 * m + (1.0f - a.beta1) * g;
  v = a.beta2 * v + (1.0f - a.beta2) * g * g;
  float second = v;
  if (a.amsgrad) {
    const float old = *vmax;
    // torch.maximum: NaN in either operand gives NaN.
    second = (old != old || old > second) ? old : second;
    *vmax = second;
  }
  const float denom = sqrtf(second) / s.bias_correction2_sqrt + a.eps;
  w = w - s.step_size * m / denom;
}

}  // namespace cudl::formulas

// The optimizers' updates on the CPU (Backend::nesterov_step, sgd_step, adam_step): one parallel
// pass over the P parameters, split at the decayed prefix, each element through the rule that the
// CUDA kernels also call (formulas/update_rules.hpp). The learning rate and the step counter are
// read once, when the work runs (here: now).
#include <algorithm>

#include "cpu/thread_pool.hpp"
#include "cudl/cpu_backend.hpp"
#include "formulas/update_rules.hpp"

namespace cudl {
namespace {

// Elementwise work is split into chunks of at least this many elements per thread.
constexpr int64_t kGrain = 1 << 15;

// Each range function takes its scalars by value and restrict pointers, so the loop vectorises
// without reloading anything per element.
void nesterov_range(float* __restrict w, float* __restrict v, const float* __restrict g, int64_t n, float lr,
                    float mu, float gs, float l2) {
  for (int64_t i = 0; i < n; ++i) formulas::gdbn_nesterov_update(w[i], v[i], g[i], lr, mu, gs, l2);
}

void rbm_momentum_range(float* __restrict w, float* __restrict v, const float* __restrict g, int64_t n, float lr,
                        float mu, float gs, float l2) {
  for (int64_t i = 0; i < n; ++i) formulas::rbm_momentum_update(w[i], v[i], g[i], lr, mu, gs, l2);
}

// buf is null when momentum = 0 (the rule then never touches it).
void sgd_range(float* __restrict w, float* __restrict buf, const float* __restrict g, int64_t n, float lr,
               const SgdArgs a, float weight_decay, bool first) {
  if (buf == nullptr) {
    for (int64_t i = 0; i < n; ++i) {
      float unused = 0.0f;
      formulas::sgd_update(w[i], unused, g[i], lr, a, weight_decay, first);
    }
    return;
  }
  for (int64_t i = 0; i < n; ++i) formulas::sgd_update(w[i], buf[i], g[i], lr, a, weight_decay, first);
}

// vmax is null unless amsgrad.
void adam_range(float* __restrict w, float* __restrict m, float* __restrict v, float* __restrict vmax,
                const float* __restrict g, int64_t n, const AdamArgs a, const formulas::AdamScalars s, bool decay) {
  if (vmax == nullptr) {
    for (int64_t i = 0; i < n; ++i) formulas::adam_update(w[i], m[i], v[i], nullptr, g[i], a, s, decay);
    return;
  }
  for (int64_t i = 0; i < n; ++i) formulas::adam_update(w[i], m[i], v[i], vmax + i, g[i], a, s, decay);
}

}  // namespace

void CpuBackend::do_nesterov_step(float* w, float* v, const float* g, int64_t n, const float* lr,
                                  const NesterovArgs& args) {
  const NesterovArgs a = args;
  const float rate = *lr;
  pool_->parallel_for(n, kGrain, [w, v, g, a, rate](int64_t b, int64_t e) {
    const int64_t mid = std::clamp(a.decayed, b, e);
    nesterov_range(w + b, v + b, g + b, mid - b, rate, a.momentum, a.grad_scale, a.l2);
    nesterov_range(w + mid, v + mid, g + mid, e - mid, rate, a.momentum, a.grad_scale, 0.0f);
  });
}

void CpuBackend::do_momentum_step(float* w, float* v, const float* g, int64_t n, const float* lr,
                                  const MomentumArgs& args) {
  const MomentumArgs a = args;
  const float rate = *lr;
  pool_->parallel_for(n, kGrain, [w, v, g, a, rate](int64_t b, int64_t e) {
    const int64_t mid = std::clamp(a.decayed, b, e);
    rbm_momentum_range(w + b, v + b, g + b, mid - b, rate, a.momentum, a.grad_scale, a.l2);
    rbm_momentum_range(w + mid, v + mid, g + mid, e - mid, rate, a.momentum, a.grad_scale, 0.0f);
  });
}

void CpuBackend::do_sgd_step(float* w, float* buf, const float* g, int64_t n, const float* lr, const uint64_t* step,
                             const SgdArgs& args) {
  const SgdArgs a = args;
  const float rate = *lr;
  const bool first = *step == 0;
  pool_->parallel_for(n, kGrain, [w, buf, g, a, rate, first](int64_t b, int64_t e) {
    const int64_t mid = std::clamp(a.decayed, b, e);
    float* const bb = buf == nullptr ? nullptr : buf + b;
    float* const bm = buf == nullptr ? nullptr : buf + mid;
    sgd_range(w + b, bb, g + b, mid - b, rate, a, a.weight_decay, first);
    sgd_range(w + mid, bm, g + mid, e - mid, rate, a, 0.0f, first);
  });
}

void CpuBackend::do_adam_step(float* w, float* m, float* v, float* vmax, const float* g, int64_t n, const float* lr,
                              const uint64_t* step, const AdamArgs& args) {
  const AdamArgs a = args;
  const formulas::AdamScalars s = formulas::adam_scalars(*lr, a, *step);
  pool_->parallel_for(n, kGrain, [w, m, v, vmax, g, a, s](int64_t b, int64_t e) {
    const int64_t mid = std::clamp(a.decayed, b, e);
    float* const xb = vmax == nullptr ? nullptr : vmax + b;
    float* const xm = vmax == nullptr ? nullptr : vmax + mid;
    adam_range(w + b, m + b, v + b, xb, g + b, mid - b, a, s, true);
    adam_range(w + mid, m + mid, v + mid, xm, g + mid, e - mid, a, s, false);
  });
}

}  // namespace cudl

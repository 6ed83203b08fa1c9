// The optimizers' updates on the CPU (Backend::nesterov_step, sgd_step, adam_step): one parallel
// pass over the P parameters, split at the decayed prefix, each element through the rule that the
// CUDA kernels also call (formulas/update_rules.hpp), in the loops of the instruction set chosen at
// run time (cpu/elementwise.hpp). The learning rate and the step counter are read once, when the
// work runs (here: now).
#include <algorithm>

#include "cpu/elementwise.hpp"
#include "cpu/thread_pool.hpp"
#include "cudl/cpu_backend.hpp"

namespace cudl {
namespace {

// Elementwise work is split into chunks of at least this many elements per thread.
constexpr int64_t kGrain = 1 << 15;

}  // namespace

void CpuBackend::do_nesterov_step(float* w, float* v, const float* g, int64_t n, const float* lr,
                                  const NesterovArgs& args) {
  const NesterovArgs a = args;
  const float rate = *lr;
  const cpu::ElementwiseOps& ops = cpu::elementwise_ops();
  pool_->parallel_for(n, kGrain, [&ops, w, v, g, a, rate](int64_t b, int64_t e) {
    const int64_t mid = std::clamp(a.decayed, b, e);
    ops.nesterov(w + b, v + b, g + b, mid - b, rate, a.momentum, a.grad_scale, a.l2);
    ops.nesterov(w + mid, v + mid, g + mid, e - mid, rate, a.momentum, a.grad_scale, 0.0f);
  });
}

void CpuBackend::do_momentum_step(float* w, float* v, const float* g, int64_t n, const float* lr,
                                  const MomentumArgs& args) {
  const MomentumArgs a = args;
  const float rate = *lr;
  const cpu::ElementwiseOps& ops = cpu::elementwise_ops();
  pool_->parallel_for(n, kGrain, [&ops, w, v, g, a, rate](int64_t b, int64_t e) {
    const int64_t mid = std::clamp(a.decayed, b, e);
    ops.rbm_momentum(w + b, v + b, g + b, mid - b, rate, a.momentum, a.grad_scale, a.l2);
    ops.rbm_momentum(w + mid, v + mid, g + mid, e - mid, rate, a.momentum, a.grad_scale, 0.0f);
  });
}

void CpuBackend::do_sgd_step(float* w, float* buf, const float* g, int64_t n, const float* lr, const uint64_t* step,
                             const SgdArgs& args) {
  const SgdArgs a = args;
  const float rate = *lr;
  const bool first = *step == 0;
  const cpu::ElementwiseOps& ops = cpu::elementwise_ops();
  pool_->parallel_for(n, kGrain, [&ops, w, buf, g, a, rate, first](int64_t b, int64_t e) {
    const int64_t mid = std::clamp(a.decayed, b, e);
    float* const bb = buf == nullptr ? nullptr : buf + b;
    float* const bm = buf == nullptr ? nullptr : buf + mid;
    ops.sgd(w + b, bb, g + b, mid - b, rate, a, a.weight_decay, first);
    ops.sgd(w + mid, bm, g + mid, e - mid, rate, a, 0.0f, first);
  });
}

void CpuBackend::do_adam_step(float* w, float* m, float* v, float* vmax, const float* g, int64_t n, const float* lr,
                              const uint64_t* step, const AdamArgs& args) {
  const AdamArgs a = args;
  const formulas::AdamScalars s = formulas::adam_scalars(*lr, a, *step);
  const cpu::ElementwiseOps& ops = cpu::elementwise_ops();
  pool_->parallel_for(n, kGrain, [&ops, w, m, v, vmax, g, a, s](int64_t b, int64_t e) {
    const int64_t mid = std::clamp(a.decayed, b, e);
    float* const xb = vmax == nullptr ? nullptr : vmax + b;
    float* const xm = vmax == nullptr ? nullptr : vmax + mid;
    ops.adam(w + b, m + b, v + b, xb, g + b, mid - b, a, s, true);
    ops.adam(w + mid, m + mid, v + mid, xm, g + mid, e - mid, a, s, false);
  });
}

}  // namespace cudl

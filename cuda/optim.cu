// The optimizers' updates on the GPU (Backend::nesterov_step, sgd_step, adam_step): one launch
// over the P parameters, a 64-bit grid-stride loop calling per element the rule that the CPU
// loops also call (formulas/update_rules.hpp), each kernel beside its CudaBackend member (no
// forwarder). The learning rate and the step counter are read from device memory when the
// kernel runs, so a captured step (CUDA graph) follows a schedule and the step count.
#include "backend_impl.hpp"
#include "check.hpp"
#include "device_math.cuh"
#include "formulas/update_rules.hpp"
#include "kernels.hpp"

namespace cudl {
namespace {

constexpr int kThreads = 256;

__global__ void nesterov_kernel(float* w, float* v, const float* g, int64_t n, const float* lr, NesterovArgs a) {
  const float rate = *lr;
  CUDL_GRID_STRIDE(i, n) {
    float wi = w[i], vi = v[i];
    formulas::gdbn_nesterov_update(wi, vi, g[i], rate, a.momentum, a.grad_scale, i < a.decayed ? a.l2 : 0.0f);
    v[i] = vi;
    w[i] = wi;
  }
}

__global__ void rbm_momentum_kernel(float* w, float* v, const float* g, int64_t n, const float* lr, MomentumArgs a) {
  const float rate = *lr;
  CUDL_GRID_STRIDE(i, n) {
    float wi = w[i], vi = v[i];
    formulas::rbm_momentum_update(wi, vi, g[i], rate, a.momentum, a.grad_scale, i < a.decayed ? a.l2 : 0.0f);
    v[i] = vi;
    w[i] = wi;
  }
}

// buf is null when momentum = 0.
__global__ void sgd_kernel(float* w, float* buf, const float* g, int64_t n, const float* lr, const uint64_t* step,
                           SgdArgs a) {
  const float rate = *lr;
  const bool first = *step == 0;
  CUDL_GRID_STRIDE(i, n) {
    float wi = w[i];
    float bi = buf != nullptr && !first ? buf[i] : 0.0f;
    formulas::sgd_update(wi, bi, g[i], rate, a, i < a.decayed ? a.weight_decay : 0.0f, first);
    w[i] = wi;
    if (buf != nullptr) buf[i] = bi;
  }
}

// vmax is null unless amsgrad. The step's scalars (two double-precision powers) are computed
// once per block.
__global__ void adam_kernel(float* w, float* m, float* v, float* vmax, const float* g, int64_t n, const float* lr,
                            const uint64_t* step, AdamArgs a) {
  __shared__ formulas::AdamScalars scalars;
  if (threadIdx.x == 0) scalars = formulas::adam_scalars(*lr, a, *step);
  __syncthreads();
  const formulas::AdamScalars s = scalars;
  CUDL_GRID_STRIDE(i, n) {
    float wi = w[i], mi = m[i], vi = v[i];
    float xi = vmax != nullptr ? vmax[i] : 0.0f;
    formulas::adam_update(wi, mi, vi, &xi, g[i], a, s, i < a.decayed);
    w[i] = wi;
    m[i] = mi;
    v[i] = vi;
    if (vmax != nullptr) vmax[i] = xi;
  }
}

}  // namespace

void CudaBackend::do_nesterov_step(float* w, float* v, const float* g, int64_t n, const float* lr,
                                   const NesterovArgs& args) {
  if (n == 0) return;
  nesterov_kernel<<<cuda::grid_for(n, kThreads), kThreads, 0, impl_->stream>>>(w, v, g, n, lr, args);
  CUDL_CHECK_LAUNCH();
}

void CudaBackend::do_momentum_step(float* w, float* v, const float* g, int64_t n, const float* lr,
                                   const MomentumArgs& args) {
  if (n == 0) return;
  rbm_momentum_kernel<<<cuda::grid_for(n, kThreads), kThreads, 0, impl_->stream>>>(w, v, g, n, lr, args);
  CUDL_CHECK_LAUNCH();
}

void CudaBackend::do_sgd_step(float* w, float* buf, const float* g, int64_t n, const float* lr, const uint64_t* step,
                              const SgdArgs& args) {
  if (n == 0) return;
  sgd_kernel<<<cuda::grid_for(n, kThreads), kThreads, 0, impl_->stream>>>(w, buf, g, n, lr, step, args);
  CUDL_CHECK_LAUNCH();
}

void CudaBackend::do_adam_step(float* w, float* m, float* v, float* vmax, const float* g, int64_t n, const float* lr,
                               const uint64_t* step, const AdamArgs& args) {
  if (n == 0) return;
  adam_kernel<<<cuda::grid_for(n, kThreads), kThreads, 0, impl_->stream>>>(w, m, v, vmax, g, n, lr, step, args);
  CUDL_CHECK_LAUNCH();
}

}  // namespace cudl

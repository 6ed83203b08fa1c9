// CudaBackend's batch normalisation: one block per channel for the statistics (a fixed-order
// shared-memory tree, no atomics, so results are deterministic), each kernel beside the member
// that launches it. Mirrors src/cpu/batch_norm.cpp operation for operation.
#include "backend_impl.hpp"
#include "check.hpp"
#include "device_math.cuh"
#include "kernels.hpp"

namespace cudl {
namespace {

constexpr int kThreads = 256;
using cuda::grid_for;

// The sum of every thread's v over the block (a fixed-order tree), returned to every thread.
__device__ float block_sum(float v, float* shared) {
  shared[threadIdx.x] = v;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (static_cast<int>(threadIdx.x) < stride) shared[threadIdx.x] += shared[threadIdx.x + stride];
    __syncthreads();
  }
  const float total = shared[0];
  __syncthreads();  // shared may be reused right after
  return total;
}

// Batch normalisation, one block per channel c: its M = outer·inner values are `outer` runs of
// `inner` contiguous floats. Two passes for the statistics (mean, then squared deviations), as
// the CPU does.
__global__ void batch_norm_train_kernel(const float* x, const float* gamma, const float* beta, int64_t outer,
                                        int64_t channels, int64_t inner, BatchNormArgs args, float* running_mean,
                                        float* running_var, float* saved, float* y) {
  __shared__ float shared[kThreads];
  const int64_t c = blockIdx.x, m = outer * inner;
  float acc = 0.0f;
  for (int64_t i = threadIdx.x; i < m; i += blockDim.x) acc += x[((i / inner) * channels + c) * inner + i % inner];
  const float mean = block_sum(acc, shared) / static_cast<float>(m);
  acc = 0.0f;
  for (int64_t i = threadIdx.x; i < m; i += blockDim.x) {
    const float d = x[((i / inner) * channels + c) * inner + i % inner] - mean;
    acc += d * d;
  }
  const float squares = block_sum(acc, shared);
  const float inv_std = rsqrtf(squares / static_cast<float>(m) + args.epsilon);
  const float scale = gamma[c] * inv_std, shift = beta[c] - mean * scale;
  for (int64_t i = threadIdx.x; i < m; i += blockDim.x) {
    const int64_t at = ((i / inner) * channels + c) * inner + i % inner;
    y[at] = x[at] * scale + shift;
  }
  if (threadIdx.x == 0) {
    saved[c] = mean;
    saved[channels + c] = inv_std;
    running_mean[c] = (1.0f - args.momentum) * running_mean[c] + args.momentum * mean;
    running_var[c] = (1.0f - args.momentum) * running_var[c] + args.momentum * (squares / static_cast<float>(m - 1));
  }
}

__global__ void batch_norm_infer_kernel(const float* x, const float* gamma, const float* beta,
                                        const float* running_mean, const float* running_var, int64_t channels,
                                        int64_t inner, int64_t n, float epsilon, float* y) {
  CUDL_GRID_STRIDE(i, n) {
    const int64_t c = (i / inner) % channels;
    const float scale = gamma[c] * rsqrtf(running_var[c] + epsilon);
    y[i] = x[i] * scale + (beta[c] - running_mean[c] * scale);
  }
}

__global__ void batch_norm_backward_kernel(const float* x, const float* dy, const float* gamma, const float* saved,
                                           int64_t outer, int64_t channels, int64_t inner, float* dx, float* dgamma,
                                           float* dbeta) {
  __shared__ float shared[kThreads];
  const int64_t c = blockIdx.x, m = outer * inner;
  const float mean = saved[c], inv_std = saved[channels + c];
  float acc_dy = 0.0f, acc_dy_xhat = 0.0f;
  for (int64_t i = threadIdx.x; i < m; i += blockDim.x) {
    const int64_t at = ((i / inner) * channels + c) * inner + i % inner;
    acc_dy += dy[at];
    acc_dy_xhat += dy[at] * ((x[at] - mean) * inv_std);
  }
  const float sum_dy = block_sum(acc_dy, shared);
  const float sum_dy_xhat = block_sum(acc_dy_xhat, shared);
  const float k = gamma[c] * inv_std;
  const float a = k * sum_dy / static_cast<float>(m), b = k * sum_dy_xhat / static_cast<float>(m);
  for (int64_t i = threadIdx.x; i < m; i += blockDim.x) {
    const int64_t at = ((i / inner) * channels + c) * inner + i % inner;
    dx[at] = k * dy[at] - a - b * ((x[at] - mean) * inv_std);
  }
  if (threadIdx.x == 0) {
    dgamma[c] = sum_dy_xhat;
    dbeta[c] = sum_dy;
  }
}

}  // namespace

void CudaBackend::do_batch_norm_train(const float* x, const float* gamma, const float* beta, int64_t outer,
                                      int64_t channels, int64_t inner, const BatchNormArgs& args, float* running_mean,
                                      float* running_var, float* saved, float* y) {
  if (channels == 0) return;
  batch_norm_train_kernel<<<static_cast<unsigned>(channels), kThreads, 0, impl_->stream>>>(
      x, gamma, beta, outer, channels, inner, args, running_mean, running_var, saved, y);
  CUDL_CHECK_LAUNCH();
}

void CudaBackend::do_batch_norm_infer(const float* x, const float* gamma, const float* beta, const float* running_mean,
                                      const float* running_var, int64_t outer, int64_t channels, int64_t inner,
                                      float epsilon, float* y) {
  const int64_t n = outer * channels * inner;
  if (n == 0) return;
  batch_norm_infer_kernel<<<grid_for(n, kThreads), kThreads, 0, impl_->stream>>>(
      x, gamma, beta, running_mean, running_var, channels, inner, n, epsilon, y);
  CUDL_CHECK_LAUNCH();
}

void CudaBackend::do_batch_norm_backward(const float* x, const float* dy, const float* gamma, const float* saved,
                                         int64_t outer, int64_t channels, int64_t inner, float* dx, float* dgamma,
                                         float* dbeta) {
  if (channels == 0) return;
  batch_norm_backward_kernel<<<static_cast<unsigned>(channels), kThreads, 0, impl_->stream>>>(
      x, dy, gamma, saved, outer, channels, inner, dx, dgamma, dbeta);
  CUDL_CHECK_LAUNCH();
}

}  // namespace cudl

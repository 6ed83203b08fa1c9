// Elementwise and reduction kernels of CudaBackend: each kernel next to its launcher, with a
// 64-bit grid-stride loop. Arithmetic mirrors CpuBackend (src/cpu/cpu_backend.cpp) so the parity
// tests can hold them to tight tolerances.
#include <algorithm>

#include "check.hpp"
#include "device_math.cuh"
#include "cudl/rng.hpp"
#include "kernels.hpp"

namespace cudl::cuda {
namespace {

constexpr int kThreads = 256;

__global__ void fill_kernel(float* x, int64_t n, float value) {
  CUDL_GRID_STRIDE(i, n) x[i] = value;
}

__global__ void fill_normal_kernel(float* x, int64_t n, uint64_t seed, float mean, float stddev) {
  CUDL_GRID_STRIDE(i, n) {
    const rng::Philox4 r = rng::bits(seed, rng::kStreamInit, static_cast<uint64_t>(i));
    x[i] = mean + stddev * rng::normal(r.v[0], r.v[1]);
  }
}

// y(rows×cols) ← act(y + bias) row by row.
__global__ void bias_activation_kernel(float* y, const float* bias, int64_t rows, int64_t cols, Activation act) {
  CUDL_GRID_STRIDE(i, rows * cols) y[i] = apply(act, y[i] + bias[i % cols]);
}

__global__ void activation_kernel(float* y, int64_t n, Activation act) {
  CUDL_GRID_STRIDE(i, n) y[i] = apply(act, y[i]);
}

// dy ← dy ⊙ act'(·) from the forward output y.
__global__ void activation_backward_kernel(float* dy, const float* y, int64_t n, Activation act) {
  CUDL_GRID_STRIDE(i, n) {
    const float v = y[i];
    dy[i] = act == Activation::kRelu ? (v > 0.0f ? dy[i] : 0.0f) : dy[i] * v * (1.0f - v);
  }
}

// out(cols) ← alpha · Σ_r x(r, :) + beta · out: one thread per column, rows summed in order
// (coalesced across the warp for each row).
__global__ void sum_rows_kernel(float alpha, const float* x, int64_t rows, int64_t cols, float beta, float* out) {
  CUDL_GRID_STRIDE(c, cols) {
    float acc = 0.0f;
    for (int64_t r = 0; r < rows; ++r) acc += x[r * cols + c];
    out[c] = beta == 0.0f ? alpha * acc : alpha * acc + beta * out[c];
  }
}

// C(m×n, leading dimension ldc) ← beta·C; beta = 0 writes zeros without reading C.
__global__ void scale_matrix_kernel(float* c, int64_t m, int64_t n, int64_t ldc, float beta) {
  CUDL_GRID_STRIDE(i, m * n) {
    float* ci = c + (i / n) * ldc + i % n;
    *ci = beta == 0.0f ? 0.0f : beta * *ci;
  }
}

// One block's partial sums of (a − ref)² and ref², reduced in shared memory, then added to sums.
__global__ void normwise_difference_kernel(const float* a, const float* ref, int64_t n, double* sums) {
  __shared__ double diff[kThreads], norm[kThreads];
  double d = 0.0, r = 0.0;
  CUDL_GRID_STRIDE(i, n) {
    const double e = static_cast<double>(a[i]) - static_cast<double>(ref[i]);
    d += e * e;
    r += static_cast<double>(ref[i]) * static_cast<double>(ref[i]);
  }
  diff[threadIdx.x] = d;
  norm[threadIdx.x] = r;
  __syncthreads();
  for (int half = blockDim.x / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) {
      diff[threadIdx.x] += diff[threadIdx.x + half];
      norm[threadIdx.x] += norm[threadIdx.x + half];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    atomicAdd(&sums[0], diff[0]);
    atomicAdd(&sums[1], norm[0]);
  }
}

__global__ void axpy_kernel(float alpha, const float* x, float* y, int64_t n) {
  CUDL_GRID_STRIDE(i, n) y[i] += alpha * x[i];
}

// One stochastic unit from its mean and its Philox draw: the same formula as CpuBackend.
__device__ __forceinline__ float sample_unit(Units units, float mean, const rng::Philox4& r) {
  if (units == Units::kBernoulli) return rng::uniform(r.v[0]) <= mean ? 1.0f : 0.0f;
  if (units == Units::kGaussian) return mean + rng::normal(r.v[0], r.v[1]);
  const float h = relu(mean);
  return relu(h + sqrtf(sigmoid(h)) * rng::normal(r.v[0], r.v[1]));
}

// Stochastic units from their means.
__global__ void sample_units_kernel(const float* means, int64_t n, Units units, uint64_t seed, uint64_t counter,
                                    float* out) {
  CUDL_GRID_STRIDE(i, n) {
    out[i] = sample_unit(units, means[i], rng::bits(seed, rng::kStreamUnits, counter + static_cast<uint64_t>(i)));
  }
}

// Means and samples in one pass (Backend::bias_activation_sample).
__global__ void bias_activation_sample_kernel(float* y, const float* bias, int64_t rows, int64_t cols, Activation act,
                                              Units units, uint64_t seed, uint64_t counter, float* states) {
  CUDL_GRID_STRIDE(i, rows * cols) {
    const float mean = apply(act, y[i] + bias[i % cols]);
    y[i] = mean;
    states[i] = sample_unit(units, mean, rng::bits(seed, rng::kStreamUnits, counter + static_cast<uint64_t>(i)));
  }
}

}  // namespace

void bias_activation_sample(cudaStream_t s, float* y, const float* bias, int64_t rows, int64_t cols, Activation act,
                            Units units, uint64_t seed, uint64_t counter, float* states) {
  if (rows * cols == 0) return;
  bias_activation_sample_kernel<<<grid_for(rows * cols, kThreads), kThreads, 0, s>>>(y, bias, rows, cols, act, units,
                                                                                      seed, counter, states);
  CUDL_CHECK_LAUNCH();
}

void sample_units(cudaStream_t s, const float* means, int64_t n, Units units, uint64_t seed, uint64_t counter,
                  float* out) {
  if (n == 0) return;
  sample_units_kernel<<<grid_for(n, kThreads), kThreads, 0, s>>>(means, n, units, seed, counter, out);
  CUDL_CHECK_LAUNCH();
}

int grid_for(int64_t n, int threads_per_block) {
  const int64_t blocks = (n + threads_per_block - 1) / threads_per_block;
  return static_cast<int>(std::clamp<int64_t>(blocks, 1, 4096));
}

void fill(cudaStream_t s, float* x, int64_t n, float value) {
  if (n == 0) return;
  fill_kernel<<<grid_for(n, kThreads), kThreads, 0, s>>>(x, n, value);
  CUDL_CHECK_LAUNCH();
}

void fill_normal(cudaStream_t s, float* x, int64_t n, uint64_t seed, float mean, float stddev) {
  if (n == 0) return;
  fill_normal_kernel<<<grid_for(n, kThreads), kThreads, 0, s>>>(x, n, seed, mean, stddev);
  CUDL_CHECK_LAUNCH();
}

void bias_activation(cudaStream_t s, float* y, const float* bias, int64_t rows, int64_t cols, Activation act) {
  if (rows * cols == 0) return;
  bias_activation_kernel<<<grid_for(rows * cols, kThreads), kThreads, 0, s>>>(y, bias, rows, cols, act);
  CUDL_CHECK_LAUNCH();
}

void activation(cudaStream_t s, float* y, int64_t n, Activation act) {
  if (n == 0 || act == Activation::kIdentity) return;
  activation_kernel<<<grid_for(n, kThreads), kThreads, 0, s>>>(y, n, act);
  CUDL_CHECK_LAUNCH();
}

void activation_backward(cudaStream_t s, float* dy, const float* y, int64_t n, Activation act) {
  if (n == 0 || act == Activation::kIdentity) return;
  activation_backward_kernel<<<grid_for(n, kThreads), kThreads, 0, s>>>(dy, y, n, act);
  CUDL_CHECK_LAUNCH();
}

void sum_rows(cudaStream_t s, float alpha, const float* x, int64_t rows, int64_t cols, float beta, float* out) {
  if (cols == 0) return;
  sum_rows_kernel<<<grid_for(cols, kThreads), kThreads, 0, s>>>(alpha, x, rows, cols, beta, out);
  CUDL_CHECK_LAUNCH();
}

void normwise_difference(cudaStream_t s, const float* a, const float* ref, int64_t n, double* sums) {
  if (n == 0) return;
  normwise_difference_kernel<<<grid_for(n, kThreads), kThreads, 0, s>>>(a, ref, n, sums);
  CUDL_CHECK_LAUNCH();
}

void scale_matrix(cudaStream_t s, float* c, int64_t m, int64_t n, int64_t ldc, float beta) {
  if (m * n == 0 || beta == 1.0f) return;  // beta = 1 leaves C as it is
  scale_matrix_kernel<<<grid_for(m * n, kThreads), kThreads, 0, s>>>(c, m, n, ldc, beta);
  CUDL_CHECK_LAUNCH();
}

void axpy(cudaStream_t s, float alpha, const float* x, float* y, int64_t n) {
  if (n == 0) return;
  axpy_kernel<<<grid_for(n, kThreads), kThreads, 0, s>>>(alpha, x, y, n);
  CUDL_CHECK_LAUNCH();
}

}  // namespace cudl::cuda

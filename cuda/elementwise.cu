// CudaBackend's elementwise and reduction primitives: each kernel beside the CudaBackend member
// that launches it (no forwarder), a 64-bit grid-stride loop calling per element the rule the CPU
// loops also call (formulas/unit_rules.hpp), so the parity tests can hold them to tight tolerances.
// Also the helper launchers other files use (kernels.hpp): grid_for, scale_matrix (do_gemm with
// k = 0) and normwise_difference (the cuDNN engine check, on fp32 or bf16 outputs).
#include <algorithm>
#include <climits>
#include <string>

#include "backend_impl.hpp"
#include "check.hpp"
#include "cudl/rng.hpp"
#include "device_math.cuh"
#include "formulas/unit_rules.hpp"
#include "kernels.hpp"

namespace cudl {
namespace {

constexpr int kThreads = 256;
using cuda::grid_for;

__global__ void fill_kernel(float* x, int64_t n, float value) {
  CUDL_GRID_STRIDE(i, n) x[i] = value;
}

__global__ void fill_normal_kernel(float* x, int64_t n, uint64_t seed, float mean, float stddev) {
  CUDL_GRID_STRIDE(i, n) x[i] = formulas::normal_init_at(seed, i, mean, stddev);
}

// y(rows×cols) ← act(y + bias) row by row.
__global__ void bias_activation_kernel(float* y, const float* bias, int64_t rows, int64_t cols, Activation act) {
  CUDL_GRID_STRIDE(i, rows * cols) y[i] = formulas::activate(act, y[i] + bias[i % cols]);
}

__global__ void activation_kernel(float* y, int64_t n, Activation act) {
  CUDL_GRID_STRIDE(i, n) y[i] = formulas::activate(act, y[i]);
}

// dy ← dy ⊙ act'(·) from the forward output y.
__global__ void activation_backward_kernel(float* dy, const float* y, int64_t n, Activation act) {
  CUDL_GRID_STRIDE(i, n) dy[i] = formulas::activation_grad(act, dy[i], y[i]);
}

// sum_rows' tiling. A block sums kSumCols adjacent columns (each row's segment is one coalesced
// 128-byte load of a warp) over one chunk of the rows, split among blockDim.y row slices (a power
// of two, at most kSumSlices): slice s sums the chunk's rows s, s + slices, ... in order, and the
// slices' sums are then added by a fixed-order tree in shared memory. No atomics: every run adds
// the same numbers in the same order.
constexpr int kSumCols = 32;
constexpr int kSumSlices = 16;

// Row `chunk` of out (chunks × cols) ← alpha · Σ over chunk's rows of x(rows × cols) + beta · that
// row of out, chunk b holding rows [rows·b/chunks, rows·(b+1)/chunks); beta = 0 does not read out.
// Grid: (column tiles, chunks); block: (kSumCols, slices).
__global__ void sum_rows_kernel(float alpha, const float* x, int64_t rows, int64_t cols, float beta, float* out) {
  __shared__ float part[kSumSlices][kSumCols];
  const int64_t c = static_cast<int64_t>(blockIdx.x) * kSumCols + threadIdx.x;
  const int64_t chunk = blockIdx.y, chunks = gridDim.y;
  const int64_t end = rows * (chunk + 1) / chunks;
  float acc = 0.0f;
  if (c < cols) {
#pragma unroll 4
    for (int64_t r = rows * chunk / chunks + threadIdx.y; r < end; r += blockDim.y) acc += x[r * cols + c];
  }
  part[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  for (unsigned half = blockDim.y / 2; half > 0; half /= 2) {
    if (threadIdx.y < half) part[threadIdx.y][threadIdx.x] += part[threadIdx.y + half][threadIdx.x];
    __syncthreads();
  }
  if (threadIdx.y == 0 && c < cols) {
    float* o = out + chunk * cols + c;
    *o = beta == 0.0f ? alpha * part[0][threadIdx.x] : alpha * part[0][threadIdx.x] + beta * *o;
  }
}

// How sum_rows splits its rows: `slices` per block, and `chunks` blocks per column tile.
struct SumRowsSplit {
  int slices, chunks;
};

// Up to kOnePass rows take one pass, each thread summing at most kOnePass / kSumSlices of them: a
// minibatch's bias gradient (64 × 800: 25 blocks, 4 rows per thread) is one launch. Taller inputs
// are cut into chunks of ~kChunkRows rows, enough for ~kTargetBlocks blocks in all but at most
// kOnePass chunks, so that the pass over the partial sums is itself one pass.
SumRowsSplit sum_rows_split(int64_t rows, int64_t cols) {
  constexpr int64_t kRowsPerThread = 4, kOnePass = 512, kChunkRows = 128, kTargetBlocks = 2048;
  int slices = 1;
  while (slices < kSumSlices && slices * kRowsPerThread < rows) slices *= 2;
  if (rows <= kOnePass) return {slices, 1};
  const int64_t tiles = (cols + kSumCols - 1) / kSumCols;
  const int64_t chunks = std::min({(rows + kChunkRows - 1) / kChunkRows, std::max<int64_t>(1, kTargetBlocks / tiles),
                                   kOnePass});
  return {slices, static_cast<int>(chunks)};
}

// C(m×n, leading dimension ldc) ← beta·C; beta = 0 writes zeros without reading C.
__global__ void scale_matrix_kernel(float* c, int64_t m, int64_t n, int64_t ldc, float beta) {
  CUDL_GRID_STRIDE(i, m * n) {
    float* ci = c + (i / n) * ldc + i % n;
    *ci = beta == 0.0f ? 0.0f : beta * *ci;
  }
}

__device__ double as_double(float x) { return x; }
__device__ double as_double(__nv_bfloat16 x) { return __bfloat162float(x); }

// One block's partial sums of (a − ref)² and ref², reduced in shared memory, then added to sums.
template <typename T>
__global__ void normwise_difference_kernel(const T* a, const T* ref, int64_t n, double* sums) {
  __shared__ double diff[kThreads], norm[kThreads];
  double d = 0.0, r = 0.0;
  CUDL_GRID_STRIDE(i, n) {
    const double e = as_double(a[i]) - as_double(ref[i]);
    d += e * e;
    r += as_double(ref[i]) * as_double(ref[i]);
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

// Stochastic units from their means.
__global__ void sample_units_kernel(const float* means, int64_t n, Units units, uint64_t seed, uint64_t counter,
                                    float* out) {
  CUDL_GRID_STRIDE(i, n) out[i] = formulas::sample_unit_at(units, means[i], seed, counter, i);
}

// Means and samples in one pass (Backend::bias_activation_sample).
// The first draw is *counter_ptr + offset (modulo 2^64), or offset alone when counter_ptr is null.
__global__ void bias_activation_sample_kernel(float* y, const float* bias, int64_t rows, int64_t cols, Activation act,
                                              Units units, uint64_t seed, const uint64_t* counter_ptr,
                                              uint64_t offset, float* states) {
  const uint64_t counter = (counter_ptr != nullptr ? *counter_ptr : 0) + offset;
  CUDL_GRID_STRIDE(i, rows * cols) {
    const float mean = formulas::activate(act, y[i] + bias[i % cols]);
    y[i] = mean;
    states[i] = formulas::sample_unit_at(units, mean, seed, counter, i);
  }
}

// Backend::squared_distance, in two deterministic passes: block b of the first sums, in double,
// the elements i ≡ its threads' indices modulo the grid's threads (a fixed grid for a given n),
// then a fixed-order tree; the second pass, one block, sums the blocks' sums the same way.
constexpr int kDistanceBlocks = 512;

// The block's sum of each thread's `value` (blocks of kThreads), by a fixed-order tree; the
// result is valid in thread 0.
__device__ double block_tree_sum(double value) {
  __shared__ double part[kThreads];
  part[threadIdx.x] = value;
  __syncthreads();
  for (int half = blockDim.x / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) part[threadIdx.x] += part[threadIdx.x + half];
    __syncthreads();
  }
  return part[0];
}

__global__ void squared_distance_kernel(const float* a, const float* b, int64_t n, double* block_sums) {
  double acc = 0.0;
  CUDL_GRID_STRIDE(i, n) {
    const double d = static_cast<double>(a[i]) - static_cast<double>(b[i]);
    acc += d * d;
  }
  const double sum = block_tree_sum(acc);
  if (threadIdx.x == 0) block_sums[blockIdx.x] = sum;
}

__global__ void sum_doubles_kernel(const double* x, int n, double* out) {
  double acc = 0.0;
  for (int i = threadIdx.x; i < n; i += blockDim.x) acc += x[i];
  const double sum = block_tree_sum(acc);
  if (threadIdx.x == 0) *out = sum;
}

}  // namespace

void CudaBackend::do_squared_distance(const float* a, const float* b, int64_t n, double* out) {
  CUDL_REQUIRE(!cuda::capturing(impl_->stream),
               "squared_distance: cannot read a sum back to the host while capturing (a captured step cannot "
               "wait for the host)");
  if (n == 0) {
    *out = 0.0;
    return;
  }
  const int blocks = std::min(grid_for(n, kThreads), kDistanceBlocks);
  auto* sums = static_cast<double*>(impl_->scratch(sizeof(double) * static_cast<size_t>(blocks + 1)));
  squared_distance_kernel<<<blocks, kThreads, 0, impl_->stream>>>(a, b, n, sums);
  CUDL_CHECK_LAUNCH();
  sum_doubles_kernel<<<1, kThreads, 0, impl_->stream>>>(sums, blocks, sums + blocks);
  CUDL_CHECK_LAUNCH();
  CUDL_CUDA_CHECK(cudaMemcpyAsync(out, sums + blocks, sizeof(double), cudaMemcpyDeviceToHost, impl_->stream));
  CUDL_CUDA_CHECK(cudaStreamSynchronize(impl_->stream));
}

void CudaBackend::do_fill(float* x, int64_t n, float value) {
  if (n == 0) return;
  fill_kernel<<<grid_for(n, kThreads), kThreads, 0, impl_->stream>>>(x, n, value);
  CUDL_CHECK_LAUNCH();
}

void CudaBackend::do_fill_normal(float* x, int64_t n, uint64_t seed, float mean, float stddev) {
  if (n == 0) return;
  fill_normal_kernel<<<grid_for(n, kThreads), kThreads, 0, impl_->stream>>>(x, n, seed, mean, stddev);
  CUDL_CHECK_LAUNCH();
}

void CudaBackend::do_bias_activation(float* y, const float* bias, int64_t rows, int64_t cols, Activation act) {
  if (rows * cols == 0) return;
  bias_activation_kernel<<<grid_for(rows * cols, kThreads), kThreads, 0, impl_->stream>>>(y, bias, rows, cols, act);
  CUDL_CHECK_LAUNCH();
}

void CudaBackend::do_activation(float* y, int64_t n, Activation act) {
  if (n == 0 || act == Activation::kIdentity) return;
  activation_kernel<<<grid_for(n, kThreads), kThreads, 0, impl_->stream>>>(y, n, act);
  CUDL_CHECK_LAUNCH();
}

void CudaBackend::do_activation_backward(float* dy, const float* y, int64_t n, Activation act) {
  if (n == 0 || act == Activation::kIdentity) return;
  activation_backward_kernel<<<grid_for(n, kThreads), kThreads, 0, impl_->stream>>>(dy, y, n, act);
  CUDL_CHECK_LAUNCH();
}

// One pass for short inputs; else the chunks' sums go to a chunks × cols scratch, whose rows a
// second pass of the same kernel sums with alpha and beta.
void CudaBackend::do_sum_rows(float alpha, const float* x, int64_t rows, int64_t cols, float beta, float* out) {
  if (cols == 0) return;
  const int64_t tiles = (cols + kSumCols - 1) / kSumCols;
  CUDL_REQUIRE(tiles <= INT_MAX, "sum_rows: " + std::to_string(cols) + " columns are too many for one grid");
  const SumRowsSplit split = sum_rows_split(rows, cols);
  const dim3 grid(static_cast<unsigned>(tiles), static_cast<unsigned>(split.chunks));
  const dim3 block(kSumCols, static_cast<unsigned>(split.slices));
  if (split.chunks == 1) {
    sum_rows_kernel<<<grid, block, 0, impl_->stream>>>(alpha, x, rows, cols, beta, out);
    CUDL_CHECK_LAUNCH();
    return;
  }
  auto* partial = static_cast<float*>(impl_->scratch(sizeof(float) * static_cast<size_t>(split.chunks * cols)));
  sum_rows_kernel<<<grid, block, 0, impl_->stream>>>(1.0f, x, rows, cols, 0.0f, partial);
  CUDL_CHECK_LAUNCH();
  const SumRowsSplit last = sum_rows_split(split.chunks, cols);  // one pass: chunks ≤ 512 rows
  sum_rows_kernel<<<dim3(static_cast<unsigned>(tiles), 1), dim3(kSumCols, static_cast<unsigned>(last.slices)), 0,
                    impl_->stream>>>(alpha, partial, split.chunks, cols, beta, out);
  CUDL_CHECK_LAUNCH();
}

void CudaBackend::do_axpy(float alpha, const float* x, float* y, int64_t n) {
  if (n == 0) return;
  axpy_kernel<<<grid_for(n, kThreads), kThreads, 0, impl_->stream>>>(alpha, x, y, n);
  CUDL_CHECK_LAUNCH();
}

void CudaBackend::do_bias_activation_sample(float* y, const float* bias, int64_t rows, int64_t cols, Activation act,
                                            Units units, uint64_t seed, const uint64_t* counter_ptr, uint64_t offset,
                                            float* states) {
  if (rows * cols == 0) return;
  bias_activation_sample_kernel<<<grid_for(rows * cols, kThreads), kThreads, 0, impl_->stream>>>(
      y, bias, rows, cols, act, units, seed, counter_ptr, offset, states);
  CUDL_CHECK_LAUNCH();
}

void CudaBackend::do_sample_units(const float* means, int64_t n, Units units, uint64_t seed, uint64_t counter,
                                  float* out) {
  if (n == 0) return;
  sample_units_kernel<<<grid_for(n, kThreads), kThreads, 0, impl_->stream>>>(means, n, units, seed, counter, out);
  CUDL_CHECK_LAUNCH();
}

namespace cuda {

int grid_for(int64_t n, int threads_per_block) {
  const int64_t blocks = (n + threads_per_block - 1) / threads_per_block;
  return static_cast<int>(std::clamp<int64_t>(blocks, 1, 4096));
}

void normwise_difference(cudaStream_t s, const float* a, const float* ref, int64_t n, double* sums) {
  if (n == 0) return;
  normwise_difference_kernel<<<grid_for(n, kThreads), kThreads, 0, s>>>(a, ref, n, sums);
  CUDL_CHECK_LAUNCH();
}

void normwise_difference(cudaStream_t s, const __nv_bfloat16* a, const __nv_bfloat16* ref, int64_t n, double* sums) {
  if (n == 0) return;
  normwise_difference_kernel<<<grid_for(n, kThreads), kThreads, 0, s>>>(a, ref, n, sums);
  CUDL_CHECK_LAUNCH();
}

void scale_matrix(cudaStream_t s, float* c, int64_t m, int64_t n, int64_t ldc, float beta) {
  if (m * n == 0 || beta == 1.0f) return;  // beta = 1 leaves C as it is
  scale_matrix_kernel<<<grid_for(m * n, kThreads), kThreads, 0, s>>>(c, m, n, ldc, beta);
  CUDL_CHECK_LAUNCH();
}

}  // namespace cuda
}  // namespace cudl

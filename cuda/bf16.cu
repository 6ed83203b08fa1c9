// Precision::kBf16's conversions (see Precision in backend.hpp): a product's fp32 operands rounded
// into packed bfloat16 copies for cuBLAS and cuDNN, and its result brought back into fp32, rounded
// to bfloat16 once. Rounding is __float2bfloat16_rn's (to nearest, ties to even), which the CPU
// emulates bit for bit (src/cpu/bf16.hpp).
#include <cuda_bf16.h>

#include "check.hpp"
#include "device_math.cuh"
#include "kernels.hpp"

namespace cudl::cuda {
namespace {

constexpr int kThreads = 256;

// out (rows×cols, packed) ← a (rows×cols, leading dimension lda ≥ cols) rounded to bfloat16.
__global__ void to_bf16_kernel(const float* a, int64_t rows, int64_t cols, int64_t lda, __nv_bfloat16* out) {
  CUDL_GRID_STRIDE(i, rows * cols) {
    const int64_t from = lda == cols ? i : (i / cols) * lda + i % cols;
    out[i] = __float2bfloat16_rn(a[from]);
  }
}

// The result r of one element: a bfloat16 as it is, an fp32 value rounded to bfloat16 here.
__device__ float result_of(__nv_bfloat16 t) { return __bfloat162float(t); }
__device__ float result_of(float t) { return __bfloat162float(__float2bfloat16_rn(t)); }

// C(m×n, leading dimension ldc) ← beta·C + r elementwise, r from T (m×n, packed), with an
// explicit multiply and add (no FMA contraction: the contract's fp32 arithmetic, as the CPU's);
// beta = 0 writes r without reading C (NaN there is overwritten).
template <typename T>
__global__ void store_bf16_kernel(const T* t, int64_t m, int64_t n, float beta, float* c, int64_t ldc) {
  CUDL_GRID_STRIDE(i, m * n) {
    float* ci = c + (ldc == n ? i : (i / n) * ldc + i % n);
    const float r = result_of(t[i]);
    *ci = beta == 0.0f ? r : __fadd_rn(__fmul_rn(beta, *ci), r);
  }
}

template <typename T>
void launch_store_bf16(cudaStream_t s, const T* t, int64_t m, int64_t n, float beta, float* c, int64_t ldc) {
  if (m * n == 0) return;
  store_bf16_kernel<<<grid_for(m * n, kThreads), kThreads, 0, s>>>(t, m, n, beta, c, ldc);
  CUDL_CHECK_LAUNCH();
}

}  // namespace

void to_bf16(cudaStream_t s, const float* a, int64_t rows, int64_t cols, int64_t lda, __nv_bfloat16* out) {
  if (rows * cols == 0) return;
  to_bf16_kernel<<<grid_for(rows * cols, kThreads), kThreads, 0, s>>>(a, rows, cols, lda, out);
  CUDL_CHECK_LAUNCH();
}

void store_bf16(cudaStream_t s, const __nv_bfloat16* t, int64_t m, int64_t n, float beta, float* c, int64_t ldc) {
  launch_store_bf16(s, t, m, n, beta, c, ldc);
}

void store_bf16(cudaStream_t s, const float* t, int64_t m, int64_t n, float beta, float* c, int64_t ldc) {
  launch_store_bf16(s, t, m, n, beta, c, ldc);
}

}  // namespace cudl::cuda

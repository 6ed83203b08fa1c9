#pragma once
// The few launchers shared across the CUDA files. Every Backend primitive is a CudaBackend member
// defined beside its kernel; these are the helpers that other code calls. All are queued on
// `stream`, never synchronise, and check the launch.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace cudl::cuda {

// Grid size for a grid-stride loop over n elements: enough blocks to fill the GPU, no more.
int grid_for(int64_t n, int threads_per_block);

// sums[0] += Σ (a[i] − ref[i])², sums[1] += Σ ref[i]² over n elements, in double (the caller
// zeroes sums first). For checking one cuDNN engine's output against another's.
void normwise_difference(cudaStream_t s, const float* a, const float* ref, int64_t n, double* sums);
// The same on bfloat16 outputs (a cuDNN engine's in Precision::kBf16).
void normwise_difference(cudaStream_t s, const __nv_bfloat16* a, const __nv_bfloat16* ref, int64_t n, double* sums);
// C(m×n, row-major, leading dimension ldc ≥ n) ← beta·C, writing 0 where beta = 0 (C is then
// not read, so NaN there is overwritten): a GEMM with k = 0, as CpuBackend computes it.
void scale_matrix(cudaStream_t s, float* c, int64_t m, int64_t n, int64_t ldc, float beta);

// Precision::kBf16's conversions (bf16.cu), rounding as __float2bfloat16_rn (to nearest, ties to
// even), which the CPU emulates bit for bit:
// out (rows×cols, packed) ← a (rows×cols, row stride lda ≥ cols) rounded to bfloat16.
void to_bf16(cudaStream_t s, const float* a, int64_t rows, int64_t cols, int64_t lda, __nv_bfloat16* out);
// C(m×n, row stride ldc ≥ n) ← beta·C + bf16(T) in fp32 (a multiply, then an add), T (m×n, packed)
// a product's result: bfloat16 already (cuDNN's), or fp32 (cuBLAS's), rounded to bfloat16 here,
// once. beta = 0 writes bf16(T) without reading C (NaN there is overwritten).
void store_bf16(cudaStream_t s, const __nv_bfloat16* t, int64_t m, int64_t n, float beta, float* c, int64_t ldc);
void store_bf16(cudaStream_t s, const float* t, int64_t m, int64_t n, float beta, float* c, int64_t ldc);

}  // namespace cudl::cuda

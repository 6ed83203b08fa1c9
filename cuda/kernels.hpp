#pragma once
// The few launchers shared across the CUDA files. Every Backend primitive is a CudaBackend member
// defined beside its kernel; these are the helpers that other code calls. All are queued on
// `stream`, never synchronise, and check the launch.
#include <cuda_runtime.h>

#include <cstdint>

namespace cudl::cuda {

// Grid size for a grid-stride loop over n elements: enough blocks to fill the GPU, no more.
int grid_for(int64_t n, int threads_per_block);

// sums[0] += Σ (a[i] − ref[i])², sums[1] += Σ ref[i]² over n elements, in double (the caller
// zeroes sums first). For checking one cuDNN engine's output against another's.
void normwise_difference(cudaStream_t s, const float* a, const float* ref, int64_t n, double* sums);
// C(m×n, row-major, leading dimension ldc ≥ n) ← beta·C, writing 0 where beta = 0 (C is then
// not read, so NaN there is overwritten): a GEMM with k = 0, as CpuBackend computes it.
void scale_matrix(cudaStream_t s, float* c, int64_t m, int64_t n, int64_t ldc, float beta);

}  // namespace cudl::cuda

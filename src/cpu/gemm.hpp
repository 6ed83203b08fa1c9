#pragma once
// Single-precision GEMM for the CPU backend, row-major:
//   C(m×n) = alpha · op(A)(m×k) · op(B)(k×n) + beta · C,
// lda/ldb/ldc are row strides of A, B, C as stored. With AVX2+FMA it is a packed,
// cache-blocked GEMM on a 6×16 register kernel, split across the pool's threads by blocks of
// C; otherwise it falls back to Eigen's product. beta == 0 never reads C.
#include <cstdint>

#include "cudl/backend.hpp"

namespace cudl::cpu {

class ThreadPool;

void sgemm(ThreadPool& pool, Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

// Which implementation sgemm uses in this build ("avx2-fma 6x16" or "eigen").
const char* sgemm_kernel_name();

}  // namespace cudl::cpu

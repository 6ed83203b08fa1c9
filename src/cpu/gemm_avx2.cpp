// The AVX2+FMA GEMM kernel: a 6×16 register tile (12 ymm accumulators) over the packed panels of
// gemm_packed.inc. Compiled for AVX2+FMA whatever the build's flags (no -march=native needed) and
// used only where cpuid says the CPU and OS support it (gemm.cpp). Everything between push and pop
// is compiled for AVX2+FMA: only functions defined here, all in an unnamed namespace, so no AVX2
// code can be shared with (and picked by the linker for) a function of another file. The standard
// library's templates used here keep the build's baseline: a template takes its target from where
// it is defined, in the headers above.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "cpu/gemm.hpp"
#include "cpu/thread_pool.hpp"
#include "cudl/error.hpp"

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,popcnt"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,popcnt")
#endif

namespace cudl::cpu {
namespace {

constexpr int64_t kNr = 16;
constexpr int64_t kMr = 6;

void tile(int64_t rows, int64_t kc, const float* a, const float* b, int64_t ldb, const int32_t* idx,
          float* const* crow, int64_t cols, float alpha, float beta);

#include "cpu/gemm_packed.inc"
#include "cpu/gemm_parallel.inc"

// Writes one row of a tile: C[0..16) = alpha·(x0, x1) + beta·C (C not read when beta == 0).
inline void store_row(float* cr, __m256 x0, __m256 x1, __m256 va, __m256 vb, bool read_c) {
  x0 = _mm256_mul_ps(va, x0);
  x1 = _mm256_mul_ps(va, x1);
  if (read_c) {
    x0 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cr), x0);
    x1 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cr + 8), x1);
  }
  _mm256_storeu_ps(cr, x0);
  _mm256_storeu_ps(cr + 8, x1);
}

// The register kernel: acc(R×16) = Σ_p a[p][0..R) ⊗ b[p][0..16) for R ≤ 6 valid rows of a
// 6-row packed A panel (rows ≥ R are skipped, not computed), then C = alpha·acc + beta·C on
// the valid rows × cols. Full-width tiles are written from registers. B's step p is the row at
// b + p·ldb (a packed panel's width, or B's own row stride where it is read in place).
// With idx, step q uses B row idx[q] (A was compacted by compact_a); without, B row q.
template <int R>
void kernel(int64_t kc, const float* a, const float* b, int64_t ldb, const int32_t* idx, float* const* crow,
            int64_t cols, float alpha, float beta) {
  static_assert(R >= 1 && R <= kMr, "rows per tile");
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
  __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  auto step = [&](const float* bp) {
    const __m256 b0 = _mm256_loadu_ps(bp), b1 = _mm256_loadu_ps(bp + 8);
    __m256 av = _mm256_broadcast_ss(a + 0);
    c00 = _mm256_fmadd_ps(av, b0, c00);
    c01 = _mm256_fmadd_ps(av, b1, c01);
    if constexpr (R > 1) {
      av = _mm256_broadcast_ss(a + 1);
      c10 = _mm256_fmadd_ps(av, b0, c10);
      c11 = _mm256_fmadd_ps(av, b1, c11);
    }
    if constexpr (R > 2) {
      av = _mm256_broadcast_ss(a + 2);
      c20 = _mm256_fmadd_ps(av, b0, c20);
      c21 = _mm256_fmadd_ps(av, b1, c21);
    }
    if constexpr (R > 3) {
      av = _mm256_broadcast_ss(a + 3);
      c30 = _mm256_fmadd_ps(av, b0, c30);
      c31 = _mm256_fmadd_ps(av, b1, c31);
    }
    if constexpr (R > 4) {
      av = _mm256_broadcast_ss(a + 4);
      c40 = _mm256_fmadd_ps(av, b0, c40);
      c41 = _mm256_fmadd_ps(av, b1, c41);
    }
    if constexpr (R > 5) {
      av = _mm256_broadcast_ss(a + 5);
      c50 = _mm256_fmadd_ps(av, b0, c50);
      c51 = _mm256_fmadd_ps(av, b1, c51);
    }
    a += kMr;
  };
  if (idx != nullptr) {
    for (int64_t p = 0; p < kc; ++p) step(b + static_cast<int64_t>(idx[p]) * ldb);
  } else {
    for (int64_t p = 0; p < kc; ++p) step(b + p * ldb);
  }
  const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
  const bool read_c = beta != 0.0f;
  if (cols == kNr) {
    store_row(crow[0], c00, c01, va, vb, read_c);
    if constexpr (R > 1) store_row(crow[1], c10, c11, va, vb, read_c);
    if constexpr (R > 2) store_row(crow[2], c20, c21, va, vb, read_c);
    if constexpr (R > 3) store_row(crow[3], c30, c31, va, vb, read_c);
    if constexpr (R > 4) store_row(crow[4], c40, c41, va, vb, read_c);
    if constexpr (R > 5) store_row(crow[5], c50, c51, va, vb, read_c);
    return;
  }
  alignas(32) float acc[kMr][kNr];
  _mm256_store_ps(acc[0], c00), _mm256_store_ps(acc[0] + 8, c01);
  _mm256_store_ps(acc[1], c10), _mm256_store_ps(acc[1] + 8, c11);
  _mm256_store_ps(acc[2], c20), _mm256_store_ps(acc[2] + 8, c21);
  _mm256_store_ps(acc[3], c30), _mm256_store_ps(acc[3] + 8, c31);
  _mm256_store_ps(acc[4], c40), _mm256_store_ps(acc[4] + 8, c41);
  _mm256_store_ps(acc[5], c50), _mm256_store_ps(acc[5] + 8, c51);
  for (int r = 0; r < R; ++r) store_partial_row(crow[r], acc[r], cols, alpha, beta, read_c);
}

// One tile of rows ≤ 6 valid rows and cols ≤ 16 valid columns.
void tile(int64_t rows, int64_t kc, const float* a, const float* b, int64_t ldb, const int32_t* idx,
          float* const* crow, int64_t cols, float alpha, float beta) {
  switch (rows) {
    case 6: return kernel<6>(kc, a, b, ldb, idx, crow, cols, alpha, beta);
    case 5: return kernel<5>(kc, a, b, ldb, idx, crow, cols, alpha, beta);
    case 4: return kernel<4>(kc, a, b, ldb, idx, crow, cols, alpha, beta);
    case 3: return kernel<3>(kc, a, b, ldb, idx, crow, cols, alpha, beta);
    case 2: return kernel<2>(kc, a, b, ldb, idx, crow, cols, alpha, beta);
    default: return kernel<1>(kc, a, b, ldb, idx, crow, cols, alpha, beta);
  }
}

}  // namespace

void sgemm_avx2(ThreadPool& pool, Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                int64_t lda, const float* b, int64_t ldb, const int32_t* b_rows, float beta, float* c, int64_t ldc) {
  sgemm_packed(pool, ta, tb, m, n, k, alpha, a, lda, b, ldb, b_rows, beta, c, ldc);
}

}  // namespace cudl::cpu

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

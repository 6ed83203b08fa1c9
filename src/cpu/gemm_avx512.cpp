// The AVX-512 GEMM kernel: a 6×32 register tile (12 zmm accumulators, two 16-float B vectors per
// step) over the same packed panels as the AVX2 kernel (gemm_packed.inc), and with the same bits
// as it (see there). Twice the columns per pass halves the broadcasts of A and the instructions
// per FMA; on CPUs with two 512-bit FMA units it doubles the peak. Compiled for AVX-512 F whatever
// the build's flags and used only where cpuid says the CPU and OS support it (gemm.cpp); as in
// gemm_avx2.cpp, everything compiled for it is in this file's unnamed namespace.
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
#pragma clang attribute push(__attribute__((target("avx512f,avx2,fma,popcnt"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx2,fma,popcnt")
#endif

namespace cudl::cpu {
namespace {

constexpr int64_t kNr = 32;
constexpr int64_t kMr = 6;

void tile(int64_t rows, int64_t kc, const float* a, const float* b, int64_t ldb, const int32_t* idx,
          float* const* crow, int64_t cols, float alpha, float beta);

#include "cpu/gemm_packed.inc"
#include "cpu/gemm_parallel.inc"

// Writes 16 values of one row whose 16-column group is whole: C = fma(beta, C, alpha·x), C not
// read when beta == 0 (the AVX2 kernel's store_row, lane for lane).
inline void store16(float* cr, __m512 x, __m512 va, __m512 vb, bool read_c) {
  x = _mm512_mul_ps(va, x);
  if (read_c) x = _mm512_fmadd_ps(vb, _mm512_loadu_ps(cr), x);
  _mm512_storeu_ps(cr, x);
}

// One row of a tile with `cols` valid columns: each 16-column group through store16 when whole,
// through store_partial_row when not (as the AVX2 kernel writes its 16-wide tiles).
inline void store_row(float* cr, __m512 x0, __m512 x1, int64_t cols, __m512 va, __m512 vb, float alpha, float beta,
                      bool read_c) {
  if (cols >= 16) {
    store16(cr, x0, va, vb, read_c);
  } else {
    alignas(64) float acc[16];
    _mm512_store_ps(acc, x0);
    store_partial_row(cr, acc, cols, alpha, beta, read_c);
    return;
  }
  if (cols == 32) {
    store16(cr + 16, x1, va, vb, read_c);
  } else if (cols > 16) {
    alignas(64) float acc[16];
    _mm512_store_ps(acc, x1);
    store_partial_row(cr + 16, acc, cols - 16, alpha, beta, read_c);
  }
}

// The register kernel: acc(R×16W) = Σ_p a[p][0..R) ⊗ b[p][0..16W) for R ≤ 6 valid rows of a
// 6-row packed A panel (rows ≥ R are skipped, not computed), then C = alpha·acc + beta·C on the
// valid rows × cols. W = 2 for a tile wider than 16 columns; W = 1 (one zmm per row) for one of at
// most 16 (a narrow last tile, or a 10-class output layer). B's step p is the row at b + p·ldb (a
// packed panel's width, or B's own row stride where it is read in place). With idx, step q uses
// B row idx[q] (A was compacted by compact_a); without, B row q.
template <int R, int W>
void kernel(int64_t kc, const float* a, const float* b, int64_t ldb, const int32_t* idx, float* const* crow,
            int64_t cols, float alpha, float beta) {
  static_assert(R >= 1 && R <= kMr && (W == 1 || W == 2), "rows and vectors per tile");
  __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
  __m512 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  // acc[r] += a[r]·b0 (and acc'[r] += a[r]·b1 when W = 2) for row r < R.
  auto row = [](const float* ar, __m512 b0, __m512 b1, __m512& x0, __m512& x1) {
    const __m512 av = _mm512_set1_ps(*ar);
    x0 = _mm512_fmadd_ps(av, b0, x0);
    if constexpr (W == 2) x1 = _mm512_fmadd_ps(av, b1, x1);
  };
  auto step = [&](const float* bp) {
    const __m512 b0 = _mm512_loadu_ps(bp);
    const __m512 b1 = W == 2 ? _mm512_loadu_ps(bp + 16) : b0;
    row(a + 0, b0, b1, c00, c01);
    if constexpr (R > 1) row(a + 1, b0, b1, c10, c11);
    if constexpr (R > 2) row(a + 2, b0, b1, c20, c21);
    if constexpr (R > 3) row(a + 3, b0, b1, c30, c31);
    if constexpr (R > 4) row(a + 4, b0, b1, c40, c41);
    if constexpr (R > 5) row(a + 5, b0, b1, c50, c51);
    a += kMr;
  };
  if (idx != nullptr) {
    for (int64_t p = 0; p < kc; ++p) step(b + static_cast<int64_t>(idx[p]) * ldb);
  } else {
    for (int64_t p = 0; p < kc; ++p) step(b + p * ldb);
  }
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
  const bool read_c = beta != 0.0f;
  store_row(crow[0], c00, c01, cols, va, vb, alpha, beta, read_c);
  if constexpr (R > 1) store_row(crow[1], c10, c11, cols, va, vb, alpha, beta, read_c);
  if constexpr (R > 2) store_row(crow[2], c20, c21, cols, va, vb, alpha, beta, read_c);
  if constexpr (R > 3) store_row(crow[3], c30, c31, cols, va, vb, alpha, beta, read_c);
  if constexpr (R > 4) store_row(crow[4], c40, c41, cols, va, vb, alpha, beta, read_c);
  if constexpr (R > 5) store_row(crow[5], c50, c51, cols, va, vb, alpha, beta, read_c);
}

template <int W>
void tile_of_width(int64_t rows, int64_t kc, const float* a, const float* b, int64_t ldb, const int32_t* idx,
                   float* const* crow, int64_t cols, float alpha, float beta) {
  switch (rows) {
    case 6: return kernel<6, W>(kc, a, b, ldb, idx, crow, cols, alpha, beta);
    case 5: return kernel<5, W>(kc, a, b, ldb, idx, crow, cols, alpha, beta);
    case 4: return kernel<4, W>(kc, a, b, ldb, idx, crow, cols, alpha, beta);
    case 3: return kernel<3, W>(kc, a, b, ldb, idx, crow, cols, alpha, beta);
    case 2: return kernel<2, W>(kc, a, b, ldb, idx, crow, cols, alpha, beta);
    default: return kernel<1, W>(kc, a, b, ldb, idx, crow, cols, alpha, beta);
  }
}

// One tile of rows ≤ 6 valid rows and cols ≤ 32 valid columns.
void tile(int64_t rows, int64_t kc, const float* a, const float* b, int64_t ldb, const int32_t* idx,
          float* const* crow, int64_t cols, float alpha, float beta) {
  if (cols > 16) return tile_of_width<2>(rows, kc, a, b, ldb, idx, crow, cols, alpha, beta);
  tile_of_width<1>(rows, kc, a, b, ldb, idx, crow, cols, alpha, beta);
}

}  // namespace

void sgemm_avx512(ThreadPool& pool, Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                  int64_t lda, const float* b, int64_t ldb, const int32_t* b_rows, float beta, float* c, int64_t ldc) {
  sgemm_packed(pool, ta, tb, m, n, k, alpha, a, lda, b, ldb, b_rows, beta, c, ldc);
}

}  // namespace cudl::cpu

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

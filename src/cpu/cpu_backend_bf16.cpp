// Precision::kBf16 on the CPU: the products of the GPU's bf16 mode, emulated. Each operand is
// rounded to bfloat16 into a scratch copy, the fp32 GEMM (our kernels) multiplies the copies, so
// every product of two bf16 values is exact in fp32 and the sums accumulate in fp32 as on the
// tensor cores, and the result is rounded to bfloat16 once. Slower than fp32 (two extra passes),
// and meant for checking: the CPU and GPU then compute the same quantity up to the order of the
// fp32 sums.
#include <algorithm>

#include "cpu/bf16.hpp"
#include "cpu/gemm.hpp"
#include "cpu/scratch.hpp"
#include "cpu/thread_pool.hpp"
#include "cudl/cpu_backend.hpp"

namespace cudl {
namespace {

constexpr int64_t kRoundGrain = 1 << 15;  // elements per task at least

}  // namespace

namespace cpu {
namespace {

template <typename F>
void for_row_blocks(ThreadPool& pool, int64_t rows, int64_t cols, F&& fn) {
  pool.parallel_for(rows, std::max<int64_t>(1, kRoundGrain / std::max<int64_t>(cols, 1)), fn);
}

}  // namespace

void round_bf16(ThreadPool& pool, const float* a, int64_t rows, int64_t cols, int64_t ld, float* out) {
  for_row_blocks(pool, rows, cols, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* src = a + r * ld;
      float* dst = out + r * cols;
      for (int64_t j = 0; j < cols; ++j) dst[j] = round_bf16(src[j]);
    }
  });
}

void round_bf16_in_place(ThreadPool& pool, float* a, int64_t rows, int64_t cols, int64_t ld) {
  for_row_blocks(pool, rows, cols, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      float* row = a + r * ld;
      for (int64_t j = 0; j < cols; ++j) row[j] = round_bf16(row[j]);
    }
  });
}

}  // namespace cpu

using cpu::grow;

void CpuBackend::product(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                         int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (precision_ != Precision::kBf16 || m == 0 || n == 0 || k == 0) {
    cpu::sgemm(*pool_, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  // A is stored m × k (k × m transposed), B k × n (n × k): each copied packed, rounded.
  const int64_t a_rows = ta == Trans::kNo ? m : k, a_cols = ta == Trans::kNo ? k : m;
  const int64_t b_rows = tb == Trans::kNo ? k : n, b_cols = tb == Trans::kNo ? n : k;
  float* ra = grow(bf16_a_, a_rows * a_cols);
  float* rb = grow(bf16_b_, b_rows * b_cols);
  cpu::round_bf16(*pool_, a, a_rows, a_cols, lda, ra);
  cpu::round_bf16(*pool_, b, b_rows, b_cols, ldb, rb);
  cpu::sgemm(*pool_, ta, tb, m, n, k, alpha, ra, a_cols, rb, b_cols, beta, c, ldc);
}

void CpuBackend::round_result(float* x, int64_t rows, int64_t cols, int64_t ld) {
  if (precision_ == Precision::kBf16) cpu::round_bf16_in_place(*pool_, x, rows, cols, ld);
}

// C = beta·C + round(alpha·op(round A)·op(round B)): with beta = 0 the product goes straight into
// C (not read) and is rounded there; otherwise into a scratch, rounded, then added.
void CpuBackend::gemm_bf16(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (beta == 0.0f) {
    product(ta, tb, m, n, k, alpha, a, lda, b, ldb, 0.0f, c, ldc);
    round_result(c, m, n, ldc);
    return;
  }
  float* t = grow(bf16_t_, m * n);
  product(ta, tb, m, n, k, alpha, a, lda, b, ldb, 0.0f, t, n);
  pool_->parallel_for(m, std::max<int64_t>(1, kRoundGrain / n), [&](int64_t r0, int64_t r1) {
    for (int64_t i = r0; i < r1; ++i) {
      float* ci = c + i * ldc;
      const float* ti = t + i * n;
      for (int64_t j = 0; j < n; ++j) ci[j] = beta * ci[j] + cpu::round_bf16(ti[j]);
    }
  });
}

}  // namespace cudl

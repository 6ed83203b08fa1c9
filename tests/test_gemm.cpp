// The CPU GEMM against a double-precision triple loop: every transpose combination, odd sizes
// that leave partial 6×16 tiles, K deeper than one packing slab, N wider than one block, row
// strides larger than the row, and more threads than blocks; the product against chosen rows of
// B (sgemm_rows) against the rows gathered.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "cpu/gemm.hpp"
#include "cpu/thread_pool.hpp"
#include "test_support.hpp"

using namespace cudl;

namespace {

// n values uniform in [−1, 1) from the seed, on this file's own random stream.
std::vector<float> random_values(int64_t n, uint64_t seed) {
  return cudl::testing::uniform_values(seed, n, -1.0f, 1.0f, /*stream=*/9);
}

struct Case {
  int64_t m, n, k;
  Trans ta, tb;
  int64_t pad;  // extra elements per row beyond the logical width
  float alpha, beta;
};

void check(cpu::GemmKernel kernel, cpu::ThreadPool& pool, const Case& c) {
  const int64_t arows = c.ta == Trans::kNo ? c.m : c.k, acols = c.ta == Trans::kNo ? c.k : c.m;
  const int64_t brows = c.tb == Trans::kNo ? c.k : c.n, bcols = c.tb == Trans::kNo ? c.n : c.k;
  const int64_t lda = acols + c.pad, ldb = bcols + c.pad, ldc = c.n + c.pad;
  const auto a = random_values(arows * lda, 1), b = random_values(brows * ldb, 2);
  auto cm = random_values(c.m * ldc, 3);
  const auto c0 = cm;
  cpu::sgemm_with(kernel, pool, c.ta, c.tb, c.m, c.n, c.k, c.alpha, a.data(), lda, b.data(), ldb, c.beta, cm.data(),
                  ldc);
  double worst = 0;
  for (int64_t i = 0; i < c.m; ++i) {
    for (int64_t j = 0; j < c.n; ++j) {
      double acc = 0;
      for (int64_t p = 0; p < c.k; ++p) {
        const double av = c.ta == Trans::kNo ? a[i * lda + p] : a[p * lda + i];
        const double bv = c.tb == Trans::kNo ? b[p * ldb + j] : b[j * ldb + p];
        acc += av * bv;
      }
      const double expected = c.alpha * acc + (c.beta == 0.0f ? 0.0 : c.beta * c0[i * ldc + j]);
      worst = std::max(worst, std::fabs(cm[i * ldc + j] - expected) / (1e-5 * std::sqrt(c.k) + 1e-6 * std::fabs(expected)));
    }
    // Padding after each row of C is never written.
    for (int64_t j = c.n; j < ldc; ++j) ASSERT_EQ(cm[i * ldc + j], c0[i * ldc + j]) << "padding written";
  }
  EXPECT_LE(worst, 1.0) << "m " << c.m << " n " << c.n << " k " << c.k << " ta " << (c.ta == Trans::kYes)
                        << " tb " << (c.tb == Trans::kYes) << " pad " << c.pad;
}

// Every test runs on each kernel this CPU supports; the others are skipped with the reason.
class Gemm : public ::testing::TestWithParam<cpu::GemmKernel> {
 protected:
  void SetUp() override {
    std::string why;
    if (!cpu::gemm_kernel_supported(GetParam(), &why)) GTEST_SKIP() << cpu::to_string(GetParam()) << ": " << why;
  }
  void check(cpu::ThreadPool& pool, const Case& c) { ::check(GetParam(), pool, c); }
  void sgemm(cpu::ThreadPool& pool, int64_t m, int64_t n, int64_t k, const float* a, const float* b, float* c) {
    cpu::sgemm_with(GetParam(), pool, Trans::kNo, Trans::kNo, m, n, k, 1.0f, a, k, b, n, 0.0f, c, n);
  }
};

}  // namespace

INSTANTIATE_TEST_SUITE_P(Kernels, Gemm,
                         ::testing::Values(cpu::GemmKernel::kEigen, cpu::GemmKernel::kAvx2Fma, cpu::GemmKernel::kAvx512),
                         [](const auto& kernel) {
                           std::string name = cpu::to_string(kernel.param);
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

// sgemm uses the fastest kernel this CPU has (unless $CUDL_GEMM_KERNEL names another).
TEST(GemmChoice, TheFastestSupportedKernelIsChosen) {
  cpu::GemmKernel fastest = cpu::GemmKernel::kEigen;
  for (cpu::GemmKernel g : {cpu::GemmKernel::kAvx2Fma, cpu::GemmKernel::kAvx512}) {
    if (cpu::gemm_kernel_supported(g)) fastest = g;
  }
  EXPECT_EQ(cpu::choose_gemm_kernel(nullptr), fastest);
  EXPECT_EQ(cpu::choose_gemm_kernel(""), fastest);
  if (std::getenv("CUDL_GEMM_KERNEL") != nullptr) GTEST_SKIP() << "CUDL_GEMM_KERNEL is set";
  EXPECT_EQ(cpu::gemm_kernel(), fastest);
  const std::string name = cpu::sgemm_kernel_name();
  EXPECT_EQ(name, fastest == cpu::GemmKernel::kAvx512   ? "avx512 6x32"
                  : fastest == cpu::GemmKernel::kAvx2Fma ? "avx2-fma 6x16"
                                                          : "eigen");
}

TEST(GemmChoice, TheEnvironmentPicksAKernelOrIsRefusedByName) {
  EXPECT_EQ(cpu::choose_gemm_kernel("eigen"), cpu::GemmKernel::kEigen);
  EXPECT_THAT(cudl::testing::error_of([] { cpu::choose_gemm_kernel("avx1024"); }),
              ::testing::HasSubstr("CUDL_GEMM_KERNEL=avx1024: expected eigen, avx2-fma or avx512"));
  for (cpu::GemmKernel g : {cpu::GemmKernel::kAvx2Fma, cpu::GemmKernel::kAvx512}) {
    if (cpu::gemm_kernel_supported(g)) {
      EXPECT_EQ(cpu::choose_gemm_kernel(cpu::to_string(g)), g);
    } else {
      EXPECT_THAT(cudl::testing::error_of([g] { cpu::choose_gemm_kernel(cpu::to_string(g)); }),
                  ::testing::HasSubstr("does not support"));
    }
  }
}

// The AVX-512 and AVX2 kernels give the same bits (gemm_packed.inc): on every transpose, on
// partial tiles of each width (n = 10, 16, 20, 40, 80), K over one slab (the later slabs read C),
// beta ≠ 0, row strides, several threads, and on sparse data with NaN and infinity.
TEST(GemmChoice, TheAvx512KernelGivesTheAvx2KernelsBits) {
  for (cpu::GemmKernel g : {cpu::GemmKernel::kAvx2Fma, cpu::GemmKernel::kAvx512}) {
    std::string why;
    if (!cpu::gemm_kernel_supported(g, &why)) GTEST_SKIP() << cpu::to_string(g) << ": " << why;
  }
  cpu::ThreadPool pool(2);
  const int64_t shapes[][3] = {{64, 800, 784}, {64, 10, 800}, {784, 80, 64}, {64, 784, 96}, {13, 20, 300},
                               {7, 16, 5},     {50, 40, 600}, {6, 33, 257}, {1, 1, 1}};
  uint64_t seed = 20;
  for (const auto& s : shapes) {
    for (Trans ta : {Trans::kNo, Trans::kYes}) {
      for (Trans tb : {Trans::kNo, Trans::kYes}) {
        for (float beta : {0.0f, 0.5f}) {
          const int64_t m = s[0], n = s[1], k = s[2], pad = 3;
          const int64_t lda = (ta == Trans::kNo ? k : m) + pad, ldb = (tb == Trans::kNo ? n : k) + pad, ldc = n + pad;
          auto a = random_values((ta == Trans::kNo ? m : k) * lda, ++seed);
          const auto b = random_values((tb == Trans::kNo ? k : n) * ldb, ++seed);
          for (size_t i = 0; i < a.size(); ++i)
            if (i % 5 != 0) a[i] = 0.0f;  // ReLU-like sparsity: many all-zero steps to skip
          if (m * k > 40) {
            a[17] = std::numeric_limits<float>::quiet_NaN();
            a[39] = -std::numeric_limits<float>::infinity();
          }
          const auto c0 = random_values(m * ldc, ++seed);
          auto c2 = c0, c5 = c0;
          cpu::sgemm_with(cpu::GemmKernel::kAvx2Fma, pool, ta, tb, m, n, k, 0.7f, a.data(), lda, b.data(), ldb, beta,
                          c2.data(), ldc);
          cpu::sgemm_with(cpu::GemmKernel::kAvx512, pool, ta, tb, m, n, k, 0.7f, a.data(), lda, b.data(), ldb, beta,
                          c5.data(), ldc);
          ASSERT_EQ(0, std::memcmp(c2.data(), c5.data(), c2.size() * sizeof(float)))
              << "m " << m << " n " << n << " k " << k << " ta " << (ta == Trans::kYes) << " tb "
              << (tb == Trans::kYes) << " beta " << beta;
        }
      }
    }
  }
}

// The kernels agree with each other on data with the zero steps the packed kernel skips (ReLU
// outputs, image backgrounds), NaN and infinity included.
TEST(GemmChoice, KernelsAgreeOnSparseAndNonFiniteData) {
  if (!cpu::gemm_kernel_supported(cpu::GemmKernel::kAvx2Fma)) GTEST_SKIP() << "only one kernel on this CPU";
  const cpu::GemmKernel packed = cpu::gemm_kernel_supported(cpu::GemmKernel::kAvx512) ? cpu::GemmKernel::kAvx512
                                                                                      : cpu::GemmKernel::kAvx2Fma;
  cpu::ThreadPool pool(2);
  const int64_t m = 40, n = 70, k = 300;
  auto a = random_values(m * k, 6);
  const auto b = random_values(k * n, 7);
  for (int64_t i = 0; i < m * k; ++i)
    if (i % 3 != 0) a[i] = 0.0f;
  a[5 * k + 9] = std::numeric_limits<float>::quiet_NaN();
  a[11 * k + 12] = std::numeric_limits<float>::infinity();
  std::vector<float> ce(m * n), cv(m * n);
  cpu::sgemm_with(cpu::GemmKernel::kEigen, pool, Trans::kNo, Trans::kNo, m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f,
                  ce.data(), n);
  cpu::sgemm_with(packed, pool, Trans::kNo, Trans::kNo, m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f, cv.data(),
                  n);
  for (int64_t i = 0; i < m * n; ++i) {
    if (std::isnan(ce[i])) {
      EXPECT_TRUE(std::isnan(cv[i])) << i;
    } else if (std::isinf(ce[i])) {
      EXPECT_EQ(ce[i], cv[i]) << i;
    } else {
      EXPECT_NEAR(ce[i], cv[i], 1e-4f) << i;
    }
  }
}

TEST_P(Gemm, MatchesReferenceForAllTransposesAndOddSizes) {
  cpu::ThreadPool pool(2);
  const int64_t sizes[][3] = {{1, 1, 1}, {7, 5, 3}, {6, 16, 8}, {13, 17, 19}, {37, 53, 301}, {150, 40, 600}, {5, 1100, 9}};
  for (const auto& s : sizes)
    for (Trans ta : {Trans::kNo, Trans::kYes})
      for (Trans tb : {Trans::kNo, Trans::kYes}) check(pool, {s[0], s[1], s[2], ta, tb, 0, 1.0f, 0.0f});
}

TEST_P(Gemm, HonoursAlphaBetaAndRowStrides) {
  cpu::ThreadPool pool(2);
  for (Trans ta : {Trans::kNo, Trans::kYes})
    for (Trans tb : {Trans::kNo, Trans::kYes}) check(pool, {23, 35, 270, ta, tb, 5, -0.5f, 1.5f});
}

TEST_P(Gemm, TrainingShapesMatchReference) {
  cpu::ThreadPool pool(2);
  check(pool, {64, 800, 784, Trans::kNo, Trans::kNo, 0, 1.0f, 0.0f});   // forward
  check(pool, {784, 80, 64, Trans::kYes, Trans::kNo, 0, 1.0f, 0.0f});   // weight gradient (80 columns)
  check(pool, {64, 784, 96, Trans::kNo, Trans::kYes, 0, 1.0f, 0.0f});   // input gradient (K cut to 96)
  check(pool, {64, 10, 800, Trans::kNo, Trans::kNo, 0, 1.0f, 0.0f});    // output layer
}

// The same bits with 1, 2 and 3 threads on every way the product is split: the column split with
// op(A) packed once (several K slabs; sparse A, whose rows are grouped), the row split with op(B)
// packed once (a weight gradient; a narrow output layer), both transposes, beta ≠ 0, and operands
// too large to share (over 8 MB), which each thread packs for its own share.
TEST_P(Gemm, ResultDoesNotDependOnThreadCount) {
  cpu::ThreadPool one(1), two(2), three(3);
  struct Shape {
    int64_t m, n, k;
    Trans ta, tb;
    bool sparse;
  };
  const Shape shapes[] = {
      {64, 200, 300, Trans::kNo, Trans::kNo, false},    {64, 800, 784, Trans::kNo, Trans::kNo, true},
      {64, 357, 800, Trans::kNo, Trans::kYes, true},    {784, 800, 64, Trans::kYes, Trans::kNo, true},
      {300, 40, 700, Trans::kNo, Trans::kNo, true},     {64, 10, 800, Trans::kYes, Trans::kYes, false},
      {600, 1600, 2200, Trans::kNo, Trans::kNo, true},  {1400, 300, 2000, Trans::kNo, Trans::kYes, false}};
  uint64_t seed = 4;
  for (const Shape& s : shapes) {
    auto a = random_values(s.m * s.k, ++seed);
    if (s.sparse)
      for (size_t i = 0; i < a.size(); ++i)
        if ((i * 2654435761u >> 7) % 3 != 0) a[i] = 0.0f;
    const auto b = random_values(s.k * s.n, ++seed), c0 = random_values(s.m * s.n, ++seed);
    const int64_t lda = s.ta == Trans::kNo ? s.k : s.m, ldb = s.tb == Trans::kNo ? s.n : s.k;
    std::vector<float> c1 = c0, c2 = c0, c3 = c0;
    for (auto [pool, c] : {std::pair{&one, &c1}, {&two, &c2}, {&three, &c3}}) {
      cpu::sgemm_with(GetParam(), *pool, s.ta, s.tb, s.m, s.n, s.k, 1.0f, a.data(), lda, b.data(), ldb, 0.5f,
                      c->data(), s.n);
    }
    EXPECT_EQ(c1, c2) << s.m << "x" << s.n << "x" << s.k;
    EXPECT_EQ(c1, c3) << s.m << "x" << s.n << "x" << s.k;
  }
}

// sgemm_rows reads B's rows through an index (some left out, some twice, out of order) and gives
// the bits of sgemm_with on those rows gathered first: on both transposes of each operand, K over
// one slab, partial tiles, sparse A, beta ≠ 0 and a row stride; no rows at all leaves C scaled.
TEST_P(Gemm, ChosenRowsOfBGiveTheBitsOfTheGatheredRows) {
  cpu::ThreadPool pool(2);
  const int64_t shapes[][3] = {{64, 357, 800}, {64, 800, 64}, {13, 20, 300}, {7, 1, 5}, {6, 33, 257}};
  uint64_t seed = 40;
  for (const auto& s : shapes) {
    for (Trans ta : {Trans::kNo, Trans::kYes}) {
      for (Trans tb : {Trans::kNo, Trans::kYes}) {
        const int64_t m = s[0], n = s[1], k = s[2], pad = 2;
        const int64_t used = tb == Trans::kNo ? k : n, width = tb == Trans::kNo ? n : k;
        const int64_t stored = used * 2 + 3, ldb = width + pad, lda = (ta == Trans::kNo ? k : m) + pad;
        auto a = random_values((ta == Trans::kNo ? m : k) * lda, ++seed);
        for (size_t i = 0; i < a.size(); ++i)
          if (i % 4 != 0) a[i] = 0.0f;
        const auto b = random_values(stored * ldb, ++seed);
        std::vector<int32_t> rows(used);
        for (int64_t r = 0; r < used; ++r) rows[r] = static_cast<int32_t>((r * 7 + 3) % stored);
        if (used > 2) rows[1] = rows[0];
        std::vector<float> gathered(used * ldb);
        for (int64_t r = 0; r < used; ++r) std::copy_n(b.data() + rows[r] * ldb, ldb, gathered.data() + r * ldb);
        for (float beta : {0.0f, 0.5f}) {
          const auto c0 = random_values(m * n, ++seed);
          auto expected = c0, got = c0;
          cpu::sgemm_with(GetParam(), pool, ta, tb, m, n, k, 0.7f, a.data(), lda, gathered.data(), ldb, beta,
                          expected.data(), n);
          cpu::sgemm_rows(GetParam(), pool, ta, tb, m, n, k, 0.7f, a.data(), lda, b.data(), ldb, rows.data(), beta,
                          got.data(), n);
          ASSERT_EQ(0, std::memcmp(expected.data(), got.data(), got.size() * sizeof(float)))
              << "m " << m << " n " << n << " k " << k << " ta " << (ta == Trans::kYes) << " tb "
              << (tb == Trans::kYes) << " beta " << beta;
        }
      }
    }
  }
  std::vector<float> c = {1, 2, 3, 4};
  cpu::sgemm_rows(GetParam(), pool, Trans::kNo, Trans::kYes, 2, 2, 0, 1.0f, nullptr, 1, nullptr, 1, nullptr, 0.5f,
                  c.data(), 2);
  EXPECT_EQ(c, (std::vector<float>{0.5f, 1, 1.5f, 2}));
}

// The rows of a sparse, untransposed A are grouped into 6-row panels by where their zeros lie
// (gemm_packed.inc: order_rows), blocks of more than 72 rows included. Each row of C must still
// get its own row's product with the bits it has in any grouping: the product of A with its rows
// shuffled is C with its rows shuffled, bit for bit, and both are the exact product within
// rounding; beta ≠ 0 and a padded C included, on 1 thread and on 2 (split by columns, or by rows).
// (Eigen's product, which groups nothing, need not give a row the same bits in another position:
// for it only the exact product is checked.)
TEST_P(Gemm, RowsGroupedByTheirZerosKeepEachRowsOwnBits) {
  const bool packed = GetParam() != cpu::GemmKernel::kEigen;
  for (const int threads : {1, 2}) {
    cpu::ThreadPool pool(threads);
    for (const int64_t m : {64, 150}) {
      const int64_t n = 300, k = 784, ldc = n + 3;
      // Image-like rows: each nonzero on an interval of its own (two rows in three zero besides).
      const auto values = random_values(m * k, 70);
      std::vector<float> a(m * k, 0.0f);
      for (int64_t i = 0; i < m; ++i) {
        const int64_t start = (i * 37) % 600, end = std::min(k, start + 40 + (i * 53) % 300);
        for (int64_t p = start; p < end; ++p)
          if (p % 3 != 0) a[i * k + p] = values[i * k + p];
      }
      const auto b = random_values(k * n, 71);
      std::vector<int64_t> from(m);  // row i of the shuffled A is row from[i] of A
      std::vector<float> shuffled(m * k);
      for (int64_t i = 0; i < m; ++i) {
        from[i] = (i * 29 + 11) % m;
        std::copy_n(a.data() + from[i] * k, k, shuffled.data() + i * k);
      }
      for (const float beta : {0.0f, 0.5f}) {
        const auto c0 = random_values(m * ldc, 72);
        auto c = c0, cs = c0;
        for (int64_t i = 0; i < m; ++i) std::copy_n(c0.data() + from[i] * ldc, ldc, cs.data() + i * ldc);
        cpu::sgemm_with(GetParam(), pool, Trans::kNo, Trans::kNo, m, n, k, 0.7f, a.data(), k, b.data(), n, beta,
                        c.data(), ldc);
        cpu::sgemm_with(GetParam(), pool, Trans::kNo, Trans::kNo, m, n, k, 0.7f, shuffled.data(), k, b.data(), n,
                        beta, cs.data(), ldc);
        double worst = 0;
        for (int64_t i = 0; i < m; ++i) {
          if (packed) {
            ASSERT_EQ(0, std::memcmp(cs.data() + i * ldc, c.data() + from[i] * ldc, ldc * sizeof(float)))
                << "row " << i << " of the shuffled product, m " << m << ", beta " << beta << ", threads " << threads;
          }
          for (int64_t j = 0; j < ldc; ++j) {
            double expected = c0[i * ldc + j];
            if (j < n) {
              double acc = 0;
              for (int64_t p = 0; p < k; ++p) acc += static_cast<double>(a[i * k + p]) * b[p * n + j];
              expected = 0.7 * acc + (beta == 0.0f ? 0.0 : beta * expected);
            }
            const double bound = 1e-5 * std::sqrt(k) + 1e-6 * std::fabs(expected);
            worst = std::max(worst, std::fabs(c[i * ldc + j] - expected) / bound);
          }
        }
        EXPECT_LE(worst, 1.0) << "m " << m << ", beta " << beta << ", threads " << threads;
      }
    }
  }
}

// Where many columns of B are zero (a weight gradient behind silent ReLU units), the packed
// kernels compute only the others: each kept column has the bits of the product on the kept
// columns gathered first, and each dropped one is alpha·(+0), for both transposes of A, a column
// tail that is not a whole group, one and several K slabs, alpha < 0, and every column zero; a
// NaN in A still reaches every column of its row, as in the whole product.
TEST_P(Gemm, ZeroColumnsOfBGiveTheBitsOfTheProductOnTheOthers) {
  if (GetParam() == cpu::GemmKernel::kEigen) GTEST_SKIP() << "the Eigen kernel computes every column";
  cpu::ThreadPool pool(2);
  const int64_t shapes[][4] = {{784, 800, 64, 1}, {64, 803, 300, 0}, {37, 130, 600, 1}, {50, 96, 40, 0}};
  uint64_t seed = 90;
  for (const auto& s : shapes) {
    const int64_t m = s[0], n = s[1], k = s[2];
    const Trans ta = s[3] != 0 ? Trans::kYes : Trans::kNo;
    const int64_t lda = ta == Trans::kNo ? k : m;
    for (const int every : {0, 2, 5}) {  // columns kept: all zero, 1 in 2 (some runs), 2 in 5
      auto a = random_values(m * k, ++seed);
      auto b = random_values(k * n, ++seed);
      std::vector<int32_t> kept;
      for (int64_t j = 0; j < n; ++j) {
        const bool keep = every != 0 && ((j * 7 + j / 3) % every == 0);
        if (keep) kept.push_back(static_cast<int32_t>(j));
        for (int64_t p = 0; p < k && !keep; ++p) b[p * n + j] = (p + j) % 2 == 0 ? 0.0f : -0.0f;
      }
      const int64_t nk = static_cast<int64_t>(kept.size());
      std::vector<float> gathered(k * std::max<int64_t>(nk, 1));
      for (int64_t p = 0; p < k; ++p)
        for (int64_t q = 0; q < nk; ++q) gathered[p * nk + q] = b[p * n + kept[q]];
      for (const float alpha : {1.0f, -0.5f}) {
        std::vector<float> c(m * n, 7.0f), ck(m * std::max<int64_t>(nk, 1), 7.0f);
        cpu::sgemm_with(GetParam(), pool, ta, Trans::kNo, m, n, k, alpha, a.data(), lda, b.data(), n, 0.0f, c.data(),
                        n);
        if (nk > 0) {
          cpu::sgemm_with(GetParam(), pool, ta, Trans::kNo, m, nk, k, alpha, a.data(), lda, gathered.data(), nk, 0.0f,
                          ck.data(), nk);
        }
        const float zero = alpha * 0.0f;
        for (int64_t i = 0; i < m; ++i) {
          for (int64_t j = 0, q = 0; j < n; ++j) {
            const bool keep = q < nk && kept[q] == j;
            const float want = keep ? ck[i * nk + q++] : zero;
            ASSERT_EQ(0, std::memcmp(&want, &c[i * n + j], sizeof(float)))
                << m << "x" << n << "x" << k << " alpha " << alpha << " row " << i << " column " << j;
          }
        }
      }
      if (every == 2) {  // a NaN in op(A)'s row 3 makes all of C's row 3 NaN
        a[ta == Trans::kNo ? 3 * k + 1 : 1 * m + 3] = std::nanf("");
        std::vector<float> c(m * n);
        cpu::sgemm_with(GetParam(), pool, ta, Trans::kNo, m, n, k, 1.0f, a.data(), lda, b.data(), n, 0.0f, c.data(),
                        n);
        for (int64_t j = 0; j < n; ++j) ASSERT_TRUE(std::isnan(c[3 * n + j])) << "column " << j;
      }
    }
  }
}

TEST_P(Gemm, ZeroDepthScalesC) {
  cpu::ThreadPool pool(1);
  std::vector<float> c = {1, 2, std::numeric_limits<float>::quiet_NaN(), 4};
  cpu::sgemm_with(GetParam(), pool, Trans::kNo, Trans::kNo, 2, 2, 0, 1.0f, nullptr, 1, nullptr, 2, 0.0f, c.data(), 2);
  EXPECT_EQ(c, (std::vector<float>{0, 0, 0, 0}));
}

// Where one block of A's rows meets an untransposed B, the packed kernels read B's whole panels in
// place instead of packing them (gemm_packed.inc's b_in_place): the same bits as packed, on dense
// and sparse A (steps skipped), beta ≠ 0, a last panel narrower than the kernel's, K over several
// slabs, 1 and 2 threads, and row strides that are refused (not 64-byte aligned, or a multiple of
// 1 KiB); the path is counted, so the test knows it was taken.
TEST_P(Gemm, BReadInPlaceGivesThePackedBits) {
  if (GetParam() == cpu::GemmKernel::kEigen) GTEST_SKIP() << "the Eigen kernel packs nothing of ours";
  struct Shape {
    int64_t m, n, k, ldb;
    bool avx2, avx512;  // whether one thread reads some slab in place, with each kernel's panel width
    bool shared;        // whether two threads pack B once for both instead (more A panels than B's)
  };
  const Shape shapes[] = {
      {64, 800, 784, 800, false, true, false},  // 16-wide rows 50 lines apart use half of L1's sets
      {64, 784, 800, 784, true, true, false},   {40, 50, 300, 80, true, true, true},
      {72, 96, 600, 96, false, true, true},     {6, 32, 5, 32, true, true, false},
      {40, 50, 300, 64, false, false, true},    // 256 bytes apart: a quarter of the sets or half
      {64, 800, 300, 803, false, false, false}, // rows not 64-byte aligned
      {64, 256, 300, 1024, false, false, false}, {73, 800, 300, 800, false, false, false}};  // two A blocks
  cpu::ThreadPool one(1), two(2);
  uint64_t seed = 120;
  const bool was = cpu::gemm_b_in_place_allowed();
  for (const Shape& s : shapes) {
    // B in 64-byte aligned storage, as the backend allocates tensors.
    std::vector<float> bstore(s.k * s.ldb + 16);
    float* b = bstore.data() + (64 - reinterpret_cast<uintptr_t>(bstore.data()) % 64) % 64 / sizeof(float);
    const auto values = random_values(s.k * s.ldb, ++seed);
    std::copy(values.begin(), values.end(), b);
    for (const bool sparse : {false, true}) {
      auto a = random_values(s.m * s.k, ++seed);
      if (sparse)
        for (size_t i = 0; i < a.size(); ++i)
          if ((i * 2654435761u >> 9) % 4 != 0) a[i] = 0.0f;
      const auto c0 = random_values(s.m * s.n, ++seed);
      for (const float beta : {0.0f, 0.5f}) {
        for (cpu::ThreadPool* pool : {&one, &two}) {
          std::vector<float> packed = c0, in_place = c0;
          cpu::set_gemm_b_in_place_allowed(false);
          const int64_t before = cpu::gemm_b_in_place_slabs();
          cpu::sgemm_with(GetParam(), *pool, Trans::kNo, Trans::kNo, s.m, s.n, s.k, 0.7f, a.data(), s.k, b, s.ldb, beta,
                          packed.data(), s.n);
          EXPECT_EQ(cpu::gemm_b_in_place_slabs(), before) << "read in place although not allowed";
          cpu::set_gemm_b_in_place_allowed(true);
          cpu::sgemm_with(GetParam(), *pool, Trans::kNo, Trans::kNo, s.m, s.n, s.k, 0.7f, a.data(), s.k, b, s.ldb, beta,
                          in_place.data(), s.n);
          cpu::set_gemm_b_in_place_allowed(was);
          const bool want = (GetParam() == cpu::GemmKernel::kAvx512 ? s.avx512 : s.avx2) && !(pool == &two && s.shared);
          EXPECT_EQ(cpu::gemm_b_in_place_slabs() > before, want) << s.m << "x" << s.n << "x" << s.k << " threads "
                                                                 << pool->threads();
          ASSERT_EQ(0, std::memcmp(packed.data(), in_place.data(), packed.size() * sizeof(float)))
              << s.m << "x" << s.n << "x" << s.k << " ldb " << s.ldb << " sparse " << sparse << " beta " << beta
              << " threads " << pool->threads();
        }
      }
    }
  }
}

TEST(GemmBInPlace, TheEnvironmentSaysZeroOrOne) {
  EXPECT_TRUE(cpu::gemm_b_in_place_from_env(nullptr));
  EXPECT_TRUE(cpu::gemm_b_in_place_from_env(""));
  EXPECT_TRUE(cpu::gemm_b_in_place_from_env("1"));
  EXPECT_FALSE(cpu::gemm_b_in_place_from_env("0"));
  try {
    cpu::gemm_b_in_place_from_env("off");
    ADD_FAILURE() << "accepted CUDL_GEMM_B_IN_PLACE=off";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("CUDL_GEMM_B_IN_PLACE=off: expected 0 (always pack B) or 1"));
  }
}

// The cache-set check behind it: B's rows as a packed panel would spread, or not.
TEST(GemmBInPlace, RowStridesThatCrowdCacheSetsAreRefused) {
  // The 2014 network's slabs: 196 steps (K = 784 in 4 slabs) and 200 (K = 800).
  EXPECT_TRUE(cpu::rows_spread_like_packed(0, 800 * 4, 196, 128));   // 800 floats, 32-wide panel
  EXPECT_TRUE(cpu::rows_spread_like_packed(0, 800 * 4, 200, 128));
  EXPECT_TRUE(cpu::rows_spread_like_packed(0, 784 * 4, 200, 64));    // 784 floats, 16-wide panel
  EXPECT_FALSE(cpu::rows_spread_like_packed(0, 800 * 4, 196, 64));   // 16-wide: half the sets only
  EXPECT_FALSE(cpu::rows_spread_like_packed(0, 1024 * 4, 196, 128)); // every row in the same sets
  EXPECT_FALSE(cpu::rows_spread_like_packed(4, 800 * 4, 196, 128));  // not aligned: 3 lines a row
  EXPECT_TRUE(cpu::rows_spread_like_packed(64 * 1000, 96 * 4, 200, 128));
  // Whole lines further on only rotate the sets (the answer is kept per offset within a line).
  EXPECT_FALSE(cpu::rows_spread_like_packed(64 * 7 + 4, 800 * 4, 196, 128));
  EXPECT_TRUE(cpu::rows_spread_like_packed(64 * 7, 800 * 4, 196, 128));
  EXPECT_FALSE(cpu::rows_spread_like_packed(64 * 7, 800 * 4, 196, 64));
}

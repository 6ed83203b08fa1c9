// cudl's own product for few rows (cuda/rows_gemm_plan.hpp), on the host: how it splits k, the
// index maps of its loads, and the emulation of its arithmetic that the GPU test holds the kernel
// to bit for bit. Runs without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <set>
#include <utility>
#include <vector>

#include "cudl/rng.hpp"
#include "test_support.hpp"
#include "rows_gemm_plan.hpp"

namespace {

using namespace cudl::cuda::rows_gemm;
using cudl::Activation;

TEST(RowsGemmPlan, SlicesCoverKInWholeChunksAndFillTheGpu) {
  for (int sms : {1, 8, 108, 132})
    for (int64_t m : {1, 63, 64, 65, 256})
      for (int64_t n : {1, 31, 33, 800, 4096})
        for (int64_t k : {1, 15, 16, 17, 64, 784, 25088}) {
          const Split s = split_for(m, n, k, sms);
          SCOPED_TRACE(testing::Message() << m << "x" << n << "x" << k << " on " << sms << " SMs");
          EXPECT_EQ(s.row_tiles, (m + 63) / 64);
          EXPECT_EQ(s.col_tiles, (n + 31) / 32);
          EXPECT_EQ(s.split_k % kChunk, 0);
          EXPECT_GE(s.splits, 1);
          EXPECT_LE(s.splits, kMaxSplits);
          EXPECT_GE(s.splits * s.split_k, k);       // every k in a slice
          EXPECT_LT((s.splits - 1) * s.split_k, k);  // and no slice empty
          if (s.splits > 1) {
            EXPECT_GE(s.split_k, kMinSplitK);
          }
          EXPECT_LE(s.tiles() * (s.splits - 1), 2 * int64_t{sms} + s.tiles());  // no more blocks than asked for
        }
  for (int64_t k : {1, 17, 64, 4096}) {  // summing B's rows: one slice
    const Split one = split_for(784, 800, k, 132, /*one_slice=*/true);
    EXPECT_EQ(one.splits, 1);
    EXPECT_GE(one.split_k, k);
    EXPECT_TRUE(serves(784 / 8, 800, k, /*one_slice=*/true));
  }
  EXPECT_FALSE(serves(64, 800, kMaxOneSliceK + 1, /*one_slice=*/true));
  // The 2014 network's first layer on the H200: 25 column tiles, 10 slices of 80 (250 blocks).
  const Split first = split_for(64, 800, 784, 132);
  EXPECT_EQ(first.blocks(), 250);
  EXPECT_EQ(first.split_k, 80);
}

TEST(RowsGemmPlan, ServesFewRowsOrLittleWork) {
  EXPECT_TRUE(serves(64, 800, 784));
  EXPECT_TRUE(serves(256, 1, 1));
  EXPECT_TRUE(serves(784, 800, 64));  // a weight gradient of a batch of 64
  EXPECT_FALSE(serves(257, 800, 784));
  EXPECT_FALSE(serves(1000, 800, 784));
  EXPECT_FALSE(serves(0, 800, 784));
  EXPECT_FALSE(serves(64, 800, 0));
  EXPECT_FALSE(serves(64, int64_t{32} * kMaxTiles + 1, 8));
  EXPECT_FALSE(serves(int64_t{64} * kMaxTiles + 1, 1, 1));       // more row tiles than a grid has
  EXPECT_FALSE(serves(int64_t{1} << 40, int64_t{1} << 40, 1));  // no overflow on the way
}

// Each stage element is loaded once, and each warp's 32 loads are runs of consecutive addresses
// of the stored matrix (16 or more in a row: coalesced).
TEST(RowsGemmPlan, LoadMapsTakeEachStageElementOnceAndCoalesce) {
  const int64_t ld = 1000;
  for (bool tr : {false, true}) {
    std::set<std::pair<int, int>> a_seen, b_seen;
    for (int e = 0; e < kTileRows * kChunk; ++e) {
      const Cell c = a_cell(tr, e);
      ASSERT_TRUE(c.outer >= 0 && c.outer < kTileRows && c.kk >= 0 && c.kk < kChunk) << e;
      EXPECT_TRUE(a_seen.insert({c.outer, c.kk}).second) << "A element loaded twice: " << e;
    }
    for (int e = 0; e < kTileCols * kChunk; ++e) {
      const Cell c = b_cell(tr, e);
      ASSERT_TRUE(c.outer >= 0 && c.outer < kTileCols && c.kk >= 0 && c.kk < kChunk) << e;
      EXPECT_TRUE(b_seen.insert({c.outer, c.kk}).second) << "B element loaded twice: " << e;
    }
    EXPECT_EQ(a_seen.size(), size_t{kTileRows * kChunk});
    EXPECT_EQ(b_seen.size(), size_t{kTileCols * kChunk});
    // The shortest run of consecutive addresses among each warp's 32 loads, address(e) for load e.
    const auto shortest_run = [](int loads, const auto& address) {
      int shortest = 32;
      for (int e0 = 0; e0 < loads; e0 += 32) {
        int run = 1;
        for (int e = e0 + 1; e < e0 + 32; ++e) {
          if (address(e) == address(e - 1) + 1) {
            ++run;
          } else {
            shortest = std::min(shortest, run);
            run = 1;
          }
        }
        shortest = std::min(shortest, run);
      }
      return shortest;
    };
    EXPECT_GE(shortest_run(kTileRows * kChunk,
                           [&](int e) {
                             const Cell c = a_cell(tr, e);
                             return a_index(tr, c.outer, c.kk, ld);
                           }),
              kChunk)
        << (tr ? "Aᵀ" : "A");
    EXPECT_GE(shortest_run(kTileCols * kChunk,
                           [&](int e) {
                             const Cell c = b_cell(tr, e);
                             return b_index(tr, c.kk, c.outer, ld);
                           }),
              kChunk)
        << (tr ? "Bᵀ" : "B");
  }
}

// n values in [-1, 1).
std::vector<float> uniform(uint64_t seed, int64_t n) { return cudl::testing::uniform_values(seed, n, -1.0f, 1.0f); }

struct Case {
  int64_t m, n, k;
  bool ta, tb;
};

// The emulation against a double-precision product, for every epilogue: it computes the call.
TEST(RowsGemmPlan, EmulationComputesEachEpilogue) {
  const Case cases[] = {{1, 1, 1, false, false},    {63, 33, 17, true, false},   {64, 31, 100, false, true},
                        {65, 800, 784, false, false}, {130, 40, 1000, true, true}, {3, 10, 800, false, true},
                        {300, 70, 64, true, false}};
  uint64_t seed = 7;
  for (const Case& c : cases)
    for (Epilogue epi : {Epilogue::kPlain, Epilogue::kBiasAct, Epilogue::kActBackward}) {
      SCOPED_TRACE(testing::Message() << c.m << "x" << c.n << "x" << c.k << (c.ta ? " Aᵀ" : "") << (c.tb ? " Bᵀ" : "")
                                      << " epilogue " << static_cast<int>(epi));
      const std::vector<float> a = uniform(++seed, c.m * c.k), b = uniform(++seed, c.k * c.n);
      const std::vector<float> bias = uniform(++seed, c.n), y = uniform(++seed, c.m * c.n);
      std::vector<float> out = uniform(++seed, c.m * c.n);
      const std::vector<float> before = out;
      Outputs o;
      o.epilogue = epi;
      o.alpha = -0.75f;
      o.beta = epi == Epilogue::kPlain ? 0.5f : 0.0f;
      o.c = out.data();
      o.ldc = c.n;
      o.bias = bias.data();
      o.y = y.data();
      o.act = Activation::kRelu;
      const int64_t lda = c.ta ? c.m : c.k, ldb = c.tb ? c.k : c.n;
      emulate(c.ta, c.tb, c.m, c.n, c.k, a.data(), lda, b.data(), ldb, split_for(c.m, c.n, c.k, 132), o);
      for (int64_t i = 0; i < c.m; ++i)
        for (int64_t j = 0; j < c.n; ++j) {
          double s = 0.0, mag = 0.0;
          for (int64_t kk = 0; kk < c.k; ++kk) {
            // Indexed here, not with the plan's a_index/b_index, which the emulation uses.
            const double p = static_cast<double>(a[static_cast<size_t>(c.ta ? kk * lda + i : i * lda + kk)]) *
                             b[static_cast<size_t>(c.tb ? j * ldb + kk : kk * ldb + j)];
            s += p;
            mag += std::fabs(p);
          }
          const size_t at = static_cast<size_t>(i * c.n + j);
          double want = -0.75 * s;
          if (epi == Epilogue::kPlain) want += 0.5 * before[at];
          if (epi == Epilogue::kBiasAct) want = std::max(0.0, want + bias[static_cast<size_t>(j)]);
          if (epi == Epilogue::kActBackward) want = y[at] > 0.0f ? want : 0.0;
          const double tol = 1e-6 * (mag + 1.0) + (epi == Epilogue::kBiasAct && want == 0.0 ? 1e-5 * mag : 0.0);
          ASSERT_NEAR(out[at], want, tol) << "at " << i << "," << j;
        }
    }
}

// With Outputs::sums and a_sums the emulation also sums op(B)'s and Aᵀ's rows (one slice),
// scaled and accumulated.
TEST(RowsGemmPlan, EmulationSumsTheRowsOfAAndB) {
  const int64_t m = 3, n = 37, k = 70;
  const std::vector<float> a = uniform(1, k * m), b = uniform(2, k * n), sums0 = uniform(3, n), a_sums0 = uniform(4, m);
  std::vector<float> c(static_cast<size_t>(m * n)), sums = sums0, a_sums = a_sums0;
  Outputs o;
  o.c = c.data();
  o.ldc = n;
  o.sums = sums.data();
  o.a_sums = a_sums.data();
  o.sum_alpha = -1.0f;
  o.sum_beta = 0.5f;
  const Split one = split_for(m, n, k, 132, /*one_slice=*/true);
  ASSERT_EQ(one.splits, 1);
  emulate(true, false, m, n, k, a.data(), m, b.data(), n, one, o);  // A stored K×M
  // sums_out[j] ≈ −Σ_kk v[kk·cols + j] + sums_in[j] / 2, for B (cols n) and A (cols m).
  auto expect_sums = [&](const std::vector<float>& v, int64_t cols, const std::vector<float>& in,
                         const std::vector<float>& out, const char* what) {
    for (int64_t j = 0; j < cols; ++j) {
      double s = 0.0, mag = 0.0;
      for (int64_t kk = 0; kk < k; ++kk) {
        s += v[static_cast<size_t>(kk * cols + j)];
        mag += std::fabs(v[static_cast<size_t>(kk * cols + j)]);
      }
      EXPECT_NEAR(out[static_cast<size_t>(j)], -s + 0.5 * in[static_cast<size_t>(j)], 1e-6 * (mag + 1.0)) << what << j;
    }
  };
  expect_sums(b, n, sums0, sums, "B's sum ");
  expect_sums(a, m, a_sums0, a_sums, "A's sum ");
}

// The order the kernel adds in: integers whose every partial sum is exact give the exact sum;
// a beta of 0 never reads C (NaN there is overwritten); a sum of −0 products is +0.
TEST(RowsGemmPlan, EmulationKeepsTheKernelsContract) {
  const int64_t m = 2, n = 3, k = 700;  // several slices
  ASSERT_GT(split_for(m, n, k, 132).splits, 1);
  std::vector<float> a(static_cast<size_t>(m * k)), b(static_cast<size_t>(k * n));
  for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<float>(static_cast<int>(i % 7) - 3);
  for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<float>(static_cast<int>(i % 5) - 2);
  std::vector<float> out(static_cast<size_t>(m * n), std::numeric_limits<float>::quiet_NaN());
  Outputs o;
  o.c = out.data();
  o.ldc = n;
  emulate(false, false, m, n, k, a.data(), k, b.data(), n, split_for(m, n, k, 132), o);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = 0.0;
      for (int64_t kk = 0; kk < k; ++kk) s += static_cast<double>(a[i * k + kk]) * b[kk * n + j];
      EXPECT_EQ(out[static_cast<size_t>(i * n + j)], static_cast<float>(s)) << i << "," << j;
    }
  // Every slice's chain starts at +0, so a sum of −0 products is +0, in slices or not.
  std::vector<float> za(static_cast<size_t>(k), -0.0f), zb(static_cast<size_t>(k), 1.0f);
  float z = 1.0f;
  Outputs zo;
  zo.c = &z;
  zo.ldc = 1;
  emulate(false, false, 1, 1, k, za.data(), k, zb.data(), 1, split_for(1, 1, k, 132), zo);
  EXPECT_EQ(z, 0.0f);
  EXPECT_FALSE(std::signbit(z));
}

}  // namespace

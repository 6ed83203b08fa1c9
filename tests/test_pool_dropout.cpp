// Pooling and dropout on the CPU. Pooling: hand-worked windows, then forward and backward against
// direct loops in double (max: the gradient goes to the first maximum in row-major order, padding
// never wins; average: padding counts as zeros, divisor window_h·window_w), ties included.
// Dropout: the mask is the documented counter-based draw, kept values are x/(1 − p), the kept
// fraction and the mean are within tight binomial bounds, seeds and counters reproduce or change
// the mask, the backward pass is the same call on dy, and the argument errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "cudl/cpu_backend.hpp"
#include "cudl/error.hpp"
#include "cudl/rng.hpp"
#include "test_support.hpp"
#include "tolerance.hpp"

using namespace cudl;
using cudl::testing::error_of;
using cudl::testing::expect_all_close;
using cudl::testing::uniform_values;
using ::testing::HasSubstr;

namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

Tensor make(CpuBackend& cpu, const std::vector<float>& v, Shape s) { return Tensor::from_host(v, std::move(s), cpu); }

Pool2dParams pooling(PoolMode mode, int64_t wh, int64_t ww, int64_t sh, int64_t sw, int64_t ph = 0, int64_t pw = 0) {
  Pool2dParams p;
  p.mode = mode, p.window_h = wh, p.window_w = ww, p.stride_h = sh, p.stride_w = sw, p.pad_h = ph, p.pad_w = pw;
  return p;
}

// ---- pooling: direct loops ----

struct PoolCase {
  int64_t n, c, h, w;
  Pool2dParams g;
  int64_t p, q;  // the expected output size, worked out by hand

  std::string name() const {
    return std::string(to_string(g.mode)) + " x [" + std::to_string(n) + "," + std::to_string(c) + "," +
           std::to_string(h) + "," + std::to_string(w) + "] window " + std::to_string(g.window_h) + "x" +
           std::to_string(g.window_w) + " stride " + std::to_string(g.stride_h) + "x" + std::to_string(g.stride_w) +
           " pad " + std::to_string(g.pad_h) + "x" + std::to_string(g.pad_w);
  }
};

// Calls f(output index, input indices in the window, row-major, padding left out).
void each_window(const PoolCase& pc, const std::function<void(int64_t, const std::vector<int64_t>&)>& f) {
  std::vector<int64_t> cells;
  for (int64_t plane = 0; plane < pc.n * pc.c; ++plane)
    for (int64_t p = 0; p < pc.p; ++p)
      for (int64_t q = 0; q < pc.q; ++q) {
        cells.clear();
        for (int64_t i = p * pc.g.stride_h - pc.g.pad_h; i < p * pc.g.stride_h - pc.g.pad_h + pc.g.window_h; ++i)
          for (int64_t j = q * pc.g.stride_w - pc.g.pad_w; j < q * pc.g.stride_w - pc.g.pad_w + pc.g.window_w; ++j)
            if (i >= 0 && i < pc.h && j >= 0 && j < pc.w) cells.push_back((plane * pc.h + i) * pc.w + j);
        f((plane * pc.p + p) * pc.q + q, cells);
      }
}

// The first cell holding the window's maximum, in row-major order.
int64_t first_max(const std::vector<float>& x, const std::vector<int64_t>& cells) {
  int64_t best = cells.front();
  for (int64_t i : cells)
    if (x[i] > x[best]) best = i;
  return best;
}

std::vector<double> pool_forward_loop(const PoolCase& pc, const std::vector<float>& x) {
  std::vector<double> y(static_cast<size_t>(pc.n * pc.c * pc.p * pc.q));
  const double area = static_cast<double>(pc.g.window_h * pc.g.window_w);
  each_window(pc, [&](int64_t out, const std::vector<int64_t>& cells) {
    if (pc.g.mode == PoolMode::kMax) {
      y[out] = x[first_max(x, cells)];
    } else {
      double sum = 0.0;
      for (int64_t i : cells) sum += x[i];
      y[out] = sum / area;
    }
  });
  return y;
}

std::vector<double> pool_backward_loop(const PoolCase& pc, const std::vector<float>& x, const std::vector<float>& dy) {
  std::vector<double> dx(x.size(), 0.0);
  const double area = static_cast<double>(pc.g.window_h * pc.g.window_w);
  each_window(pc, [&](int64_t out, const std::vector<int64_t>& cells) {
    if (pc.g.mode == PoolMode::kMax) {
      dx[first_max(x, cells)] += dy[out];
    } else {
      for (int64_t i : cells) dx[i] += dy[out] / area;
    }
  });
  return dx;
}

// Odd sizes, windows cut off by the floor, overlapping windows, non-square windows and strides,
// padding up to half the window, a 1×1 window skipping cells.
std::vector<PoolCase> pool_cases() {
  std::vector<PoolCase> cases;
  for (PoolMode mode : {PoolMode::kMax, PoolMode::kAverage}) {
    cases.push_back({1, 1, 4, 4, pooling(mode, 2, 2, 2, 2), 2, 2});
    cases.push_back({2, 3, 5, 7, pooling(mode, 2, 2, 2, 2), 2, 3});
    cases.push_back({2, 3, 7, 6, pooling(mode, 3, 3, 2, 2, 1, 1), 4, 3});
    cases.push_back({3, 2, 6, 9, pooling(mode, 3, 2, 1, 2, 1, 1), 6, 5});
    cases.push_back({2, 2, 6, 5, pooling(mode, 2, 2, 1, 1), 5, 4});
    cases.push_back({2, 2, 9, 11, pooling(mode, 5, 5, 3, 3, 2, 2), 3, 4});
    cases.push_back({1, 3, 5, 6, pooling(mode, 1, 1, 2, 3), 3, 2});
    cases.push_back({4, 5, 28, 28, pooling(mode, 2, 2, 2, 2), 14, 14});
  }
  return cases;
}

// Forward and backward against the loops, with outputs poisoned with NaN (each must overwrite).
void check_pool(CpuBackend& cpu, const PoolCase& pc, const std::vector<float>& xv, const std::vector<float>& dyv,
                double abs) {
  Tensor x = make(cpu, xv, {pc.n, pc.c, pc.h, pc.w});
  Tensor y({pc.n, pc.c, pc.p, pc.q}, cpu), dx({pc.n, pc.c, pc.h, pc.w}, cpu);
  Tensor dy = make(cpu, dyv, {pc.n, pc.c, pc.p, pc.q});
  cpu.fill(y, kNaN);
  cpu.fill(dx, kNaN);
  cpu.pool2d_forward(x, pc.g, y);
  cpu.pool2d_backward(x, y, dy, pc.g, dx);
  expect_all_close(y.to_vector(), pool_forward_loop(pc, xv), abs, 1e-6, pc.name() + " forward");
  expect_all_close(dx.to_vector(), pool_backward_loop(pc, xv, dyv), abs, 1e-6, pc.name() + " backward");
}

// ---- pooling: hand-worked ----

TEST(Pool2dHandWorked, MaxTwoByTwoStrideTwo) {
  CpuBackend cpu(1);
  Tensor x = make(cpu, {1, 5, 2, 0, 3, 4, 8, 7, 9, 0, 1, 1, 2, 6, 1, 3}, {1, 1, 4, 4});
  Tensor y({1, 1, 2, 2}, cpu), dx({1, 1, 4, 4}, cpu);
  const Pool2dParams g = pooling(PoolMode::kMax, 2, 2, 2, 2);
  cpu.pool2d_forward(x, g, y);
  EXPECT_EQ(y.to_vector(), (std::vector<float>{5, 8, 9, 3}));
  // Each window's gradient lands on its maximum: (0, 1), (1, 2), (2, 0), (3, 3).
  cpu.pool2d_backward(x, y, make(cpu, {1, 2, 3, 4}, {1, 1, 2, 2}), g, dx);
  EXPECT_EQ(dx.to_vector(), (std::vector<float>{0, 1, 0, 0, 0, 0, 2, 0, 3, 0, 0, 0, 0, 0, 0, 4}));
}

TEST(Pool2dHandWorked, MaxGivesTiesToTheFirstMaximumInRowMajorOrder) {
  CpuBackend cpu(1);
  // Window 0 is all 7s: the gradient goes to its top-left cell. Window 1 holds 3 at (0, 1) and
  // (1, 0): the first in row-major order is (0, 1).
  Tensor x = make(cpu, {7, 7, 1, 3, 7, 7, 3, 2}, {1, 1, 2, 4});
  Tensor y({1, 1, 1, 2}, cpu), dx({1, 1, 2, 4}, cpu);
  const Pool2dParams g = pooling(PoolMode::kMax, 2, 2, 2, 2);
  cpu.pool2d_forward(x, g, y);
  EXPECT_EQ(y.to_vector(), (std::vector<float>{7, 3}));
  cpu.pool2d_backward(x, y, make(cpu, {1, 10}, {1, 1, 1, 2}), g, dx);
  EXPECT_EQ(dx.to_vector(), (std::vector<float>{1, 0, 0, 10, 0, 0, 0, 0}));
}

TEST(Pool2dHandWorked, MaxPaddingNeverWins) {
  CpuBackend cpu(1);
  // All inputs negative; window 2, stride 1, padding 1 gives 3×3 windows, each holding 1 to 4 real
  // cells and the rest padding. A padding cell taken as 0 would win every window.
  Tensor x = make(cpu, {-1, -2, -3, -4}, {1, 1, 2, 2});
  Tensor y({1, 1, 3, 3}, cpu), dx({1, 1, 2, 2}, cpu);
  const Pool2dParams g = pooling(PoolMode::kMax, 2, 2, 1, 1, 1, 1);
  cpu.pool2d_forward(x, g, y);
  EXPECT_EQ(y.to_vector(), (std::vector<float>{-1, -1, -2, -1, -1, -2, -3, -3, -4}));
  Tensor ones({1, 1, 3, 3}, cpu);
  cpu.fill(ones, 1.0f);
  cpu.pool2d_backward(x, y, ones, g, dx);  // x00 wins 4 windows, x01 2, x10 2, x11 1
  EXPECT_EQ(dx.to_vector(), (std::vector<float>{4, 2, 2, 1}));
}

TEST(Pool2dHandWorked, AverageCountsPaddingAsZerosOverTheWholeWindow) {
  CpuBackend cpu(1);
  // x = 1..9 (3×3), window 3, stride 1, padding 1: every window's sum is divided by 9.
  Tensor x = make(cpu, {1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 1, 3, 3});
  Tensor y({1, 1, 3, 3}, cpu), dx({1, 1, 3, 3}, cpu);
  const Pool2dParams g = pooling(PoolMode::kAverage, 3, 3, 1, 1, 1, 1);
  cpu.pool2d_forward(x, g, y);
  // Corner (0, 0): (1 + 2 + 4 + 5)/9; edge (0, 1): (1 + 2 + 3 + 4 + 5 + 6)/9; centre: 45/9 = 5.
  expect_all_close(y.to_vector(),
                   std::vector<double>{12 / 9., 21 / 9., 16 / 9., 27 / 9., 5, 33 / 9., 24 / 9., 39 / 9., 28 / 9.},
                   1e-6, 1e-6, "avg forward");
  Tensor ones({1, 1, 3, 3}, cpu);
  cpu.fill(ones, 1.0f);
  cpu.pool2d_backward(x, y, ones, g, dx);  // (windows covering the cell) / 9: corners 4, edges 6, centre 9
  expect_all_close(dx.to_vector(),
                   std::vector<double>{4 / 9., 6 / 9., 4 / 9., 6 / 9., 1, 6 / 9., 4 / 9., 6 / 9., 4 / 9.}, 1e-6, 1e-6,
                   "avg backward");
}

// ---- pooling: against the loops ----

TEST(Pool2d, ForwardAndBackwardMatchDirectLoops) {
  CpuBackend cpu(2);
  uint64_t seed = 200;
  for (const PoolCase& pc : pool_cases()) {
    ASSERT_EQ(window_output_size(pc.h, pc.g.window_h, pc.g.stride_h, pc.g.pad_h, 1), pc.p) << pc.name();
    ASSERT_EQ(window_output_size(pc.w, pc.g.window_w, pc.g.stride_w, pc.g.pad_w, 1), pc.q) << pc.name();
    const std::vector<float> x = uniform_values(++seed, pc.n * pc.c * pc.h * pc.w, -1.0f, 1.0f);
    const std::vector<float> dy = uniform_values(++seed, pc.n * pc.c * pc.p * pc.q, -1.0f, 1.0f);
    check_pool(cpu, pc, x, dy, 1e-6);
  }
}

// Inputs from {−1, 0, 1}: most windows hold tied maxima. Gradients are multiples of 1/8, so every
// sum is exact and the comparison is exact: each window's gradient must land on the same cell.
TEST(Pool2d, MaxBackwardWithManyTiesMatchesTheFirstMaximumLoop) {
  CpuBackend cpu(2);
  uint64_t seed = 300;
  for (const PoolCase& pc : pool_cases()) {
    if (pc.g.mode != PoolMode::kMax) continue;
    std::vector<float> x = uniform_values(++seed, pc.n * pc.c * pc.h * pc.w, -1.5f, 1.5f);
    for (float& v : x) v = std::round(v);
    std::vector<float> dy = uniform_values(++seed, pc.n * pc.c * pc.p * pc.q, 1.0f, 9.0f);
    for (float& v : dy) v = std::floor(v) / 8.0f;
    check_pool(cpu, pc, x, dy, 0.0);
  }
}

// 2×2 max pooling at stride 2 (the CPU's branch-free path) gives the loop's bits where the loop's
// rules decide: ties to the first maximum, a NaN never replacing a number (a NaN first stays),
// infinities, and gradients of −0 landing as +0 (0 + −0), on even and odd sizes.
TEST(Pool2d, MaxTwoByTwoKeepsTheLoopsRulesBitForBit) {
  CpuBackend cpu(2);
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  for (const PoolCase& pc : {PoolCase{2, 3, 6, 8, pooling(PoolMode::kMax, 2, 2, 2, 2), 3, 4},
                             PoolCase{1, 2, 5, 7, pooling(PoolMode::kMax, 2, 2, 2, 2), 2, 3}}) {
    std::vector<float> x = uniform_values(400, pc.n * pc.c * pc.h * pc.w, -1.5f, 1.5f);
    for (float& v : x) v = std::round(v);
    const float specials[] = {nan, inf, -inf, -0.0f};
    for (size_t i = 3; i < x.size(); i += 7) x[i] = specials[(i / 7) % 4];
    std::vector<float> dy = uniform_values(401, pc.n * pc.c * pc.p * pc.q, -2.0f, 2.0f);
    for (size_t i = 0; i < dy.size(); i += 3) dy[i] = -0.0f;
    Tensor xt = make(cpu, x, {pc.n, pc.c, pc.h, pc.w}), dyt = make(cpu, dy, {pc.n, pc.c, pc.p, pc.q});
    Tensor y({pc.n, pc.c, pc.p, pc.q}, cpu), dx({pc.n, pc.c, pc.h, pc.w}, cpu);
    cpu.fill(y, kNaN);
    cpu.fill(dx, kNaN);
    cpu.pool2d_forward(xt, pc.g, y);
    cpu.pool2d_backward(xt, y, dyt, pc.g, dx);
    std::vector<float> y_want(static_cast<size_t>(pc.n * pc.c * pc.p * pc.q)), dx_want(x.size(), 0.0f);
    each_window(pc, [&](int64_t out, const std::vector<int64_t>& cells) {
      const int64_t at = first_max(x, cells);
      y_want[out] = x[at];
      dx_want[at] = 0.0f + dy[out];
    });
    const std::vector<float> y_got = y.to_vector(), dx_got = dx.to_vector();
    for (size_t i = 0; i < y_got.size(); ++i)
      EXPECT_EQ(std::memcmp(&y_got[i], &y_want[i], 4), 0) << pc.name() << " y[" << i << "] " << y_got[i];
    for (size_t i = 0; i < dx_got.size(); ++i)
      EXPECT_EQ(std::memcmp(&dx_got[i], &dx_want[i], 4), 0) << pc.name() << " dx[" << i << "] " << dx_got[i];
  }
}

// ---- dropout ----

// Whether element i is kept: the documented draw.
bool kept(uint64_t seed, uint64_t counter, int64_t i, float drop) {
  return rng::uniform(rng::bits(seed, rng::kStreamDropout, counter + static_cast<uint64_t>(i)).v[0]) > drop;
}

std::vector<float> run_dropout(CpuBackend& cpu, const std::vector<float>& xv, float drop, uint64_t seed,
                               uint64_t counter) {
  Tensor x = make(cpu, xv, {static_cast<int64_t>(xv.size())});
  Tensor y({x.size()}, cpu);
  cpu.fill(y, kNaN);
  cpu.dropout(x, drop, seed, counter, y);
  return y.to_vector();
}

// Ones in, so y(i) is 0 or 1/(1 − p): the mask and the scale.
std::vector<float> mask(CpuBackend& cpu, int64_t n, float drop, uint64_t seed, uint64_t counter) {
  return run_dropout(cpu, std::vector<float>(static_cast<size_t>(n), 1.0f), drop, seed, counter);
}

TEST(Dropout, KeepsExactlyTheDocumentedElementsScaledByOneOverOneMinusP) {
  CpuBackend cpu(2);
  const int64_t n = 100003;
  const std::vector<float> x = uniform_values(41, n, -2.0f, 2.0f);
  // Counters near 2^32 make counter + i carry into the high word.
  for (uint64_t counter : {uint64_t{0}, uint64_t{777}, (uint64_t{1} << 32) - 50000})
    for (float drop : {0.1f, 0.5f, 0.75f, 0.9f}) {
      const std::vector<float> y = run_dropout(cpu, x, drop, 0x0123456789ABCDEFull, counter);
      // p = 0.5 and 0.75 scale by a power of two, exactly; otherwise within 2 ulp of x/(1 − p).
      const double rel = drop == 0.5f || drop == 0.75f ? 0.0 : 2.4e-7;
      int64_t wrong = 0;
      for (int64_t i = 0; i < n; ++i) {
        const double expected = kept(0x0123456789ABCDEFull, counter, i, drop) ? x[i] / (1.0 - drop) : 0.0;
        if (std::fabs(y[i] - expected) > rel * std::fabs(expected) && wrong++ < 5) {
          ADD_FAILURE() << "drop " << drop << " counter " << counter << " element " << i << ": " << y[i]
                        << ", expected " << expected;
        }
      }
      EXPECT_EQ(wrong, 0) << "drop " << drop << " counter " << counter;
    }
}

TEST(Dropout, KeptFractionIsWithinABinomialBound) {
  CpuBackend cpu(2);
  const int64_t n = int64_t{1} << 20;
  for (float drop : {0.05f, 0.2f, 0.5f, 0.8f, 0.95f}) {
    const std::vector<float> y = mask(cpu, n, drop, 2024, 0);
    const auto kept_count = std::count_if(y.begin(), y.end(), [](float v) { return v != 0.0f; });
    const double fraction = static_cast<double>(kept_count) / static_cast<double>(n);
    const double sigma = std::sqrt(drop * (1.0 - drop) / n);  // ≤ 4.9e-4
    EXPECT_NEAR(fraction, 1.0 - drop, 5 * sigma) << "drop " << drop;
  }
}

TEST(Dropout, PreservesTheMean) {
  CpuBackend cpu(2);
  const int64_t n = int64_t{1} << 20;
  const std::vector<float> x = uniform_values(43, n, 0.0f, 2.0f);
  double sum_x = 0.0, sum_x2 = 0.0;
  for (float v : x) sum_x += v, sum_x2 += double{v} * v;
  for (float drop : {0.1f, 0.5f, 0.9f}) {
    const std::vector<float> y = run_dropout(cpu, x, drop, 7, 123);
    double sum_y = 0.0;
    for (float v : y) sum_y += v;
    // Var(Σ y) = Σ x²·p/(1 − p) for independent masks.
    const double sigma = std::sqrt(sum_x2 * drop / (1.0 - drop)) / n;
    EXPECT_NEAR(sum_y / n, sum_x / n, 5 * sigma) << "drop " << drop;
  }
}

TEST(Dropout, SameSeedAndCounterReproduceTheMaskOthersChangeIt) {
  CpuBackend cpu(2), one(1);
  const int64_t n = 50001;
  const float drop = 0.5f;
  const std::vector<float> a = mask(cpu, n, drop, 5, 1000);
  EXPECT_EQ(mask(cpu, n, drop, 5, 1000), a);
  EXPECT_EQ(mask(one, n, drop, 5, 1000), a) << "the mask must not depend on the thread count";
  // The mask of element i is draw counter + i: moving the counter by 17 shifts the mask by 17.
  const std::vector<float> shifted = mask(cpu, n, drop, 5, 1017);
  EXPECT_TRUE(std::equal(a.begin() + 17, a.end(), shifted.begin()));
  // Another counter range or another seed: independent masks, agreeing on about half the elements.
  for (const std::vector<float>& other : {mask(cpu, n, drop, 5, 1000 + n), mask(cpu, n, drop, 6, 1000)}) {
    const auto same = std::inner_product(a.begin(), a.end(), other.begin(), int64_t{0}, std::plus<>(),
                                         [](float u, float v) { return int64_t{u == v}; });
    EXPECT_NEAR(static_cast<double>(same) / n, 0.5, 0.02);
  }
}

TEST(Dropout, ZeroProbabilityIsTheIdentity) {
  CpuBackend cpu(2);
  const std::vector<float> x = uniform_values(44, 70001, -3.0f, 3.0f);
  EXPECT_EQ(run_dropout(cpu, x, 0.0f, 9, 0), x);
}

TEST(Dropout, MayWorkInPlace) {
  CpuBackend cpu(2);
  const std::vector<float> xv = uniform_values(45, 70001, -1.0f, 1.0f);
  Tensor x = make(cpu, xv, {70001});
  cpu.dropout(x, 0.3f, 11, 99, x);
  EXPECT_EQ(x.to_vector(), run_dropout(cpu, xv, 0.3f, 11, 99));
}

// With the seed and counter fixed, dropout is the linear map x ↦ D·x with D diagonal
// (0 or 1/(1 − p)), so its gradient ∂(Σ r ⊙ y)/∂x is D·r = dropout(r): the same call on dy is
// the backward pass. Checked by central differences of the scalar Σ r ⊙ dropout(x).
TEST(Dropout, SameCallOnDyIsTheGradient) {
  CpuBackend cpu(1);
  const int64_t n = 64;
  const float drop = 0.4f, eps = 1e-2f;
  std::vector<float> x = uniform_values(46, n, -1.0f, 1.0f);
  const std::vector<float> r = uniform_values(47, n, -1.0f, 1.0f);
  auto loss = [&] {
    const std::vector<float> y = run_dropout(cpu, x, drop, 3, 500);
    double s = 0.0;
    for (int64_t i = 0; i < n; ++i) s += double{y[i]} * r[i];
    return s;
  };
  const std::vector<float> analytic = run_dropout(cpu, r, drop, 3, 500);
  std::vector<double> numeric(n);
  for (int64_t i = 0; i < n; ++i) {
    const float original = x[i];
    x[i] = original + eps;
    const double plus = loss();
    x[i] = original - eps;
    const double minus = loss();
    x[i] = original;
    numeric[i] = (plus - minus) / (2.0 * eps);
  }
  expect_all_close(analytic, numeric, 1e-4, 1e-3, "dropout gradient");
  EXPECT_GT(std::count(analytic.begin(), analytic.end(), 0.0f), 10) << "some elements must be dropped";
}

// ---- errors ----

TEST(Pool2dErrors, ShapeErrorsNameTheCallAndTheShapes) {
  CpuBackend cpu(1);
  Tensor x({1, 2, 4, 4}, cpu), y({1, 2, 2, 2}, cpu);
  EXPECT_THAT(error_of([&] { cpu.pool2d_forward(x, pooling(PoolMode::kMax, 2, 2, 2, 2, 2, 0), y); }),
              HasSubstr("pool2d_forward: padding 2×0 must be between 0 and half the 2×2 window"));
  Tensor wrong({1, 2, 2, 3}, cpu);
  EXPECT_THAT(error_of([&] { cpu.pool2d_forward(x, pooling(PoolMode::kMax, 2, 2, 2, 2), wrong); }),
              HasSubstr("pool2d_forward: y expected shape [1, 2, 2, 2], found [1, 2, 2, 3]"));
  EXPECT_THAT(error_of([&] { cpu.pool2d_forward(x, pooling(PoolMode::kAverage, 5, 5, 1, 1), y); }),
              HasSubstr("pool2d_forward: a 5×5 window (padding 0×0) does not fit the 4×4 input"));
  Tensor flat({1, 32}, cpu);
  EXPECT_THAT(error_of([&] { cpu.pool2d_forward(flat, pooling(PoolMode::kMax, 2, 2, 2, 2), y); }),
              HasSubstr("pool2d_forward: input must be N×C×H×W, found [1, 32]"));
  EXPECT_THAT(error_of([&] { cpu.pool2d_forward(x, pooling(PoolMode::kMax, 2, 2, 0, 2), y); }),
              HasSubstr("pool2d_forward: stride_h must be positive, got 0"));
  Tensor dx({1, 2, 4, 5}, cpu);
  EXPECT_THAT(error_of([&] { cpu.pool2d_backward(x, y, y, pooling(PoolMode::kMax, 2, 2, 2, 2), dx); }),
              HasSubstr("pool2d_backward: dx expected shape [1, 2, 4, 4], found [1, 2, 4, 5]"));
}

TEST(DropoutErrors, ProbabilityMustBeBelowOneAndSizesMustMatch) {
  CpuBackend cpu(1);
  Tensor x({10}, cpu), y({10}, cpu), z({2, 6}, cpu);
  EXPECT_THAT(error_of([&] { cpu.dropout(x, 1.0f, 0, 0, y); }),
              HasSubstr("dropout: the drop probability must be in [0, 1), got 1"));
  EXPECT_THAT(error_of([&] { cpu.dropout(x, -0.1f, 0, 0, y); }),
              HasSubstr("dropout: the drop probability must be in [0, 1), got -0.1"));
  EXPECT_THAT(error_of([&] { cpu.dropout(x, 0.5f, 0, 0, z); }),
              HasSubstr("dropout: x [10] and y [2, 6] differ in size"));
}

}  // namespace

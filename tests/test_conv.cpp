// The convolution primitives and the per-channel primitives on the CPU: hand-worked 3×3 cases,
// then forward, backward-data and backward-filter against direct loops in double (the sums that
// define them) over many geometries, one shape large enough to split the batch into chunks, the
// adjoint identities that tie the three together, channel_bias_activation and sum_channels
// against loops, and the shape errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "cudl/cpu_backend.hpp"
#include "cudl/error.hpp"
#include "cpu/conv.hpp"
#include "conv_reference.hpp"
#include "test_support.hpp"
#include "tolerance.hpp"

using namespace cudl;
using namespace cudl::testing;
using cudl::testing::error_of;
using cudl::testing::expect_all_close;
using cudl::testing::uniform_values;
using ::testing::HasSubstr;

namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// A float sum of `terms` products of values in [-1, 1] against the exact one: the rounding error
// grows about like sqrt(terms)·ulp(sum) for random signs; 3e-7·terms is far above that yet far
// below any missing or extra tap (≥ ~0.1 for these inputs).
double sum_tolerance(int64_t terms) { return 1e-6 + 3e-7 * static_cast<double>(terms); }

void check_against_loops(CpuBackend& cpu, const ConvCase& cc, uint64_t seed) {
  const std::vector<float> x = uniform_values(seed, numel(cc.x_shape()), -1.0f, 1.0f);
  const std::vector<float> w = uniform_values(seed + 1, numel(cc.w_shape()), -1.0f, 1.0f);
  const std::vector<float> dy = uniform_values(seed + 2, numel(cc.y_shape()), -1.0f, 1.0f);
  const Outputs out = run_all(cpu, cc, x, w, dy);
  expect_all_close(out.y, forward_loop(cc, x, w), sum_tolerance(cc.c * cc.r * cc.s), 1e-6, cc.name() + " forward");
  expect_all_close(out.dx, backward_data_loop(cc, dy, w), sum_tolerance(cc.k * cc.r * cc.s), 1e-6,
                   cc.name() + " backward data");
  expect_all_close(out.dw, backward_filter_loop(cc, x, dy), sum_tolerance(cc.n * cc.p * cc.q), 1e-6,
                   cc.name() + " backward filter");
}

// ---- output size ----

TEST(WindowOutputSize, IsTheFloorFormulaAndZeroWhenTheWindowDoesNotFit) {
  EXPECT_EQ(window_output_size(28, 5, 1, 2, 1), 28);  // "same" padding
  EXPECT_EQ(window_output_size(5, 3, 2, 1, 1), 3);    // (5 + 2 − 2 − 1)/2 + 1
  EXPECT_EQ(window_output_size(7, 3, 1, 0, 2), 3);    // dilated span 5: positions 0, 1, 2
  EXPECT_EQ(window_output_size(8, 3, 2, 0, 1), 3);    // floor: the last row is never read
  EXPECT_EQ(window_output_size(3, 3, 1, 0, 1), 1);
  EXPECT_LE(window_output_size(4, 3, 1, 0, 2), 0);  // span 5 > 4
  EXPECT_LE(window_output_size(2, 5, 1, 1, 1), 0);
}

// ---- hand-worked ----

// x = [1 2 3; 4 5 6; 7 8 9], w = [1 2; 3 4].
struct ThreeByThree {
  CpuBackend cpu{1};
  Tensor x = make(cpu, {1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 1, 3, 3});
  Tensor w = make(cpu, {1, 2, 3, 4}, {1, 1, 2, 2});
};

TEST(Conv2dHandWorked, ThreeByThreeInputTwoByTwoFilter) {
  ThreeByThree t;
  Tensor y({1, 1, 2, 2}, t.cpu);
  t.cpu.conv2d_forward(t.x, t.w, {}, y);
  // y00 = 1·1 + 2·2 + 4·3 + 5·4 = 37, y01 = 2 + 6 + 15 + 24 = 47, y10 = 4 + 10 + 21 + 32 = 67,
  // y11 = 5 + 12 + 24 + 36 = 77.
  EXPECT_EQ(y.to_vector(), (std::vector<float>{37, 47, 67, 77}));

  // dy = 1 everywhere: dx(i, j) = Σ of the filter taps that touch (i, j).
  Tensor dy = make(t.cpu, {1, 1, 1, 1}, {1, 1, 2, 2});
  Tensor dx({1, 1, 3, 3}, t.cpu);
  t.cpu.conv2d_backward_data(dy, t.w, {}, dx);
  EXPECT_EQ(dx.to_vector(), (std::vector<float>{1, 3, 2, 4, 10, 6, 3, 7, 4}));

  // dw(r, s) = Σ_{p,q} x(p + r, q + s): the sums of the four 2×2 blocks of x.
  Tensor dw({1, 1, 2, 2}, t.cpu);
  t.cpu.conv2d_backward_filter(t.x, dy, {}, dw);
  EXPECT_EQ(dw.to_vector(), (std::vector<float>{12, 16, 24, 28}));
}

TEST(Conv2dHandWorked, StrideTwoWithPaddingOne) {
  ThreeByThree t;
  // Padded to 5×5; windows start at −1 and 1 in each direction: P = Q = (3 + 2 − 2)/2 + 1 = 2.
  // y00 sees only x00 (under w11): 4. y01: x01·w10 + x02·w11 = 6 + 12 = 18.
  // y10: x10·w01 + x20·w11 = 8 + 28 = 36. y11: the bottom-right block, 5 + 12 + 24 + 36 = 77.
  Tensor y({1, 1, 2, 2}, t.cpu);
  t.cpu.conv2d_forward(t.x, t.w, geometry(2, 2, 1, 1), y);
  EXPECT_EQ(y.to_vector(), (std::vector<float>{4, 18, 36, 77}));
  // The four windows tile the padded input without overlap, so with dy = (1, 10, 100, 1000)
  // each input gets dy of its window times the one tap over it.
  Tensor dy = make(t.cpu, {1, 10, 100, 1000}, {1, 1, 2, 2});
  Tensor dx({1, 1, 3, 3}, t.cpu);
  t.cpu.conv2d_backward_data(dy, t.w, geometry(2, 2, 1, 1), dx);
  EXPECT_EQ(dx.to_vector(), (std::vector<float>{4, 30, 40, 200, 1000, 2000, 400, 3000, 4000}));
}

TEST(Conv2dHandWorked, DilationTwoReadsTheCorners) {
  ThreeByThree t;
  // A 2×2 filter with dilation 2 spans 3×3: one output, w00·x00 + w01·x02 + w10·x20 + w11·x22.
  Tensor y({1, 1, 1, 1}, t.cpu);
  t.cpu.conv2d_forward(t.x, t.w, geometry(1, 1, 0, 0, 2, 2), y);
  EXPECT_EQ(y.to_vector(), (std::vector<float>{1 + 6 + 21 + 36}));
}

TEST(Conv2dHandWorked, ChannelsAreSummedAndFiltersAreSeparateOutputs) {
  CpuBackend cpu(1);
  // Two input channels (the 3×3 above and its negation times 2), two 1×1 filters (1, 1) and (2, 1):
  // filter 0 gives x − 2x = −x, filter 1 gives 2x − 2x = 0.
  std::vector<float> xv = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  for (int i = 0; i < 9; ++i) xv.push_back(-2.0f * xv[i]);
  Tensor x = make(cpu, xv, {1, 2, 3, 3});
  Tensor w = make(cpu, {1, 1, 2, 1}, {2, 2, 1, 1});
  Tensor y({1, 2, 3, 3}, cpu);
  cpu.conv2d_forward(x, w, {}, y);
  EXPECT_EQ(y.to_vector(), (std::vector<float>{-1, -2, -3, -4, -5, -6, -7, -8, -9, 0, 0, 0, 0, 0, 0, 0, 0, 0}));
}

// ---- against the loops ----

TEST(Conv2d, ForwardAndBothBackwardsMatchDirectLoops) {
  CpuBackend cpu(2);
  uint64_t seed = 100;
  for (const ConvCase& cc : kCases) {
    ASSERT_EQ(window_output_size(cc.h, cc.r, cc.g.stride_h, cc.g.pad_h, cc.g.dilation_h), cc.p) << cc.name();
    ASSERT_EQ(window_output_size(cc.w, cc.s, cc.g.stride_w, cc.g.pad_w, cc.g.dilation_w), cc.q) << cc.name();
    check_against_loops(cpu, cc, seed += 3);
  }
}

// 300 small random geometries: every combination of border effects (windows hanging over the
// padding on either side, strides that skip inputs, dilations wider than the input) in both axes.
TEST(Conv2d, ForwardAndBothBackwardsMatchDirectLoopsOnRandomGeometries) {
  CpuBackend cpu(2);
  const std::vector<float> u = uniform_values(4242, 300 * 13, 0.0f, 1.0f);
  auto pick = [&](size_t i, int64_t lo, int64_t hi) { return lo + static_cast<int64_t>(u[i] * (hi - lo + 1) - 1e-6f); };
  int checked = 0;
  for (size_t t = 0; t < 300; ++t) {
    const size_t b = 13 * t;
    const int64_t r = pick(b + 5, 1, 4), s = pick(b + 6, 1, 4);
    const Conv2dParams g = geometry(pick(b + 7, 1, 3), pick(b + 8, 1, 3), pick(b + 9, 0, 3), pick(b + 10, 0, 3),
                                    pick(b + 11, 1, 3), pick(b + 12, 1, 3));
    const int64_t h = pick(b + 2, 1, 9), w = pick(b + 3, 1, 9);
    const int64_t p = window_output_size(h, r, g.stride_h, g.pad_h, g.dilation_h);
    const int64_t q = window_output_size(w, s, g.stride_w, g.pad_w, g.dilation_w);
    if (p <= 0 || q <= 0) continue;
    check_against_loops(cpu, {pick(b, 1, 3), pick(b + 1, 1, 3), h, w, pick(b + 4, 1, 3), r, s, g, p, q}, 7000 + 3 * t);
    ++checked;
  }
  EXPECT_GT(checked, 150);
}

TEST(Conv2d, ResultsDoNotDependOnTheThreadCount) {
  CpuBackend one(1), two(2);
  const ConvCase& cc = kCases[6];
  const std::vector<float> x = uniform_values(7, numel(cc.x_shape()), -1.0f, 1.0f);
  const std::vector<float> w = uniform_values(8, numel(cc.w_shape()), -1.0f, 1.0f);
  const std::vector<float> dy = uniform_values(9, numel(cc.y_shape()), -1.0f, 1.0f);
  const Outputs a = run_all(one, cc, x, w, dy), b = run_all(two, cc, x, w, dy);
  EXPECT_EQ(a.y, b.y);
  EXPECT_EQ(a.dx, b.dx);
  EXPECT_EQ(a.dw, b.dw);
}

// The CPU convolution keeps its im2col matrix within cpu::kConvColumnBudget (2^20) floats by
// splitting the batch into chunks of floor(budget / (C·R·S·P·Q)) samples. Here C·R·S·P·Q =
// 16·9·54² = 419,904, so the chunks hold 2 samples and N = 5 splits as 2 + 2 + 1: the multi-sample path (with its layout
// permutations) runs at offset 0 and at a later offset, the one-sample path on the remainder,
// and the filter gradient must accumulate across chunks.
TEST(Conv2d, ChunkedBatchMatchesDirectLoops) {
  const ConvCase cc{5, 16, 54, 54, 2, 3, 3, geometry(1, 1, 1, 1), 54, 54};
  const int64_t per_sample = cc.c * cc.r * cc.s * cc.p * cc.q, budget = cpu::kConvColumnBudget;
  ASSERT_TRUE(2 * per_sample <= budget && 3 * per_sample > budget) << "expected chunks of 2 samples";
  ASSERT_NE(cc.n % 2, 0) << "expected a remainder chunk";
  CpuBackend cpu(2);
  check_against_loops(cpu, cc, 500);
}

// ⟨x ⋆ w, dy⟩ = ⟨x, backward_data(dy, w)⟩ = ⟨w, backward_filter(x, dy)⟩: the backward passes are
// the adjoints of the forward in each argument.
TEST(Conv2d, BackwardPassesAreTheAdjointsOfTheForward) {
  CpuBackend cpu(2);
  uint64_t seed = 900;
  for (const ConvCase& cc : kCases) {
    const std::vector<float> x = uniform_values(++seed, numel(cc.x_shape()), -1.0f, 1.0f);
    const std::vector<float> w = uniform_values(++seed, numel(cc.w_shape()), -1.0f, 1.0f);
    const std::vector<float> dy = uniform_values(++seed, numel(cc.y_shape()), -1.0f, 1.0f);
    const Outputs out = run_all(cpu, cc, x, w, dy);
    auto dot = [](const std::vector<float>& a, const std::vector<float>& b) {
      double s = 0.0;
      for (size_t i = 0; i < a.size(); ++i) s += double{a[i]} * b[i];
      return s;
    };
    const double yy = dot(out.y, dy), xx = dot(x, out.dx), ww = dot(w, out.dw);
    const double tol = 1e-4 * std::sqrt(static_cast<double>(numel(cc.y_shape()) * cc.c * cc.r * cc.s));
    EXPECT_NEAR(xx, yy, tol) << cc.name();
    EXPECT_NEAR(ww, yy, tol) << cc.name();
  }
}

// ---- per-channel primitives ----

TEST(ChannelBiasActivation, MatchesALoopForEveryActivationAndRank) {
  CpuBackend cpu(2);
  const Shape shapes[] = {{1, 1}, {3, 5}, {2, 3, 7}, {2, 4, 5, 3}, {3, 2, 181, 181}};
  uint64_t seed = 1200;
  for (const Shape& shape : shapes)
    for (Activation act : {Activation::kIdentity, Activation::kRelu, Activation::kSigmoid}) {
      const int64_t outer = shape[0], channels = shape[1], inner = numel(shape) / (outer * channels);
      const std::vector<float> yv = uniform_values(++seed, numel(shape), -3.0f, 3.0f);
      const std::vector<float> bv = uniform_values(++seed, channels, -1.0f, 1.0f);
      std::vector<double> expected(yv.size());
      for (int64_t i = 0; i < numel(shape); ++i) {
        const double z = double{yv[i]} + bv[i / inner % channels];
        expected[i] = act == Activation::kRelu      ? std::max(z, 0.0)
                      : act == Activation::kSigmoid ? 1 / (1 + std::exp(-z))
                                                    : z;
      }
      Tensor y = make(cpu, yv, shape), bias = make(cpu, bv, {channels});
      cpu.channel_bias_activation(y, bias, act);
      expect_all_close(y.to_vector(), expected, 1e-6, 1e-6, to_string(shape) + " " + to_string(act));
    }
}

TEST(ChannelBiasActivation, HandWorked) {
  CpuBackend cpu(1);
  // Two samples, two channels of two positions; bias (+1, −1).
  Tensor y = make(cpu, {0, -2, 3, 0.5f, -1, 1, 2, 1}, {2, 2, 2});
  cpu.channel_bias_activation(y, make(cpu, {1, -1}, {2}), Activation::kRelu);
  EXPECT_EQ(y.to_vector(), (std::vector<float>{1, 0, 2, 0, 0, 2, 1, 0}));
}

TEST(SumChannels, MatchesALoopWithAlphaAndBeta) {
  CpuBackend cpu(2);
  const Shape shapes[] = {{1, 1}, {7, 3}, {2, 3, 7}, {4, 5, 9, 11}, {64, 8, 28, 28}, {1, 2, 300001}};
  struct Scale {
    float alpha, beta;
  };
  const Scale scales[] = {{1.0f, 0.0f}, {0.25f, 0.0f}, {-0.5f, 2.0f}, {1.0f, 1.0f}};
  uint64_t seed = 1300;
  for (const Shape& shape : shapes)
    for (const Scale& sc : scales) {
      const int64_t outer = shape[0], channels = shape[1], inner = numel(shape) / (outer * channels);
      const std::vector<float> xv = uniform_values(++seed, numel(shape), -1.0f, 1.0f);
      // beta = 0 must not read out: start from NaN then.
      const std::vector<float> ov = sc.beta == 0.0f ? std::vector<float>(channels, kNaN)
                                                    : uniform_values(++seed, channels, -1.0f, 1.0f);
      std::vector<double> expected(channels);
      for (int64_t c = 0; c < channels; ++c) {
        double sum = 0.0;
        for (int64_t n = 0; n < outer; ++n)
          for (int64_t i = 0; i < inner; ++i) sum += xv[(n * channels + c) * inner + i];
        expected[c] = sc.alpha * sum + (sc.beta == 0.0f ? 0.0 : sc.beta * double{ov[c]});
      }
      Tensor x = make(cpu, xv, shape), out = make(cpu, ov, {channels});
      cpu.sum_channels(sc.alpha, x, sc.beta, out);
      expect_all_close(out.to_vector(), expected, sum_tolerance(outer * inner), 1e-6,
                       to_string(shape) + " alpha " + std::to_string(sc.alpha) + " beta " + std::to_string(sc.beta));
    }
}

TEST(SumChannels, HandWorked) {
  CpuBackend cpu(1);
  // N = 2, C = 2, two positions: channel 0 holds 1, 2 | 5, 6 (sum 14), channel 1 holds 3, 4 | 7, 8 (22).
  Tensor x = make(cpu, {1, 2, 3, 4, 5, 6, 7, 8}, {2, 2, 2});
  Tensor out = make(cpu, {10, 20}, {2});
  cpu.sum_channels(2.0f, x, 0.5f, out);  // 2·(14, 22) + 0.5·(10, 20)
  EXPECT_EQ(out.to_vector(), (std::vector<float>{33, 54}));
}

// ---- errors ----

TEST(Conv2dErrors, ShapeErrorsNameTheCallAndBothShapes) {
  CpuBackend cpu(1);
  Tensor x({1, 3, 5, 5}, cpu), y({1, 4, 3, 3}, cpu);
  Tensor w2({4, 2, 3, 3}, cpu);
  EXPECT_THAT(error_of([&] { cpu.conv2d_forward(x, w2, {}, y); }),
              HasSubstr("conv2d_forward: filters [4, 2, 3, 3] expect 2 input channels, input [1, 3, 5, 5] has 3"));

  Tensor flat({1, 75}, cpu), w3({4, 3, 3, 3}, cpu);
  EXPECT_THAT(error_of([&] { cpu.conv2d_forward(flat, w3, {}, y); }),
              HasSubstr("conv2d_forward: input must be N×C×H×W, found [1, 75]"));

  Tensor wrong_y({1, 4, 3, 4}, cpu);
  EXPECT_THAT(error_of([&] { cpu.conv2d_forward(x, w3, {}, wrong_y); }),
              HasSubstr("conv2d_forward: y expected shape [1, 4, 3, 3], found [1, 4, 3, 4]"));

  Tensor small({1, 3, 4, 4}, cpu);
  EXPECT_THAT(error_of([&] { cpu.conv2d_forward(small, w3, geometry(1, 1, 0, 0, 2, 2), y); }),
              HasSubstr("conv2d_forward: a 3×3 filter (dilation 2×2, padding 0×0) does not fit the 4×4 input"));

  EXPECT_THAT(error_of([&] { cpu.conv2d_forward(x, w3, geometry(0, 1, 0, 0), y); }),
              HasSubstr("conv2d_forward: stride_h must be positive, got 0"));
  EXPECT_THAT(error_of([&] { cpu.conv2d_forward(x, w3, geometry(1, 1, -1, 0), y); }),
              HasSubstr("conv2d_forward: negative padding -1×0"));

  Tensor dx({1, 3, 5, 5}, cpu), wrong_dy({1, 4, 5, 5}, cpu);
  EXPECT_THAT(error_of([&] { cpu.conv2d_backward_data(wrong_dy, w3, {}, dx); }),
              HasSubstr("conv2d_backward_data: dy expected shape [1, 4, 3, 3], found [1, 4, 5, 5]"));
  Tensor dw({4, 3, 3, 3}, cpu);
  EXPECT_THAT(error_of([&] { cpu.conv2d_backward_filter(x, wrong_dy, {}, dw); }),
              HasSubstr("conv2d_backward_filter: dy expected shape [1, 4, 3, 3], found [1, 4, 5, 5]"));
}

TEST(ChannelPrimitiveErrors, BiasAndOutputMustHaveOneValuePerChannel) {
  CpuBackend cpu(1);
  Tensor y({2, 3, 4}, cpu), b({4}, cpu);
  EXPECT_THAT(error_of([&] { cpu.channel_bias_activation(y, b, Activation::kRelu); }),
              HasSubstr("channel_bias_activation: bias expected shape [3], found [4]"));
  EXPECT_THAT(error_of([&] { cpu.sum_channels(1.0f, y, 0.0f, b); }),
              HasSubstr("sum_channels: out expected shape [3], found [4]"));
  Tensor v({5}, cpu), one({1}, cpu);
  EXPECT_THAT(error_of([&] { cpu.sum_channels(1.0f, v, 0.0f, one); }),
              HasSubstr("sum_channels: expected N×C×..., found [5]"));
}

}  // namespace

// Hand-worked values for every CpuBackend primitive.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

#include "cudl/cpu_backend.hpp"
#include "cudl/error.hpp"
#include "cudl/rng.hpp"
#include "formulas/repro_math.hpp"
#include "test_support.hpp"
#include "tolerance.hpp"

using namespace cudl;
using cudl::testing::error_of;
using cudl::testing::expect_all_close;
using cudl::testing::fresh_loss_stats;
using ::testing::HasSubstr;

namespace {
Tensor make(CpuBackend& cpu, std::vector<float> v, Shape s) { return Tensor::from_host(v, std::move(s), cpu); }
}  // namespace

TEST(CpuBackend, FillSetsEveryElement) {
  CpuBackend cpu(2);
  Tensor x({100001}, cpu);
  cpu.fill(x, 2.5f);
  for (float v : x.to_vector()) ASSERT_EQ(v, 2.5f);
}

TEST(CpuBackend, FillNormalIsTheCounterBasedDraw) {
  CpuBackend cpu(2);
  Tensor x({70000}, cpu);
  cpu.fill_normal(x, 11, 1.0f, 0.5f);
  const auto v = x.to_vector();
  for (size_t i : {size_t{0}, size_t{1}, size_t{69999}}) {
    const rng::Philox4 r = rng::bits(11, rng::kStreamInit, i);
    EXPECT_FLOAT_EQ(v[i], 1.0f + 0.5f * rng::normal(r.v[0], r.v[1]));
  }
  CpuBackend one(1);
  Tensor y({70000}, one);
  one.fill_normal(y, 11, 1.0f, 0.5f);
  EXPECT_EQ(y.to_vector(), v);  // independent of the thread count
}

TEST(CpuBackend, GemmHandWorked) {
  CpuBackend cpu(1);
  // A = [1 2 3; 4 5 6], B = [1 0; 0 1; 1 1]: A·B = [1+3, 2+3; 4+6, 5+6] = [4 5; 10 11].
  Tensor a = make(cpu, {1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = make(cpu, {1, 0, 0, 1, 1, 1}, {3, 2});
  Tensor c = make(cpu, {1, 1, 1, 1}, {2, 2});
  cpu.gemm(2.0f, a, Trans::kNo, b, Trans::kNo, 0.5f, c);  // 2·AB + 0.5·1
  EXPECT_EQ(c.to_vector(), (std::vector<float>{8.5f, 10.5f, 20.5f, 22.5f}));
  // Aᵀ·A (3×3): column dot products of A: [17 22 27; 22 29 36; 27 36 45].
  Tensor ata({3, 3}, cpu);
  cpu.gemm(1.0f, a, Trans::kYes, a, Trans::kNo, 0.0f, ata);
  EXPECT_EQ(ata.to_vector(), (std::vector<float>{17, 22, 27, 22, 29, 36, 27, 36, 45}));
  // A·Aᵀ (2×2): row dot products: [14 32; 32 77].
  Tensor aat({2, 2}, cpu);
  cpu.gemm(1.0f, a, Trans::kNo, a, Trans::kYes, 0.0f, aat);
  EXPECT_EQ(aat.to_vector(), (std::vector<float>{14, 32, 32, 77}));
}

TEST(CpuBackend, GemmWithBetaZeroIgnoresGarbageInC) {
  CpuBackend cpu(1);
  Tensor a = make(cpu, {1, 2}, {1, 2}), b = make(cpu, {3, 4}, {2, 1});
  Tensor c = make(cpu, {std::numeric_limits<float>::quiet_NaN()}, {1, 1});
  cpu.gemm(1.0f, a, Trans::kNo, b, Trans::kNo, 0.0f, c);
  EXPECT_EQ(c.to_vector()[0], 11.0f);
}

TEST(CpuBackend, BiasActivationHandWorked) {
  CpuBackend cpu(1);
  Tensor bias = make(cpu, {1.0f, -1.0f}, {2});
  Tensor y = make(cpu, {-2.0f, 3.0f, 0.5f, 0.5f}, {2, 2});
  cpu.bias_activation(y, bias, Activation::kRelu);  // [-1 2; 1.5 -0.5] → relu
  EXPECT_EQ(y.to_vector(), (std::vector<float>{0.0f, 2.0f, 1.5f, 0.0f}));
  Tensor s = make(cpu, {-1.0f, 1.0f}, {1, 2});
  cpu.bias_activation(s, bias, Activation::kSigmoid);  // σ(0) = 0.5, σ(0) = 0.5
  EXPECT_EQ(s.to_vector(), (std::vector<float>{0.5f, 0.5f}));
  Tensor i = make(cpu, {-1.0f, 1.0f}, {1, 2});
  cpu.bias_activation(i, bias, Activation::kIdentity);
  EXPECT_EQ(i.to_vector(), (std::vector<float>{0.0f, 0.0f}));
}

TEST(CpuBackend, ActivationAndBackwardHandWorked) {
  CpuBackend cpu(1);
  Tensor y = make(cpu, {-1.0f, 0.0f, 2.0f}, {3});
  cpu.activation(y, Activation::kSigmoid);
  expect_all_close(y.to_vector(), std::vector<double>{1 / (1 + std::exp(1.0)), 0.5, 1 / (1 + std::exp(-2.0))}, 1e-7,
                   1e-6);
  // Sigmoid backward: dy·y(1−y) with y = 0.5 → dy/4.
  Tensor half = make(cpu, {0.5f, 0.5f}, {2});
  Tensor dy = make(cpu, {4.0f, -8.0f}, {2});
  cpu.activation_backward(dy, half, Activation::kSigmoid);
  EXPECT_EQ(dy.to_vector(), (std::vector<float>{1.0f, -2.0f}));
  // ReLU backward passes the gradient where the output is positive.
  Tensor out = make(cpu, {0.0f, 3.0f}, {2});
  Tensor dr = make(cpu, {5.0f, 7.0f}, {2});
  cpu.activation_backward(dr, out, Activation::kRelu);
  EXPECT_EQ(dr.to_vector(), (std::vector<float>{0.0f, 7.0f}));
}

TEST(CpuBackend, SumRowsHandWorked) {
  CpuBackend cpu(2);
  Tensor x = make(cpu, {1, 2, 3, 4, 5, 6}, {3, 2});  // column sums 9, 12
  Tensor out = make(cpu, {10, 20}, {2});
  cpu.sum_rows(2.0f, x, 0.5f, out);  // 2·[9 12] + 0.5·[10 20]
  EXPECT_EQ(out.to_vector(), (std::vector<float>{23.0f, 34.0f}));
}

TEST(CpuBackend, SoftmaxCrossEntropyHandWorked) {
  CpuBackend cpu(1);
  // Row 0: logits (0, ln 3) → softmax (1/4, 3/4); label 1 → loss −ln(3/4); correct.
  // Row 1: logits (0, 0) → (1/2, 1/2); label 0 → loss ln 2; argmax ties → class 0: correct.
  Tensor logits = make(cpu, {0.0f, std::log(3.0f), 0.0f, 0.0f}, {2, 2});
  Tensor labels = make(cpu, {1.0f, 0.0f}, {2});
  Tensor d({2, 2}, cpu), stats = fresh_loss_stats(cpu);
  CrossEntropyArgs args;
  args.grad_scale = 2.0f;
  cpu.softmax_cross_entropy(logits, labels, args, d, stats);
  expect_all_close(d.to_vector(), std::vector<double>{2 * 0.25, 2 * (0.75 - 1), 2 * (0.5 - 1), 2 * 0.5}, 1e-6, 1e-6);
  const auto st = stats.to_vector();
  EXPECT_NEAR(st[LossStats::kLossSum], -std::log(0.75) + std::log(2.0), 1e-6);
  EXPECT_EQ(st[LossStats::kErrors], 0.0f);
  EXPECT_EQ(st[LossStats::kBadStep], -1.0f);
  // A wrong prediction counts as an error and the sums accumulate across calls.
  Tensor wrong = make(cpu, {5.0f, 0.0f}, {1, 2});
  Tensor one = make(cpu, {1.0f}, {1});
  Tensor d1({1, 2}, cpu);
  cpu.softmax_cross_entropy(wrong, one, args, d1, stats);
  EXPECT_EQ(stats.to_vector()[LossStats::kErrors], 1.0f);
}

TEST(CpuBackend, SoftmaxCrossEntropyRecordsFirstDivergedStep) {
  CpuBackend cpu(1);
  Tensor labels = make(cpu, {0.0f}, {1});
  Tensor d({1, 2}, cpu), stats = fresh_loss_stats(cpu);
  CrossEntropyArgs args;
  args.max_loss = 10.0f;
  args.step = 4;
  Tensor ok = make(cpu, {1.0f, 0.0f}, {1, 2});
  cpu.softmax_cross_entropy(ok, labels, args, d, stats);
  EXPECT_EQ(stats.to_vector()[LossStats::kBadStep], -1.0f);
  args.step = 5;
  Tensor big = make(cpu, {0.0f, 50.0f}, {1, 2});  // loss ≈ 50 > 10
  cpu.softmax_cross_entropy(big, labels, args, d, stats);
  args.step = 6;
  Tensor nan = make(cpu, {std::nanf(""), 0.0f}, {1, 2});
  cpu.softmax_cross_entropy(nan, labels, args, d, stats);
  const auto st = stats.to_vector();
  EXPECT_EQ(st[LossStats::kBadStep], 5.0f);  // the first one is kept
  EXPECT_NEAR(st[LossStats::kBadValue], 50.0f, 1e-4);
}

TEST(CpuBackend, SoftmaxCrossEntropyRejectsLabelOutOfRange) {
  CpuBackend cpu(1);
  Tensor logits({1, 3}, cpu), d({1, 3}, cpu), stats = fresh_loss_stats(cpu);
  cpu.fill(logits, 0.0f);
  Tensor labels = make(cpu, {3.0f}, {1});
  const std::string message = error_of([&] { cpu.softmax_cross_entropy(logits, labels, {}, d, stats); });
  EXPECT_THAT(message, HasSubstr("label 3"));
  EXPECT_THAT(message, HasSubstr("[0, 3)"));
}

TEST(CpuBackend, ArgmaxTakesFirstMaximum) {
  CpuBackend cpu(1);
  Tensor x = make(cpu, {1, 3, 3, 0, -1, -2, -1, -5}, {2, 4});
  Tensor out({2}, cpu);
  cpu.argmax_rows(x, out);
  EXPECT_EQ(out.to_vector(), (std::vector<float>{1.0f, 0.0f}));
}

TEST(CpuBackend, SampleRowsDrawsTheDocumentedRows) {
  CpuBackend cpu(1);
  const int64_t rows = 13, cols = 3, batch = 40;
  std::vector<float> xv(rows * cols), yv(rows);
  for (int64_t r = 0; r < rows; ++r) {
    yv[r] = static_cast<float>(r);
    for (int64_t c = 0; c < cols; ++c) xv[r * cols + c] = static_cast<float>(100 * r + c);
  }
  Tensor x = make(cpu, xv, {rows, cols}), y = make(cpu, yv, {rows});
  Tensor bx({batch, cols}, cpu), by({batch}, cpu);
  cpu.sample_rows(x, y, 9, 1000, bx, by);
  const auto bxv = bx.to_vector(), byv = by.to_vector();
  std::vector<int> seen(rows, 0);
  for (int64_t b = 0; b < batch; ++b) {
    const uint32_t row = rng::below(rng::bits(9, rng::kStreamSample, 1000 + b).v[0], rows);
    EXPECT_EQ(byv[b], static_cast<float>(row));
    for (int64_t c = 0; c < cols; ++c) EXPECT_EQ(bxv[b * cols + c], xv[row * cols + c]);
    ++seen[row];
  }
  // With replacement: 40 draws from 13 rows must repeat some row.
  EXPECT_GT(*std::max_element(seen.begin(), seen.end()), 1);
}

TEST(CpuBackend, AxpyHandWorked) {
  CpuBackend cpu(1);
  Tensor x = make(cpu, {1, 2}, {2}), y = make(cpu, {10, 20}, {2});
  cpu.axpy(-0.5f, x, y);
  EXPECT_EQ(y.to_vector(), (std::vector<float>{9.5f, 19.0f}));
}

TEST(CpuBackend, NesterovStepHandWorked) {
  CpuBackend cpu(1);
  // Two parameters, the first decayed. lr 0.5, μ 0.5, grad_scale 0.25, l2 0.1.
  // p0: w 2, v 1, g 4: d = 0.5·(−0.25·4 − 0.1·2) = 0.5·(−1.2) = −0.6; v = 0.5 + (−0.6) = −0.1;
  //     w = 2 − 0.6 + 0.5·(−0.1) = 1.35.
  // p1: w 2, v 1, g 4: d = 0.5·(−1) = −0.5; v = 0.5 − 0.5 = 0; w = 2 − 0.5 + 0 = 1.5.
  Tensor w = make(cpu, {2, 2}, {2}), v = make(cpu, {1, 1}, {2}), g = make(cpu, {4, 4}, {2});
  const Tensor lr = make(cpu, {0.5f}, {1});
  NesterovArgs args{0.5f, 0.25f, 0.1f, 1};
  cpu.nesterov_step(w, v, g, lr, args);
  expect_all_close(w.to_vector(), std::vector<double>{1.35, 1.5}, 1e-6, 1e-6, "w");
  expect_all_close(v.to_vector(), std::vector<double>{-0.1, 0.0}, 1e-6, 1e-6, "v");
}

TEST(CpuBackend, ElementwiseResultsDoNotDependOnThreads) {
  CpuBackend one(1), two(2);
  const int64_t n = 300001;
  auto run = [&](CpuBackend& cpu) {
    Tensor w({n}, cpu), v({n}, cpu), g({n}, cpu);
    const Tensor lr = Tensor::from_host({0.1f}, {1}, cpu);
    cpu.fill_normal(w, 1, 0, 1);
    cpu.fill_normal(v, 2, 0, 1);
    cpu.fill_normal(g, 3, 0, 1);
    cpu.nesterov_step(w, v, g, lr, {0.9f, 1.0f / 64, 1e-4f, n / 3});
    return w.to_vector();
  };
  EXPECT_EQ(run(one), run(two));
}

TEST(CpuBackend, MomentumStepHandWorked) {
  CpuBackend cpu(1);
  // gdbn's CDStep with lr 0.5, μ 0.5 (f = 0.5), grad_scale 0.25, l2 0.1, first element decayed;
  // w 2, v 1, g 2:  v = 0.5·1 − 0.5·0.5·0.25·2 = 0.375;
  // w₀ = 2·(1 − 0.5·0.5·0.1) + 0.375 = 2·0.975 + 0.375 = 2.325;  w₁ = 2 + 0.375 = 2.375.
  Tensor w = Tensor::from_host({2, 2}, {2}, cpu), v = Tensor::from_host({1, 1}, {2}, cpu);
  Tensor g = Tensor::from_host({2, 2}, {2}, cpu);
  const Tensor lr = Tensor::from_host({0.5f}, {1}, cpu);
  cpu.momentum_step(w, v, g, lr, {0.5f, 0.25f, 0.1f, 1});
  expect_all_close(w.to_vector(), std::vector<double>{2.325, 2.375}, 1e-6, 1e-6, "w");
  expect_all_close(v.to_vector(), std::vector<double>{0.375, 0.375}, 1e-6, 1e-6, "v");
}

TEST(CpuBackend, SampleUnitsAreTheDocumentedDraws) {
  CpuBackend cpu(1);
  Tensor p = Tensor::from_host({0.0f, 1.0f, 0.5f, 0.25f, 0.75f}, {5}, cpu), s({5}, cpu);
  cpu.sample_units(p, Units::kBernoulli, 3, 40, s);
  const auto sv = s.to_vector(), pv = p.to_vector();
  EXPECT_EQ(sv[0], 0.0f);  // probability 0: never on
  EXPECT_EQ(sv[1], 1.0f);  // probability 1: always on
  for (int i = 0; i < 5; ++i) {
    const float u = rng::uniform(rng::bits(3, rng::kStreamUnits, 40 + i).v[0]);
    EXPECT_EQ(sv[i], u <= pv[i] ? 1.0f : 0.0f) << i;
  }
  // Gaussian states are the mean plus repro::normal's draw (not rng::normal's), bit for bit.
  cpu.sample_units(p, Units::kGaussian, 3, 40, s);
  const rng::Philox4 r = rng::bits(3, rng::kStreamUnits, 42);
  EXPECT_EQ(s.to_vector()[2], 0.5f + repro::normal(r.v[0], r.v[1]));
  EXPECT_NEAR(s.to_vector()[2], 0.5f + rng::normal(r.v[0], r.v[1]), 1e-5);
}

TEST(CpuBackend, BiasActivationSampleEqualsTheTwoSteps) {
  CpuBackend cpu(2);
  const int64_t rows = 70, cols = 33;
  const auto values = cudl::testing::uniform_values(3, rows * cols, -2.0f, 2.0f);
  const auto bias_values = cudl::testing::uniform_values(4, cols, -1.0f, 1.0f);
  const Tensor bias = Tensor::from_host(bias_values, {cols}, cpu);
  for (Units units : {Units::kBernoulli, Units::kGaussian, Units::kNoisyRelu}) {
    const Activation act = units == Units::kBernoulli ? Activation::kSigmoid
                           : units == Units::kNoisyRelu ? Activation::kRelu
                                                         : Activation::kIdentity;
    Tensor fused = Tensor::from_host(values, {rows, cols}, cpu), fused_states({rows, cols}, cpu);
    cpu.bias_activation_sample(fused, bias, act, units, 9, 123, fused_states);
    Tensor two = Tensor::from_host(values, {rows, cols}, cpu), two_states({rows, cols}, cpu);
    cpu.bias_activation(two, bias, act);
    cpu.sample_units(two, units, 9, 123, two_states);
    EXPECT_EQ(fused.to_vector(), two.to_vector()) << to_string(units);
    EXPECT_EQ(fused_states.to_vector(), two_states.to_vector()) << to_string(units);
  }
}

// gemm_activation_backward gives the bits of gemm (beta 0) followed by activation_backward: for
// ReLU with no unit silent, some, most and all of them (a silent unit is ≤ 0 or NaN in every row),
// with -0 and NaN in y, on both transposes of B (the CPU computes only the kept columns when B is
// transposed), for sigmoid and the identity too, whatever C held before.
TEST(CpuBackend, GemmActivationBackwardEqualsTheTwoCalls) {
  CpuBackend cpu(2);
  const int64_t m = 64, n = 203, k = 300;
  uint64_t seed = 50;
  for (Trans tb : {Trans::kYes, Trans::kNo}) {
    for (double silent : {0.0, 0.3, 0.9, 1.0}) {
      for (Activation act : {Activation::kRelu, Activation::kSigmoid, Activation::kIdentity}) {
        const Tensor a = Tensor::from_host(cudl::testing::uniform_values(++seed, m * k, -1.0f, 1.0f), {m, k}, cpu);
        const Shape b_shape = tb == Trans::kYes ? Shape{n, k} : Shape{k, n};
        const Tensor b = Tensor::from_host(cudl::testing::uniform_values(++seed, n * k, -1.0f, 1.0f), b_shape, cpu);
        auto yv = cudl::testing::uniform_values(++seed, m * n, -1.0f, 1.0f);
        for (int64_t j = 0; j < n; ++j) {
          const bool quiet = j < static_cast<int64_t>(silent * n + 0.5);
          for (int64_t i = 0; i < m; ++i) {
            float& v = yv[i * n + j];
            if (quiet) v = (i + j) % 7 == 0 ? -0.0f : (i + j) % 11 == 0 ? std::numeric_limits<float>::quiet_NaN() : -std::fabs(v);
            if (!quiet && (i + j) % 13 == 0) v = std::numeric_limits<float>::quiet_NaN();
          }
        }
        const Tensor y = Tensor::from_host(yv, {m, n}, cpu);
        Tensor fused = Tensor::from_host(std::vector<float>(m * n, std::numeric_limits<float>::quiet_NaN()), {m, n}, cpu);
        Tensor two({m, n}, cpu);
        cpu.gemm_activation_backward(1.0f, a, Trans::kNo, b, tb, fused, y, act);
        cpu.gemm(1.0f, a, Trans::kNo, b, tb, 0.0f, two);
        cpu.activation_backward(two, y, act);
        const auto f = fused.to_vector(), t = two.to_vector();
        ASSERT_EQ(0, std::memcmp(f.data(), t.data(), f.size() * sizeof(float)))
            << "tb " << (tb == Trans::kYes) << " silent " << silent << " " << to_string(act);
      }
    }
  }
}

TEST(CpuBackend, GemmActivationBackwardNamesABadShape) {
  CpuBackend cpu(1);
  const Tensor a({4, 3}, cpu), b({5, 3}, cpu), y({4, 4}, cpu);
  Tensor c({4, 5}, cpu);
  EXPECT_THAT(error_of([&] { cpu.gemm_activation_backward(1.0f, a, Trans::kNo, b, Trans::kYes, c, y, Activation::kRelu); }),
              HasSubstr("gemm_activation_backward"));
  const Tensor y_ok({4, 5}, cpu);
  EXPECT_THAT(error_of([&] { cpu.gemm_activation_backward(1.0f, a, Trans::kNo, b, Trans::kNo, c, y_ok, Activation::kRelu); }),
              HasSubstr("gemm_activation_backward: inner dimensions differ"));
}

// gemm_bias_activation gives the bits of gemm (beta 0) followed by bias_activation, whatever C held
// before (NaN here): every activation, both transposes of each operand, alpha ≠ 1, shapes down to
// 1×1×1 and the 2014 network's, in fp32 and in emulated bf16 (whose product is rounded before the
// bias is added).
TEST(CpuBackend, GemmBiasActivationEqualsTheTwoCalls) {
  struct Dims {
    int64_t m, n, k;
  };
  const Dims shapes[] = {{1, 1, 1}, {7, 5, 3}, {64, 10, 800}, {33, 65, 129}, {64, 800, 784}};
  uint64_t seed = 70;
  for (Precision precision : {Precision::kFp32, Precision::kBf16}) {
    CpuBackend cpu(2, precision);
    for (const Dims& d : shapes)
      for (Trans ta : {Trans::kNo, Trans::kYes})
        for (Trans tb : {Trans::kNo, Trans::kYes})
          for (Activation act : {Activation::kIdentity, Activation::kRelu, Activation::kSigmoid}) {
            const float alpha = act == Activation::kSigmoid ? -0.5f : 1.0f;
            const Shape a_shape = ta == Trans::kNo ? Shape{d.m, d.k} : Shape{d.k, d.m};
            const Shape b_shape = tb == Trans::kNo ? Shape{d.k, d.n} : Shape{d.n, d.k};
            const Tensor a = make(cpu, cudl::testing::uniform_values(++seed, d.m * d.k, -1.0f, 1.0f), a_shape);
            const Tensor b = make(cpu, cudl::testing::uniform_values(++seed, d.k * d.n, -1.0f, 1.0f), b_shape);
            const Tensor bias = make(cpu, cudl::testing::uniform_values(++seed, d.n, -1.0f, 1.0f), {d.n});
            Tensor fused = make(cpu, std::vector<float>(d.m * d.n, std::numeric_limits<float>::quiet_NaN()),
                                {d.m, d.n});
            Tensor two({d.m, d.n}, cpu);
            cpu.gemm_bias_activation(alpha, a, ta, b, tb, bias, act, fused);
            cpu.gemm(alpha, a, ta, b, tb, 0.0f, two);
            cpu.bias_activation(two, bias, act);
            const auto f = fused.to_vector(), t = two.to_vector();
            ASSERT_EQ(0, std::memcmp(f.data(), t.data(), f.size() * sizeof(float)))
                << to_string(precision) << " m,n,k " << d.m << "," << d.n << "," << d.k << " ta "
                << (ta == Trans::kYes) << " tb " << (tb == Trans::kYes) << " " << to_string(act);
          }
  }
}

TEST(CpuBackend, GemmBiasActivationNamesABadShape) {
  CpuBackend cpu(1);
  const Tensor a({4, 3}, cpu), b({3, 5}, cpu), bias({5}, cpu);
  Tensor c({4, 5}, cpu);
  const Tensor short_bias({4}, cpu);
  EXPECT_THAT(error_of([&] { cpu.gemm_bias_activation(1.0f, a, Trans::kNo, b, Trans::kNo, short_bias,
                                                      Activation::kRelu, c); }),
              HasSubstr("gemm_bias_activation: bias expected shape [5], found [4]"));
  EXPECT_THAT(error_of([&] { cpu.gemm_bias_activation(1.0f, a, Trans::kNo, b, Trans::kYes, bias, Activation::kRelu,
                                                      c); }),
              HasSubstr("gemm_bias_activation: inner dimensions differ"));
  Tensor wide({4, 6}, cpu);
  EXPECT_THAT(error_of([&] { cpu.gemm_bias_activation(1.0f, a, Trans::kNo, b, Trans::kNo, bias, Activation::kRelu,
                                                      wide); }),
              HasSubstr("gemm_bias_activation: C expected shape [4, 5]"));
}

// gemm_sum_rows gives the bits of gemm followed by sum_rows of B (and of A, given Aᵀ): both
// transposes of A, alpha, beta, sum_alpha and sum_beta (each 0 and not, the two different), in
// fp32 and emulated bf16; and names a bad shape or a_sums without Aᵀ.
TEST(CpuBackend, GemmSumRowsEqualsTheTwoCalls) {
  uint64_t seed = 90;
  for (Precision precision : {Precision::kFp32, Precision::kBf16}) {
    CpuBackend cpu(2, precision);
    for (const auto& [m, n, k] : {std::array<int64_t, 3>{1, 1, 1}, {5, 7, 3}, {784, 800, 64}, {0, 5, 3}, {4, 5, 0}})
      for (Trans ta : {Trans::kNo, Trans::kYes})
        for (const auto& [beta, sum_beta] : {std::pair{0.0f, 1.0f}, std::pair{0.5f, 0.0f}}) {
          const Shape a_shape = ta == Trans::kNo ? Shape{m, k} : Shape{k, m};
          const Tensor a = make(cpu, cudl::testing::uniform_values(++seed, m * k, -1.0f, 1.0f), a_shape);
          const Tensor b = make(cpu, cudl::testing::uniform_values(++seed, k * n, -1.0f, 1.0f), {k, n});
          const std::vector<float> c0 = cudl::testing::uniform_values(++seed, m * n, -1.0f, 1.0f);
          const std::vector<float> s0 = cudl::testing::uniform_values(++seed, n, -1.0f, 1.0f);
          const std::vector<float> r0 = cudl::testing::uniform_values(++seed, m, -1.0f, 1.0f);
          Tensor c = make(cpu, c0, {m, n}), sums = make(cpu, s0, {n}), a_sums = make(cpu, r0, {m});
          Tensor c2 = make(cpu, c0, {m, n}), sums2 = make(cpu, s0, {n}), a_sums2 = make(cpu, r0, {m});
          const bool with_a = ta == Trans::kYes;  // A's row sums need A as K×M
          cpu.gemm_sum_rows(-0.75f, a, ta, b, beta, c, -1.0f, sum_beta, sums, with_a ? &a_sums : nullptr);
          cpu.gemm(-0.75f, a, ta, b, Trans::kNo, beta, c2);
          cpu.sum_rows(-1.0f, b, sum_beta, sums2);
          if (with_a) cpu.sum_rows(-1.0f, a, sum_beta, a_sums2);
          EXPECT_EQ(c.to_vector(), c2.to_vector()) << m << "x" << n << "x" << k << " beta " << beta;
          EXPECT_EQ(sums.to_vector(), sums2.to_vector()) << m << "x" << n << "x" << k << " beta " << beta;
          EXPECT_EQ(a_sums.to_vector(), a_sums2.to_vector()) << m << "x" << n << "x" << k << " beta " << beta;
        }
  }
  CpuBackend cpu(1);
  const Tensor a({4, 3}, cpu), b({3, 5}, cpu);
  Tensor c({4, 5}, cpu), short_sums({4}, cpu);
  EXPECT_THAT(error_of([&] { cpu.gemm_sum_rows(1.0f, a, Trans::kNo, b, 0.0f, c, 1.0f, 0.0f, short_sums); }),
              HasSubstr("gemm_sum_rows: sums expected shape [5], found [4]"));
  EXPECT_THAT(error_of([&] { cpu.gemm_sum_rows(1.0f, a, Trans::kYes, b, 0.0f, c, 1.0f, 0.0f, short_sums); }),
              HasSubstr("gemm_sum_rows: inner dimensions differ"));
  Tensor sums({5}, cpu), a_sums({4}, cpu);
  EXPECT_THAT(error_of([&] { cpu.gemm_sum_rows(1.0f, a, Trans::kNo, b, 0.0f, c, 1.0f, 0.0f, sums, &a_sums); }),
              HasSubstr("gemm_sum_rows: a_sums (the sums of A's rows) needs A transposed (K×M)"));
  const Tensor at({3, 4}, cpu);
  Tensor wrong_a_sums({3}, cpu);
  EXPECT_THAT(error_of([&] { cpu.gemm_sum_rows(1.0f, at, Trans::kYes, b, 0.0f, c, 1.0f, 0.0f, sums, &wrong_a_sums); }),
              HasSubstr("gemm_sum_rows: a_sums expected shape [4], found [3]"));
}

TEST(CpuBackend, HostStagingIsOneBufferReusedAndGrownWithTheBackend) {
  CpuBackend cpu(1);
  EXPECT_EQ(cpu.host_staging(0), nullptr);
  auto* first = static_cast<char*>(cpu.host_staging(100));
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(first) % 64, 0u);
  std::memset(first, 1, 100);
  EXPECT_EQ(cpu.host_staging(64), first);   // smaller: the same buffer
  EXPECT_EQ(cpu.host_staging(128), first);  // within the 64-byte rounding of the first request
  auto* grown = static_cast<char*>(cpu.host_staging(1 << 20));
  ASSERT_NE(grown, nullptr);
  std::memset(grown, 2, 1 << 20);  // all of it writable (ASan: no overflow)
  EXPECT_EQ(cpu.host_staging(100), grown);
}

// Σ (a − b)² in double, against a long-double loop, with the same bits for any thread count (the
// chunks of 2^15 and their order are fixed), across chunk boundaries and on values whose float sum
// would lose digits (1e4 apart, differences of 1e-3).
TEST(CpuBackend, SquaredDistanceSumsInDoubleWhateverTheThreads) {
  CpuBackend one(1), two(2), three(3);
  for (int64_t n : {int64_t{0}, int64_t{1}, int64_t{5}, int64_t{32768}, int64_t{32769}, int64_t{100003}}) {
    std::vector<float> a = cudl::testing::uniform_values(1, n, -2.0f, 2.0f);
    std::vector<float> b = cudl::testing::uniform_values(2, n, -2.0f, 2.0f);
    for (int64_t i = 0; i < n; i += 7) a[i] = 1e4f, b[i] = 1e4f + 1e-3f;
    long double ref = 0.0L;
    for (int64_t i = 0; i < n; ++i) {
      const long double d = static_cast<long double>(a[i]) - static_cast<long double>(b[i]);
      ref += d * d;
    }
    double got[3];
    CpuBackend* backends[3] = {&one, &two, &three};
    for (int k = 0; k < 3; ++k) {
      CpuBackend& cpu = *backends[k];
      got[k] = cpu.squared_distance(Tensor::from_host(a, {n}, cpu), Tensor::from_host(b, {n}, cpu));
    }
    EXPECT_NEAR(got[0], static_cast<double>(ref), 1e-12 * static_cast<double>(ref)) << n << " elements";
    EXPECT_EQ(got[0], got[1]) << n << " elements, 1 and 2 threads";
    EXPECT_EQ(got[0], got[2]) << n << " elements, 1 and 3 threads";
  }
  EXPECT_THAT(error_of([&] { one.squared_distance(Tensor({3}, one), Tensor({4}, one)); }), HasSubstr("squared_distance"));
}

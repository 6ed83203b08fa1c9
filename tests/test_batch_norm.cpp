// Batch normalisation: the primitives on hand-worked numbers, finite-difference gradients of the
// layer (input, γ and β), the running statistics and inference mode, initialisation inside a
// Network, and the error messages.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "cudl/conv_layers.hpp"
#include "cudl/cpu_backend.hpp"
#include "cudl/network.hpp"
#include "gradient_check.hpp"
#include "test_support.hpp"
#include "tolerance.hpp"

using namespace cudl;
using cudl::testing::error_of;
using cudl::testing::expect_gradient_matches;
using cudl::testing::numerical_gradient;
using cudl::testing::Tolerance;
using cudl::testing::expect_all_close;
using cudl::testing::uniform_values;
using ::testing::HasSubstr;

namespace {

struct BatchNormCase {
  CpuBackend cpu{1};
  Tensor x, gamma, beta, mean, var, saved, y;
  BatchNormCase(const std::vector<float>& xs, Shape shape, std::vector<float> g, std::vector<float> b) {
    const int64_t c = shape[1];
    x = Tensor::from_host(xs, shape, cpu);
    gamma = Tensor::from_host(g, {c}, cpu);
    beta = Tensor::from_host(b, {c}, cpu);
    mean = Tensor::from_host(std::vector<float>(c, 0.0f), {c}, cpu);
    var = Tensor::from_host(std::vector<float>(c, 1.0f), {c}, cpu);
    saved = Tensor({2, c}, cpu);
    y = Tensor(shape, cpu);
  }
};

}  // namespace

// Channel 0 holds {1, 3} (sample 0) and {5, 7} (sample 1): μ = 4, σ² = (9 + 1 + 1 + 9)/4 = 5,
// unbiased variance 20/3. Channel 1 holds the constant 2: σ² = 0, so y = β.
TEST(BatchNorm, TrainingNormalisesEachChannelWithItsBatchStatistics) {
  BatchNormCase t({1, 3, 2, 2, 5, 7, 2, 2}, {2, 2, 1, 2}, {2.0f, 1.0f}, {0.5f, -1.0f});
  BatchNormArgs args;
  args.epsilon = 1e-5f;
  args.momentum = 0.25f;
  t.cpu.batch_norm_train(t.x, t.gamma, t.beta, args, t.mean, t.var, t.saved, t.y);
  const double s = 1.0 / std::sqrt(5.0 + 1e-5);
  const std::vector<double> expected = {0.5 + 2 * (1 - 4) * s, 0.5 + 2 * (3 - 4) * s, -1, -1,
                                        0.5 + 2 * (5 - 4) * s, 0.5 + 2 * (7 - 4) * s, -1, -1};
  expect_all_close(t.y.to_vector(), expected, 1e-5, 1e-5, "y");
  expect_all_close(t.saved.to_vector(), std::vector<double>{4, 2, s, 1.0 / std::sqrt(1e-5)}, 1e-6, 1e-5, "saved");
  expect_all_close(t.mean.to_vector(), std::vector<double>{0.25 * 4, 0.25 * 2}, 1e-6, 1e-6, "running mean");
  expect_all_close(t.var.to_vector(), std::vector<double>{0.75 + 0.25 * 20.0 / 3.0, 0.75}, 1e-6, 1e-6,
                   "running var");
}

TEST(BatchNorm, InferenceUsesTheRunningStatistics) {
  BatchNormCase t({1, 3, 2, 2, 5, 7, 2, 2}, {2, 2, 1, 2}, {2.0f, 1.0f}, {0.5f, -1.0f});
  t.mean.copy_from(std::vector<float>{1.0f, -2.0f});
  t.var.copy_from(std::vector<float>{4.0f, 0.25f});
  t.cpu.batch_norm_infer(t.x, t.gamma, t.beta, t.mean, t.var, 0.0001f, t.y);
  std::vector<double> expected;
  const double xs[] = {1, 3, 2, 2, 5, 7, 2, 2};
  for (int i = 0; i < 8; ++i) {
    const int c = (i / 2) % 2;
    expected.push_back(c == 0 ? 2 * (xs[i] - 1) / std::sqrt(4.0001) + 0.5 : (xs[i] + 2) / std::sqrt(0.2501) - 1);
  }
  expect_all_close(t.y.to_vector(), expected, 1e-5, 1e-5);
}

// L = Σ w·y for fixed random w; every gradient of the layer (γ, β and the input) against
// central differences (tests/gradient_check.hpp).
TEST(BatchNorm, LayerGradientsMatchFiniteDifferences) {
  CpuBackend cpu(1);
  const Shape in = {3, 2, 3, 2};  // N = 3, C = 2, 3×2 positions: M = 18 values per channel
  Network net(cpu, {2, 3, 2});
  net.add(batch_norm2d());
  net.initialize(1, 0.05f);
  Tensor& params = net.params();
  params.copy_from(std::vector<float>{1.5f, 0.7f, -0.3f, 0.2f});  // γ, β
  const std::vector<float> xs = uniform_values(11, numel(in), -2.0f, 2.0f);
  const std::vector<float> ws = uniform_values(12, numel(in), -1.0f, 1.0f);
  Tensor x = Tensor::from_host(xs, in, cpu);
  auto loss = [&]() {
    const std::vector<float> y = net.forward(x, Mode::kTrain).to_vector();
    double l = 0.0;
    for (size_t i = 0; i < y.size(); ++i) l += static_cast<double>(ws[i]) * y[i];
    return l;
  };
  loss();
  Tensor dout = Tensor::from_host(ws, in, cpu);
  // Backward into an explicit dx: a network hands its first layer no dx, so call the layer.
  Tensor dx(in, cpu);
  net.forward(x, Mode::kTrain);
  net.layer(0).backward(cpu, x, net.forward(x, Mode::kTrain), dout, &dx);
  const std::vector<float> grads = net.grads().to_vector(), dxs = dx.to_vector();
  // Float forward passes, eps = 1e-2: the difference quotients carry ~1e-4 of rounding noise.
  const Tolerance tol{2e-3, 1e-2, 2e-3};
  expect_gradient_matches(grads, numerical_gradient(params, 1e-2f, loss), tol, "γ, β");
  expect_gradient_matches(dxs, numerical_gradient(x, 1e-2f, loss), tol, "input");
}

TEST(BatchNorm, NetworkStartsWithUnitScaleAndZeroShift) {
  CpuBackend cpu(1);
  Network net(cpu, {3, 4, 4});
  net.add(conv2d(2, 3)).add(batch_norm2d()).add(flatten()).add(dense(2));
  net.initialize(7, 0.05f);
  const std::vector<float> p = net.params().to_vector();
  // Layout: decayed weights (conv 2·3·3·3 = 54, dense 8·2 = 16), then conv bias (2), γ (2), β (2),
  // dense bias (2).
  ASSERT_EQ(p.size(), 54u + 16u + 2u + 2u + 2u + 2u);
  EXPECT_EQ(p[72], 1.0f);
  EXPECT_EQ(p[73], 1.0f);
  EXPECT_EQ(p[74], 0.0f);
  EXPECT_EQ(p[75], 0.0f);
}

TEST(BatchNorm, BackwardAfterAnInferenceForwardIsAnError) {
  CpuBackend cpu(1);
  Network net(cpu, {1, 2, 2});
  net.add(batch_norm2d());
  net.initialize(1, 0.05f);
  Tensor x = Tensor::from_host(uniform_values(3, 8, -1, 1), {2, 1, 2, 2}, cpu);
  net.forward(x, Mode::kInfer);
  Tensor dout = Tensor::from_host(std::vector<float>(8, 1.0f), {2, 1, 2, 2}, cpu);
  EXPECT_THAT(error_of([&] { net.backward(x, dout); }), HasSubstr("needs a training-mode forward first"));
}

TEST(BatchNorm, ErrorsNameTheProblem) {
  BatchNormCase one({1, 2}, {1, 2, 1, 1}, {1, 1}, {0, 0});
  EXPECT_THAT(error_of([&] {
                one.cpu.batch_norm_train(one.x, one.gamma, one.beta, {}, one.mean, one.var, one.saved, one.y);
              }),
              HasSubstr("needs more than one value per channel"));
  BatchNormCase t({1, 2, 3, 4}, {2, 2, 1, 1}, {1, 1}, {0, 0});
  Tensor wrong = Tensor::from_host({1, 1, 1}, {3}, t.cpu);
  EXPECT_THAT(error_of([&] { t.cpu.batch_norm_train(t.x, wrong, t.beta, {}, t.mean, t.var, t.saved, t.y); }),
              HasSubstr("gamma expected shape [2], found [3]"));
  EXPECT_THAT(error_of([] { BatchNorm2d bad(BatchNormArgs{0.0f, 0.1f}); }), HasSubstr("epsilon must be positive"));
  CpuBackend cpu(1);
  Network net(cpu, {8});
  EXPECT_THAT(error_of([&] { net.add(batch_norm2d()); }), HasSubstr("expected a per-sample input of shape [C, H, W]"));
}

// A convolution feeding a batch norm needs no bias (the norm's β replaces it): Conv2d with
// Bias::kNo has only its filters, computes what a biased one with zero bias computes, and the
// conv → batch-norm stack's gradients match finite differences.
TEST(BatchNorm, UnbiasedConvolutionFeedsIt) {
  CpuBackend cpu(1);
  Conv2dParams p;
  p.pad_h = p.pad_w = 1;
  Network plain(cpu, {2, 5, 4}), biased(cpu, {2, 5, 4});
  plain.add(conv2d(3, 3, 3, p, Activation::kRelu, Bias::kNo)).add(batch_norm2d());
  biased.add(conv2d(3, 3, 3, p, Activation::kRelu)).add(batch_norm2d());
  plain.initialize(5, 0.3f);
  biased.initialize(5, 0.3f);
  EXPECT_EQ(plain.layer(0).describe(), "Conv2d(3, 3×3, stride 1, padding 1, relu, no bias)");
  ASSERT_EQ(plain.params().size(), 3 * 2 * 3 * 3 + 3 + 3);  // filters, γ, β
  ASSERT_EQ(biased.params().size(), plain.params().size() + 3);
  const Shape in = {4, 2, 5, 4};
  Tensor x = Tensor::from_host(uniform_values(31, numel(in), -1.0f, 1.0f), in, cpu);
  EXPECT_EQ(plain.forward(x, Mode::kTrain).to_vector(), biased.forward(x, Mode::kTrain).to_vector());

  // Finite differences through a linear convolution (ReLU kinks would break the quotients).
  Network linear(cpu, {2, 5, 4});
  linear.add(conv2d(3, 3, 3, p, Activation::kIdentity, Bias::kNo)).add(batch_norm2d());
  linear.initialize(5, 0.3f);
  const std::vector<float> ws = uniform_values(32, numel(in) / 2 * 3, -1.0f, 1.0f);
  auto loss = [&]() {
    const std::vector<float> y = linear.forward(x, Mode::kTrain).to_vector();
    double l = 0.0;
    for (size_t i = 0; i < y.size(); ++i) l += static_cast<double>(ws[i]) * y[i];
    return l;
  };
  loss();
  Tensor dout = Tensor::from_host(ws, {4, 3, 5, 4}, cpu);
  linear.backward(x, dout);
  expect_gradient_matches(linear.grads().to_vector(), numerical_gradient(linear.params(), 1e-2f, loss),
                          Tolerance{2e-3, 1e-2, 2e-3}, "filters, γ, β");
}

// Finite-difference gradient checks on the CPU backend: the softmax cross-entropy loss, Dense with
// every activation, the standalone activation layers, and a whole three-layer network. Every
// analytic gradient is compared entry by entry with a central difference of a scalar loss, and
// also as a whole (relative error of the gradient vector), so a wrong sign, a missing factor or a
// transposed product fails.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cudl/backend.hpp"
#include "cudl/cpu_backend.hpp"
#include "cudl/layers.hpp"
#include "cudl/network.hpp"
#include "cudl/tensor.hpp"
#include "gradient_check.hpp"
#include "test_support.hpp"

namespace {

using cudl::Activation;
using cudl::CpuBackend;
using cudl::CrossEntropyArgs;
using cudl::Dense;
using cudl::LossStats;
using cudl::Tensor;
using cudl::testing::fresh_loss_stats;
using cudl::testing::uniform_values;

using cudl::testing::central_difference;
using cudl::testing::dot;
using cudl::testing::expect_gradient_matches;
using cudl::testing::numerical_gradient;
using cudl::testing::Tolerance;
using cudl::testing::views;

// ---- softmax cross-entropy ----

// Σ per-sample cross-entropy of logits (N×K) against labels (N), read from a fresh stats tensor.
double summed_cross_entropy(CpuBackend& cpu, const Tensor& logits, const Tensor& labels) {
  Tensor stats = fresh_loss_stats(cpu);
  Tensor scratch(logits.shape(), cpu);
  cpu.softmax_cross_entropy(logits, labels, CrossEntropyArgs{}, scratch, stats);
  return stats.to_vector()[LossStats::kLossSum];
}

TEST(CrossEntropyLoss, GradientMatchesFiniteDifferencesOfSummedLoss) {
  CpuBackend cpu(1);
  constexpr int64_t kN = 4, kK = 5;
  Tensor logits = Tensor::from_host(uniform_values(11, kN * kK, -2.0f, 2.0f), {kN, kK}, cpu);
  Tensor labels = Tensor::from_host({3, 0, 4, 1}, {kN}, cpu);

  Tensor stats = fresh_loss_stats(cpu);
  Tensor dlogits({kN, kK}, cpu);
  cpu.softmax_cross_entropy(logits, labels, CrossEntropyArgs{}, dlogits, stats);  // grad_scale = 1

  const auto numeric = numerical_gradient(logits, 1e-2f, [&] { return summed_cross_entropy(cpu, logits, labels); });
  expect_gradient_matches(dlogits.to_vector(), numeric, {2e-3, 1e-2, 2e-3}, "dlogits");
}

TEST(CrossEntropyLoss, GradScaleMultipliesTheGradient) {
  CpuBackend cpu(1);
  Tensor logits = Tensor::from_host(uniform_values(12, 6, -2.0f, 2.0f), {2, 3}, cpu);
  Tensor labels = Tensor::from_host({1, 2}, {2}, cpu);
  Tensor stats = fresh_loss_stats(cpu);
  Tensor unit({2, 3}, cpu), scaled({2, 3}, cpu);
  cpu.softmax_cross_entropy(logits, labels, CrossEntropyArgs{}, unit, stats);
  CrossEntropyArgs args;
  args.grad_scale = 0.25f;  // e.g. 1/N for a mean loss
  cpu.softmax_cross_entropy(logits, labels, args, scaled, stats);
  const auto u = unit.to_vector(), s = scaled.to_vector();
  for (size_t i = 0; i < u.size(); ++i) EXPECT_FLOAT_EQ(s[i], 0.25f * u[i]) << "entry " << i;
}

TEST(CrossEntropyLoss, DlogitsMayAliasLogits) {
  CpuBackend cpu(1);
  constexpr int64_t kN = 3, kK = 4;
  const std::vector<float> values = uniform_values(13, kN * kK, -3.0f, 3.0f);
  Tensor labels = Tensor::from_host({2, 0, 3}, {kN}, cpu);

  Tensor logits = Tensor::from_host(values, {kN, kK}, cpu);
  Tensor separate({kN, kK}, cpu);
  Tensor stats1 = fresh_loss_stats(cpu);
  cpu.softmax_cross_entropy(logits, labels, CrossEntropyArgs{}, separate, stats1);

  Tensor in_place = Tensor::from_host(values, {kN, kK}, cpu);
  Tensor stats2 = fresh_loss_stats(cpu);
  cpu.softmax_cross_entropy(in_place, labels, CrossEntropyArgs{}, in_place, stats2);

  EXPECT_EQ(in_place.to_vector(), separate.to_vector());
  EXPECT_EQ(stats2.to_vector(), stats1.to_vector());
  EXPECT_EQ(logits.to_vector(), values) << "a separate dlogits must leave the logits alone";
}

// Row 0: logits (1, 2, 3), label 2 (also the argmax: correct).
// Row 1: logits (0, 0, 0), label 1; argmax takes the first maximum, 0: an error.
struct TwoByThree {
  CpuBackend cpu{1};
  Tensor logits = Tensor::from_host({1, 2, 3, 0, 0, 0}, {2, 3}, cpu);
  Tensor labels = Tensor::from_host({2, 1}, {2}, cpu);
  Tensor stats = fresh_loss_stats(cpu);
  Tensor dlogits = Tensor({2, 3}, cpu);

  // One softmax_cross_entropy call with grad_scale 1; it adds to stats.
  void run() { cpu.softmax_cross_entropy(logits, labels, CrossEntropyArgs{}, dlogits, stats); }
};

TEST(CrossEntropyLoss, HandWorkedTwoByThree) {
  TwoByThree t;
  t.run();

  // softmax(1, 2, 3) = e^k / (e + e² + e³); CE = log(e + e² + e³) − 3 ≈ 0.40761.
  const double denom0 = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  const double p0[3] = {std::exp(1.0) / denom0, std::exp(2.0) / denom0, std::exp(3.0) / denom0};
  // softmax(0, 0, 0) = 1/3 each; CE = log 3 ≈ 1.09861.
  const double p1 = 1.0 / 3.0;
  const double loss = (std::log(denom0) - 3.0) + std::log(3.0);
  const std::vector<double> expected = {p0[0], p0[1], p0[2] - 1.0, p1, p1 - 1.0, p1};

  const auto d = t.dlogits.to_vector();
  for (size_t i = 0; i < expected.size(); ++i) EXPECT_NEAR(d[i], expected[i], 1e-6) << "entry " << i;
  EXPECT_NEAR(p0[2], 0.66524, 1e-5);  // the hand value, as a sanity check of the arithmetic above
  const auto s = t.stats.to_vector();
  EXPECT_NEAR(s[LossStats::kLossSum], loss, 1e-5);
  EXPECT_NEAR(s[LossStats::kLossSum], 1.50622, 1e-5);
  EXPECT_EQ(s[LossStats::kErrors], 1.0f);
  EXPECT_EQ(s[LossStats::kBadStep], -1.0f);
}

TEST(CrossEntropyLoss, StatsAccumulateAcrossCalls) {
  TwoByThree t;
  t.run();
  const float once = t.stats.to_vector()[LossStats::kLossSum];
  t.run();
  const auto s = t.stats.to_vector();
  EXPECT_FLOAT_EQ(s[LossStats::kLossSum], 2.0f * once);
  EXPECT_EQ(s[LossStats::kErrors], 2.0f);
}

// ---- Dense ----

// Dense(H, act) on x (N×D), bound directly to parameter tensors the test owns, with the scalar
// loss L = Σ r ⊙ y for a fixed random r, so ∂L/∂y = r.
class DenseGradient : public ::testing::TestWithParam<Activation> {
 protected:
  static constexpr int64_t kN = 3, kD = 5, kH = 4;
  static constexpr float kEps = 1e-2f;

  void SetUp() override {
    // Draw x, W, b in [−1, 1) until every pre-activation z = x·W + b is at least 0.1 from the
    // ReLU kink at 0 and both signs occur. One central-difference step moves z by at most
    // eps·max(|x|, |W|, 1) = 0.01, so no ±eps step crosses the kink and the check cannot be
    // flaky; both signs make the ReLU gate matter. (Harmless for identity and sigmoid.)
    for (uint64_t seed = 1;; seed += 3) {
      ASSERT_LT(seed, 600u) << "no draw kept the pre-activations away from 0";
      xv_ = uniform_values(seed, kN * kD, -1.0f, 1.0f);
      wv_ = uniform_values(seed + 1, kD * kH, -1.0f, 1.0f);
      bv_ = uniform_values(seed + 2, kH, -1.0f, 1.0f);
      double min_abs = 1e9;
      int negative = 0, positive = 0;
      for (int64_t n = 0; n < kN; ++n) {
        for (int64_t h = 0; h < kH; ++h) {
          double z = bv_[h];
          for (int64_t d = 0; d < kD; ++d) z += static_cast<double>(xv_[n * kD + d]) * wv_[d * kH + h];
          min_abs = std::min(min_abs, std::abs(z));
          (z < 0 ? negative : positive) += 1;
        }
      }
      if (min_abs > 0.1 && negative >= 3 && positive >= 3) break;
    }
    x_ = Tensor::from_host(xv_, {kN, kD}, cpu_);
    w_ = Tensor::from_host(wv_, {kD, kH}, cpu_);
    b_ = Tensor::from_host(bv_, {kH}, cpu_);
    gw_ = Tensor({kD, kH}, cpu_);
    gb_ = Tensor({kH}, cpu_);
    dx_ = Tensor({kN, kD}, cpu_);
    y_ = Tensor({kN, kH}, cpu_);
    r_ = uniform_values(99, kN * kH, -1.0f, 1.0f);
    layer_.bind(views(w_, b_), views(gw_, gb_));
  }

  double loss() {
    layer_.forward(cpu_, x_, y_, cudl::Mode::kTrain);
    return dot(y_.to_vector(), r_);
  }

  // forward, then backward with dy = r, writing gw_, gb_ and (when with_dx) dx_.
  void forward_backward(bool with_dx) {
    layer_.forward(cpu_, x_, y_, cudl::Mode::kTrain);
    Tensor dy = Tensor::from_host(r_, {kN, kH}, cpu_);
    layer_.backward(cpu_, x_, y_, dy, with_dx ? &dx_ : nullptr);
  }

  std::string name() const { return std::string("Dense(") + cudl::to_string(GetParam()) + ")"; }

  CpuBackend cpu_{1};
  Dense layer_{kH, GetParam()};
  std::vector<float> xv_, wv_, bv_, r_;
  Tensor x_, w_, b_, gw_, gb_, dx_, y_;
};

constexpr Tolerance kDenseTol{2e-3, 1e-2, 2e-3};

TEST_P(DenseGradient, WeightGradientMatchesFiniteDifferences) {
  forward_backward(true);
  const auto numeric = numerical_gradient(w_, kEps, [&] { return loss(); });
  expect_gradient_matches(gw_.to_vector(), numeric, kDenseTol, name() + " weight");
}

TEST_P(DenseGradient, BiasGradientMatchesFiniteDifferences) {
  forward_backward(true);
  const auto numeric = numerical_gradient(b_, kEps, [&] { return loss(); });
  expect_gradient_matches(gb_.to_vector(), numeric, kDenseTol, name() + " bias");
}

TEST_P(DenseGradient, InputGradientMatchesFiniteDifferences) {
  forward_backward(true);
  const auto numeric = numerical_gradient(x_, kEps, [&] { return loss(); });
  expect_gradient_matches(dx_.to_vector(), numeric, kDenseTol, name() + " input");
}

TEST_P(DenseGradient, BackwardOverwritesStaleGradients) {
  forward_backward(true);
  const auto gw = gw_.to_vector(), gb = gb_.to_vector(), dx = dx_.to_vector();
  cpu_.fill(gw_, NAN);  // the contract is "overwrite", so nothing stale may leak through
  cpu_.fill(gb_, NAN);
  cpu_.fill(dx_, NAN);
  forward_backward(true);
  EXPECT_EQ(gw_.to_vector(), gw);
  EXPECT_EQ(gb_.to_vector(), gb);
  EXPECT_EQ(dx_.to_vector(), dx);
}

TEST_P(DenseGradient, ParameterGradientsDoNotDependOnRequestingDx) {
  forward_backward(true);
  const auto gw = gw_.to_vector(), gb = gb_.to_vector();
  forward_backward(false);
  EXPECT_EQ(gw_.to_vector(), gw);
  EXPECT_EQ(gb_.to_vector(), gb);
}

INSTANTIATE_TEST_SUITE_P(Activations, DenseGradient, cudl::testing::every_activation(), cudl::testing::activation_name);

// ---- ActivationLayer ----

// The standalone activation on a rank-3 batch (N × 2 × 3: any per-sample shape is allowed),
// with L = Σ r ⊙ y. Inputs are at least 0.1 from 0, ten times eps, so no step crosses the kink.
void check_activation_layer_input_gradient(std::unique_ptr<cudl::Layer> layer, const std::string& what) {
  CpuBackend cpu(1);
  constexpr float kEps = 1e-2f;
  const cudl::Shape shape = {3, 2, 3};
  std::vector<float> xv = uniform_values(21, cudl::numel(shape), -2.0f, 2.0f);
  for (float& v : xv) v = v < 0 ? v - 0.1f : v + 0.1f;
  const std::vector<float> r = uniform_values(22, cudl::numel(shape), -1.0f, 1.0f);
  ASSERT_EQ(layer->output_shape({2, 3}), (cudl::Shape{2, 3}));

  Tensor x = Tensor::from_host(xv, shape, cpu);
  Tensor y(shape, cpu), dx(shape, cpu);
  auto loss = [&] {
    layer->forward(cpu, x, y, cudl::Mode::kTrain);
    return dot(y.to_vector(), r);
  };
  loss();
  Tensor dy = Tensor::from_host(r, shape, cpu);
  layer->backward(cpu, x, y, dy, &dx);
  const auto numeric = numerical_gradient(x, kEps, loss);
  expect_gradient_matches(dx.to_vector(), numeric, {2e-3, 1e-2, 2e-3}, what);
}

TEST(ActivationLayerGradient, ReluInputGradientMatchesFiniteDifferences) {
  check_activation_layer_input_gradient(cudl::relu(), "relu input");
}

TEST(ActivationLayerGradient, SigmoidInputGradientMatchesFiniteDifferences) {
  check_activation_layer_input_gradient(cudl::sigmoid(), "sigmoid input");
}

// ---- a whole network ----

TEST(NetworkGradient, EveryParameterGradientMatchesFiniteDifferencesOfCrossEntropy) {
  CpuBackend cpu(1);
  constexpr int64_t kN = 5;
  constexpr float kEps = 1e-2f;
  cudl::Network net(cpu, {4});
  net.add(cudl::dense(6, Activation::kRelu)).add(cudl::dense(5, Activation::kSigmoid)).add(cudl::dense(3));
  Tensor& params = net.params();
  ASSERT_EQ(params.size(), (4 * 6 + 6) + (6 * 5 + 5) + (5 * 3 + 3));
  Tensor labels = Tensor::from_host({0, 2, 1, 2, 0}, {kN}, cpu);

  // Draw inputs and every parameter in [−1, 1) until the first layer's pre-activations are all
  // at least 0.1 from the ReLU kink with both signs present. Only first-layer parameters move
  // them, each ±eps step by at most eps·max(|x|, 1) = 0.01, so no step crosses the kink.
  Tensor x;
  for (uint64_t seed = 1;; seed += 2) {
    ASSERT_LT(seed, 400u) << "no draw kept the first layer's pre-activations away from 0";
    x = Tensor::from_host(uniform_values(seed, kN * 4, -1.0f, 1.0f), {kN, 4}, cpu);
    params.copy_from(uniform_values(seed + 1, params.size(), -1.0f, 1.0f));
    auto& first = dynamic_cast<Dense&>(net.layer(0));
    const auto w = first.weight().to_vector(), b = first.bias().to_vector(), xv = x.to_vector();
    double min_abs = 1e9;
    int negative = 0;
    for (int64_t n = 0; n < kN; ++n) {
      for (int64_t h = 0; h < 6; ++h) {
        double z = b[h];
        for (int64_t d = 0; d < 4; ++d) z += static_cast<double>(xv[n * 4 + d]) * w[d * 6 + h];
        min_abs = std::min(min_abs, std::abs(z));
        negative += z < 0;
      }
    }
    if (min_abs > 0.1 && negative >= 3 && negative <= kN * 6 - 3) break;
  }

  // Analytic: dlogits = softmax − onehot = ∂(Σ CE)/∂logits, back-propagated into net.grads().
  const Tensor& logits = net.forward(x, cudl::Mode::kTrain);
  Tensor dlogits(logits.shape(), cpu);
  Tensor stats = fresh_loss_stats(cpu);
  cpu.softmax_cross_entropy(logits, labels, CrossEntropyArgs{}, dlogits, stats);
  net.backward(x, dlogits);
  const std::vector<float> analytic = net.grads().to_vector();

  auto loss = [&] { return summed_cross_entropy(cpu, net.forward(x, cudl::Mode::kTrain), labels); };
  EXPECT_NEAR(loss(), stats.to_vector()[LossStats::kLossSum], 1e-6);
  const auto numeric = numerical_gradient(params, kEps, loss);  // all 83 entries
  expect_gradient_matches(analytic, numeric, {2e-3, 1e-2, 5e-3}, "network parameters");

  // Each layer's parameters, separately: a small error in one layer must not hide behind the
  // others in the whole-vector norm.
  const std::vector<std::pair<int64_t, int64_t>> blocks = {
      {0, 24}, {24, 54}, {54, 69}, {69, 75}, {75, 80}, {80, 83}};  // W1 W2 W3 b1 b2 b3
  for (auto [begin, end] : blocks) {
    double diff2 = 0.0, norm2 = 0.0;
    for (int64_t i = begin; i < end; ++i) {
      diff2 += std::pow(analytic[i] - numeric[i], 2);
      norm2 += numeric[i] * numeric[i];
    }
    EXPECT_GT(norm2, 0.0) << "params [" << begin << ", " << end << ")";
    EXPECT_LE(std::sqrt(diff2), 1e-2 * std::sqrt(norm2) + 1e-4) << "params [" << begin << ", " << end << ")";
  }
}

}  // namespace

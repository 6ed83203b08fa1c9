// The convolutional layers on the CPU: finite-difference gradients of Conv2d (weights, bias,
// input; every activation), MaxPool2d and AvgPool2d (with padding), Flatten, and a whole
// conv-pool-conv-flatten-dense network through the cross-entropy; Dropout's training, inference
// and counter behaviour; flat input rows; descriptions; and the shape errors, which name the
// layer and the expected and found shapes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cudl/error.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "cudl/conv_layers.hpp"
#include "cudl/cpu_backend.hpp"
#include "cudl/network.hpp"
#include "gradient_check.hpp"
#include "test_support.hpp"
#include "tolerance.hpp"

using namespace cudl;
using cudl::testing::error_of;
using cudl::testing::fresh_loss_stats;
using cudl::testing::uniform_values;
using ::testing::HasSubstr;

namespace {

// ---- finite differences (tests/gradient_check.hpp) ----

using cudl::testing::dot;
using cudl::testing::expect_gradient_matches;
using cudl::testing::numerical_gradient;
using cudl::testing::Tolerance;
using cudl::testing::views;

// Float forward passes, eps = 1e-2: the difference quotient carries ~1e-4 of rounding noise.
constexpr Tolerance kTol{2e-3, 1e-2, 2e-3};

Shape batch(int64_t n, Shape per_sample) {
  per_sample.insert(per_sample.begin(), n);
  return per_sample;
}

// ---- Conv2d ----

// Conv2d(3, 3×2, stride 2×1, padding 1, dilation 1×2) on x (2×2×6×5), bound to tensors the test
// owns, with L = Σ r ⊙ y so that ∂L/∂y = r.
class Conv2dGradient : public ::testing::TestWithParam<Activation> {
 protected:
  static constexpr int64_t kN = 2, kC = 2, kH = 6, kW = 5, kK = 3, kR = 3, kS = 2, kP = 3, kQ = 5;
  static constexpr float kEps = 1e-2f;

  static Conv2dParams params() {
    Conv2dParams p;
    p.stride_h = 2, p.pad_h = 1, p.pad_w = 1, p.dilation_w = 2;
    return p;
  }

  void SetUp() override {
    ASSERT_EQ(layer_.output_shape({kC, kH, kW}), (Shape{kK, kP, kQ}));
    // Draw x, W, b in [−1, 1) until every pre-activation z is at least 0.02 from the ReLU kink
    // and both signs occur. Each z reads any one input, weight or bias at most once with a
    // coefficient in [−1, 1], so a ±eps step moves z by at most 0.01 and never crosses the kink.
    for (uint64_t seed = 1;; seed += 3) {
      ASSERT_LT(seed, 3000u) << "no draw kept the pre-activations away from 0";
      x_ = Tensor::from_host(uniform_values(seed, kN * kC * kH * kW, -1.0f, 1.0f), {kN, kC, kH, kW}, cpu_);
      w_ = Tensor::from_host(uniform_values(seed + 1, kK * kC * kR * kS, -1.0f, 1.0f), {kK, kC, kR, kS}, cpu_);
      b_ = Tensor::from_host(uniform_values(seed + 2, kK, -1.0f, 1.0f), {kK}, cpu_);
      Tensor z(y_.shape(), cpu_);
      cpu_.conv2d_forward(x_, w_, params(), z);
      cpu_.channel_bias_activation(z, b_, Activation::kIdentity);
      const auto zv = z.to_vector();
      const auto negative = std::count_if(zv.begin(), zv.end(), [](float v) { return v < 0; });
      const bool clear = std::all_of(zv.begin(), zv.end(), [](float v) { return std::abs(v) > 0.02f; });
      if (clear && negative >= 5 && negative <= static_cast<int64_t>(zv.size()) - 5) break;
    }
    r_ = uniform_values(99, y_.size(), -1.0f, 1.0f);
    layer_.bind(views(w_, b_), views(gw_, gb_));
  }

  double loss() {
    layer_.forward(cpu_, x_, y_, Mode::kTrain);
    return dot(y_.to_vector(), r_);
  }

  void forward_backward(bool with_dx) {
    layer_.forward(cpu_, x_, y_, Mode::kTrain);
    Tensor dy = Tensor::from_host(r_, y_.shape(), cpu_);
    layer_.backward(cpu_, x_, y_, dy, with_dx ? &dx_ : nullptr);
  }

  std::string name() const { return std::string("Conv2d(") + to_string(GetParam()) + ")"; }

  CpuBackend cpu_{1};
  Conv2d layer_{kK, kR, kS, params(), GetParam()};
  std::vector<float> r_;
  Tensor x_, w_, b_;
  Tensor gw_{{kK, kC, kR, kS}, cpu_}, gb_{{kK}, cpu_}, dx_{{kN, kC, kH, kW}, cpu_}, y_{{kN, kK, kP, kQ}, cpu_};
};

TEST_P(Conv2dGradient, WeightGradientMatchesFiniteDifferences) {
  forward_backward(true);
  expect_gradient_matches(gw_.to_vector(), numerical_gradient(w_, kEps, [&] { return loss(); }), kTol,
                          name() + " weight");
}

TEST_P(Conv2dGradient, BiasGradientMatchesFiniteDifferences) {
  forward_backward(true);
  expect_gradient_matches(gb_.to_vector(), numerical_gradient(b_, kEps, [&] { return loss(); }), kTol,
                          name() + " bias");
}

TEST_P(Conv2dGradient, InputGradientMatchesFiniteDifferences) {
  forward_backward(true);
  expect_gradient_matches(dx_.to_vector(), numerical_gradient(x_, kEps, [&] { return loss(); }), kTol,
                          name() + " input");
}

TEST_P(Conv2dGradient, BackwardOverwritesStaleGradientsAndDxIsOptional) {
  forward_backward(true);
  const auto gw = gw_.to_vector(), gb = gb_.to_vector(), dx = dx_.to_vector();
  cpu_.fill(gw_, NAN);
  cpu_.fill(gb_, NAN);
  cpu_.fill(dx_, NAN);
  forward_backward(true);
  EXPECT_EQ(gw_.to_vector(), gw);
  EXPECT_EQ(gb_.to_vector(), gb);
  EXPECT_EQ(dx_.to_vector(), dx);
  forward_backward(false);
  EXPECT_EQ(gw_.to_vector(), gw);
  EXPECT_EQ(gb_.to_vector(), gb);
}

INSTANTIATE_TEST_SUITE_P(Activations, Conv2dGradient, cudl::testing::every_activation(), cudl::testing::activation_name);

// ---- parameter-free layers ----

// The input gradient of a parameter-free layer on x (2×2×7×6) with L = Σ r ⊙ y.
void check_input_gradient(Layer& layer, std::vector<float> xv, const std::string& what) {
  CpuBackend cpu(1);
  const Shape in = {2, 7, 6};
  const Shape out = layer.output_shape(in);
  Tensor x = Tensor::from_host(xv, batch(2, in), cpu);
  Tensor y(batch(2, out), cpu), dx(batch(2, in), cpu);
  const std::vector<float> r = uniform_values(31, y.size(), -1.0f, 1.0f);
  auto loss = [&] {
    layer.forward(cpu, x, y, Mode::kTrain);
    return dot(y.to_vector(), r);
  };
  loss();
  Tensor dy = Tensor::from_host(r, y.shape(), cpu);
  cpu.fill(dx, NAN);
  layer.backward(cpu, x, y, dy, &dx);
  expect_gradient_matches(dx.to_vector(), numerical_gradient(x, 1e-2f, loss), kTol, what);
}

// Distinct inputs 0.05 apart, in random order: a ±0.01 step never changes which cell of a
// window is its maximum, so max pooling is differentiable at every step of the check.
std::vector<float> separated_values(uint64_t seed, int64_t n) {
  const std::vector<float> keys = uniform_values(seed, n, 0.0f, 1.0f);
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return keys[a] < keys[b]; });
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t rank = 0; rank < n; ++rank) v[order[rank]] = 0.05f * static_cast<float>(rank - n / 2);
  return v;
}

TEST(PoolGradient, MaxPoolInputGradientMatchesFiniteDifferences) {
  const int64_t n = 2 * 2 * 7 * 6;
  std::unique_ptr<Layer> layers[] = {max_pool2d(2), max_pool2d(3, 2, 1), max_pool2d(2, 1)};
  uint64_t seed = 40;
  for (auto& layer : layers) check_input_gradient(*layer, separated_values(++seed, n), layer->describe());
  Pool2dParams p;  // non-square: 3×2 windows, stride 1×2, padding 1×1
  p.window_h = 3, p.window_w = 2, p.stride_h = 1, p.stride_w = 2, p.pad_h = 1, p.pad_w = 1;
  Pool2d rect(p);
  check_input_gradient(rect, separated_values(++seed, n), rect.describe());
}

TEST(PoolGradient, AvgPoolWithPaddingInputGradientMatchesFiniteDifferences) {
  const int64_t n = 2 * 2 * 7 * 6;
  std::unique_ptr<Layer> layers[] = {avg_pool2d(2), avg_pool2d(3, 2, 1), avg_pool2d(5, 3, 2)};
  uint64_t seed = 50;
  for (auto& layer : layers) check_input_gradient(*layer, uniform_values(++seed, n, -1.0f, 1.0f), layer->describe());
}

TEST(FlattenLayer, CopiesInRowMajorOrderAndItsGradientMatchesFiniteDifferences) {
  CpuBackend cpu(1);
  Flatten flat;
  EXPECT_EQ(flat.output_shape({2, 7, 6}), (Shape{84}));
  const std::vector<float> xv = uniform_values(60, 2 * 84, -1.0f, 1.0f);
  Tensor x = Tensor::from_host(xv, {2, 2, 7, 6}, cpu), y({2, 84}, cpu);
  flat.forward(cpu, x, y, Mode::kInfer);
  EXPECT_EQ(y.to_vector(), xv);
  check_input_gradient(flat, xv, "Flatten");
}

// ---- Dropout ----

std::vector<float> primitive_dropout(CpuBackend& cpu, const std::vector<float>& v, const Shape& shape, float drop,
                                     uint64_t seed, uint64_t counter) {
  Tensor x = Tensor::from_host(v, shape, cpu), y(shape, cpu);
  cpu.dropout(x, drop, seed, counter, y);
  return y.to_vector();
}

TEST(DropoutLayer, TrainingDrawsFreshMasksAndBackwardReusesTheLastOne) {
  CpuBackend cpu(1);
  const Shape shape = {4, 3, 5, 5};
  const int64_t n = numel(shape);
  Dropout layer(0.5f, 77);
  const std::vector<float> xv = uniform_values(70, n, -1.0f, 1.0f), dyv = uniform_values(71, n, -1.0f, 1.0f);
  Tensor x = Tensor::from_host(xv, shape, cpu), y(shape, cpu), dx(shape, cpu);

  // Forward k in training uses draws [k·n, (k + 1)·n): the masks of consecutive batches differ.
  layer.forward(cpu, x, y, Mode::kTrain);
  const std::vector<float> first = y.to_vector();
  EXPECT_EQ(first, primitive_dropout(cpu, xv, shape, 0.5f, 77, 0));
  layer.forward(cpu, x, y, Mode::kTrain);
  EXPECT_EQ(y.to_vector(), primitive_dropout(cpu, xv, shape, 0.5f, 77, n));
  EXPECT_NE(y.to_vector(), first);

  // Backward applies the last forward's mask and scale to dy: the gradient of that forward.
  Tensor dy = Tensor::from_host(dyv, shape, cpu);
  layer.backward(cpu, x, y, dy, &dx);
  EXPECT_EQ(dx.to_vector(), primitive_dropout(cpu, dyv, shape, 0.5f, 77, n));
  const std::vector<float> yv = y.to_vector(), dxv = dx.to_vector();
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_EQ(yv[i] == 0.0f, dxv[i] == 0.0f) << "element " << i << ": forward and backward masks differ";
  }
}

TEST(DropoutLayer, InferenceIsTheIdentityAndDoesNotAdvanceTheCounter) {
  CpuBackend cpu(1);
  const Shape shape = {3, 40};
  const int64_t n = numel(shape);
  Dropout layer(0.3f, 5);
  const std::vector<float> xv = uniform_values(72, n, -1.0f, 1.0f), dyv = uniform_values(73, n, -1.0f, 1.0f);
  Tensor x = Tensor::from_host(xv, shape, cpu), y(shape, cpu), dx(shape, cpu);
  layer.forward(cpu, x, y, Mode::kTrain);  // draws [0, n)
  layer.forward(cpu, x, y, Mode::kInfer);
  EXPECT_EQ(y.to_vector(), xv);
  Tensor dy = Tensor::from_host(dyv, shape, cpu);
  layer.backward(cpu, x, y, dy, &dx);
  EXPECT_EQ(dx.to_vector(), dyv) << "backward after an inference forward is the identity";
  layer.forward(cpu, x, y, Mode::kTrain);  // draws [n, 2n): inference used none
  EXPECT_EQ(y.to_vector(), primitive_dropout(cpu, xv, shape, 0.3f, 5, n));
}

TEST(DropoutLayer, ZeroProbabilityIsTheIdentityInTraining) {
  CpuBackend cpu(1);
  Dropout layer(0.0f);
  const std::vector<float> xv = uniform_values(74, 30, -1.0f, 1.0f);
  Tensor x = Tensor::from_host(xv, {3, 10}, cpu), y({3, 10}, cpu), dx({3, 10}, cpu);
  layer.forward(cpu, x, y, Mode::kTrain);
  EXPECT_EQ(y.to_vector(), xv);
  Tensor dy = Tensor::from_host(xv, {3, 10}, cpu);
  layer.backward(cpu, x, y, dy, &dx);
  EXPECT_EQ(dx.to_vector(), xv);
}

// ---- a whole network ----

// conv(2, 3×3, relu, padding 1) → max-pool 2 → conv(3, 2×2, sigmoid) → flatten → dense(3), on
// 1×5×6 inputs, against central differences of the summed cross-entropy.
class SmallConvNet {
 public:
  static constexpr int64_t kN = 3;
  SmallConvNet() {
    net.add(conv2d(2, 3, Activation::kRelu, 1, 1))
        .add(max_pool2d(2))
        .add(conv2d(3, 2, Activation::kSigmoid))
        .add(flatten())
        .add(dense(3));
  }
  CpuBackend cpu{1};
  Network net{cpu, {1, 5, 6}};
};

// Whether every first-layer pre-activation is more than `margin` from 0 and, in every pooling
// window whose maximum is positive, the maximum leads the runner-up by more than `margin`.
bool away_from_kinks(CpuBackend& cpu, Conv2d& first, const Tensor& x, float margin) {
  Conv2dParams p;
  p.pad_h = p.pad_w = 1;
  Tensor z({SmallConvNet::kN, 2, 5, 6}, cpu);
  cpu.conv2d_forward(x, first.weight(), p, z);
  cpu.channel_bias_activation(z, first.bias(), Activation::kIdentity);
  const std::vector<float> zv = z.to_vector();
  if (std::any_of(zv.begin(), zv.end(), [&](float v) { return std::abs(v) <= margin; })) return false;
  for (int64_t plane = 0; plane < SmallConvNet::kN * 2; ++plane)
    for (int64_t i = 0; i < 4; i += 2)
      for (int64_t j = 0; j < 6; j += 2) {
        std::vector<float> h;
        for (int64_t a : {0, 1})
          for (int64_t b : {0, 1}) h.push_back(std::max(zv[(plane * 5 + i + a) * 6 + j + b], 0.0f));
        std::sort(h.rbegin(), h.rend());
        if (h[0] > 0.0f && h[0] - h[1] <= margin) return false;
      }
  return true;
}

double summed_cross_entropy(CpuBackend& cpu, const Tensor& logits, const Tensor& labels) {
  Tensor stats = fresh_loss_stats(cpu);
  Tensor scratch(logits.shape(), cpu);
  cpu.softmax_cross_entropy(logits, labels, CrossEntropyArgs{}, scratch, stats);
  return stats.to_vector()[LossStats::kLossSum];
}

TEST(ConvNetworkGradient, EveryParameterGradientMatchesFiniteDifferencesOfCrossEntropy) {
  SmallConvNet c;
  CpuBackend& cpu = c.cpu;
  Tensor& params = c.net.params();
  // Weights 18 + 24 + 18, then biases 2 + 3 + 3.
  ASSERT_EQ(params.size(), 2 * 9 + 3 * 2 * 4 + 6 * 3 + 2 + 3 + 3);
  Tensor labels = Tensor::from_host({2, 0, 1}, {SmallConvNet::kN}, cpu);

  // A first-layer parameter step of ±0.01 moves each first-layer output by at most 0.01 (inputs
  // and parameters are in [−1, 1)); with a margin of 0.025 no step crosses a ReLU kink or changes
  // a pooling window's winner, so the loss is smooth along every step.
  Tensor x;
  for (uint64_t seed = 1;; seed += 2) {
    ASSERT_LT(seed, 4000u) << "no draw kept the first layer away from its kinks";
    x = Tensor::from_host(uniform_values(seed, SmallConvNet::kN * 30, -1.0f, 1.0f), {SmallConvNet::kN, 1, 5, 6}, cpu);
    params.copy_from(uniform_values(seed + 1, params.size(), -1.0f, 1.0f));
    if (away_from_kinks(cpu, dynamic_cast<Conv2d&>(c.net.layer(0)), x, 0.025f)) break;
  }

  const Tensor& logits = c.net.forward(x, Mode::kTrain);
  Tensor dlogits(logits.shape(), cpu);
  Tensor stats = fresh_loss_stats(cpu);
  cpu.softmax_cross_entropy(logits, labels, CrossEntropyArgs{}, dlogits, stats);
  c.net.backward(x, dlogits);
  const std::vector<float> analytic = c.net.grads().to_vector();

  auto loss = [&] { return summed_cross_entropy(cpu, c.net.forward(x, Mode::kTrain), labels); };
  const std::vector<double> numeric = numerical_gradient(params, 1e-2f, loss);
  expect_gradient_matches(analytic, numeric, {2e-3, 1e-2, 5e-3}, "conv network parameters");

  // Each parameter block separately, so a small error in one cannot hide in the whole norm.
  const std::pair<int64_t, int64_t> blocks[] = {{0, 18}, {18, 42}, {42, 60}, {60, 62}, {62, 65}, {65, 68}};
  for (auto [begin, end] : blocks) {
    double diff2 = 0.0, norm2 = 0.0;
    for (int64_t i = begin; i < end; ++i) {
      diff2 += std::pow(analytic[i] - numeric[i], 2);
      norm2 += numeric[i] * numeric[i];
    }
    EXPECT_GT(norm2, 1e-6) << "params [" << begin << ", " << end << ")";
    EXPECT_LE(std::sqrt(diff2), 1e-2 * std::sqrt(norm2) + 1e-4) << "params [" << begin << ", " << end << ")";
  }
}

TEST(ConvNetwork, AcceptsFlatRowsForAnImageInput) {
  SmallConvNet c;
  c.net.initialize(3, 0.5f);
  const std::vector<float> xv = uniform_values(80, SmallConvNet::kN * 30, -1.0f, 1.0f);
  Tensor image = Tensor::from_host(xv, {SmallConvNet::kN, 1, 5, 6}, c.cpu);
  Tensor flat = Tensor::from_host(xv, {SmallConvNet::kN, 30}, c.cpu);
  const std::vector<float> from_image = c.net.forward(image, Mode::kInfer).to_vector();
  EXPECT_EQ(c.net.forward(flat, Mode::kInfer).to_vector(), from_image);

  Tensor dout = Tensor::from_host(uniform_values(81, SmallConvNet::kN * 3, -1.0f, 1.0f), {SmallConvNet::kN, 3}, c.cpu);
  c.net.forward(image, Mode::kTrain);
  c.net.backward(image, dout);
  const std::vector<float> grads = c.net.grads().to_vector();
  dout.copy_from(uniform_values(81, SmallConvNet::kN * 3, -1.0f, 1.0f));  // backward used it as scratch
  c.net.forward(flat, Mode::kTrain);
  c.net.backward(flat, dout);
  EXPECT_EQ(c.net.grads().to_vector(), grads);

  Tensor wrong({SmallConvNet::kN, 29}, c.cpu);
  EXPECT_THAT(error_of([&] { c.net.forward(wrong, Mode::kInfer); }),
              HasSubstr("expected input [3, 1, 5, 6] (N × [1, 5, 6], or N × 30 flat rows), found [3, 29]"));
}

TEST(ConvNetwork, SummaryListsShapesAndParameterCounts) {
  CpuBackend cpu(1);
  Network net(cpu, {1, 28, 28});
  net.add(conv2d(32, 5, Activation::kRelu, 1, 2)).add(max_pool2d(2)).add(flatten()).add(dropout(0.5f)).add(dense(10));
  const std::string s = net.summary();
  EXPECT_THAT(s, HasSubstr("Conv2d(32, 5×5, stride 1, padding 2, relu) -> [32, 28, 28], 832 parameters"));
  EXPECT_THAT(s, HasSubstr("MaxPool2d(2×2, stride 2) -> [32, 14, 14], 0 parameters"));
  EXPECT_THAT(s, HasSubstr("Flatten -> [6272], 0 parameters"));
  EXPECT_THAT(s, HasSubstr("Dropout(0.5) -> [6272], 0 parameters"));
  EXPECT_THAT(s, HasSubstr("total " + std::to_string(832 + 62730) + " parameters"));
}

// ---- descriptions and errors ----

TEST(ConvLayers, DescribeShowsOnlyTheNonDefaultGeometry) {
  Conv2dParams p;
  p.stride_h = 2, p.pad_h = 1, p.dilation_w = 2;
  EXPECT_EQ(Conv2d(8, 3, 2, p, Activation::kSigmoid).describe(),
            "Conv2d(8, 3×2, stride 2×1, padding 1×0, dilation 1×2, sigmoid)");
  EXPECT_EQ(conv2d(4, 3)->describe(), "Conv2d(4, 3×3, stride 1)");
  EXPECT_EQ(conv2d(4, 3, Activation::kIdentity, 1, 0, 2)->describe(), "Conv2d(4, 3×3, stride 1, dilation 2)");
  EXPECT_EQ(avg_pool2d(3, 2, 1)->describe(), "AvgPool2d(3×3, stride 2, padding 1)");
  EXPECT_EQ(dropout(0.25f)->describe(), "Dropout(0.25)");
  EXPECT_EQ(dropout(0.1f)->describe(), "Dropout(0.1)");
  EXPECT_EQ(flatten()->describe(), "Flatten");
}

TEST(ConvLayerErrors, ShapeErrorsNameTheLayerAndTheExpectedAndFoundShapes) {
  CpuBackend cpu(1);
  Network flat_input(cpu, {784});
  EXPECT_THAT(error_of([&] { flat_input.add(conv2d(4, 3)); }),
              HasSubstr("Conv2d(4, 3×3, stride 1): expected a per-sample input of shape [C, H, W], found [784]"));
  EXPECT_THAT(error_of([&] { flat_input.add(max_pool2d(2)); }),
              HasSubstr("MaxPool2d(2×2, stride 2): expected a per-sample input of shape [C, H, W], found [784]"));

  Network small(cpu, {1, 4, 4});
  EXPECT_THAT(error_of([&] { small.add(conv2d(2, 5)); }),
              HasSubstr("Conv2d(2, 5×5, stride 1): the kernel does not fit the input [1, 4, 4]"));
  EXPECT_THAT(error_of([&] { small.add(conv2d(2, 3, Activation::kIdentity, 1, 0, 2)); }),
              HasSubstr("Conv2d(2, 3×3, stride 1, dilation 2): the kernel does not fit the input [1, 4, 4]"));
  EXPECT_THAT(error_of([&] { small.add(avg_pool2d(5)); }),
              HasSubstr("AvgPool2d(5×5, stride 5): the window does not fit the input [1, 4, 4]"));

  // Filters for 3 input channels given a 2-channel batch.
  Network rgb(cpu, {3, 5, 5});
  rgb.add(conv2d(4, 3));
  rgb.params();  // binds the layer's parameters
  Tensor x({2, 2, 5, 5}, cpu), y({2, 4, 3, 3}, cpu);
  EXPECT_THAT(error_of([&] { rgb.layer(0).forward(cpu, x, y, Mode::kInfer); }),
              HasSubstr("Conv2d(4, 3×3, stride 1): expected input [N, 3, H, W], found [2, 2, 5, 5]"));

  EXPECT_THAT(error_of([&] { max_pool2d(2, 2, 2); }),
              HasSubstr("MaxPool2d(2×2, stride 2, padding 2): padding must be between 0 and half the window"));
  EXPECT_THAT(error_of([&] { avg_pool2d(3, 1, 2); }),
              HasSubstr("AvgPool2d(3×3, stride 1, padding 2): padding must be between 0 and half the window"));
  EXPECT_THAT(error_of([&] { dropout(1.0f); }), HasSubstr("Dropout: the drop probability must be in [0, 1), got 1"));
  EXPECT_THAT(error_of([&] { dropout(-0.5f); }),
              HasSubstr("Dropout: the drop probability must be in [0, 1), got -0.5"));
  EXPECT_THAT(error_of([&] { conv2d(0, 3); }),
              HasSubstr("Conv2d: output channels and kernel sizes must be positive, got 0 channels of 3×3"));
  EXPECT_THAT(error_of([&] { conv2d(4, 3, Activation::kRelu, 0); }),
              HasSubstr("Conv2d(4, 3×3, stride 0, relu): strides and dilations must be positive"));
  EXPECT_THAT(error_of([&] { max_pool2d(0); }),
              HasSubstr("Pool2d: window and stride must be positive, got window 0×0"));
}

}  // namespace

// A padding near INT64_MAX (a hostile saved architecture; found by the checkpoint fuzzer) is
// refused with the message, not computed as 2·pad, which overflowed.
TEST(Pool2dChecks, HugePaddingIsRefusedWithoutOverflow) {
  Pool2dParams p;
  p.window_h = 2, p.window_w = 2, p.stride_h = 1, p.stride_w = 1;
  p.pad_h = INT64_MAX, p.pad_w = 0;
  EXPECT_THROW(Pool2d{p}, cudl::Error);
  p.pad_h = 1, p.pad_w = INT64_MAX;
  EXPECT_THROW(Pool2d{p}, cudl::Error);
}

// A saved architecture with a convolution's padding near 2^63 (the checkpoint fuzzer's second
// finding): its output size is an error naming the window, never a signed overflow; sizes whose
// arithmetic only passes 2^63 on the way still come out right.
TEST(WindowOutputSize, HugePaddingOrDilationIsAnErrorWithoutOverflow) {
  EXPECT_THAT(cudl::testing::error_of([] { window_output_size(28, 3, 1, INT64_MAX, 1); }),
              ::testing::HasSubstr("padded by 9223372036854775807 on each side: the output size does not fit"));
  // A padding and a dilation that cancel: 28 + 2·(2^63 − 1) − 2·(2^63 − 1) − 1, then + 1.
  EXPECT_EQ(window_output_size(28, 3, 1, INT64_MAX, INT64_MAX), 28);
  EXPECT_EQ(window_output_size(28, 3, 1, 0, INT64_MAX), 0);  // a dilated kernel wider than the input
  const __int128 span = __int128{10} + 2 * __int128{INT64_MAX / 2} - 3;  // past 2^63, then divided back
  EXPECT_EQ(window_output_size(10, 3, 4, INT64_MAX / 2, 1), static_cast<int64_t>(span / 4 + 1));
  EXPECT_EQ(window_output_size(28, 5, 1, 2, 1), 28);
  EXPECT_EQ(window_output_size(5, 7, 1, 0, 1), 0);
}

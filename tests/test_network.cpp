#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "cudl/cpu_backend.hpp"
#include "cudl/error.hpp"
#include "cudl/network.hpp"
#include "test_support.hpp"

using namespace cudl;
using cudl::testing::error_of;
using ::testing::HasSubstr;

TEST(Network, LaysOutDecayedWeightsBeforeBiases) {
  CpuBackend cpu(1);
  Network net(cpu, {3});
  net.add(dense(4, Activation::kRelu)).add(dense(2));
  // W1 3×4 = 12, W2 4×2 = 8 → 20 decayed; then b1 (4) and b2 (2).
  EXPECT_EQ(net.params().size(), 26);
  EXPECT_EQ(net.decayed_params(), 20);
  auto& d1 = dynamic_cast<Dense&>(net.layer(0));
  auto& d2 = dynamic_cast<Dense&>(net.layer(1));
  EXPECT_EQ(d1.weight().data(), net.params().data());
  EXPECT_EQ(d2.weight().data(), net.params().data() + 12);
  EXPECT_EQ(d1.bias().data(), net.params().data() + 20);
  EXPECT_EQ(d2.bias().data(), net.params().data() + 24);
  EXPECT_THAT(error_of([&] { net.layer(2); }), HasSubstr("Network::layer: no layer 2 in a network of 2"));
  EXPECT_THAT(error_of([&] { net.layer(-1); }), HasSubstr("no layer -1"));
}

TEST(Network, InitializeDrawsScaledNormalWeightsAndZeroBiases) {
  CpuBackend cpu(2);
  Network net(cpu, {784});
  net.add(dense(800, Activation::kRelu)).add(dense(10));
  net.initialize(2014, 0.05f);
  const auto p = net.params().to_vector();
  const int64_t nw = net.decayed_params();
  double sum = 0, sum2 = 0;
  for (int64_t i = 0; i < nw; ++i) {
    sum += p[i];
    sum2 += static_cast<double>(p[i]) * p[i];
  }
  EXPECT_NEAR(sum / nw, 0.0, 5 * 0.05 / std::sqrt(nw));
  EXPECT_NEAR(std::sqrt(sum2 / nw), 0.05, 0.0005);
  for (size_t i = nw; i < p.size(); ++i) ASSERT_EQ(p[i], 0.0f);
  Network again(cpu, {784});
  again.add(dense(800, Activation::kRelu)).add(dense(10));
  again.initialize(2014, 0.05f);
  EXPECT_EQ(again.params().to_vector(), p);  // same seed, same weights
}

TEST(Network, ForwardComputesTheAffineReluStack) {
  CpuBackend cpu(1);
  Network net(cpu, {2});
  net.add(dense(1, Activation::kRelu));
  net.params().copy_from(std::vector<float>{1.0f, -1.0f, 0.5f});  // W = [1; −1], b = 0.5
  Tensor x = Tensor::from_host({3, 1, 1, 3}, {2, 2}, cpu);
  // Row 0: 3 − 1 + 0.5 = 2.5; row 1: 1 − 3 + 0.5 = −1.5 → 0.
  EXPECT_EQ(net.forward(x, Mode::kInfer).to_vector(), (std::vector<float>{2.5f, 0.0f}));
}

TEST(Network, ShapeErrorsNameLayerAndShapes) {
  CpuBackend cpu(1);
  Network conv_like(cpu, {1, 28, 28});
  const std::string add_error = error_of([&] { conv_like.add(dense(10)); });
  EXPECT_THAT(add_error, HasSubstr("Dense(10)"));
  EXPECT_THAT(add_error, HasSubstr("[1, 28, 28]"));
  Network net(cpu, {784});
  net.add(dense(10));
  Tensor wrong({5, 100}, cpu);
  const std::string forward_error = error_of([&] { net.forward(wrong, Mode::kInfer); });
  EXPECT_THAT(forward_error, HasSubstr("expected input [5, 784]"));
  EXPECT_THAT(forward_error, HasSubstr("found [5, 100]"));
  EXPECT_THROW(net.add(dense(3)), Error);  // built: no more layers
}

// bench_dbn --layers 784,5033370,916220332710,10 crashed (the flat parameter buffer's byte count
// wrapped to 264 bytes): now the allocation is refused with the shape named.
TEST(Network, AParameterCountBeyondMemoryIsAnErrorNotACrash) {
  CpuBackend cpu(1);
  Network net(cpu, {784});
  net.add(dense(5033370, Activation::kRelu)).add(dense(916220332710, Activation::kRelu)).add(dense(10));
  EXPECT_THAT(cudl::testing::error_of([&] { net.initialize(1, 0.05f); }), HasSubstr("floats exceed any memory"));
  Network worse(cpu, {1 << 20});
  worse.add(dense(int64_t{1} << 42)).add(dense(int64_t{1} << 42));
  EXPECT_THAT(cudl::testing::error_of([&] { worse.initialize(1, 0.05f); }), HasSubstr("64-bit"));
}

TEST(Network, SummaryListsLayersAndParameterCounts) {
  CpuBackend cpu(1);
  Network net(cpu, {784});
  net.add(dense(800, Activation::kRelu)).add(dense(10));
  const std::string s = net.summary();
  EXPECT_THAT(s, HasSubstr("Dense(800, relu) -> [800], 628000 parameters"));
  EXPECT_THAT(s, HasSubstr("Dense(10) -> [10], 8010 parameters"));
  EXPECT_THAT(s, HasSubstr("total 636010 parameters"));
}

// Between two Dense layers backward applies the lower layer's activation derivative inside the
// upper layer's input-gradient product (Backend::gemm_activation_backward; on the CPU, only the
// units a ReLU keeps for some row). The gradients are the bits of the layer-by-layer network with
// the activations as separate layers, where nothing is fused; here with half the first layer's
// units silent for the whole batch, sparse inputs, ReLU, sigmoid and an identity output.
TEST(Network, FusedDenseBackwardGivesTheLayerByLayerGradients) {
  CpuBackend cpu(2);
  const int64_t batch = 64, in = 300;
  Network fused(cpu, {in});
  fused.add(dense(200, Activation::kRelu)).add(dense(150, Activation::kRelu)).add(dense(100, Activation::kSigmoid));
  fused.add(dense(10));
  Network separate(cpu, {in});
  separate.add(dense(200)).add(relu()).add(dense(150)).add(relu()).add(dense(100)).add(sigmoid()).add(dense(10));
  fused.initialize(7, 0.1f);
  auto p = fused.params().to_vector();
  const int64_t nw = fused.decayed_params();
  for (int64_t j = 0; j < 200; j += 2) p[nw + j] = -100.0f;  // b1: every other first-layer unit never fires
  fused.params().copy_from(p);
  separate.params().copy_from(p);
  ASSERT_EQ(separate.params().size(), fused.params().size());
  auto xv = cudl::testing::uniform_values(8, batch * in, -1.0f, 1.0f);
  for (size_t i = 0; i < xv.size(); ++i)
    if (i % 3 != 0) xv[i] = 0.0f;
  const Tensor x = Tensor::from_host(xv, {batch, in}, cpu);
  const auto dv = cudl::testing::uniform_values(9, batch * 10, -1.0f, 1.0f);
  fused.forward(x, Mode::kTrain);
  separate.forward(x, Mode::kTrain);
  Tensor d1 = Tensor::from_host(dv, {batch, 10}, cpu), d2 = Tensor::from_host(dv, {batch, 10}, cpu);
  fused.backward(x, d1);
  separate.backward(x, d2);
  const auto g1 = fused.grads().to_vector(), g2 = separate.grads().to_vector();
  ASSERT_EQ(g1.size(), g2.size());
  EXPECT_EQ(0, std::memcmp(g1.data(), g2.data(), g1.size() * sizeof(float)));
  int64_t nonzero = 0;
  for (float g : g1) nonzero += g != 0.0f;
  EXPECT_GT(nonzero, static_cast<int64_t>(g1.size() / 3));  // the comparison is not of zeros
}

namespace {

// A layer that passes its input through and spends a known time in each pass.
class Sleeps final : public Layer {
 public:
  Sleeps(int forward_ms, int backward_ms) : forward_ms_(forward_ms), backward_ms_(backward_ms) {}
  std::string describe() const override { return "Sleeps(" + std::to_string(forward_ms_) + ")"; }
  Shape output_shape(const Shape& input) const override { return input; }
  void forward(Backend& backend, const Tensor& x, Tensor& y, Mode) override {
    y.copy_from(x);
    (void)backend;
    std::this_thread::sleep_for(std::chrono::milliseconds(forward_ms_));
  }
  void backward(Backend& backend, const Tensor&, const Tensor&, Tensor& dy, Tensor* dx) override {
    if (dx != nullptr) dx->copy_from(dy);
    (void)backend;
    std::this_thread::sleep_for(std::chrono::milliseconds(backward_ms_));
  }

 private:
  int forward_ms_, backward_ms_;
};

}  // namespace

// Each pass's time goes to the layer that spent it, forward and backward apart (on the CPU the
// marks read the host's clock); the totals restart when timing is turned on again, and a timed
// network is not capturable.
TEST(Network, LayerTimingGivesEachLayerItsOwnTime) {
  CpuBackend cpu(1);
  Network net(cpu, {3});
  net.add(std::make_unique<Sleeps>(30, 5)).add(dense(2)).add(std::make_unique<Sleeps>(5, 30));
  net.initialize(1, 0.1f);
  const Tensor x = Tensor::from_host(std::vector<float>(6, 0.5f), {2, 3}, cpu);
  Tensor dout({2, 2}, cpu);
  EXPECT_TRUE(net.layer_times().empty());  // never turned on
  EXPECT_TRUE(net.capturable());
  net.set_layer_timing(true);
  EXPECT_FALSE(net.capturable());
  for (int i = 0; i < 2; ++i) {
    net.forward(x, Mode::kTrain);
    cpu.fill(dout, 1.0f);
    net.backward(x, dout);
  }
  net.forward(x, Mode::kInfer);
  std::vector<LayerTime> t = net.layer_times();
  ASSERT_EQ(t.size(), 3u);
  EXPECT_EQ(t[0].layer, "Sleeps(30)");
  EXPECT_EQ(t[1].layer, net.layer(1).describe());
  for (const LayerTime& l : t) {
    EXPECT_EQ(l.forwards, 3) << l.layer;
    EXPECT_EQ(l.backwards, 2) << l.layer;
  }
  // Sleeping is at least as long as asked; the dense layer of 2×3×2 products takes microseconds.
  EXPECT_GE(t[0].forward_ms, 90.0);
  EXPECT_GE(t[0].backward_ms, 10.0);
  EXPECT_GE(t[2].forward_ms, 15.0);
  EXPECT_GE(t[2].backward_ms, 60.0);
  EXPECT_LT(t[1].forward_ms + t[1].backward_ms, t[0].backward_ms);
  EXPECT_GT(t[0].forward_ms, t[2].forward_ms);
  EXPECT_GT(t[2].backward_ms, t[0].backward_ms);

  net.set_layer_timing(false);  // off: the totals are kept, passes no longer add to them
  net.forward(x, Mode::kInfer);
  EXPECT_TRUE(net.capturable());
  EXPECT_EQ(net.layer_times()[0].forwards, 3);
  net.set_layer_timing(true);  // on again: from zero
  EXPECT_EQ(net.layer_times()[0].forwards, 0);
  EXPECT_EQ(net.layer_times()[0].forward_ms, 0.0);
  net.forward(x, Mode::kInfer);
  EXPECT_EQ(net.layer_times()[0].forwards, 1);
}

// Marks of the default (host-clock) kind: elapsed time between two, and clear errors for marks
// never set.
TEST(Network, TimeMarksMeasureTheQueueAndRefuseUnsetMarks) {
  CpuBackend cpu(1);
  auto a = cpu.create_time_mark(), b = cpu.create_time_mark();
  EXPECT_THAT(error_of([&] { cpu.elapsed_ms(*a, *b); }), HasSubstr("a time mark that was never set"));
  cpu.mark(*a);
  std::this_thread::sleep_for(std::chrono::milliseconds(10));
  cpu.mark(*b);
  EXPECT_GE(cpu.elapsed_ms(*a, *b), 10.0);
  EXPECT_LE(cpu.elapsed_ms(*b, *b), 0.0);
}

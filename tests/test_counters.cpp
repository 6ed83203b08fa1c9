// Device counters (make_counter) and the primitives' counter overloads, on the CPU: they must
// compute exactly what the host-argument forms compute, since a captured step (a CUDA graph)
// replays them. Capture itself needs a GPU: tests/test_cuda_training.cpp.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "cudl/conv_layers.hpp"
#include "cudl/cpu_backend.hpp"
#include "cudl/network.hpp"
#include "test_support.hpp"

using namespace cudl;
using cudl::testing::error_of;
using cudl::testing::fresh_loss_stats;
using cudl::testing::uniform_values;
using ::testing::HasSubstr;

TEST(Counter, HoldsSixtyFourBitValues) {
  CpuBackend cpu(1);
  Tensor c = make_counter(cpu, 0xFFFFFFFFull);
  EXPECT_EQ(read_counter(c), 0xFFFFFFFFull);
  cpu.add_to_counter(c, 1);  // carries into the high word
  EXPECT_EQ(read_counter(c), 0x100000000ull);
  cpu.set_counter(c, 7);
  cpu.add_to_counter(c, 64);
  EXPECT_EQ(read_counter(c), 71u);
}

TEST(Counter, SampleRowsFromACounterDrawsTheSameRows) {
  CpuBackend cpu(1);
  const int64_t rows = 37, cols = 5, batch = 8;
  const Tensor x = Tensor::from_host(uniform_values(1, rows * cols, -1, 1), {rows, cols}, cpu);
  std::vector<float> labels(rows);
  for (int64_t r = 0; r < rows; ++r) labels[r] = static_cast<float>(r);
  const Tensor y = Tensor::from_host(labels, {rows}, cpu);
  Tensor bx1({batch, cols}, cpu), by1({batch}, cpu), bx2({batch, cols}, cpu), by2({batch}, cpu);
  for (uint64_t first : {0ull, 8ull, 1000003ull, 0xFFFFFFFFull}) {
    cpu.sample_rows(x, y, 2014, first, bx1, by1);
    const Tensor counter = make_counter(cpu, first);
    cpu.sample_rows(x, y, 2014, counter, bx2, by2);
    EXPECT_EQ(bx1.to_vector(), bx2.to_vector()) << "first draw " << first;
    EXPECT_EQ(by1.to_vector(), by2.to_vector()) << "first draw " << first;
  }
}

// The RBM's sampling pass reads its step's first counter from the device and adds the draw's
// offset within the step: the same states as the host counter counter + offset, across 2^32 and
// modulo 2^64.
TEST(Counter, BiasActivationSampleFromACounterDrawsTheSameStates) {
  CpuBackend cpu(2);
  const int64_t rows = 9, cols = 13;
  const Tensor bias = Tensor::from_host(uniform_values(2, cols, -1, 1), {cols}, cpu);
  const std::vector<float> pre = uniform_values(3, rows * cols, -2, 2);
  const uint64_t c0s[] = {0ull, 0xFFFFFFF0ull, ~0ull - 5};
  const uint64_t offsets[] = {0ull, 117ull, 0ull - 40};
  for (Units units : {Units::kBernoulli, Units::kNoisyRelu, Units::kGaussian})
    for (uint64_t c0 : c0s)
      for (uint64_t offset : offsets) {
        Tensor y1 = Tensor::from_host(pre, {rows, cols}, cpu), s1({rows, cols}, cpu);
        Tensor y2 = Tensor::from_host(pre, {rows, cols}, cpu), s2({rows, cols}, cpu);
        cpu.bias_activation_sample(y1, bias, Activation::kRelu, units, 11, c0 + offset, s1);
        const Tensor counter = make_counter(cpu, c0);
        cpu.bias_activation_sample(y2, bias, Activation::kRelu, units, 11, counter, offset, s2);
        EXPECT_EQ(y1.to_vector(), y2.to_vector());
        EXPECT_EQ(s1.to_vector(), s2.to_vector()) << to_string(units) << " counter " << c0 << " offset " << offset;
        EXPECT_EQ(read_counter(counter), c0) << "the draw only reads the counter";
      }
}

TEST(Counter, SoftmaxCrossEntropyRecordsTheCountersStep) {
  CpuBackend cpu(1);
  const float inf = std::numeric_limits<float>::infinity();
  const Tensor logits = Tensor::from_host({0.0f, inf, 1.0f, 2.0f}, {2, 2}, cpu);  // row 0 is not finite
  const Tensor labels = Tensor::from_host({0.0f, 1.0f}, {2}, cpu);
  Tensor d({2, 2}, cpu), stats = fresh_loss_stats(cpu);
  CrossEntropyArgs args;
  args.step = 3;  // ignored: the counter holds the step
  const Tensor step = make_counter(cpu, 41);
  cpu.softmax_cross_entropy(logits, labels, args, step, d, stats);
  const std::vector<float> st = stats.to_vector();
  EXPECT_EQ(st[LossStats::kBadStep], 41.0f);
  // The same batch through the host form records args.step, and the results are otherwise equal.
  Tensor d2({2, 2}, cpu), stats2 = fresh_loss_stats(cpu);
  cpu.softmax_cross_entropy(logits, labels, args, d2, stats2);
  EXPECT_EQ(stats2.to_vector()[LossStats::kBadStep], 3.0f);
  const std::vector<float> a = d.to_vector(), b = d2.to_vector();
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(a[i] == b[i] || (std::isnan(a[i]) && std::isnan(b[i]))) << i;
}

TEST(Counter, ShapesAndBackendsAreChecked) {
  CpuBackend cpu(1);
  Tensor wrong({3}, cpu);
  EXPECT_THAT(error_of([&] { cpu.add_to_counter(wrong, 1); }), HasSubstr("counter (a tensor from make_counter)"));
  EXPECT_THAT(error_of([&] { read_counter(wrong); }), HasSubstr("expected a counter"));
  Tensor y({2, 3}, cpu), bias({3}, cpu), states({2, 3}, cpu);
  EXPECT_THAT(
      error_of([&] { cpu.bias_activation_sample(y, bias, Activation::kRelu, Units::kBernoulli, 1, wrong, 0, states); }),
      HasSubstr("counter (a tensor from make_counter)"));
}

TEST(Capture, TheCpuBackendSaysItCannotCapture) {
  CpuBackend cpu(1);
  EXPECT_FALSE(cpu.can_capture());
  EXPECT_THAT(error_of([&] { cpu.begin_capture(); }), HasSubstr("cannot capture work"));
}

namespace {

// A layer whose work depends on host-side state that changes from call to call.
class HostStateLayer final : public Layer {
 public:
  std::string describe() const override { return "HostState"; }
  Shape output_shape(const Shape& input) const override { return input; }
  void forward(Backend&, const Tensor& x, Tensor& y, Mode) override { y.copy_from(x); }
  void backward(Backend&, const Tensor&, const Tensor&, Tensor& dy, Tensor* dx) override {
    if (dx != nullptr) dx->copy_from(dy);
  }
  bool capturable() const override { return false; }
};

}  // namespace

TEST(Capture, NetworksKnowWhetherTheirLayersCanBeReplayed) {
  CpuBackend cpu(1);
  Network mlp(cpu, {8});
  mlp.add(dense(4, Activation::kRelu)).add(dense(2));
  EXPECT_TRUE(mlp.capturable());
  // Dropout's mask counter and Conv2d's plans live where a captured step can use them.
  Network lenet_like(cpu, {1, 8, 8});
  lenet_like.add(conv2d(2, 3, Activation::kRelu)).add(max_pool2d(2)).add(flatten()).add(dropout(0.5f)).add(dense(2));
  EXPECT_TRUE(lenet_like.capturable());
  Network with_host_state(cpu, {8});
  with_host_state.add(dense(4, Activation::kRelu)).add(std::make_unique<HostStateLayer>()).add(dense(2));
  EXPECT_FALSE(with_host_state.capturable());
  EXPECT_THAT(error_of([&] { mlp.reserve(0); }), HasSubstr("batch must be positive"));
}

// The counter lives in the backend's memory (so a captured step advances it): counters() reads
// it back, a value written through counters() (a loaded checkpoint) is used by the next forward,
// and the counter overload of the primitive reads counter + offset when it runs.
TEST(DropoutLayer, TheCounterIsTheBackendsAndALoadedValueTakesEffect) {
  CpuBackend cpu(1);
  const Shape shape = {2, 30};
  const int64_t n = numel(shape);
  Dropout layer(0.5f, 9);
  const std::vector<float> xv = uniform_values(74, n, -1.0f, 1.0f);
  Tensor x = Tensor::from_host(xv, shape, cpu), y(shape, cpu);
  auto dropped = [&](int64_t counter) {  // the primitive with the counter as a value
    Tensor out(shape, cpu);
    cpu.dropout(x, 0.5f, 9, static_cast<uint64_t>(counter), out);
    return out.to_vector();
  };
  layer.forward(cpu, x, y, Mode::kTrain);
  const std::vector<float> first = y.to_vector();
  layer.forward(cpu, x, y, Mode::kTrain);
  auto counters = layer.counters();
  ASSERT_EQ(counters.size(), 1u);
  EXPECT_EQ(*counters[0].second, static_cast<uint64_t>(2 * n));
  *counters[0].second = 0;  // as load_checkpoint writes it
  layer.forward(cpu, x, y, Mode::kTrain);
  EXPECT_EQ(y.to_vector(), first);
  EXPECT_EQ(*layer.counters()[0].second, static_cast<uint64_t>(n));

  Tensor counter = make_counter(cpu, 3 * static_cast<uint64_t>(n)), z(shape, cpu);
  cpu.dropout(x, 0.5f, 9, counter, uint64_t{0} - 2 * static_cast<uint64_t>(n), z);  // reads 3n − 2n = n
  EXPECT_EQ(z.to_vector(), dropped(n));
  Tensor wrong({3}, cpu);
  EXPECT_THAT(error_of([&] { cpu.dropout(x, 0.5f, 9, wrong, 0, z); }), HasSubstr("counter"));
}

// Data-parallel shares: two layers set to ranks 0 and 1 of 2, each given half of a batch, draw the
// masks one layer draws for the whole batch, forward and backward, and both counters advance by
// the whole batch (what the ranks' checkpoints record). A rank outside the ranks is refused.
TEST(DropoutLayer, EachRankDrawsItsRowsShareOfTheGlobalBatchsMasks) {
  CpuBackend cpu(1);
  const int64_t rows = 6, cols = 10, half = rows / 2 * cols;
  const std::vector<float> xv = uniform_values(75, rows * cols, -1.0f, 1.0f);
  const std::vector<float> dv = uniform_values(76, rows * cols, -1.0f, 1.0f);
  Dropout whole(0.5f, 9);
  Tensor x = Tensor::from_host(xv, {rows, cols}, cpu), y({rows, cols}, cpu);
  Tensor dy = Tensor::from_host(dv, {rows, cols}, cpu), dx({rows, cols}, cpu);
  for (int step = 0; step < 2; ++step) {  // the second step starts past both ranks' first masks
    whole.forward(cpu, x, y, Mode::kTrain);
    whole.backward(cpu, x, y, dy, &dx);
  }
  Dropout rank[2] = {Dropout(0.5f, 9), Dropout(0.5f, 9)};
  std::vector<float> ys, dxs;
  for (int r = 0; r < 2; ++r) {
    rank[r].set_shares(r, 2);
    Tensor xr = Tensor::from_host(std::vector<float>(xv.begin() + r * half, xv.begin() + (r + 1) * half),
                                  {rows / 2, cols}, cpu);
    Tensor yr({rows / 2, cols}, cpu), dxr({rows / 2, cols}, cpu);
    for (int step = 0; step < 2; ++step) {
      rank[r].forward(cpu, xr, yr, Mode::kTrain);
      Tensor dyr = Tensor::from_host(std::vector<float>(dv.begin() + r * half, dv.begin() + (r + 1) * half),
                                     {rows / 2, cols}, cpu);
      rank[r].backward(cpu, xr, yr, dyr, &dxr);
    }
    for (float v : yr.to_vector()) ys.push_back(v);
    for (float v : dxr.to_vector()) dxs.push_back(v);
    EXPECT_EQ(*rank[r].counters()[0].second, static_cast<uint64_t>(2 * rows * cols)) << "rank " << r;
  }
  EXPECT_EQ(ys, y.to_vector());
  EXPECT_EQ(dxs, dx.to_vector());
  EXPECT_THAT(error_of([&] { rank[0].set_shares(2, 2); }), HasSubstr("rank 2 is not one of 2 ranks"));
  Network net(cpu, {cols});
  EXPECT_THAT(error_of([&] { net.set_shares(0, 0); }), HasSubstr("rank 0 is not one of 0 ranks"));
}

// Training in Precision::kBf16 on both devices (issue 20): small networks trained by CpuBackend(2,
// kBf16) and by CudaBackend with options.precision = kBf16 from the same parameters, the GPU's
// steps eager and captured, stay together (the products' parity: test_cuda_parity_bf16.cpp).
// Skipped, with the reason, without a usable GPU.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>
#include <vector>

#include "cudl/conv_layers.hpp"
#include "cudl/cpu_backend.hpp"
#include "cudl/cuda_backend.hpp"
#include "cudl/device.hpp"
#include "cudl/network.hpp"
#include "cudl/rng.hpp"
#include "cudl/trainer.hpp"
#include "test_support.hpp"
#include "tolerance.hpp"

using namespace cudl;
using cudl::testing::close;

namespace {

class CudaBf16Training : public ::testing::Test {
 protected:
  void SetUp() override {
    const GpuProbe probe = probe_gpu();
    if (!probe.usable) GTEST_SKIP() << "no usable GPU: " << probe.reason;
    BackendOptions options;
    options.precision = Precision::kBf16;
    gpu_ = std::make_unique<CudaBackend>(options);
  }
  CudaBackend& gpu() { return *gpu_; }

  CpuBackend cpu{2, Precision::kBf16};
  std::unique_ptr<CudaBackend> gpu_;  // set by SetUp when a GPU is usable
};

struct Trained {
  std::vector<EpochReport> reports;
  std::vector<float> start, params;
};

// ‖(a − start) − (b − start)‖ / ‖b − start‖: how far apart two runs' updates of the same
// starting parameters are.
double update_distance(const Trained& a, const Trained& b) {
  double diff2 = 0.0, ref2 = 0.0;
  for (size_t i = 0; i < b.params.size() && a.params.size() == b.params.size(); ++i) {
    const double da = static_cast<double>(a.params[i]) - a.start[i], db = static_cast<double>(b.params[i]) - b.start[i];
    diff2 += (da - db) * (da - db);
    ref2 += db * db;
  }
  return a.params.size() == b.params.size() && ref2 > 0.0 ? std::sqrt(diff2 / ref2)
                                                          : std::numeric_limits<double>::infinity();
}

// `net` (built on `backend`) from the parameters `start` (or, if null, initialized with seed 3)
// trained with the 2014 run's step (Nesterov momentum 0.9, L2 1e-4, softmax cross-entropy) at
// learning rate 0.05 for 2 epochs of rows / 32 minibatches on x (rows × features) and y.
Trained train_net(Backend& backend, Network& net, const std::vector<float>& x, const std::vector<float>& y,
                  int64_t rows, StepLaunch launch, const std::vector<float>* start) {
  net.initialize(3, 0.3f);
  if (start != nullptr) net.params().copy_from(*start);  // the GPU's normal draws may differ in an ulp
  Trained t;
  t.start = net.params().to_vector();
  const Tensor xt = Tensor::from_host(x, {rows, static_cast<int64_t>(x.size()) / rows}, backend);
  const Tensor yt = Tensor::from_host(y, {rows}, backend);
  TrainConfig config;
  config.epochs = 2;
  config.batch = 32;
  config.learn_rate = 0.05f;
  config.launch = launch;
  t.reports = train(net, xt, yt, config);
  t.params = net.params().to_vector();
  return t;
}

// 8 → 32 (ReLU) → 16 (ReLU) → 2 on the blobs, 20 steps.
Trained train_dense(Backend& backend, StepLaunch launch, const std::vector<float>* start) {
  const cudl::testing::Blobs data{320};
  Network net(backend, {8});
  net.add(dense(32, Activation::kRelu)).add(dense(16, Activation::kRelu)).add(dense(2));
  return train_net(backend, net, data.x, data.y, data.rows, launch, start);
}

// 1×8×8 images of brightness +0.5 (class 1) or −0.5 (class 0) plus N(0, 0.5²) noise, through
// conv 3×3 (4 filters, sigmoid) → average pool 2 → conv 3×3 stride 2 (8 filters, sigmoid) → dense 2;
// 16 steps. Smooth units: a rounding difference cannot flip a ReLU or a pooling winner.
Trained train_conv(Backend& backend, StepLaunch launch, const std::vector<float>* start) {
  const int64_t rows = 256;
  std::vector<float> x, y;
  for (int64_t r = 0; r < rows; ++r) {
    y.push_back(static_cast<float>(r % 2));
    for (int64_t i = 0; i < 64; ++i) {
      const rng::Philox4 b = rng::bits(9, 8, static_cast<uint64_t>(r * 64 + i));
      x.push_back((r % 2 == 1 ? 0.5f : -0.5f) + 0.5f * rng::normal(b.v[0], b.v[1]));
    }
  }
  Network net(backend, {1, 8, 8});
  net.add(conv2d(4, 3, Activation::kSigmoid, 1, 1))
      .add(avg_pool2d(2))
      .add(conv2d(8, 3, Activation::kSigmoid, 2, 1))
      .add(flatten())
      .add(dense(2));
  return train_net(backend, net, x, y, rows, launch, start);
}

// The GPU in bf16 trains as the CPU in bf16 does, its steps captured (kAuto, where the network
// can be captured) or eager. Only the order of the fp32 sums differs between the devices, which
// tips a product's rounding to bf16 in a few elements (by one bf16 step) and moves the run a
// little. Measured on the CPU, with every fp32 sum of the bf16 emulation multiplied by
// (1 + ε·u) before its rounding, u uniform in [-1, 1] (the stand-in for another order; ε = 1e-7 and
// 1e-5 over 12 draws, 1e-6 over 40): the parameters' updates moved by ≤ 4.1e-4 (dense) and ≤ 1.1e-3
// (conv) relative L2, each epoch's loss by ≤ 1.7e-3 relative (the dense network's second epoch,
// whose loss is 8e-4). Held to 3e-3 (updates) and 5e-3 (loss). (With ReLU and max pooling the conv
// network's updates jumped to 3.5e-3 in 5 draws of 40: a flipped unit or pooling winner.) Products
// in fp32 instead of bf16 move the dense network's updates by 6.8e-3, outside the bound, but the
// conv network's by only 2.4e-3: the primitive tests (test_cuda_parity_bf16.cpp) are the sharp
// ones. A captured step replays the eager step's kernels on the same data: the same numbers (the
// loss statistics' atomic sums aside). *captured says whether kAuto captured the steps.
void expect_trains_like_the_cpu(CpuBackend& cpu, CudaBackend& gpu,
                                Trained (*run)(Backend&, StepLaunch, const std::vector<float>*), const char* what,
                                bool* captured_steps) {
  const Trained c = run(cpu, StepLaunch::kEager, nullptr);
  const Trained eager = run(gpu, StepLaunch::kEager, &c.start), graph = run(gpu, StepLaunch::kAuto, &c.start);
  ASSERT_EQ(c.reports.size(), 2u) << what;
  ASSERT_EQ(eager.reports.size(), 2u) << what;
  ASSERT_EQ(graph.reports.size(), 2u) << what;
  *captured_steps = graph.reports[0].captured;
  EXPECT_LT(c.reports[1].loss, c.reports[0].loss) << what << ": the CPU's loss did not fall";
  for (const Trained* g : {&eager, &graph}) {
    const bool captured = g->reports[0].captured;
    for (size_t e = 0; e < 2; ++e)
      EXPECT_TRUE(close(g->reports[e].loss, c.reports[e].loss, 0.0, 5e-3))
          << what << (captured ? ", captured," : "") << " epoch " << e + 1 << " loss: gpu " << g->reports[e].loss
          << ", cpu " << c.reports[e].loss;
    EXPECT_LE(update_distance(*g, c), 3e-3) << what << (captured ? ", captured" : "");
    std::printf("%s%s: updates %.3g from the cpu's; epoch 2 loss gpu %.6f, cpu %.6f\n", what,
                captured ? " (captured)" : "", update_distance(*g, c), g->reports[1].loss, c.reports[1].loss);
  }
  if (graph.reports[0].captured) {
    for (size_t e = 0; e < 2; ++e)
      EXPECT_TRUE(close(graph.reports[e].loss, eager.reports[e].loss, 0.0, 1e-6))
          << what << " epoch " << e + 1 << " loss: captured " << graph.reports[e].loss << ", eager "
          << eager.reports[e].loss;
    EXPECT_LE(update_distance(graph, eager), 1e-6) << what << ": captured against eager";
  }
}

TEST_F(CudaBf16Training, DenseNetworkTrainsLikeTheCpu) {
  bool captured = false;
  expect_trains_like_the_cpu(cpu, gpu(), train_dense, "dense network", &captured);
  EXPECT_TRUE(captured) << "a Dense network's steps should be captured on a GPU";
}

// Eager either way for now (Conv2d is not capturable: cuDNN plans are made on first use).
TEST_F(CudaBf16Training, ConvNetworkTrainsLikeTheCpu) {
  bool captured = false;
  expect_trains_like_the_cpu(cpu, gpu(), train_conv, "conv network", &captured);
}

}  // namespace

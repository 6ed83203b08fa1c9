// End to end on the real MNIST digits (the 10,000-image t10k set in ../shared/data/mnist, split
// 6,700 / 3,300 by the 2014 rule): examples/mnist_lenet's network (conv 5×5 ×20 → max-pool →
// conv 5×5 ×50 → max-pool → dense 500 → dropout 0.5 → dense 10) trained for 2 epochs with the
// bench_dbn loop at lr 0.05. Measured on the 2-core development machine: 97.2% test accuracy,
// about 1.5 s per epoch. The GPU variant is skipped, with the reason, without a usable GPU.
// In Precision::kBf16 (issue 20) the same two epochs must land within half a point of fp32's
// accuracy, on each device.
#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <string>

#include "cudl/conv_layers.hpp"
#include "cudl/cpu_backend.hpp"
#include "cudl/data.hpp"
#include "cudl/device.hpp"
#include "cudl/metrics.hpp"
#include "cudl/trainer.hpp"
#include "test_support.hpp"

using namespace cudl;

namespace {

// Trains the LeNet-style network on `backend` and returns the test accuracy.
double lenet_accuracy(Backend& backend) {
  const InMemoryDataset data = load_idx_dataset(cudl::testing::shared_mnist_dir(), "MNIST");
  const Split split = train_test_split(data, 0.33, 2014);
  const Tensor x = Tensor::from_host(split.train.x, {split.train.rows, 784}, backend);
  const Tensor y = Tensor::from_host(split.train.y, {split.train.rows}, backend);
  const Tensor x_test = Tensor::from_host(split.test.x, {split.test.rows, 784}, backend);
  Network net(backend, {1, 28, 28});
  net.add(conv2d(20, 5, Activation::kRelu))
      .add(max_pool2d(2))
      .add(conv2d(50, 5, Activation::kRelu))
      .add(max_pool2d(2))
      .add(flatten())
      .add(dense(500, Activation::kRelu))
      .add(dropout(0.5f, 2014))
      .add(dense(10));
  net.initialize(2014, 0.05f);
  TrainConfig cfg;
  cfg.epochs = 2;
  cfg.learn_rate = 0.05f;
  const auto reports = train(net, x, y, cfg);
  EXPECT_EQ(reports.size(), 2u);
  EXPECT_LT(reports.back().loss, reports.front().loss);
  const auto report = classification_report(to_labels(split.test.y), predict(net, x_test), 10);
  std::printf("%s: test accuracy %.4f, epoch times %.2f s, %.2f s\n", backend.describe().c_str(), report.accuracy,
              reports[0].seconds, reports[1].seconds);
  return report.accuracy;
}

}  // namespace

TEST(LeNetMnist, GpuReachesNinetySixPercentInTwoEpochs) {
  if (const std::string why = cudl::testing::why_no_shared_mnist(); !why.empty()) GTEST_SKIP() << why;
  const GpuProbe probe = probe_gpu();
  if (!probe.usable) GTEST_SKIP() << "no usable GPU: " << probe.reason;
  for (Precision precision : {Precision::kFp32, Precision::kTf32}) {
    BackendOptions options;
    options.precision = precision;
    std::unique_ptr<Backend> gpu = make_backend(Device::kCuda, options);
    EXPECT_GE(lenet_accuracy(*gpu), 0.96) << to_string(precision);
  }
}

namespace {

// LeNet's test accuracy in fp32 and in bf16 on `device`, printed: each at least 96%, bf16 within
// half a point of fp32.
void expect_bf16_within_half_a_point(Device device) {
  double accuracy[2] = {0, 0};
  int i = 0;
  for (Precision precision : {Precision::kFp32, Precision::kBf16}) {
    BackendOptions options;
    options.precision = precision;
    std::unique_ptr<Backend> backend = make_backend(device, options);
    ASSERT_EQ(backend->precision(), precision);
    accuracy[i++] = lenet_accuracy(*backend);
  }
  std::printf("fp32 %.4f, bf16 %.4f: %+.2f points\n", accuracy[0], accuracy[1], 100 * (accuracy[1] - accuracy[0]));
  EXPECT_GE(accuracy[0], 0.96);
  EXPECT_GE(accuracy[1], 0.96);
  EXPECT_NEAR(accuracy[1], accuracy[0], 0.005);
}

}  // namespace

TEST(LeNetMnist, CpuReachesNinetySixPercentInTwoEpochsInFp32AndBf16) {
  if (const std::string why = cudl::testing::why_no_shared_mnist(); !why.empty()) GTEST_SKIP() << why;
  expect_bf16_within_half_a_point(Device::kCpu);
}

TEST(LeNetMnist, GpuBf16IsWithinHalfAPointOfFp32) {
  if (const std::string why = cudl::testing::why_no_shared_mnist(); !why.empty()) GTEST_SKIP() << why;
  const GpuProbe probe = probe_gpu();
  if (!probe.usable) GTEST_SKIP() << "no usable GPU: " << probe.reason;
  expect_bf16_within_half_a_point(Device::kCuda);
}

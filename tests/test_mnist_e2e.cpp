// End to end on the real MNIST digits: the 10,000-image test set in ../shared/data/mnist, split
// 6,700 / 3,300 by the 2014 rule, trained with the 2014 settings (784-800-800-10, lr 0.3 ×0.9,
// momentum 0.9, L2 1e-4, batch 64 drawn with replacement, 10 epochs, seed 2014).
#include <gtest/gtest.h>

#include "cudl/cpu_backend.hpp"
#include "cudl/data.hpp"
#include "cudl/metrics.hpp"
#include "cudl/trainer.hpp"
#include "test_support.hpp"

using namespace cudl;

TEST(Mnist2014, ReachesNinetyPercentOnTheRealTestDigits) {
  if (const std::string why = cudl::testing::why_no_shared_mnist(); !why.empty()) GTEST_SKIP() << why;
  const std::string dir = cudl::testing::shared_mnist_dir();
  const InMemoryDataset data = load_idx_dataset(dir, "MNIST");
  ASSERT_EQ(data.rows, 10000);
  const Split split = train_test_split(data, 0.33, 2014);
  ASSERT_EQ(split.test.rows, 3300);
  CpuBackend cpu;
  const Tensor x = Tensor::from_host(split.train.x, {split.train.rows, 784}, cpu);
  const Tensor y = Tensor::from_host(split.train.y, {split.train.rows}, cpu);
  const Tensor x_test = Tensor::from_host(split.test.x, {split.test.rows, 784}, cpu);
  Network net(cpu, {784});
  net.add(dense(800, Activation::kRelu)).add(dense(800, Activation::kRelu)).add(dense(10));
  net.initialize(2014, 0.05f);
  TrainConfig cfg;  // the 2014 defaults
  const auto reports = train(net, x, y, cfg);
  ASSERT_EQ(reports.size(), 10u);
  EXPECT_EQ(reports[0].steps, 6700 / 64);
  EXPECT_LT(reports.back().loss, reports.front().loss);
  const auto report = classification_report(to_labels(split.test.y), predict(net, x_test), 10);
  EXPECT_GE(report.accuracy, 0.90);
  std::printf("test accuracy %.4f, final training loss %.4f err %.4f\n", report.accuracy, reports.back().loss,
              reports.back().err);
}

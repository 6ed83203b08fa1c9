#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "cudl/cpu_backend.hpp"
#include "cudl/data.hpp"
#include "cudl/dbn.hpp"
#include "test_support.hpp"

using namespace cudl;
using ::testing::HasSubstr;

TEST(DeepBeliefNet, UnrollCopiesEveryWeightAndHiddenBiasExactly) {
  CpuBackend cpu(1);
  DeepBeliefNet dbn(cpu, {6, 5, 4, 3}, {});
  for (int64_t i = 0; i < dbn.num_rbms(); ++i)
    dbn.rbm(i).params().copy_from(cudl::testing::uniform_values(40 + i, dbn.rbm(i).params().size(), -1.0f, 1.0f));
  Network net(cpu, {6});
  net.add(dense(5, Activation::kRelu)).add(dense(4, Activation::kRelu)).add(dense(3));
  dbn.unroll_into(net);
  for (int64_t i = 0; i < 3; ++i) {
    auto& layer = dynamic_cast<Dense&>(net.layer(i));
    EXPECT_EQ(layer.weight().to_vector(), dbn.rbm(i).weights().to_vector()) << "layer " << i;
    EXPECT_EQ(layer.bias().to_vector(), dbn.rbm(i).hidden_bias().to_vector()) << "layer " << i;
  }
}

TEST(DeepBeliefNet, UnrollRejectsANetworkOfOtherShapes) {
  CpuBackend cpu(1);
  DeepBeliefNet dbn(cpu, {6, 5, 3}, {});
  Network net(cpu, {6});
  net.add(dense(4, Activation::kRelu)).add(dense(3));
  EXPECT_THAT(cudl::testing::error_of([&] { dbn.unroll_into(net); }),
              AllOf(HasSubstr("Dense(4, relu)"), HasSubstr("[6, 4]"), HasSubstr("[6, 5]")));
}

TEST(DeepBeliefNet, UsesTheGdbnUnitsLayerByLayer) {
  CpuBackend cpu(1);
  DeepBeliefNet dbn(cpu, {784, 800, 800, 10}, {});
  EXPECT_EQ(dbn.rbm(0).config().visible, Units::kGaussian);
  EXPECT_EQ(dbn.rbm(0).config().hidden, Units::kNoisyRelu);
  EXPECT_EQ(dbn.rbm(1).config().visible, Units::kNoisyRelu);
  EXPECT_EQ(dbn.rbm(2).config().visible, Units::kNoisyRelu);
  EXPECT_EQ(dbn.rbm(2).config().hidden, Units::kNoisyRelu);
  EXPECT_EQ(dbn.rbm(2).config().k, 1);
}

TEST(DeepBeliefNet, PretrainingDivergenceIsTheTrainingLoopsDivergedNamingTheLayer) {
  CpuBackend cpu(1);
  DbnConfig cfg;
  cfg.batch = 8;
  cfg.learn_rate = 1e30f;  // the first epoch's updates overflow
  DeepBeliefNet dbn(cpu, {6, 5, 3}, cfg);
  const Tensor x = Tensor::from_host(cudl::testing::uniform_values(7, 16 * 6, 0.0f, 1.0f), {16, 6}, cpu);
  int reports = 0;
  try {
    dbn.pretrain(x, 2, [&](int64_t, const RbmEpochReport&) { ++reports; });
    FAIL() << "a learning rate of 1e30 did not stop pretraining";
  } catch (const Diverged& e) {
    EXPECT_EQ(e.layer, 1);
    EXPECT_EQ(e.epoch, 1);
    EXPECT_EQ(e.minibatch, 0);
    EXPECT_FALSE(std::isfinite(e.value));
    EXPECT_THAT(e.what(), AllOf(HasSubstr("pretraining diverged: layer 1, epoch 1: reconstruction error "),
                                HasSubstr("learning rate 1e+30")));
  }
  EXPECT_EQ(reports, 1);  // on_epoch saw the epoch before the throw
}

// NaN in the data is a data error naming where it is, before any training (not "divergence").
TEST(DeepBeliefNet, NonFiniteDataIsAnErrorNamingRowAndColumn) {
  CpuBackend cpu(1);
  DbnConfig cfg;
  cfg.batch = 8;
  DeepBeliefNet dbn(cpu, {6, 5, 3}, cfg);
  std::vector<float> xv = cudl::testing::uniform_values(7, 16 * 6, 0.0f, 1.0f);
  xv[2 * 6 + 3] = std::numeric_limits<float>::quiet_NaN();
  const Tensor x = Tensor::from_host(xv, {16, 6}, cpu);
  EXPECT_THAT(cudl::testing::error_of([&] { dbn.pretrain(x, 1); }),
              HasSubstr("DeepBeliefNet::pretrain: data holds NaN at row 2, column 3 (of [16, 6])"));
}

TEST(DeepBeliefNet, GreedyPretrainingLowersEachLayersReconstructionError) {
  const std::string why = cudl::testing::why_no_shared_mnist();
  if (!why.empty()) GTEST_SKIP() << why;
  const InMemoryDataset data = load_idx_dataset(cudl::testing::shared_mnist_dir(), "MNIST");
  CpuBackend cpu;
  const int64_t rows = 2048;
  const Tensor x = Tensor::from_host(std::vector<float>(data.x.begin(), data.x.begin() + rows * 784), {rows, 784}, cpu);
  DbnConfig cfg;
  cfg.learn_rate = 0.01f;
  cfg.momentum = 0.5f;
  DeepBeliefNet dbn(cpu, {784, 64, 10}, cfg);
  std::vector<std::vector<double>> errors(2);
  dbn.pretrain(x, 3, [&](int64_t layer, const RbmEpochReport& r) { errors[layer].push_back(r.reconstruction_error); });
  for (int layer = 0; layer < 2; ++layer) {
    ASSERT_EQ(errors[layer].size(), 3u);
    EXPECT_LT(errors[layer].back(), errors[layer].front()) << "layer " << layer;
  }
}

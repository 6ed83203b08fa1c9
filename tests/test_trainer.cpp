#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "cudl/cpu_backend.hpp"
#include "cudl/rng.hpp"
#include "cudl/trainer.hpp"
#include "test_support.hpp"

using namespace cudl;
using cudl::testing::Blobs;
using cudl::testing::error_of;
using ::testing::HasSubstr;

namespace {

// What most tests train: the 8 → 16 (relu) → 2 network, initialised with seed 1 and scale
// 0.1, and the blobs uploaded as x and y.
struct BlobsSetup {
  Network net;
  Tensor x, y;
  BlobsSetup(Backend& backend, const Blobs& data)
      : net(backend, {8}), x(data.x_on(backend)), y(data.y_on(backend)) {
    net.add(dense(16, Activation::kRelu)).add(dense(2));
    net.initialize(1, 0.1f);
  }
};

}  // namespace

TEST(Train, LearnsSeparableBlobsAndDecaysLearningRate) {
  CpuBackend cpu(2);
  Blobs data(640);
  BlobsSetup s(cpu, data);
  TrainConfig cfg;
  cfg.epochs = 5;
  cfg.batch = 32;
  cfg.learn_rate = 0.1f;
  const auto reports = train(s.net, s.x, s.y, cfg);
  ASSERT_EQ(reports.size(), 5u);
  EXPECT_EQ(reports[0].steps, 20);
  EXPECT_EQ(reports[0].samples, 640);
  EXPECT_FLOAT_EQ(reports[1].learn_rate, 0.09f);
  EXPECT_LT(reports.back().loss, reports.front().loss);
  EXPECT_LT(reports.back().err, 0.02);
}

TEST(Train, IsDeterministicForASeed) {
  CpuBackend cpu(2);
  Blobs data(256);
  auto run = [&](uint64_t seed) {
    BlobsSetup s(cpu, data);
    TrainConfig cfg;
    cfg.epochs = 2;
    cfg.batch = 16;
    cfg.seed = seed;
    const auto r = train(s.net, s.x, s.y, cfg);
    return std::make_pair(r.back().loss, s.net.params().to_vector());
  };
  EXPECT_EQ(run(3), run(3));
  EXPECT_NE(run(3).second, run(4).second);
}

// (Non-finite data is refused before training: test_fit.cpp. A finite but absurd row still
// makes an absurd loss, which must stop training at the very minibatch that draws it.)
TEST(Train, StopsAtOnceAtTheFirstMinibatchWithAnAbsurdLoss) {
  CpuBackend cpu(1);
  Blobs data(256);
  for (int c = 0; c < 8; ++c) data.x[c] = 1e30f;  // row 0 poisons any batch that draws it
  BlobsSetup s(cpu, data);
  TrainConfig cfg;
  cfg.epochs = 3;
  cfg.batch = 16;
  int epochs_seen = 0;
  try {
    train(s.net, s.x, s.y, cfg, [&](const EpochReport&) { ++epochs_seen; });
    FAIL() << "no divergence reported";
  } catch (const Diverged& e) {
    // The first minibatch that draws row 0 under this seed:
    int64_t expected_step = -1;
    for (int64_t d = 0; expected_step < 0; ++d)
      if (rng::below(rng::bits(cfg.seed, rng::kStreamSample, d).v[0], 256) == 0) expected_step = d / 16;
    EXPECT_EQ(e.epoch, static_cast<int>(expected_step / 16) + 1);
    EXPECT_EQ(e.minibatch, expected_step % 16 + 1);
    EXPECT_GT(e.value, 1e20);
    EXPECT_THAT(e.what(), HasSubstr("mean loss "));
    EXPECT_THAT(e.what(), HasSubstr("try a lower learning rate"));
    EXPECT_EQ(epochs_seen, e.epoch - 1);
  }
}

TEST(Train, StopsOnExplodingLoss) {
  CpuBackend cpu(1);
  Blobs data(512);
  for (float& v : data.x) v *= 100.0f;  // large inputs and a huge learning rate blow up
  BlobsSetup s(cpu, data);
  TrainConfig cfg;
  cfg.epochs = 5;
  cfg.batch = 16;
  cfg.learn_rate = 50.0f;
  try {
    train(s.net, s.x, s.y, cfg);
    FAIL() << "no divergence reported";
  } catch (const Diverged& e) {
    EXPECT_EQ(e.epoch, 1);
    EXPECT_TRUE(!std::isfinite(e.value) || e.value > 100 * std::log(2.0)) << e.value;
    EXPECT_THAT(e.what(), HasSubstr("epoch 1, minibatch "));
  }
}

TEST(Train, RejectsDataSmallerThanABatch) {
  CpuBackend cpu(1);
  Blobs data(8);
  Network net(cpu, {8});
  net.add(dense(2));
  Tensor x = data.x_on(cpu), y = data.y_on(cpu);
  TrainConfig cfg;
  EXPECT_THAT(error_of([&] { train(net, x, y, cfg); }), HasSubstr("8 rows are fewer than one batch of 64"));
}

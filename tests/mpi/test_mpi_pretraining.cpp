// Data-parallel RBM and DBN pretraining with real MPI ranks (issue 15): run by ctest as
//   mpirun -np 2 test_mpi_pretraining
// (mpi_world.hpp says how the tests keep the ranks in step). Each rank also trains the
// one-process reference itself, so the comparisons need no data from another rank.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "cudl/cpu_backend.hpp"
#include "cudl/dbn.hpp"
#include "cudl/rbm.hpp"
#include "mpi/mpi_world.hpp"
#include "test_support.hpp"

using namespace cudl;
using cudl::testing::Blobs;
using cudl::testing::max_abs_diff;
using cudl::testing::world;

namespace {

constexpr int64_t kRows = 384;

// Blobs' 8 real-valued features (Gaussian visible units), or their logistic squashing into (0, 1)
// (Bernoulli visible units).
std::vector<float> features(bool unit_interval) {
  std::vector<float> x = Blobs(kRows).x;
  if (unit_interval)
    for (float& v : x) v = 1.0f / (1.0f + std::exp(-2.0f * v));
  return x;
}

struct RbmRun {
  std::vector<float> params, chains;
  std::vector<RbmEpochReport> reports;
};

// An 8-12 RBM initialised from init_seed, trained `epochs` epochs with `batch` rows per step on
// each rank of comm (none: one process).
RbmRun train_rbm(RbmConfig config, int64_t batch, Communicator* comm, uint64_t init_seed, int epochs = 3) {
  CpuBackend cpu(1);
  const Tensor x = Tensor::from_host(features(config.visible == Units::kBernoulli), {kRows, 8}, cpu);
  config.batch = batch;
  config.communicator = comm;
  Rbm rbm(cpu, 8, 12, config);
  rbm.initialize(init_seed, 0.1f);
  RbmRun r;
  for (int e = 1; e <= epochs; ++e) r.reports.push_back(rbm.train_epoch(x, e, &x));
  r.params = rbm.params().to_vector();
  r.chains = rbm.persistent_chains().empty() ? std::vector<float>{} : rbm.persistent_chains().to_vector();
  return r;
}

// The 2014 run's pretraining: Gaussian visible, noisy-ReLU hidden, CD-1 on means, gdbn's update.
RbmConfig gdbn_pretraining() {
  RbmConfig c;
  c.visible = Units::kGaussian;
  c.hidden = Units::kNoisyRelu;
  c.learn_rate = 0.01f;
  c.momentum = 0.9f;
  c.seed = 11;
  return c;
}

// A true Gibbs chain: Bernoulli units, persistent chains, k = 2, sampled reconstructions.
RbmConfig bernoulli_pcd() {
  RbmConfig c;
  c.visible = Units::kBernoulli;
  c.hidden = Units::kBernoulli;
  c.k = 2;
  c.negative = Negative::kPersistent;
  c.reconstruction = Reconstruction::kSamples;
  c.learn_rate = 0.05f;
  c.seed = 12;
  return c;
}

void expect_same_training(const RbmRun& one, const RbmRun& two) {
  // The same rows and the same unit samples in the same steps; only the order of the gradient's
  // sums differs (each rank sums 16 rows, then the ranks' sums are added).
  EXPECT_LT(max_abs_diff(one.params, two.params), 1e-5);
  ASSERT_EQ(one.reports.size(), two.reports.size());
  for (size_t e = 0; e < one.reports.size(); ++e) {
    EXPECT_EQ(two.reports[e].epoch, static_cast<int>(e) + 1);
    EXPECT_NEAR(one.reports[e].reconstruction_error, two.reports[e].reconstruction_error,
                1e-5 * one.reports[e].reconstruction_error)
        << "epoch " << e + 1;
  }
}

}  // namespace

TEST(DataParallelRbm, TwoRanksOfHalfTheBatchTrainAsOneProcessOfTheWholeBatch2014Pretraining) {
  const RbmRun one = train_rbm(gdbn_pretraining(), 32, nullptr, 3);
  const RbmRun two = train_rbm(gdbn_pretraining(), 16, &world(), 3);
  expect_same_training(one, two);
  // What the comparison tells apart: the same run of 16 rows per step in one process.
  const RbmRun half = train_rbm(gdbn_pretraining(), 16, nullptr, 3);
  EXPECT_GT(max_abs_diff(one.params, half.params), 1e-3);
}

TEST(DataParallelRbm, TwoRanksOfHalfTheBatchTrainAsOneProcessOfTheWholeBatchPersistentBernoulli) {
  const RbmRun one = train_rbm(bernoulli_pcd(), 32, nullptr, 4);
  const RbmRun two = train_rbm(bernoulli_pcd(), 16, &world(), 4);
  expect_same_training(one, two);
  // Each rank's persistent chains are its half of the one process's chains.
  ASSERT_EQ(one.chains.size(), 32u * 8);
  ASSERT_EQ(two.chains.size(), 16u * 8);
  const auto mine = one.chains.begin() + world().rank() * 16 * 8;
  EXPECT_EQ(two.chains, std::vector<float>(mine, mine + 16 * 8));
}

TEST(DataParallelRbm, AnEpochStartsFromRank0sParameters) {
  const RbmRun one = train_rbm(gdbn_pretraining(), 32, nullptr, 20, 1);
  const RbmRun two = train_rbm(gdbn_pretraining(), 16, &world(), 20 + world().rank(), 1);  // each its own
  expect_same_training(one, two);
}

TEST(DataParallelDbn, PretrainingOnTwoRanksEqualsOneProcessAndEndsWithOneStack) {
  auto pretrain = [](int64_t batch, Communicator* comm) {
    CpuBackend cpu(1);
    const Tensor x = Tensor::from_host(features(false), {kRows, 8}, cpu);
    DbnConfig c;
    c.learn_rate = 0.01f;
    c.batch = batch;
    c.communicator = comm;
    DeepBeliefNet dbn(cpu, {8, 12, 6, 2}, c);
    std::vector<double> errors;
    dbn.pretrain(x, 2, [&](int64_t, const RbmEpochReport& e) { errors.push_back(e.reconstruction_error); }, &x);
    Network net(cpu, {8});
    net.add(dense(12, Activation::kRelu)).add(dense(6, Activation::kRelu)).add(dense(2));
    net.initialize(1, 0.1f);
    dbn.unroll_into(net);
    return std::make_pair(net.params().to_vector(), errors);
  };
  const auto one = pretrain(32, nullptr);
  const auto two = pretrain(16, &world());
  EXPECT_LT(max_abs_diff(one.first, two.first), 1e-5);
  ASSERT_EQ(one.second.size(), 6u);  // 3 RBMs × 2 epochs
  ASSERT_EQ(two.second.size(), 6u);
  for (size_t i = 0; i < one.second.size(); ++i)
    EXPECT_NEAR(one.second[i], two.second[i], 1e-5 * std::max(1.0, one.second[i])) << "report " << i;
}

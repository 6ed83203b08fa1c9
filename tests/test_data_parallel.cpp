// Data parallelism without MPI (issue 15): the ranks' shares of each step's draws, and a
// one-rank communicator that changes nothing. With real ranks: tests/mpi/.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <vector>

#include "cudl/communicator.hpp"
#include "cudl/cpu_backend.hpp"
#include "cudl/trainer.hpp"
#include "cudl/version.hpp"
#include "nn/epoch_loop.hpp"
#include "test_support.hpp"

using namespace cudl;
using cudl::testing::Blobs;
using ::testing::HasSubstr;

namespace {

// The rows (as their first feature) that an EpochLoop of `rank` of `ranks` gives its steps in
// epochs 1 and 2, `steps` steps each of `batch` rows.
std::vector<float> drawn(Sampling sampling, int rank, int ranks, int64_t batch, int64_t steps) {
  CpuBackend cpu(1);
  std::vector<float> xs(64), ys(64);
  for (int i = 0; i < 64; ++i) xs[i] = ys[i] = static_cast<float>(i);
  const Tensor x = Tensor::from_host(xs, {64, 1}, cpu), y = Tensor::from_host(ys, {64}, cpu);
  detail::EpochLoop loop(cpu, batch, 1, sampling, 17, rank, ranks);
  std::vector<std::vector<float>> per_step;
  for (int epoch = 1; epoch <= 2; ++epoch)
    loop.run(x, y, epoch, steps, false, [&](const Tensor& xb, const Tensor&) { per_step.push_back(xb.to_vector()); },
             {});
  std::vector<float> out;
  for (const auto& s : per_step) out.insert(out.end(), s.begin(), s.end());
  return out;
}

}  // namespace

TEST(EpochLoopRanks, TheRanksSharesOfAStepAreOneProcesssRowsOfTheWholeStep) {
  for (Sampling sampling : {Sampling::kWithReplacement, Sampling::kShuffle}) {
    const std::vector<float> one = drawn(sampling, 0, 1, 16, 4);  // 4 steps of 16 rows per epoch
    const std::vector<float> r0 = drawn(sampling, 0, 2, 8, 4);   // 4 steps of 2 × 8
    const std::vector<float> r1 = drawn(sampling, 1, 2, 8, 4);
    ASSERT_EQ(one.size(), 2u * 4 * 16);
    std::vector<float> together;
    for (size_t s = 0; s < 8; ++s) {  // step s: rank 0's 8 rows, then rank 1's
      together.insert(together.end(), r0.begin() + s * 8, r0.begin() + (s + 1) * 8);
      together.insert(together.end(), r1.begin() + s * 8, r1.begin() + (s + 1) * 8);
    }
    EXPECT_EQ(together, one) << (sampling == Sampling::kShuffle ? "shuffle" : "with replacement");
  }
}

TEST(EpochLoopRanks, ARankOutsideTheRanksIsAnError) {
  CpuBackend cpu(1);
  try {
    detail::EpochLoop loop(cpu, 8, 1, Sampling::kShuffle, 1, 2, 2);
    FAIL() << "rank 2 of 2 was accepted";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("rank 2 of 2 ranks"));
  }
}

TEST(LocalCommunicator, FitWithItIsFitWithoutOneBitForBit) {
  auto run = [](Communicator* comm) {
    CpuBackend cpu(1);
    const Blobs data(256);
    const Tensor x = data.x_on(cpu), y = data.y_on(cpu);
    Network net(cpu, {8});
    net.add(dense(8, Activation::kRelu)).add(dense(2));
    net.initialize(2, 0.3f);
    const SoftmaxCrossEntropy loss;
    Sgd opt(net.param_set(), SgdOptions{});
    FitOptions o;
    o.epochs = 2;
    o.batch = 16;
    o.progress = Progress::kNone;
    o.communicator = comm;
    const History h = fit(net, loss, opt, x, y, o);
    return std::make_pair(net.params().to_vector(), h.epochs.back().loss);
  };
  LocalCommunicator local;
  EXPECT_EQ(run(&local), run(nullptr));
}

TEST(LocalCommunicator, CollectivesLeaveValuesAsTheyAre) {
  CpuBackend cpu(1);
  LocalCommunicator local;
  Tensor t = Tensor::from_host({1, 2, 3}, {3}, cpu);
  local.all_reduce(t, ReduceOp::kMax);
  local.all_reduce_mean(t);
  local.broadcast(t, 0);
  double v[2] = {4, 5};
  local.all_reduce(v, 2, ReduceOp::kSum);
  EXPECT_EQ(t.to_vector(), (std::vector<float>{1, 2, 3}));
  EXPECT_EQ(v[0], 4.0);
  EXPECT_EQ(v[1], 5.0);
  EXPECT_EQ(local.size(), 1);
  EXPECT_THROW(local.broadcast(t, 1), Error);
}

TEST(NcclCommunicator, ACpuBackendOrABuildWithoutItIsAClearError) {
  CpuBackend cpu(1);
  LocalCommunicator local;
  try {
    make_nccl_communicator(cpu, local);
    FAIL() << "NCCL was given a CPU backend";
  } catch (const Error& e) {
    // The sentence depends on the build: without NCCL, or with it and given the CPU backend.
    EXPECT_THAT(e.what(), HasSubstr(CUDL_HAVE_NCCL ? "NCCL needs a GPU backend, got cpu"
                                                   : "this build of cudl has no NCCL communicator"));
  }
}

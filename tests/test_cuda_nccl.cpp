// The NCCL communicator (cudl::make_nccl_communicator, libcudl_nccl.so) on the one GPU of the device machine (issue 15): one rank
// through the captured training step, and what NCCL says to two ranks on one GPU. Skipped, with
// the reason, without a usable GPU. Several GPUs or machines cannot be tested here.
#include <cuda_runtime.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nccl.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cudl/cpu_backend.hpp"
#include "cudl/cuda_backend.hpp"
#include "cudl/device.hpp"
#include "cudl/trainer.hpp"
#include "test_support.hpp"

using namespace cudl;
using cudl::testing::Blobs;
using ::testing::HasSubstr;

namespace {

std::string nccl_version() {
  int v = 0;
  if (ncclGetVersion(&v) != ncclSuccess) return "?";
  return std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) + "." + std::to_string(v % 100);
}

class NcclOneRank : public ::testing::Test {
 protected:
  void SetUp() override {
    const GpuProbe probe = probe_gpu();
    if (!probe.usable) GTEST_SKIP() << "no usable GPU: " << probe.reason;
    gpu_ = std::make_unique<CudaBackend>(BackendOptions{});
    nccl_ = make_nccl_communicator(*gpu_, bootstrap_);
  }
  LocalCommunicator bootstrap_;
  std::unique_ptr<CudaBackend> gpu_;
  std::unique_ptr<Communicator> nccl_;
};

struct Trained {
  std::vector<float> params;
  History history;
};

// The 2014 preset on Blobs on `gpu`, the step captured (StepLaunch::kCaptured: without a
// communicator kAuto would run the fused step, whose sums are in another order).
Trained gdbn2014(Backend& gpu, Communicator* comm) {
  const Blobs data(512);
  const Tensor x = data.x_on(gpu), y = data.y_on(gpu);
  Network net(gpu, {8});
  net.add(dense(16, Activation::kRelu)).add(dense(2));
  net.initialize(3, 0.3f);
  presets::Gdbn2014 preset;
  preset.learn_rate = 0.05f;
  preset.epochs = 3;
  const SoftmaxCrossEntropy loss = preset.loss();
  auto opt = preset.optimizer(net.param_set());
  ExponentialSchedule schedule = preset.schedule();
  FitOptions o = preset.options();
  o.communicator = comm;
  o.launch = StepLaunch::kCaptured;
  Trained r;
  r.history = fit(net, loss, *opt, x, y, o, &schedule);
  r.params = net.params().to_vector();
  return r;
}

}  // namespace

TEST_F(NcclOneRank, CollectivesRunOnTheBackendsStream) {
  EXPECT_THAT(nccl_->describe(), HasSubstr("nccl " + nccl_version() + ": 1 rank"));
  EXPECT_TRUE(nccl_->capturable(*gpu_));
  Tensor t = Tensor::from_host({1.5f, -2.0f, 3.25f}, {3}, *gpu_);
  nccl_->all_reduce(t, ReduceOp::kSum);
  nccl_->all_reduce_mean(t);
  nccl_->all_reduce(t, ReduceOp::kMax);
  nccl_->broadcast(t, 0);
  EXPECT_EQ(t.to_vector(), (std::vector<float>{1.5f, -2.0f, 3.25f}));
  CpuBackend cpu(1);
  Tensor on_cpu = Tensor::from_host({1.0f}, {1}, cpu);
  EXPECT_FALSE(nccl_->capturable(cpu));
  try {
    nccl_->all_reduce(on_cpu, ReduceOp::kSum);
    ADD_FAILURE() << "a CPU tensor was given to NCCL";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("reduces tensors of the CudaBackend it was made for"));
  }
}

TEST_F(NcclOneRank, TheCapturedStepWithTheAllReduceTrainsAsWithoutIt) {
  const Trained without = gdbn2014(*gpu_, nullptr);
  const Trained with = gdbn2014(*gpu_, nccl_.get());
  ASSERT_EQ(with.history.epochs.size(), 3u);
  EXPECT_TRUE(with.history.epochs.back().captured) << "the NCCL all-reduce kept the step from being captured";
  EXPECT_EQ(with.params, without.params);  // one rank: the average of one gradient is that gradient
  EXPECT_EQ(with.history.epochs.back().loss, without.history.epochs.back().loss);
}

// NCCL's answer to two ranks on one GPU (two communicators of one process, ncclCommInitAll): the
// issue asks to try it. Where NCCL accepts it, an all-reduce over the two must sum; where it
// refuses, the test says so with NCCL's message.
TEST(NcclTwoRanks, OnOneGpu) {
  const GpuProbe probe = probe_gpu();
  if (!probe.usable) GTEST_SKIP() << "no usable GPU: " << probe.reason;
  ncclComm_t comms[2] = {nullptr, nullptr};
  int devices[2] = {0, 0};
  const ncclResult_t init = ncclCommInitAll(comms, 2, devices);
  if (init != ncclSuccess) {
    const std::string why = std::string(ncclGetErrorString(init)) + " (" + ncclGetLastError(nullptr) + ")";
    std::printf("NCCL %s refuses two ranks on one GPU: %s\n", nccl_version().c_str(), why.c_str());
    GTEST_SKIP() << "NCCL refuses two ranks on one GPU: " << why;
  }
  float* buf[2] = {nullptr, nullptr};
  cudaStream_t streams[2] = {nullptr, nullptr};
  const float host[2][2] = {{1.0f, 2.0f}, {10.0f, 20.0f}};
  for (int r = 0; r < 2; ++r) {
    ASSERT_EQ(cudaMalloc(&buf[r], sizeof host[r]), cudaSuccess);
    ASSERT_EQ(cudaMemcpy(buf[r], host[r], sizeof host[r], cudaMemcpyHostToDevice), cudaSuccess);
    ASSERT_EQ(cudaStreamCreate(&streams[r]), cudaSuccess);
  }
  ASSERT_EQ(ncclGroupStart(), ncclSuccess);
  for (int r = 0; r < 2; ++r)
    ASSERT_EQ(ncclAllReduce(buf[r], buf[r], 2, ncclFloat, ncclSum, comms[r], streams[r]), ncclSuccess);
  ASSERT_EQ(ncclGroupEnd(), ncclSuccess);
  for (int r = 0; r < 2; ++r) {
    float out[2] = {0, 0};
    ASSERT_EQ(cudaStreamSynchronize(streams[r]), cudaSuccess);
    ASSERT_EQ(cudaMemcpy(out, buf[r], sizeof out, cudaMemcpyDeviceToHost), cudaSuccess);
    EXPECT_EQ(out[0], 11.0f);
    EXPECT_EQ(out[1], 22.0f);
    cudaFree(buf[r]);
    cudaStreamDestroy(streams[r]);
    ncclCommDestroy(comms[r]);
  }
  std::printf("NCCL %s accepts two ranks on one GPU, and their all-reduce sums\n", nccl_version().c_str());
}

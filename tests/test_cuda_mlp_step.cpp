// The persistent training step on the GPU (cuda/mlp_step.hpp; issue 17, step 3):
// - its results are the host emulation's bits (cuda/mlp_step_plan.hpp: rows_gemm's fmaf chains
//   and slice order, the loss's fixed tree, gdbn's update in rounded operations) for the 2014
//   network's shape and ragged ones, over several steps and two launches (the tickets, the
//   barrier's words and the counters carried from one launch to the next);
// - it refuses what it cannot run, and a launch inside a capture, with an Error naming why; the
//   backend runs it in fp32 only, and says why not in tf32, bf16 or with CUDL_FUSED_STEP=0.
// test_mlp_step_on_host checks the same source on CPU threads, and the emulation against the CPU
// backend's fit(). Skipped, with the reason, without a usable GPU.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "cudl/cuda_backend.hpp"
#include "cudl/device.hpp"
#include "cudl/error.hpp"
#include "cudl/fused_mlp.hpp"
#include "mlp_step.hpp"
#include "mlp_step_problem.hpp"

namespace {

using namespace cudl::testing::mlp;
using cudl::Activation;
using cudl::cuda::MlpStep;
namespace ms = cudl::cuda::mlp_step;

#define EXPECT_CUDA_OK(expr) ASSERT_EQ((expr), cudaSuccess) << #expr

class CudaMlpStep : public ::testing::Test {
 protected:
  void SetUp() override {
    const cudl::GpuProbe probe = cudl::probe_gpu();
    if (!probe.usable) GTEST_SKIP() << "no usable GPU: " << probe.reason;
    EXPECT_CUDA_OK(cudaStreamCreate(&stream_));
  }
  void TearDown() override {
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }
  cudaStream_t stream_ = nullptr;
};

// Device copies of a Problem's buffers, found by their host addresses; downloaded back on request.
class DeviceCopy {
 public:
  explicit DeviceCopy(Problem& p) {
    add(p.x);
    add(p.y);
    add(p.xb);
    add(p.yb);
    add(p.stats);
    for (auto* group : {&p.w, &p.b, &p.vw, &p.vb, &p.a, &p.dz, &p.gw, &p.gb})
      for (std::vector<float>& v : *group) add(v);
    add(&p.draw, sizeof p.draw);
    add(&p.step, sizeof p.step);
    add(&p.lr, sizeof p.lr);
  }
  ~DeviceCopy() {
    for (auto& [host, dev] : copies_) cudaFree(dev.first);
  }
  DeviceCopy(const DeviceCopy&) = delete;
  DeviceCopy& operator=(const DeviceCopy&) = delete;

  template <typename T>
  T* operator()(T* host) const {
    return static_cast<T*>(copies_.at(host).first);
  }
  void download() const {
    for (const auto& [host, dev] : copies_)
      EXPECT_EQ(cudaMemcpy(const_cast<void*>(host), dev.first, dev.second, cudaMemcpyDeviceToHost), cudaSuccess);
  }

 private:
  void add(std::vector<float>& v) { add(v.data(), sizeof(float) * v.size()); }
  void add(void* host, size_t bytes) {
    void* dev = nullptr;
    EXPECT_EQ(cudaMalloc(&dev, bytes), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(dev, host, bytes, cudaMemcpyHostToDevice), cudaSuccess);
    copies_[host] = {dev, bytes};
  }
  std::map<const void*, std::pair<void*, size_t>> copies_;
};

struct Case {
  std::vector<int64_t> sizes;
  std::vector<Activation> acts;  // ReLU and identity: the GPU's expf (sigmoid) is not the host's
  int64_t batch, rows, steps;
  bool shuffled = false;  // the epoch's permutation from its start (2 launches × steps batches fit the rows)
};

TEST_F(CudaMlpStep, GivesItsHostEmulationsBitsOverStepsAndLaunches) {
  const Activation relu = Activation::kRelu, id = Activation::kIdentity;
  const Case cases[] = {
      {{784, 800, 800, 10}, {relu, relu, id}, 64, 1000, 3},  // the 2014 network
      {{37, 70, 33, 10}, {relu, relu, id}, 20, 61, 2},
      {{50, 65, 7}, {relu, id}, 70, 211, 2},  // two row tiles, ragged
      {{30, 5}, {id}, 9, 28, 3},
      {{784, 800, 800, 10}, {relu, relu, id}, 64, 700, 3, true},  // shuffled draws
  };
  MlpStep step(stream_);
  std::printf("persistent step: %d blocks (%d per multiprocessor)\n", step.blocks(), step.blocks_per_sm());
  uint64_t seed = 40;
  for (const Case& c : cases) {
    Problem gpu(c.sizes, c.acts, c.batch, c.rows, seed += 10);
    if (c.shuffled) gpu.draw = 3 * static_cast<uint64_t>(c.rows);  // epoch 3's permutation from its start
    Problem host = gpu;
    const DeviceCopy dev(gpu);
    ms::Args a = remap(gpu.args(step.blocks()), dev);
    a.steps = c.steps;
    a.shuffled = c.shuffled;
    step.run(a);
    step.run(a);  // a second launch: the counters moved on, the tickets and barrier reset
    EXPECT_CUDA_OK(cudaStreamSynchronize(stream_));
    dev.download();
    ms::Args e = host.args(step.blocks());
    e.steps = c.steps;
    e.shuffled = c.shuffled;
    ms::emulate(e);
    ms::emulate(e);
    expect_same_state(gpu, host, std::to_string(c.sizes.size() - 1) + " layers, batch " + std::to_string(c.batch) +
                                     (c.shuffled ? ", shuffled" : ""));
  }
}

TEST_F(CudaMlpStep, RefusesWhatItCannotRunAndALaunchInACapture) {
  MlpStep step(stream_);
  Problem p({12, 8, 3}, {Activation::kRelu, Activation::kIdentity}, 16, 40, 1);
  const DeviceCopy dev(p);
  ms::Args a = remap(p.args(step.blocks()), dev);
  ms::Args top = a;
  top.layer[1].act = Activation::kRelu;
  try {
    step.run(top);
    ADD_FAILURE() << "a top layer with ReLU was run";
  } catch (const cudl::Error& e) {
    EXPECT_NE(std::string(e.what()).find("top layer is not linear"), std::string::npos) << e.what();
  }
  EXPECT_CUDA_OK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
  std::string error;
  try {
    step.run(a);
  } catch (const cudl::Error& e) {
    error = e.what();
  }
  cudaGraph_t graph = nullptr;
  EXPECT_CUDA_OK(cudaStreamEndCapture(stream_, &graph));
  if (graph != nullptr) cudaGraphDestroy(graph);
  EXPECT_NE(error.find("launched eagerly"), std::string::npos) << error;
  step.run(a);  // and eagerly it runs
  EXPECT_CUDA_OK(cudaStreamSynchronize(stream_));
}

// The backend's side (CudaBackend::fused_mlp_refusal): fp32 runs it, tf32 and bf16 do not, nor
// does any precision with CUDL_FUSED_STEP=0; each refusal says why.
TEST_F(CudaMlpStep, TheBackendSaysWhenItDoesNotFuse) {
  Problem p({12, 8, 3}, {Activation::kRelu, Activation::kIdentity}, 16, 40, 1);
  const DeviceCopy dev(p);
  std::vector<cudl::FusedMlpLayer> layers;
  for (size_t i = 0; i < p.w.size(); ++i) {
    cudl::FusedMlpLayer l;
    l.in = p.sizes[i];
    l.out = p.sizes[i + 1];
    l.act = p.acts[i];
    l.w = dev(p.w[i].data());
    l.b = dev(p.b[i].data());
    l.vw = dev(p.vw[i].data());
    l.vb = dev(p.vb[i].data());
    layers.push_back(l);
  }
  cudl::FusedMlpArgs f;
  f.layers = layers.data();
  f.num_layers = static_cast<int>(layers.size());
  f.batch = p.batch;
  f.x = dev(p.x.data());
  f.y = dev(p.y.data());
  f.rows = p.rows;
  auto refusal = [&](cudl::Precision precision) {
    cudl::BackendOptions o;
    o.precision = precision;
    cudl::CudaBackend backend(o);
    return backend.fused_mlp_refusal(f);
  };
  EXPECT_EQ(refusal(cudl::Precision::kFp32), "");
  EXPECT_NE(refusal(cudl::Precision::kTf32).find("strict fp32"), std::string::npos);
  EXPECT_NE(refusal(cudl::Precision::kBf16).find("strict fp32"), std::string::npos);
  setenv("CUDL_FUSED_STEP", "0", 1);
  const std::string off = refusal(cudl::Precision::kFp32);
  unsetenv("CUDL_FUSED_STEP");
  EXPECT_NE(off.find("CUDL_FUSED_STEP=0"), std::string::npos) << off;
  cudl::FusedMlpArgs no_rows = f;
  no_rows.rows = 0;
  cudl::CudaBackend backend(cudl::BackendOptions{});
  EXPECT_NE(backend.fused_mlp_refusal(no_rows).find("rows"), std::string::npos) << backend.fused_mlp_refusal(no_rows);
}

}  // namespace

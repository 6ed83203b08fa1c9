// RBM training on the GPU (issue 17, point 4): its CD steps captured once and replayed against the
// same steps queued eagerly, and against the CPU. Skipped, with the reason, without a usable GPU.
//
// The unit samples are counter-based draws that the CPU and the GPU make alike, and the steps'
// counter lives in device memory, so a replayed step draws fresh samples; a replay that repeated
// the captured step's samples, or drew them from another counter, moves the parameters by far more
// than the tolerances below (each step's samples are a large part of its gradient).
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "cudl/cpu_backend.hpp"
#include "cudl/cuda_backend.hpp"
#include "cudl/dbn.hpp"
#include "cudl/device.hpp"
#include "cudl/rbm.hpp"
#include "gpu_test.hpp"
#include "test_support.hpp"

using namespace cudl;
using cudl::testing::relative_l2;
using cudl::testing::uniform_values;

namespace {

constexpr int64_t kRows = 1024, kVisible = 96, kHidden = 80;

struct Trained {
  std::vector<RbmEpochReport> reports;
  std::vector<float> params;
};

// An RBM of `cfg` on `backend`, initialised from seed 3, trained `epochs` epochs on kRows rows of
// uniform [0, 1) data; with `restart`, initialise() again after them and train one more epoch (a
// captured step must not outlive the persistent chains it was captured with).
Trained train(Backend& backend, RbmConfig cfg, StepLaunch launch, int epochs, bool restart = false) {
  cfg.launch = launch;
  Rbm rbm(backend, kVisible, kHidden, cfg);
  rbm.initialize(3, 0.05f);
  const Tensor data = Tensor::from_host(uniform_values(7, kRows * kVisible, 0, 1), {kRows, kVisible}, backend);
  Trained t;
  for (int e = 1; e <= epochs; ++e) t.reports.push_back(rbm.train_epoch(data, e));
  if (restart) {
    rbm.initialize(4, 0.05f);
    t.reports.push_back(rbm.train_epoch(data, epochs + 1));
  }
  t.params = rbm.params().to_vector();
  return t;
}

RbmConfig cd1_gaussian_noisy_relu() {  // the first RBM of bench_dbn's pretraining
  RbmConfig cfg;
  cfg.visible = Units::kGaussian;
  cfg.hidden = Units::kNoisyRelu;
  cfg.learn_rate = 0.001f;
  cfg.momentum = 0.5f;
  cfg.batch = 32;
  return cfg;
}

RbmConfig pcd2_bernoulli_samples() {  // persistent chains, sampled reconstructions, two Gibbs steps
  RbmConfig cfg;
  cfg.negative = Negative::kPersistent;
  cfg.reconstruction = Reconstruction::kSamples;
  cfg.k = 2;
  cfg.learn_rate = 0.05f;
  cfg.batch = 32;
  return cfg;
}

class CudaRbm : public cudl::testing::GpuTest {};

}  // namespace

// Replayed steps compute what eager steps compute: the same kernels on the same data in the same
// order, so the same numbers up to cuBLAS choosing another algorithm inside a capture (1e-6).
TEST_F(CudaRbm, CapturedEpochsComputeWhatEagerEpochsCompute) {
  for (const auto& [name, cfg] : {std::pair{"CD-1 Gaussian/noisy-ReLU", cd1_gaussian_noisy_relu()},
                                  std::pair{"PCD-2 Bernoulli, sampled", pcd2_bernoulli_samples()}}) {
    const Trained graph = train(gpu(), cfg, StepLaunch::kAuto, 2, /*restart=*/true);
    const Trained eager = train(gpu(), cfg, StepLaunch::kEager, 2, /*restart=*/true);
    ASSERT_EQ(graph.reports.size(), 3u);
    for (size_t e = 0; e < graph.reports.size(); ++e) {
      EXPECT_TRUE(graph.reports[e].captured) << name << ": epoch " << e + 1 << " should replay a captured step";
      EXPECT_FALSE(eager.reports[e].captured) << name;
      EXPECT_NEAR(graph.reports[e].reconstruction_error, eager.reports[e].reconstruction_error,
                  1e-6 * std::abs(eager.reports[e].reconstruction_error))
          << name << ": epoch " << e + 1;
    }
    EXPECT_LE(relative_l2(graph.params, eager.params), 1e-6) << name;
  }
}

// The GPU's epochs against the CPU's: the same draws, another summation order. Noisy-ReLU and
// Gaussian units are continuous in their means, so rounding differences stay small (1e-4 relative
// after 2 × 32 steps); Bernoulli samples could flip on a rounding difference and are left out.
TEST_F(CudaRbm, CapturedEpochsTrainAsOnTheCpu) {
  const Trained on_gpu = train(gpu(), cd1_gaussian_noisy_relu(), StepLaunch::kAuto, 2);
  const Trained on_cpu = train(cpu, cd1_gaussian_noisy_relu(), StepLaunch::kAuto, 2);
  ASSERT_TRUE(on_gpu.reports[0].captured);
  EXPECT_LE(relative_l2(on_gpu.params, on_cpu.params), 1e-4);
  for (size_t e = 0; e < 2; ++e)
    EXPECT_NEAR(on_gpu.reports[e].reconstruction_error, on_cpu.reports[e].reconstruction_error,
                1e-4 * on_cpu.reports[e].reconstruction_error)
        << "epoch " << e + 1;
}

// A captured step reads its data by address: the next epoch on a new tensor held in the same
// variable (so the same Tensor object, with new memory) must read the new rows, as eager steps do.
TEST_F(CudaRbm, AnEpochOnNewDataInTheSameVariableReadsTheNewRows) {
  std::vector<std::vector<float>> params;
  for (StepLaunch launch : {StepLaunch::kAuto, StepLaunch::kEager}) {
    RbmConfig cfg = cd1_gaussian_noisy_relu();
    cfg.launch = launch;
    Rbm rbm(gpu(), kVisible, kHidden, cfg);
    rbm.initialize(3, 0.05f);
    Tensor data = Tensor::from_host(uniform_values(7, kRows * kVisible, 0, 1), {kRows, kVisible}, gpu());
    rbm.train_epoch(data, 1);
    data = Tensor::from_host(uniform_values(9, kRows * kVisible, 0, 2), {kRows, kVisible}, gpu());
    EXPECT_EQ(rbm.train_epoch(data, 2).captured, launch == StepLaunch::kAuto);
    params.push_back(rbm.params().to_vector());
  }
  EXPECT_LE(relative_l2(params[0], params[1]), 1e-6);
}

// A deep belief net pretrains its RBMs with captured steps too (DbnConfig::launch), each RBM with
// its own captured step over its own data.
TEST_F(CudaRbm, DbnPretrainingCapturesEveryLayer) {
  DbnConfig cfg;
  cfg.learn_rate = 0.001f;
  cfg.momentum = 0.5f;
  cfg.batch = 32;
  DeepBeliefNet dbn(gpu(), {kVisible, 64, 10}, cfg);
  const Tensor data = Tensor::from_host(uniform_values(8, kRows * kVisible, 0, 1), {kRows, kVisible}, gpu());
  std::vector<bool> captured;
  dbn.pretrain(data, 1, [&](int64_t, const RbmEpochReport& r) { captured.push_back(r.captured); });
  EXPECT_EQ(captured, (std::vector<bool>{true, true}));
}

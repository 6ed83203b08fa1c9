// fit()'s fused path (Backend::fused_mlp_steps, cudl/fused_mlp.hpp) without a GPU: a CpuBackend
// whose fused step is the persistent kernel's host emulation (cuda/mlp_step_plan.hpp) stands in
// for the CUDA backend, so everything fit() does around the kernel is checked here: when it fuses
// and why not, the parameter and velocity addresses it hands over, the counters (draws continuing
// over epochs, the optimizer's step count), the statistics, and the launches ending at reports and
// stops. The fused run must train as the ordinary CPU run does, to float summation order.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "cudl/cudl.hpp"
#include "mlp_step_plan.hpp"
#include "test_support.hpp"
#include "tolerance.hpp"

using namespace cudl;

namespace {

namespace ms = cuda::mlp_step;

// The CPU backend, with the fused step run by the kernel's host emulation in its memory.
class EmulatedFusedBackend : public CpuBackend {
 public:
  EmulatedFusedBackend() : CpuBackend(1) {}
  std::string fused_mlp_refusal(const FusedMlpArgs& f) override { return ms::refusal(f); }
  void fused_mlp_steps(const FusedMlpArgs& f) override {
    ASSERT_EQ(ms::refusal(f), "");
    ASSERT_EQ(ms::missing(f), "");
    ms::Args a = ms::from_fused(f);
    buffers_.assign(static_cast<size_t>(ms::batch_floats(a)), std::nanf(""));
    ms::place_batch_buffers(a, buffers_.data());
    ms::plan(a, 6);
    ms::emulate(a);
    launches.push_back(f.steps);
  }
  std::vector<int64_t> launches;  // the steps of each launch

 private:
  std::vector<float> buffers_;
};

struct FitRun {
  History history;
  std::vector<float> params, grads;
  std::vector<StepReport> steps;
  float optimizer_steps = 0.0f;
};

// 784-800-800-10's shape, small, on Blobs-like data: the 2014 preset through fit().
FitRun train(Backend& backend, int epochs, const presets::Gdbn2014& p,
             const std::function<void(FitOptions&)>& tweak = {}) {
  const cudl::testing::Blobs data(256, 3);
  Network net(backend, {8});
  net.add(dense(24, Activation::kRelu)).add(dense(16, Activation::kRelu)).add(dense(2));
  net.initialize(5, 0.2f);
  const Tensor x = Tensor::from_host(data.x, {data.rows, 8}, backend);
  const Tensor y = Tensor::from_host(data.y, {data.rows}, backend);
  auto opt = p.optimizer(net.param_set());
  FitOptions o = p.options();
  o.epochs = epochs;
  FitRun r;
  o.every_steps = 3;
  o.on_steps = [&](const StepReport& s) { r.steps.push_back(s); };
  if (tweak) tweak(o);
  ExponentialSchedule schedule = p.schedule();
  r.history = fit(net, p.loss(), *opt, x, y, o, &schedule);
  r.params = net.params().to_vector();
  r.grads = net.grads().to_vector();
  r.optimizer_steps = static_cast<float>(read_counter(opt->step_count()));
  return r;
}

presets::Gdbn2014 preset() {
  presets::Gdbn2014 p;
  p.batch = 16;
  p.learn_rate = 0.1f;
  return p;
}

TEST(FusedFit, TrainsAsTheOrdinaryStepsDo) {
  EmulatedFusedBackend fused;
  CpuBackend plain(1);
  const FitRun f = train(fused, 3, preset()), c = train(plain, 3, preset());
  ASSERT_EQ(f.history.epochs.size(), 3u);
  for (size_t e = 0; e < 3; ++e) {
    const EpochReport &fe = f.history.epochs[e], &ce = c.history.epochs[e];
    EXPECT_TRUE(fe.fused) << fe.not_fused;
    EXPECT_FALSE(fe.captured);
    EXPECT_FALSE(ce.fused);
    EXPECT_NE(ce.not_fused.find("has no fused training step"), std::string::npos) << ce.not_fused;
    EXPECT_EQ(fe.steps, 16);
    EXPECT_NEAR(fe.loss, ce.loss, 1e-5 * ce.loss) << "epoch " << e + 1;
    EXPECT_EQ(fe.err, ce.err) << "epoch " << e + 1;
    EXPECT_EQ(fe.learn_rate, ce.learn_rate) << "epoch " << e + 1;
  }
  cudl::testing::expect_all_close(f.params, c.params, 1e-6, 1e-4, "parameters after 3 epochs");
  // The network's gradient holds the last step's, as after ordinary steps (each launch's last step
  // stores it).
  cudl::testing::expect_all_close(f.grads, c.grads, 1e-10, 1e-4, "the last step's gradients");
  EXPECT_EQ(f.optimizer_steps, 48.0f) << "the optimizer's step count (checkpoints save it)";
  EXPECT_EQ(f.optimizer_steps, c.optimizer_steps);
  // Launches end at every third step (the reports) and at the epoch's end: 3+3+3+3+3+1 per epoch.
  const std::vector<int64_t> per_epoch{3, 3, 3, 3, 3, 1};
  ASSERT_EQ(fused.launches.size(), 18u);
  for (size_t i = 0; i < fused.launches.size(); ++i) EXPECT_EQ(fused.launches[i], per_epoch[i % 6]) << i;
  ASSERT_EQ(f.steps.size(), c.steps.size());
  for (size_t i = 0; i < f.steps.size(); ++i) {
    EXPECT_EQ(f.steps[i].step, c.steps[i].step);
    EXPECT_NEAR(f.steps[i].loss, c.steps[i].loss, 1e-5 * c.steps[i].loss);
  }
}

// fit()'s default draws: every row once per epoch, in each epoch's permutation.
TEST(FusedFit, ShuffledEpochsTrainAsTheOrdinaryStepsDo) {
  auto shuffled = [](FitOptions& o) { o.sampling = Sampling::kShuffle; };
  EmulatedFusedBackend fused;
  CpuBackend plain(1);
  const FitRun f = train(fused, 3, preset(), shuffled), c = train(plain, 3, preset(), shuffled);
  ASSERT_EQ(f.history.epochs.size(), 3u);
  for (size_t e = 0; e < 3; ++e) {
    EXPECT_TRUE(f.history.epochs[e].fused) << f.history.epochs[e].not_fused;
    EXPECT_NEAR(f.history.epochs[e].loss, c.history.epochs[e].loss, 1e-5 * c.history.epochs[e].loss) << e + 1;
    EXPECT_EQ(f.history.epochs[e].err, c.history.epochs[e].err) << "epoch " << e + 1;
  }
  cudl::testing::expect_all_close(f.params, c.params, 1e-6, 1e-4, "parameters after 3 shuffled epochs");
  cudl::testing::expect_all_close(f.grads, c.grads, 1e-10, 1e-4, "the last shuffled step's gradients");
}

TEST(FusedFit, AStopEndsALaunchWithinSixtyFourSteps) {
  EmulatedFusedBackend fused;
  std::atomic<bool> stop{true};
  const FitRun f = train(fused, 2, preset(), [&](FitOptions& o) {
    o.every_steps = 0;
    o.on_steps = nullptr;
    o.stop = &stop;
  });
  EXPECT_TRUE(f.history.interrupted);
  ASSERT_EQ(fused.launches.size(), 1u);
  EXPECT_EQ(fused.launches[0], 16) << "an epoch of 16 steps is one launch (at most 64)";
}

TEST(FusedFit, SaysWhyItDoesNotFuse) {
  struct Case {
    std::function<void(FitOptions&)> tweak;
    const char* why;
  };
  const Case cases[] = {
      {[](FitOptions& o) { o.launch = StepLaunch::kCaptured; }, "captured or eager"},
      {[](FitOptions& o) { o.launch = StepLaunch::kEager; }, "captured or eager"},
  };
  for (const Case& c : cases) {
    EmulatedFusedBackend fused;
    const FitRun r = train(fused, 1, preset(), c.tweak);
    EXPECT_FALSE(r.history.epochs[0].fused);
    EXPECT_NE(r.history.epochs[0].not_fused.find(c.why), std::string::npos) << r.history.epochs[0].not_fused;
    EXPECT_TRUE(fused.launches.empty());
  }
  // Another optimizer, and a layer that is not Dense.
  EmulatedFusedBackend fused;
  const cudl::testing::Blobs data(64, 3);
  const Tensor x = Tensor::from_host(data.x, {data.rows, 8}, fused), y = Tensor::from_host(data.y, {data.rows}, fused);
  FitOptions o = preset().options();
  o.epochs = 1;
  Network net(fused, {8});
  net.add(dense(8, Activation::kRelu)).add(dense(2));
  net.initialize(1, 0.1f);
  Sgd sgd(net.param_set(), SgdOptions{});
  EXPECT_NE(fit(net, preset().loss(), sgd, x, y, o).epochs[0].not_fused.find("not gdbn's Nesterov"),
            std::string::npos);
  Network dropped(fused, {8});
  dropped.add(dense(8, Activation::kRelu)).add(dropout(0.5f, 1)).add(dense(2));
  dropped.initialize(1, 0.1f);
  auto opt = preset().optimizer(dropped.param_set());
  EXPECT_NE(fit(dropped, preset().loss(), *opt, x, y, o).epochs[0].not_fused.find("not Dense"), std::string::npos);
  // An optimizer whose decayed parameters are not the weights (none decayed here).
  Network plain(fused, {8});
  plain.add(dense(8, Activation::kRelu)).add(dense(2));
  plain.initialize(1, 0.1f);
  GdbnNesterovOptions gentle;
  gentle.learn_rate = 0.01f;
  gentle.grad_scale = 1.0f / 16;
  GdbnNesterov undecayed({&plain.params(), &plain.grads(), 0}, gentle);
  EXPECT_NE(fit(plain, preset().loss(), undecayed, x, y, o).epochs[0].not_fused.find("does not update exactly"),
            std::string::npos);
  EXPECT_TRUE(fused.launches.empty());
}

}  // namespace

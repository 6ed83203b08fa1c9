// Learning-rate schedules (schedule.hpp): each one's rates worked by hand, on the CPU, through the
// optimizer's learning-rate tensor (what the update reads).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "cudl/cpu_backend.hpp"
#include "cudl/schedule.hpp"
#include "test_support.hpp"

using namespace cudl;
using ::testing::HasSubstr;

namespace {
struct Params {
  CpuBackend cpu{1};
  Tensor w = Tensor::from_host({1.0f, 2.0f}, {2}, cpu), g = Tensor::from_host({0.0f, 0.0f}, {2}, cpu);
  ParamSet set() { return ParamSet{&w, &g, 1}; }
};

GdbnNesterov optimizer(Params& p, float lr) {
  GdbnNesterovOptions o;
  o.learn_rate = lr;
  return GdbnNesterov(p.set(), o);
}
}  // namespace

TEST(Schedule, ConstantKeepsTheBaseRate) {
  Params p;
  GdbnNesterov opt = optimizer(p, 0.5f);
  ConstantSchedule s;
  for (int e = 1; e <= 3; ++e) {
    s.begin_epoch(opt, e, 3, 10);
    EXPECT_EQ(opt.current_learning_rate(), 0.5f);
  }
}

TEST(Schedule, StepMultipliesEveryNEpochs) {
  Params p;
  GdbnNesterov opt = optimizer(p, 1.0f);
  StepSchedule s(2, 0.5f);
  const float expected[] = {1.0f, 1.0f, 0.5f, 0.5f, 0.25f};
  for (int e = 1; e <= 5; ++e) {
    s.begin_epoch(opt, e, 5, 10);
    EXPECT_EQ(opt.current_learning_rate(), expected[e - 1]) << "epoch " << e;
  }
}

TEST(Schedule, ExponentialIsTheFloatProductOfThe2014Run) {
  Params p;
  GdbnNesterov opt = optimizer(p, 0.3f);
  ExponentialSchedule s(0.9f);
  float lr = 0.3f;
  for (int e = 1; e <= 10; ++e) {
    s.begin_epoch(opt, e, 10, 10);
    EXPECT_EQ(opt.current_learning_rate(), lr) << "epoch " << e;  // bit for bit
    lr *= 0.9f;
  }
  ExponentialSchedule resumed(0.9f);  // a run resumed at epoch 4 gets epoch 4's rate
  resumed.begin_epoch(opt, 4, 10, 10);
  EXPECT_EQ(opt.current_learning_rate(), 0.3f * 0.9f * 0.9f * 0.9f);
}

TEST(Schedule, CosineWarmsUpThenFollowsTheHalfCosineOnTheDevice) {
  Params p;
  GdbnNesterov opt = optimizer(p, 1.0f);
  CosineSchedule s(/*warmup_steps=*/4, /*min_factor=*/0.1f);
  s.begin_epoch(opt, 1, 2, 7);  // 14 steps: warm-up 0..3, cosine over the remaining 10
  EXPECT_TRUE(s.per_step());
  auto rate_at = [&](uint64_t t) {
    p.cpu.set_counter(opt.step_count(), t);
    s.before_step(opt);
    return opt.current_learning_rate();
  };
  EXPECT_FLOAT_EQ(rate_at(0), 0.25f);
  EXPECT_FLOAT_EQ(rate_at(3), 1.0f);
  EXPECT_FLOAT_EQ(rate_at(4), 1.0f);                                        // cos 0
  EXPECT_FLOAT_EQ(rate_at(9), 0.1f + 0.9f * 0.5f);                           // halfway: cos π/2 = 0
  EXPECT_FLOAT_EQ(rate_at(14), 0.1f);                                        // the end
  EXPECT_FLOAT_EQ(rate_at(100), 0.1f);                                       // and after it
  EXPECT_NEAR(rate_at(6), 0.1 + 0.9 * 0.5 * (1 + std::cos(M_PI * 0.2)), 1e-6);
}

TEST(Schedule, ReduceOnPlateauWaitsPatienceEpochsThenCools) {
  Params p;
  GdbnNesterov opt = optimizer(p, 1.0f);
  ReduceOnPlateau s(0.5f, /*patience=*/1, /*threshold=*/0.0f, /*min_rate=*/0.2f, /*cooldown=*/1);
  const double metric[] = {1.0, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9};
  std::vector<float> rates;
  for (int e = 1; e <= 8; ++e) {
    s.begin_epoch(opt, e, 8, 10);
    rates.push_back(opt.current_learning_rate());
    s.end_epoch(metric[e - 1]);
  }
  // Epoch 2 improves; 3 and 4 do not (2 > patience 1): halved for epoch 5; epoch 5 is the
  // cooldown; 6 and 7 do not improve: halved again for epoch 8, down to the floor 0.25 ≥ 0.2.
  EXPECT_EQ(rates, (std::vector<float>{1.0f, 1.0f, 1.0f, 1.0f, 0.5f, 0.5f, 0.5f, 0.25f}));
}

TEST(Schedule, BadSettingsAreNamed) {
  EXPECT_THAT(cudl::testing::error_of([] { StepSchedule(0, 0.5f); }), HasSubstr("at least one epoch"));
  EXPECT_THAT(cudl::testing::error_of([] { ExponentialSchedule(-1.0f); }), HasSubstr("gamma must be positive"));
  EXPECT_THAT(cudl::testing::error_of([] { CosineSchedule(0, 2.0f); }), HasSubstr("min_factor must be in [0, 1]"));
  EXPECT_THAT(cudl::testing::error_of([] { ReduceOnPlateau(1.5f); }), HasSubstr("factor must be in (0, 1)"));
}

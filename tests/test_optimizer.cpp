// The optimizers on the CPU: steps worked by hand for each; their state, their learning-rate
// tensor, weight decay on the decayed prefix only, and their errors. Against PyTorch's documented
// algorithms: tests/test_optimizer_reference.cpp. CPU–GPU parity of the update primitives:
// tests/test_cuda_parity.cpp.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "cudl/cpu_backend.hpp"
#include "cudl/error.hpp"
#include "cudl/network.hpp"
#include "cudl/optimizer.hpp"
#include "test_support.hpp"
#include "tolerance.hpp"

using namespace cudl;
using cudl::testing::error_of;
using cudl::testing::expect_all_close;
using ::testing::HasSubstr;

namespace {

// A 2→2 Dense layer: the flat parameters are W (2×2, decayed) then b (2).
struct Fixture {
  CpuBackend cpu{1};
  Network net{cpu, {2}};
  Fixture() {
    net.add(dense(2));
    net.params().copy_from(std::vector<float>{0.5f, -0.25f, 1.0f, 0.0f, 0.1f, -0.1f});
  }
};

// A parameter set of its own: P values, their gradients, the first `decayed` of them weights.
struct Params {
  Params(Backend& backend, const std::vector<float>& w, int64_t decayed)
      : params(Tensor::from_host(w, {static_cast<int64_t>(w.size())}, backend)),
        grads(Tensor::from_host(std::vector<float>(w.size(), 0.0f), {static_cast<int64_t>(w.size())}, backend)),
        set{&params, &grads, decayed} {}
  Tensor params, grads;
  ParamSet set;
};

}  // namespace

// ---- GdbnNesterov: gdbn's update worked by hand ----
//   V ← μV;  V ← V + lr·(−g/B − λ·(W+V));  W ← W + V   (weights)
//   v ← μv;  v ← v + (lr/B)·(−g_b);          b ← b + v   (biases, no decay)
// with the gradients g taken at the look-ahead point W + μV, and grad_scale = 1/B.

TEST(GdbnNesterov, TwoStepsMatchGdbnWorkedByHand) {
  Fixture f;
  ASSERT_EQ(f.net.decayed_params(), 4);
  GdbnNesterov opt(f.net.param_set(), {/*learn_rate=*/0.5f, /*momentum=*/0.9f, /*l2=*/0.01f, /*grad_scale=*/0.25f});

  // Step 1, V = 0: the look-ahead point is W itself.
  opt.begin();
  expect_all_close(f.net.params().to_vector(), std::vector<double>{0.5, -0.25, 1.0, 0.0, 0.1, -0.1}, 1e-7, 0, "look-ahead 1");
  f.net.grads().copy_from(std::vector<float>{2, 0, -4, 1, 4, -8});
  opt.step();
  // V1 = 0.5·(−g/4 − 0.01·W) = 0.5·([−0.5, 0, 1, −0.25] − [0.005, −0.0025, 0.01, 0])
  //    = [−0.2525, 0.00125, 0.495, −0.125];  W1 = W + V1 = [0.2475, −0.24875, 1.495, −0.125]
  // v1 = (0.5/4)·(−[4, −8]) = [−0.5, 1];       b1 = [−0.4, 0.9]
  opt.end();
  expect_all_close(f.net.params().to_vector(), std::vector<double>{0.2475, -0.24875, 1.495, -0.125, -0.4, 0.9}, 1e-6,
                   1e-6, "W1");
  expect_all_close(opt.velocity().to_vector(), std::vector<double>{-0.2525, 0.00125, 0.495, -0.125, -0.5, 1.0}, 1e-6,
                   1e-6, "V1");

  // Step 2: the look-ahead point is W1 + 0.9·V1 = [0.02025, −0.247625, 1.9405, −0.2375], b: [−0.85, 1.8].
  opt.begin();
  expect_all_close(f.net.params().to_vector(), std::vector<double>{0.02025, -0.247625, 1.9405, -0.2375, -0.85, 1.8},
                   1e-6, 1e-6, "look-ahead 2");
  f.net.grads().copy_from(std::vector<float>{1, 1, 1, 1, 0, 4});
  opt.step();
  // V2 = 0.9·V1 + 0.5·(−1/4 − 0.01·look-ahead)
  //    = [−0.22725, 0.001125, 0.4455, −0.1125] + [−0.12510125, −0.123761875, −0.1347025, −0.1238125]
  //    = [−0.35235125, −0.122636875, 0.3107975, −0.2363125];  W2 = W1 + V2
  // v2 = 0.9·v1 + 0.125·(−[0, 4]) = [−0.45, 0.4];             b2 = b1 + v2 = [−0.85, 1.3]
  opt.end();
  expect_all_close(f.net.params().to_vector(),
                   std::vector<double>{-0.10485125, -0.371386875, 1.8057975, -0.3613125, -0.85, 1.3}, 1e-6, 1e-6, "W2");
  expect_all_close(opt.velocity().to_vector(),
                   std::vector<double>{-0.35235125, -0.122636875, 0.3107975, -0.2363125, -0.45, 0.4}, 1e-6, 1e-6, "V2");
  EXPECT_EQ(read_counter(opt.step_count()), 2u);
}

// The fused step is the 2014 code's arithmetic: the same float operations in the same order as
// Backend::nesterov_step with the learning rate given, so the iterates are bit for bit equal.
TEST(GdbnNesterov, StepIsTheNesterovPrimitiveBitForBit) {
  CpuBackend cpu(2);
  const int64_t n = 100003, decayed = 70001;
  const std::vector<float> w0 = cudl::testing::uniform_values(1, n, -1.0f, 1.0f);
  Params p(cpu, w0, decayed);
  GdbnNesterov opt(p.set, {0.3f, 0.9f, 1e-4f, 1.0f / 64});
  Tensor w = Tensor::from_host(w0, {n}, cpu), v({n}, cpu);
  cpu.fill(v, 0.0f);
  const Tensor lr = Tensor::from_host({0.3f}, {1}, cpu);
  opt.begin();  // velocity 0: the look-ahead point is w itself
  for (uint64_t s = 0; s < 3; ++s) {
    p.grads.copy_from(cudl::testing::uniform_values(10 + s, n, -4.0f, 4.0f));
    opt.step();
    cpu.nesterov_step(w, v, p.grads, lr, {0.9f, 1.0f / 64, 1e-4f, decayed});
  }
  EXPECT_EQ(p.params.to_vector(), w.to_vector());
  EXPECT_EQ(opt.velocity().to_vector(), v.to_vector());
}

TEST(GdbnNesterov, StepWithoutBeginIsAnError) {
  Fixture f;
  GdbnNesterov opt(f.net.param_set(), {});
  EXPECT_THAT(error_of([&] { opt.step(); }), HasSubstr("call begin() first"));
}

TEST(GdbnNesterov, BeginAndEndAreIdempotent) {
  Fixture f;
  GdbnNesterov opt(f.net.param_set(), {0.5f, 0.9f, 0.0f, 1.0f});
  opt.begin();
  f.net.grads().copy_from(std::vector<float>{1, 1, 1, 1, 1, 1});
  opt.step();  // v = −0.5, the look-ahead point w = W1 + 0.9·v
  const std::vector<float> ahead = f.net.params().to_vector();
  opt.begin();
  EXPECT_EQ(f.net.params().to_vector(), ahead);
  opt.end();
  const std::vector<float> weights = f.net.params().to_vector();
  opt.end();
  EXPECT_EQ(f.net.params().to_vector(), weights);
  EXPECT_FALSE(opt.active());
}

TEST(GdbnNesterov, RejectsBadHyperparameters) {
  Fixture f;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  auto make = [&](GdbnNesterovOptions o) { return error_of([&] { GdbnNesterov opt(f.net.param_set(), o); }); };
  EXPECT_THAT(make({-0.1f, 0.9f, 0.0f, 1.0f}), HasSubstr("GdbnNesterov: learning rate must be finite and ≥ 0"));
  EXPECT_THAT(make({nan, 0.9f, 0.0f, 1.0f}), HasSubstr("learning rate"));
  EXPECT_THAT(make({0.1f, 1.0f, 0.0f, 1.0f}), HasSubstr("GdbnNesterov: momentum must be in [0"));
  EXPECT_THAT(make({0.1f, -0.1f, 0.0f, 1.0f}), HasSubstr("momentum"));
  EXPECT_THAT(make({0.1f, 0.9f, -1.0f, 1.0f}), HasSubstr("GdbnNesterov: L2 cost must be finite and ≥ 0"));
  EXPECT_THAT(make({0.1f, 0.9f, 0.0f, 0.0f}), HasSubstr("GdbnNesterov: grad_scale must be finite and > 0"));
  GdbnNesterov zero_rate(f.net.param_set(), {0.0f, 0.9f, 0.0f, 1.0f});  // lr 0 is allowed (a schedule may start there)
  EXPECT_EQ(zero_rate.current_learning_rate(), 0.0f);
}

// ---- Sgd ----

TEST(Sgd, MomentumDampingAndWeightDecayWorkedByHand) {
  CpuBackend cpu(1);
  // Three parameters, the first two decayed; lr 0.5, momentum 0.5, dampening 0.5, weight decay 0.1.
  Params p(cpu, {1.0f, -2.0f, 4.0f}, 2);
  Sgd opt(p.set, {/*learn_rate=*/0.5f, /*momentum=*/0.5f, /*dampening=*/0.5f, /*nesterov=*/false,
                  /*weight_decay=*/0.1f});
  // Step 1: g = [0.5, 1, −2] + 0.1·[1, −2, ·] = [0.6, 0.8, −2]; the buffer takes g as it is (no
  // dampening on the first step): b = [0.6, 0.8, −2];  w = w − 0.5·b = [0.7, −2.4, 5].
  p.grads.copy_from(std::vector<float>{0.5f, 1.0f, -2.0f});
  opt.step();
  expect_all_close(p.params.to_vector(), std::vector<double>{0.7, -2.4, 5.0}, 1e-6, 1e-6, "w1");
  expect_all_close(opt.state()[0].second->to_vector(), std::vector<double>{0.6, 0.8, -2.0}, 1e-6, 1e-6, "b1");
  // Step 2: g = [1, 0, 2] + 0.1·[0.7, −2.4, ·] = [1.07, −0.24, 2];
  // b = 0.5·b + 0.5·g = [0.3 + 0.535, 0.4 − 0.12, −1 + 1] = [0.835, 0.28, 0];
  // w = w − 0.5·b = [0.7 − 0.4175, −2.4 − 0.14, 5] = [0.2825, −2.54, 5].
  p.grads.copy_from(std::vector<float>{1.0f, 0.0f, 2.0f});
  opt.step();
  expect_all_close(p.params.to_vector(), std::vector<double>{0.2825, -2.54, 5.0}, 1e-6, 1e-6, "w2");
  expect_all_close(opt.state()[0].second->to_vector(), std::vector<double>{0.835, 0.28, 0.0}, 1e-6, 1e-6, "b2");
}

TEST(Sgd, NesterovWorkedByHand) {
  CpuBackend cpu(1);
  // lr 0.5, momentum 0.5, no decay. Step 1: g = [2, 4]: b = g; g ← g + 0.5·b = [3, 6];
  // w = [1, −1] − 0.5·[3, 6] = [−0.5, −4].  Step 2: g = [−2, 0]: b = 0.5·[2, 4] + g = [−1, 2];
  // g ← g + 0.5·b = [−2.5, 1];  w = [−0.5 + 1.25, −4 − 0.5] = [0.75, −4.5].
  Params p(cpu, {1.0f, -1.0f}, 2);
  Sgd opt(p.set, {0.5f, 0.5f, 0.0f, true, 0.0f});
  p.grads.copy_from(std::vector<float>{2.0f, 4.0f});
  opt.step();
  expect_all_close(p.params.to_vector(), std::vector<double>{-0.5, -4.0}, 1e-6, 1e-6, "w1");
  p.grads.copy_from(std::vector<float>{-2.0f, 0.0f});
  opt.step();
  expect_all_close(p.params.to_vector(), std::vector<double>{0.75, -4.5}, 1e-6, 1e-6, "w2");
}

TEST(Sgd, StateIsTheMomentumBufferAndTheStep) {
  CpuBackend cpu(1);
  Params p(cpu, {1, 2, 3, 4, 5}, 3);
  Sgd with(p.set, {0.1f, 0.9f, 0.0f, false, 0.0f});
  auto s = with.state();
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].first, "momentum_buffer");
  EXPECT_EQ(s[0].second->shape(), (Shape{5}));
  EXPECT_EQ(s[0].second->to_vector(), std::vector<float>(5, 0.0f));
  EXPECT_EQ(s[1].first, "step");
  EXPECT_EQ(s[1].second, &with.step_count());
  Sgd plain(p.set, {});
  s = plain.state();
  ASSERT_EQ(s.size(), 1u);  // no buffer without momentum
  EXPECT_EQ(s[0].first, "step");
  EXPECT_EQ(plain.name(), "sgd");
  plain.step();
  plain.step();
  EXPECT_EQ(read_counter(plain.step_count()), 2u);
}

TEST(Sgd, RejectsBadOptions) {
  CpuBackend cpu(1);
  Params p(cpu, {1, 2}, 1);
  auto make = [&](SgdOptions o) { return error_of([&] { Sgd opt(p.set, o); }); };
  EXPECT_THAT(make({-1.0f, 0.0f, 0.0f, false, 0.0f}), HasSubstr("Sgd: learning rate must be finite and ≥ 0"));
  EXPECT_THAT(make({0.1f, 1.0f, 0.0f, false, 0.0f}), HasSubstr("Sgd: momentum must be in [0"));
  EXPECT_THAT(make({0.1f, 0.5f, 1.5f, false, 0.0f}), HasSubstr("Sgd: dampening must be in [0, 1]"));
  EXPECT_THAT(make({0.1f, 0.5f, 0.0f, false, -0.1f}), HasSubstr("Sgd: weight decay must be finite and ≥ 0"));
  EXPECT_THAT(make({0.1f, 0.0f, 0.0f, true, 0.0f}), HasSubstr("Nesterov momentum requires momentum > 0"));
  EXPECT_THAT(make({0.1f, 0.9f, 0.1f, true, 0.0f}), HasSubstr("and dampening 0"));
}

// ---- Adam and AdamW ----

TEST(Adam, TwoStepsWorkedByHand) {
  CpuBackend cpu(1);
  // lr 0.1, β₁ 0.9, β₂ 0.999, eps 1e-8; w = 1.
  // Step 1, g = 2: m = 0.2, v = 0.004; m̂ = m/0.1 = 2, √v̂ = √(0.004/0.001) = 2;
  //   w = 1 − 0.1·2/(2 + 1e-8) = 0.9 (to 5e-10).
  // Step 2, g = −1: m = 0.18 − 0.1 = 0.08, v = 0.003996 + 0.001 = 0.004996;
  //   step size = 0.1/(1 − 0.81) = 0.52631579, denom = √0.004996/√0.001999 + 1e-8 = 1.58090153;
  //   w = 0.9 − 0.52631579·0.08/1.58090153 = 0.9 − 0.02663370 = 0.87336630.
  Params p(cpu, {1.0f}, 1);
  Adam opt(p.set, {/*learn_rate=*/0.1f});
  p.grads.copy_from(std::vector<float>{2.0f});
  opt.step();
  expect_all_close(p.params.to_vector(), std::vector<double>{0.9}, 1e-7, 1e-6, "w1");
  p.grads.copy_from(std::vector<float>{-1.0f});
  opt.step();
  expect_all_close(p.params.to_vector(), std::vector<double>{0.87336630}, 1e-7, 1e-6, "w2");
  expect_all_close(opt.state()[0].second->to_vector(), std::vector<double>{0.08}, 1e-8, 1e-6, "exp_avg");
  // 1 − β₂ in float is 0.00099998713 (β₂ = 0.999f rounds up), so v is 1.3e-5 below the decimal value;
  // the bias correction uses the same β₂, so w is not.
  expect_all_close(opt.state()[1].second->to_vector(), std::vector<double>{0.004996}, 0, 2e-5, "exp_avg_sq");
  EXPECT_EQ(read_counter(opt.step_count()), 2u);
}

TEST(Adam, AmsgradKeepsTheLargestSecondMomentWorkedByHand) {
  CpuBackend cpu(1);
  // lr 1, β₁ 0 (m = g), β₂ 0.5, w = 0. Step 1, g = 2: v = 2, vmax = 2, √(1 − 0.5) correction:
  //   denom = √2/√0.5 = 2, w = 0 − 1·2/2 = −1.
  // Step 2, g = 1: v = 0.5·2 + 0.5·1 = 1.5 but vmax stays 2; denom = √2/√0.75 = 1.63299316:
  //   w = −1 − 1/1.63299316 = −1.61237244 (without amsgrad: √1.5/√0.75 = √2, w = −1.70710678).
  for (bool amsgrad : {true, false}) {
    Params p(cpu, {0.0f}, 1);
    AdamOptions o;
    o.learn_rate = 1.0f;
    o.beta1 = 0.0f;
    o.beta2 = 0.5f;
    o.amsgrad = amsgrad;
    Adam opt(p.set, o);
    p.grads.copy_from(std::vector<float>{2.0f});
    opt.step();
    expect_all_close(p.params.to_vector(), std::vector<double>{-1.0}, 1e-7, 1e-6, "w1");
    p.grads.copy_from(std::vector<float>{1.0f});
    opt.step();
    expect_all_close(p.params.to_vector(), std::vector<double>{amsgrad ? -1.61237244 : -1.70710678}, 1e-7, 1e-6,
                     amsgrad ? "amsgrad w2" : "w2");
    if (amsgrad) expect_all_close(opt.state()[2].second->to_vector(), std::vector<double>{2.0}, 0, 0, "vmax");
  }
}

TEST(Adam, DecoupledAndL2DecayWorkedByHand) {
  CpuBackend cpu(1);
  // A weight and a bias, both 1, gradients 2; lr 0.1, weight decay 0.5. The first Adam step moves
  // each parameter by lr·m̂/(√v̂ + eps) ≈ lr·sign(g) whatever the gradient's size, so:
  //   AdamW: the weight first shrinks to 1·(1 − 0.1·0.5) = 0.95, then 0.95 − 0.1 = 0.85; the bias 0.9.
  //   Adam (L2): the weight's gradient becomes 2 + 0.5·1 = 2.5, still a step of 0.1: 0.9; the bias 0.9.
  AdamOptions o;
  o.learn_rate = 0.1f;
  o.weight_decay = 0.5f;
  Params pw(cpu, {1.0f, 1.0f}, 1), pl(cpu, {1.0f, 1.0f}, 1);
  Adam adamw = Adam::adamw(pw.set, o);
  Adam adam(pl.set, o);
  EXPECT_EQ(adamw.name(), "adamw");
  EXPECT_EQ(adam.name(), "adam");
  pw.grads.copy_from(std::vector<float>{2.0f, 2.0f});
  pl.grads.copy_from(std::vector<float>{2.0f, 2.0f});
  adamw.step();
  adam.step();
  expect_all_close(pw.params.to_vector(), std::vector<double>{0.85, 0.9}, 1e-7, 1e-6, "adamw");
  expect_all_close(pl.params.to_vector(), std::vector<double>{0.9, 0.9}, 1e-7, 1e-6, "adam l2");
  // The L2 term is in the moments: m = 0.1·[2.5, 2].
  expect_all_close(adam.state()[0].second->to_vector(), std::vector<double>{0.25, 0.2}, 1e-8, 1e-6, "adam m");
  expect_all_close(adamw.state()[0].second->to_vector(), std::vector<double>{0.2, 0.2}, 1e-8, 1e-6, "adamw m");
}

TEST(Adam, StateNamesAndSizes) {
  CpuBackend cpu(1);
  Params p(cpu, {1, 2, 3}, 2);
  Adam plain(p.set, {});
  auto s = plain.state();
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0].first, "exp_avg");
  EXPECT_EQ(s[1].first, "exp_avg_sq");
  EXPECT_EQ(s[2].first, "step");
  EXPECT_EQ(s[0].second->shape(), (Shape{3}));
  EXPECT_EQ(s[1].second->to_vector(), std::vector<float>(3, 0.0f));
  EXPECT_EQ(s[2].second->shape(), (Shape{2}));  // a counter
  AdamOptions o;
  o.amsgrad = true;
  Adam ams = Adam::adamw(p.set, o);
  s = ams.state();
  ASSERT_EQ(s.size(), 4u);
  EXPECT_EQ(s[2].first, "max_exp_avg_sq");
  EXPECT_EQ(s[2].second->shape(), (Shape{3}));
  EXPECT_EQ(s[3].first, "step");
  EXPECT_EQ(ams.step_count().shape(), (Shape{2}));
}

TEST(Adam, RejectsBadOptions) {
  CpuBackend cpu(1);
  Params p(cpu, {1, 2}, 1);
  auto make = [&](void (*edit)(AdamOptions&), Adam::Decay decay) {
    AdamOptions o;
    edit(o);
    return error_of([&] { Adam opt(p.set, o, decay); });
  };
  EXPECT_THAT(make([](AdamOptions& o) { o.learn_rate = -1e-3f; }, Adam::Decay::kL2),
              HasSubstr("Adam: learning rate must be finite and ≥ 0"));
  EXPECT_THAT(make([](AdamOptions& o) { o.beta1 = 1.0f; }, Adam::Decay::kL2), HasSubstr("Adam: beta1 must be in [0"));
  EXPECT_THAT(make([](AdamOptions& o) { o.beta2 = -0.5f; }, Adam::Decay::kDecoupled),
              HasSubstr("AdamW: beta2 must be in [0"));
  EXPECT_THAT(make([](AdamOptions& o) { o.eps = 0.0f; }, Adam::Decay::kL2),
              HasSubstr("Adam: eps must be finite and > 0"));
  EXPECT_THAT(make([](AdamOptions& o) { o.weight_decay = -1.0f; }, Adam::Decay::kDecoupled),
              HasSubstr("AdamW: weight decay must be finite and ≥ 0"));
}

// ---- what every optimizer shares ----

// With zero gradients and zero state, only weight decay moves anything, and only the decayed
// prefix: here across two threads' chunks, the prefix ending inside the first.
TEST(Optimizer, WeightDecayTouchesOnlyTheDecayedPrefix) {
  CpuBackend cpu(2);
  const int64_t n = 100003, decayed = 40001;
  const std::vector<float> w0 = cudl::testing::uniform_values(7, n, 0.5f, 1.0f);
  auto check = [&](Optimizer& opt, Params& p, double factor) {
    opt.begin();
    opt.step();
    opt.end();
    const std::vector<float> w = p.params.to_vector();
    int wrong = 0;
    for (int64_t i = 0; i < n; ++i) {
      const bool ok = i < decayed ? w[i] < w0[i] && std::fabs(w[i] - factor * w0[i]) <= 1e-6 : w[i] == w0[i];
      if (!ok && wrong++ < 3) ADD_FAILURE() << opt.name() << " element " << i << ": " << w0[i] << " → " << w[i];
    }
  };
  {
    Params p(cpu, w0, decayed);
    Sgd opt(p.set, {0.5f, 0.9f, 0.0f, false, 0.1f});  // w ← w − 0.5·0.1·w
    check(opt, p, 0.95);
  }
  {
    Params p(cpu, w0, decayed);
    AdamOptions o;
    o.learn_rate = 0.5f;
    o.weight_decay = 0.1f;
    Adam opt = Adam::adamw(p.set, o);  // w ← w·(1 − 0.05), then m = 0: no move
    check(opt, p, 0.95);
  }
  {
    Params p(cpu, w0, decayed);
    GdbnNesterov opt(p.set, {0.5f, 0.0f, 0.1f, 1.0f});  // momentum 0: w ← w − 0.5·0.1·w
    check(opt, p, 0.95);
  }
  {
    // Adam with L2: the decay enters the moments, and the first step moves each weight by ≈ lr.
    Params p(cpu, w0, decayed);
    AdamOptions o;
    o.learn_rate = 0.01f;
    o.weight_decay = 0.1f;
    Adam opt(p.set, o);
    opt.step();
    const std::vector<float> w = p.params.to_vector();
    EXPECT_NEAR(w[0], w0[0] - 0.01f, 1e-6);
    EXPECT_NEAR(w[decayed - 1], w0[decayed - 1] - 0.01f, 1e-6);
    EXPECT_EQ(w[decayed], w0[decayed]);
    EXPECT_EQ(w[n - 1], w0[n - 1]);
  }
}

TEST(Optimizer, StepsReadTheLearningRateTensor) {
  CpuBackend cpu(1);
  Params p(cpu, {1.0f, 1.0f}, 1);
  Sgd opt(p.set, {0.1f, 0.0f, 0.0f, false, 0.0f});
  EXPECT_EQ(opt.base_learning_rate(), 0.1f);
  EXPECT_EQ(opt.current_learning_rate(), 0.1f);
  EXPECT_EQ(opt.learning_rate().shape(), (Shape{1}));
  p.grads.copy_from(std::vector<float>{1.0f, -2.0f});
  opt.set_learning_rate(0.0f);
  opt.step();
  EXPECT_EQ(p.params.to_vector(), (std::vector<float>{1.0f, 1.0f}));
  opt.set_learning_rate(0.5f);  // what a per-epoch schedule does
  opt.step();
  EXPECT_EQ(p.params.to_vector(), (std::vector<float>{0.5f, 2.0f}));
  opt.learning_rate().copy_from(std::vector<float>{0.25f});  // what a per-step schedule's kernel does
  opt.step();
  EXPECT_EQ(p.params.to_vector(), (std::vector<float>{0.25f, 2.5f}));
  EXPECT_EQ(opt.current_learning_rate(), 0.25f);
  EXPECT_EQ(opt.base_learning_rate(), 0.1f);
  EXPECT_EQ(read_counter(opt.step_count()), 3u);
  EXPECT_THAT(error_of([&] { opt.set_learning_rate(-1.0f); }), HasSubstr("learning rate must be finite and ≥ 0"));
  EXPECT_THAT(error_of([&] { opt.set_learning_rate(std::numeric_limits<float>::infinity()); }),
              HasSubstr("learning rate"));
}

TEST(Optimizer, NetworkParamSetIsItsFlatBuffers) {
  Fixture f;
  const ParamSet s = f.net.param_set();
  EXPECT_EQ(s.params, &f.net.params());
  EXPECT_EQ(s.grads, &f.net.grads());
  EXPECT_EQ(s.decayed, 4);
  Sgd opt(s, {});
  EXPECT_EQ(&opt.backend(), &f.cpu);
  EXPECT_EQ(opt.params().params, &f.net.params());
}

TEST(Optimizer, RejectsABadParameterSet) {
  CpuBackend cpu(1), other(1);
  Tensor w({4}, cpu), g({4}, cpu), g3({3}, cpu), elsewhere({4}, other);
  EXPECT_THAT(error_of([&] { Sgd opt(ParamSet{}, {}); }), HasSubstr("Sgd: the parameter set has no params"));
  EXPECT_THAT(error_of([&] { Sgd opt(ParamSet{&w, &g3, 0}, {}); }), HasSubstr("differ in size"));
  EXPECT_THAT(error_of([&] { Adam opt(ParamSet{&w, &elsewhere, 0}, {}); }), HasSubstr("Adam: params live on"));
  EXPECT_THAT(error_of([&] { GdbnNesterov opt(ParamSet{&w, &g, 5}, {}); }),
              HasSubstr("GdbnNesterov: decayed count 5 outside [0, 4]"));
  EXPECT_THAT(error_of([&] { GdbnNesterov opt(ParamSet{&w, &g, -1}, {}); }), HasSubstr("decayed count -1"));
}

// ---- the update primitives' checks ----

TEST(UpdatePrimitives, CheckTheirTensors) {
  CpuBackend cpu(1), other(1);
  Tensor w({4}, cpu), m({4}, cpu), v({4}, cpu), g({4}, cpu), g3({3}, cpu), none;
  Tensor lr = Tensor::from_host({0.1f}, {1}, cpu), lr2({2}, cpu), lr_elsewhere({1}, other);
  Tensor step = make_counter(cpu), not_counter({3}, cpu);
  SgdArgs momentum;
  momentum.momentum = 0.9f;
  AdamArgs amsgrad;
  amsgrad.amsgrad = true;
  EXPECT_THAT(error_of([&] { cpu.nesterov_step(w, v, g, lr2, {}); }),
              HasSubstr("nesterov_step: lr (the learning rate: one float) expected shape [1]"));
  EXPECT_THAT(error_of([&] { cpu.nesterov_step(w, v, g, lr_elsewhere, {}); }),
              HasSubstr("tensor lr lives on another backend instance"));
  EXPECT_THAT(error_of([&] { cpu.nesterov_step(w, v, g3, lr, {}); }), HasSubstr("differ in size"));
  EXPECT_THAT(error_of([&] { cpu.sgd_step(w, none, g, lr, not_counter, {}); }),
              HasSubstr("sgd_step: counter (a tensor from make_counter)"));
  EXPECT_THAT(error_of([&] { cpu.sgd_step(w, none, g, lr, step, momentum); }),
              HasSubstr("sgd_step: momentum ≠ 0 needs buf (4 elements), found an empty tensor"));
  EXPECT_THAT(error_of([&] { cpu.sgd_step(w, g3, g, lr, step, momentum); }), HasSubstr("buf"));
  SgdArgs decayed;
  decayed.decayed = 5;
  EXPECT_THAT(error_of([&] { cpu.sgd_step(w, none, g, lr, step, decayed); }),
              HasSubstr("sgd_step: decayed count 5 outside [0, 4]"));
  EXPECT_THAT(error_of([&] { cpu.adam_step(w, m, v, none, g, lr, step, amsgrad); }),
              HasSubstr("adam_step: amsgrad needs vmax"));
  EXPECT_THAT(error_of([&] { cpu.adam_step(w, m, g3, none, g, lr, step, {}); }), HasSubstr("w [4] and v [3]"));
  EXPECT_THAT(error_of([&] { cpu.adam_step(w, m, v, none, g, lr2, step, {}); }), HasSubstr("adam_step: lr"));
  // Without momentum (SGD) or amsgrad (Adam) the optional state may be empty.
  cpu.set_counter(step, 1);
  cpu.fill(w, 1.0f);
  cpu.fill(m, 0.0f);
  cpu.fill(v, 0.0f);
  cpu.fill(g, 0.0f);
  cpu.sgd_step(w, none, g, lr, step, {});
  cpu.adam_step(w, m, v, none, g, lr, step, {});
  EXPECT_EQ(w.to_vector(), std::vector<float>(4, 1.0f));
}

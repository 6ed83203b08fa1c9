// NesterovSgd against gdbn's update worked by hand:
//   V ← μV;  V ← V + lr·(−g/B − λ·(W+V));  W ← W + V   (weights)
//   v ← μv;  v ← v + (lr/B)·(−g_b);          b ← b + v   (biases, no decay)
// with the gradients g taken at the look-ahead point W + μV.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cudl/cpu_backend.hpp"
#include "cudl/error.hpp"
#include "cudl/network.hpp"
#include "cudl/optimizer.hpp"
#include "tolerance.hpp"

using namespace cudl;
using cudl::testing::expect_all_close;

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
}  // namespace

TEST(NesterovSgd, TwoStepsMatchGdbnWorkedByHand) {
  Fixture f;
  ASSERT_EQ(f.net.decayed_params(), 4);
  NesterovSgd opt(f.net, {/*learn_rate=*/0.5f, /*momentum=*/0.9f, /*l2=*/0.01f});
  const int64_t batch = 4;

  // Step 1, V = 0: the look-ahead point is W itself.
  opt.begin();
  expect_all_close(f.net.params().to_vector(), std::vector<double>{0.5, -0.25, 1.0, 0.0, 0.1, -0.1}, 1e-7, 0, "look-ahead 1");
  f.net.grads().copy_from(std::vector<float>{2, 0, -4, 1, 4, -8});
  opt.step(batch);
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
  opt.step(batch);
  // V2 = 0.9·V1 + 0.5·(−1/4 − 0.01·look-ahead)
  //    = [−0.22725, 0.001125, 0.4455, −0.1125] + [−0.12510125, −0.123761875, −0.1347025, −0.1238125]
  //    = [−0.35235125, −0.122636875, 0.3107975, −0.2363125];  W2 = W1 + V2
  // v2 = 0.9·v1 + 0.125·(−[0, 4]) = [−0.45, 0.4];             b2 = b1 + v2 = [−0.85, 1.3]
  opt.end();
  expect_all_close(f.net.params().to_vector(),
                   std::vector<double>{-0.10485125, -0.371386875, 1.8057975, -0.3613125, -0.85, 1.3}, 1e-6, 1e-6, "W2");
  expect_all_close(opt.velocity().to_vector(),
                   std::vector<double>{-0.35235125, -0.122636875, 0.3107975, -0.2363125, -0.45, 0.4}, 1e-6, 1e-6, "V2");
}

TEST(NesterovSgd, StepWithoutBeginIsAnError) {
  Fixture f;
  NesterovSgd opt(f.net, {});
  EXPECT_THROW(opt.step(4), Error);
}

TEST(NesterovSgd, RejectsBadHyperparameters) {
  Fixture f;
  EXPECT_THROW(NesterovSgd(f.net, {0.0f, 0.9f, 0.0f}), Error);
  EXPECT_THROW(NesterovSgd(f.net, {0.1f, 1.0f, 0.0f}), Error);
  EXPECT_THROW(NesterovSgd(f.net, {0.1f, 0.9f, -1.0f}), Error);
}

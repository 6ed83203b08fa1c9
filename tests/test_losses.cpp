// The elementwise losses (MeanSquaredError, BinaryCrossEntropyWithLogits and their Backend
// primitives) on the CPU: hand-worked losses, gradients and statistics, the reductions, the
// divergence check, finite-difference gradients, target rows drawn by sample_rows/shuffled_rows,
// and fit() learning a regression and a multi-label problem. Also softmax_cross_entropy's labels
// that cannot be converted to an integer (NaN, 1e30), checked before any conversion.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "cudl/cpu_backend.hpp"
#include "cudl/error.hpp"
#include "cudl/loss.hpp"
#include "cudl/optimizer.hpp"
#include "cudl/rng.hpp"
#include "cudl/trainer.hpp"
#include "gradient_check.hpp"
#include "test_support.hpp"
#include "tolerance.hpp"

using namespace cudl;
using cudl::testing::error_of;
using cudl::testing::expect_all_close;
using cudl::testing::fresh_loss_stats;
using cudl::testing::uniform_values;
using ::testing::HasSubstr;

namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

Tensor make(Backend& b, const std::vector<float>& v, Shape s) { return Tensor::from_host(v, std::move(s), b); }

// −t·log σ(x) − (1 − t)·log(1 − σ(x)), in double, the textbook form.
double bce_reference(double x, double t) {
  const double s = 1.0 / (1.0 + std::exp(-x));
  return -t * std::log(s) - (1.0 - t) * std::log(1.0 - s);
}

}  // namespace

// ---- mean squared error ----

// pred [[1, 2], [3, 5]], target [[0, 2], [1, 1]]: errors (1, 0 | 2, 4), squares (1, 0 | 4, 16),
// per-sample losses 1/2 and 20/2 = 10, sum 10.5 (PyTorch's MSELoss 'mean': 21/4 = 10.5/2).
// dpred = s·2(p − t)/D = s·(p − t) with D = 2.
TEST(MeanSquaredError, PrimitiveHandWorked) {
  CpuBackend cpu(1);
  const Tensor pred = make(cpu, {1, 2, 3, 5}, {2, 2}), target = make(cpu, {0, 2, 1, 1}, {2, 2});
  Tensor d({2, 2}, cpu), stats = fresh_loss_stats(cpu);
  const Tensor step = make_counter(cpu, 3);
  ElementwiseLossArgs args;
  args.grad_scale = 0.5f;
  cpu.mean_squared_error(pred, target, args, step, d, stats);
  EXPECT_EQ(d.to_vector(), (std::vector<float>{0.5f, 0.0f, 1.0f, 2.0f}));
  EXPECT_EQ(stats.to_vector(), (std::vector<float>{10.5f, 0.0f, -1.0f, 0.0f}));
  // A second batch adds to the sums: loss 10.5 + 10.5, still no errors.
  cpu.mean_squared_error(pred, target, args, step, d, stats);
  EXPECT_EQ(stats.to_vector(), (std::vector<float>{21.0f, 0.0f, -1.0f, 0.0f}));
}

TEST(MeanSquaredError, GradientMayOverwriteThePrediction) {
  CpuBackend cpu(1);
  Tensor pred = make(cpu, {1, 2, 3, 5}, {2, 2});
  const Tensor target = make(cpu, {0, 2, 1, 1}, {2, 2});
  Tensor stats = fresh_loss_stats(cpu);
  cpu.mean_squared_error(pred, target, {}, make_counter(cpu), pred, stats);
  EXPECT_EQ(pred.to_vector(), (std::vector<float>{1.0f, 0.0f, 2.0f, 4.0f}));  // 2(p − t)/2
  EXPECT_EQ(stats.to_vector()[LossStats::kLossSum], 10.5f);
}

// The Loss: kMean scales the gradient by 1/N, kSum by 1; the statistics are the same sums.
TEST(MeanSquaredError, ReductionScalesTheGradientOnly) {
  CpuBackend cpu(1);
  const Tensor pred = make(cpu, {1, 2, 3, 5}, {2, 2}), target = make(cpu, {0, 2, 1, 1}, {2, 2});
  const Tensor step = make_counter(cpu);
  Tensor dm({2, 2}, cpu), ds({2, 2}, cpu);
  Tensor sm = Loss::make_stats(cpu), ss = Loss::make_stats(cpu);
  MeanSquaredError(Reduction::kMean).forward_backward(pred, target, step, dm, sm);
  MeanSquaredError(Reduction::kSum).forward_backward(pred, target, step, ds, ss);
  EXPECT_EQ(dm.to_vector(), (std::vector<float>{0.5f, 0.0f, 1.0f, 2.0f}));  // 2(p − t)/(N·D): PyTorch's
  EXPECT_EQ(ds.to_vector(), (std::vector<float>{1.0f, 0.0f, 2.0f, 4.0f}));
  const LossTotals m = Loss::read(sm), s = Loss::read(ss);
  EXPECT_EQ(m.loss_sum, 10.5);
  EXPECT_EQ(s.loss_sum, 10.5);
  EXPECT_EQ(m.errors, 0.0);
  EXPECT_EQ(m.bad_step, -1);
  EXPECT_EQ(MeanSquaredError().name(), "mean-squared-error");
  EXPECT_EQ(MeanSquaredError(Reduction::kSum).reduction(), Reduction::kSum);
}

// One output per sample: the targets may be (N) rather than (N × 1).
TEST(MeanSquaredError, TakesTargetsOfRankOneForOneOutput) {
  CpuBackend cpu(1);
  const Tensor pred = make(cpu, {1, 4}, {2, 1}), flat = make(cpu, {0, 1}, {2});
  Tensor d({2, 1}, cpu), stats = Loss::make_stats(cpu);
  MeanSquaredError(Reduction::kSum).forward_backward(pred, flat, make_counter(cpu), d, stats);
  EXPECT_EQ(d.to_vector(), (std::vector<float>{2.0f, 6.0f}));
  EXPECT_EQ(Loss::read(stats).loss_sum, 10.0);
}

TEST(MeanSquaredError, RejectsTargetsOfAnotherShape) {
  CpuBackend cpu(1);
  const Tensor pred = make(cpu, {1, 2, 3, 4, 5, 6}, {2, 3}), target = make(cpu, {1, 2, 3, 4}, {2, 2});
  Tensor d({2, 3}, cpu), stats = Loss::make_stats(cpu);
  EXPECT_THAT(error_of([&] { MeanSquaredError().forward_backward(pred, target, make_counter(cpu), d, stats); }),
              HasSubstr("mean_squared_error: targets expected shape [2, 3], found [2, 2]"));
  const Tensor flat = make(cpu, {1, 2}, {2});
  EXPECT_THAT(error_of([&] { MeanSquaredError().forward_backward(pred, flat, make_counter(cpu), d, stats); }),
              HasSubstr("targets expected shape [2, 3], found [2]"));
  Tensor d_wrong({3, 2}, cpu);
  EXPECT_THAT(error_of([&] { cpu.mean_squared_error(pred, pred, {}, make_counter(cpu), d_wrong, stats); }),
              HasSubstr("gradient expected shape [2, 3]"));
}

// The first diverged step is kept: a loss above max_loss, then NaN (a NaN target), are recorded
// once, at the counter's value when the batch ran.
TEST(MeanSquaredError, RecordsTheFirstDivergedStep) {
  CpuBackend cpu(1);
  const Tensor target = make(cpu, {0, 0}, {1, 2});
  Tensor d({1, 2}, cpu), stats = Loss::make_stats(cpu), step = make_counter(cpu, 4);
  const MeanSquaredError loss(Reduction::kMean, 10.0f);
  loss.forward_backward(make(cpu, {1, 2}, {1, 2}), target, step, d, stats);  // loss 2.5
  EXPECT_EQ(Loss::read(stats).bad_step, -1);
  cpu.add_to_counter(step, 1);
  loss.forward_backward(make(cpu, {1000, 0}, {1, 2}), target, step, d, stats);  // loss 5e5 > 10
  cpu.add_to_counter(step, 1);
  loss.forward_backward(make(cpu, {1, 2}, {1, 2}), make(cpu, {kNaN, 0}, {1, 2}), step, d, stats);
  const LossTotals t = Loss::read(stats);
  EXPECT_EQ(t.bad_step, 5);
  EXPECT_EQ(t.bad_value, 5e5);
}

// The default limit (max_loss ≤ 0: 1e30) passes any finite batch below it and catches a
// prediction whose square overflows, and a NaN target.
TEST(MeanSquaredError, DefaultLimitCatchesOverflowAndNaN) {
  CpuBackend cpu(1);
  const Tensor target = make(cpu, {0}, {1, 1});
  Tensor d({1, 1}, cpu), stats = Loss::make_stats(cpu);
  const MeanSquaredError loss;
  loss.forward_backward(make(cpu, {1e14f}, {1, 1}), target, make_counter(cpu, 1), d, stats);  // 1e28: kept
  EXPECT_EQ(Loss::read(stats).bad_step, -1);
  loss.forward_backward(make(cpu, {1e20f}, {1, 1}), target, make_counter(cpu, 2), d, stats);  // inf
  const LossTotals t = Loss::read(stats);
  EXPECT_EQ(t.bad_step, 2);
  EXPECT_TRUE(std::isinf(t.bad_value));

  Tensor s2 = Loss::make_stats(cpu);
  loss.forward_backward(make(cpu, {1}, {1, 1}), make(cpu, {kNaN}, {1, 1}), make_counter(cpu, 7), d, s2);
  EXPECT_EQ(Loss::read(s2).bad_step, 7);
  EXPECT_TRUE(std::isnan(Loss::read(s2).bad_value));
}

// ---- binary cross-entropy with logits ----

// Row 0: x = 0, t = 1: loss ln 2, σ = 1/2, wrong (0 > 0 is false); x = ln 3, t = 0: loss
// ln 3 + ln(4/3) = ln 4, σ = 3/4, wrong. Row 1: x = −ln 3, t = 0: loss ln(4/3), σ = 1/4, right;
// x = ln 3, t = 1/4 (a soft target): loss ln 4 − ln 3 / 4, σ = 3/4, wrong (3/4 > 0 but 1/4 ≤ 1/2).
// Per-sample losses (ln 2 + ln 4)/2 and (ln(4/3) + ln 4 − ln 3/4)/2; errors 2/2 + 1/2;
// dlogits = s·(σ − t)/2.
TEST(BinaryCrossEntropyWithLogits, PrimitiveHandWorked) {
  CpuBackend cpu(1);
  const float l3 = std::log(3.0f);
  const Tensor logits = make(cpu, {0.0f, l3, -l3, l3}, {2, 2}), targets = make(cpu, {1, 0, 0, 0.25f}, {2, 2});
  Tensor d({2, 2}, cpu), stats = fresh_loss_stats(cpu);
  ElementwiseLossArgs args;
  args.grad_scale = 2.0f;
  cpu.binary_cross_entropy_with_logits(logits, targets, args, make_counter(cpu), d, stats);
  expect_all_close(d.to_vector(), std::vector<double>{0.5 - 1, 0.75, 0.25, 0.75 - 0.25}, 1e-6, 1e-6, "dlogits");
  const double ln2 = std::log(2.0), ln3 = std::log(3.0), ln4 = std::log(4.0);
  const double loss = (ln2 + ln4) / 2 + (ln4 - ln3 + ln4 - ln3 / 4) / 2;
  const std::vector<float> st = stats.to_vector();
  EXPECT_NEAR(st[LossStats::kLossSum], loss, 1e-6);
  EXPECT_EQ(st[LossStats::kErrors], 1.5f);
  EXPECT_EQ(st[LossStats::kBadStep], -1.0f);
  // The same values as the textbook form.
  const double row0 = (bce_reference(0, 1) + bce_reference(ln3, 0)) / 2;
  const double row1 = (bce_reference(-ln3, 0) + bce_reference(ln3, 0.25)) / 2;
  EXPECT_NEAR(st[LossStats::kLossSum], row0 + row1, 1e-6);
}

// Logits far from 0 give the exact finite loss |x| on the wrong side and 0 on the right one (the
// textbook form overflows to inf or NaN there), and a gradient of ±s/D or ~0.
TEST(BinaryCrossEntropyWithLogits, IsStableForLargeLogits) {
  CpuBackend cpu(1);
  const Tensor logits = make(cpu, {100, -100, 100, -100}, {1, 4}), targets = make(cpu, {0, 1, 1, 0}, {1, 4});
  Tensor d({1, 4}, cpu), stats = fresh_loss_stats(cpu);
  ElementwiseLossArgs args;
  args.max_loss = 1e6f;
  cpu.binary_cross_entropy_with_logits(logits, targets, args, make_counter(cpu), d, stats);
  // (σ(−100) = e^−100 ≈ 4e-44 is a denormal, not 0.)
  expect_all_close(d.to_vector(), std::vector<double>{0.25, -0.25, 0.0, 0.25 * std::exp(-100.0)}, 1e-44, 1e-6,
                   "dlogits");
  const std::vector<float> st = stats.to_vector();
  EXPECT_EQ(st[LossStats::kLossSum], 50.0f);  // (100 + 100 + 0 + 0)/4
  EXPECT_EQ(st[LossStats::kErrors], 0.5f);
  EXPECT_EQ(st[LossStats::kBadStep], -1.0f);
}

TEST(BinaryCrossEntropyWithLogits, ReductionScalesTheGradientOnly) {
  CpuBackend cpu(1);
  const std::vector<float> xv = uniform_values(3, 12, -3.0f, 3.0f), tv = uniform_values(4, 12, 0.0f, 1.0f);
  const Tensor x = make(cpu, xv, {4, 3}), t = make(cpu, tv, {4, 3}), step = make_counter(cpu);
  Tensor dm({4, 3}, cpu), ds({4, 3}, cpu), sm = Loss::make_stats(cpu), ss = Loss::make_stats(cpu);
  BinaryCrossEntropyWithLogits(Reduction::kMean).forward_backward(x, t, step, dm, sm);
  BinaryCrossEntropyWithLogits(Reduction::kSum).forward_backward(x, t, step, ds, ss);
  const std::vector<float> m = dm.to_vector(), s = ds.to_vector();
  for (size_t i = 0; i < m.size(); ++i) EXPECT_FLOAT_EQ(m[i] * 4.0f, s[i]) << i;
  EXPECT_EQ(Loss::read(sm).loss_sum, Loss::read(ss).loss_sum);
  EXPECT_EQ(Loss::read(sm).errors, Loss::read(ss).errors);
  EXPECT_EQ(BinaryCrossEntropyWithLogits().name(), "binary-cross-entropy-with-logits");
}

// The default limit is 100·ln 2 per sample: confidently wrong logits of 1000 are divergence.
TEST(BinaryCrossEntropyWithLogits, DefaultLimitIsAHundredTimesTheInitialLoss) {
  CpuBackend cpu(1);
  const Tensor targets = make(cpu, {1, 0}, {1, 2});
  Tensor d({1, 2}, cpu), stats = Loss::make_stats(cpu), step = make_counter(cpu, 11);
  const BinaryCrossEntropyWithLogits loss;
  EXPECT_NEAR(loss.max_loss(), 0.0f, 0.0f);  // the default is chosen per call (see loss.hpp)
  loss.forward_backward(make(cpu, {-60, 60}, {1, 2}), targets, step, d, stats);  // 60 < 69.3
  EXPECT_EQ(Loss::read(stats).bad_step, -1);
  cpu.add_to_counter(step, 1);
  loss.forward_backward(make(cpu, {-1000, 1000}, {1, 2}), targets, step, d, stats);
  const LossTotals t = Loss::read(stats);
  EXPECT_EQ(t.bad_step, 12);
  EXPECT_EQ(t.bad_value, 1000.0);
  // A NaN target makes the loss NaN: divergence, not a silently wrong number.
  Tensor s2 = Loss::make_stats(cpu);
  loss.forward_backward(make(cpu, {1, 2}, {1, 2}), make(cpu, {kNaN, 1}, {1, 2}), step, d, s2);
  EXPECT_EQ(Loss::read(s2).bad_step, 12);
  EXPECT_TRUE(std::isnan(Loss::read(s2).bad_value));
}

// ---- finite differences: dpred is ∂(grad_scale · Σ per-sample losses)/∂pred ----

namespace {

enum class Which { kMse, kBce };

void check_gradient(Which which, const std::vector<float>& pv, const std::vector<float>& tv, int64_t rows,
                    int64_t cols, float grad_scale) {
  CpuBackend cpu(1);
  Tensor pred = make(cpu, pv, {rows, cols});
  const Tensor target = make(cpu, tv, {rows, cols}), step = make_counter(cpu);
  Tensor d({rows, cols}, cpu), stats = fresh_loss_stats(cpu);
  ElementwiseLossArgs args;
  args.grad_scale = grad_scale;
  auto run = [&] {
    Loss::reset(stats);
    if (which == Which::kMse) {
      cpu.mean_squared_error(pred, target, args, step, d, stats);
    } else {
      cpu.binary_cross_entropy_with_logits(pred, target, args, step, d, stats);
    }
    return grad_scale * Loss::read(stats).loss_sum;
  };
  run();
  const std::vector<float> analytic = d.to_vector();
  const std::vector<double> numeric = cudl::testing::numerical_gradient(pred, 1e-2f, run);
  cudl::testing::expect_gradient_matches(analytic, numeric, {2e-4, 2e-3, 1e-3},
                                         which == Which::kMse ? "mse" : "bce");
}

}  // namespace

TEST(ElementwiseLossGradients, MatchFiniteDifferences) {
  const int64_t rows = 5, cols = 3;
  const std::vector<float> p = uniform_values(21, rows * cols, -2.0f, 2.0f);
  check_gradient(Which::kMse, p, uniform_values(22, rows * cols, -2.0f, 2.0f), rows, cols, 1.0f);
  check_gradient(Which::kMse, p, uniform_values(23, rows * cols, -2.0f, 2.0f), rows, cols, 0.5f);
  // Soft and hard targets.
  check_gradient(Which::kBce, p, uniform_values(24, rows * cols, 0.0f, 1.0f), rows, cols, 4.0f);
  std::vector<float> hard = uniform_values(25, rows * cols, 0.0f, 1.0f);
  for (float& v : hard) v = v > 0.5f ? 1.0f : 0.0f;
  check_gradient(Which::kBce, p, hard, rows, cols, 4.0f);
}

// ---- target rows in the minibatch draws ----

// Rows of x (R × 2) and y (R × 3) travel together; y (R) and y (R × 1) draw the same values.
TEST(DrawsWithTargetRows, SampleRowsCopiesEachTargetRow) {
  CpuBackend cpu(1);
  const int64_t rows = 13, batch = 40;
  std::vector<float> xv, yv, labels;
  for (int64_t r = 0; r < rows; ++r) {
    xv.insert(xv.end(), {static_cast<float>(r), 0.5f});
    yv.insert(yv.end(), {static_cast<float>(r), 100.0f + r, -1.0f * r});
    labels.push_back(static_cast<float>(r));
  }
  const Tensor x = make(cpu, xv, {rows, 2}), y = make(cpu, yv, {rows, 3});
  Tensor bx({batch, 2}, cpu), by({batch, 3}, cpu);
  cpu.sample_rows(x, y, 9, 1000, bx, by);
  const std::vector<float> bxv = bx.to_vector(), byv = by.to_vector();
  for (int64_t b = 0; b < batch; ++b) {
    const float r = bxv[2 * b];
    EXPECT_EQ(byv[3 * b], r);
    EXPECT_EQ(byv[3 * b + 1], 100.0f + r);
    EXPECT_EQ(byv[3 * b + 2], -r);
  }
  // The rank-1 case draws the same rows, and (R × 1) the same values.
  const Tensor flat = make(cpu, labels, {rows}), column = make(cpu, labels, {rows, 1});
  Tensor by1({batch}, cpu), byc({batch, 1}, cpu);
  cpu.sample_rows(x, flat, 9, 1000, bx, by1);
  cpu.sample_rows(x, column, 9, 1000, bx, byc);
  EXPECT_EQ(by1.to_vector(), byc.to_vector());
  for (int64_t b = 0; b < batch; ++b) EXPECT_EQ(by1.to_vector()[b], byv[3 * b]);
}

TEST(DrawsWithTargetRows, ShuffledRowsCopiesEachTargetRow) {
  CpuBackend cpu(1);
  const int64_t rows = 10, batch = 5;
  std::vector<float> xv, yv;
  for (int64_t r = 0; r < rows; ++r) {
    xv.push_back(static_cast<float>(r));
    yv.insert(yv.end(), {static_cast<float>(r), 10.0f * r});
  }
  const Tensor x = make(cpu, xv, {rows, 1}), y = make(cpu, yv, {rows, 2});
  Tensor bx({batch, 1}, cpu), by({batch, 2}, cpu), position = make_counter(cpu);
  std::vector<float> seen;
  for (int s = 0; s < 2; ++s) {
    cpu.shuffled_rows(x, y, 4, position, bx, by);
    cpu.add_to_counter(position, batch);
    const std::vector<float> b = bx.to_vector(), t = by.to_vector();
    for (int64_t i = 0; i < batch; ++i) {
      EXPECT_EQ(t[2 * i], b[i]);
      EXPECT_EQ(t[2 * i + 1], 10.0f * b[i]);
      seen.push_back(b[i]);
    }
  }
  std::sort(seen.begin(), seen.end());
  for (int64_t r = 0; r < rows; ++r) EXPECT_EQ(seen[r], static_cast<float>(r));
}

TEST(DrawsWithTargetRows, RejectBatchTargetsOfAnotherShape) {
  CpuBackend cpu(1);
  const Tensor x = make(cpu, std::vector<float>(8, 1.0f), {4, 2}), y = make(cpu, std::vector<float>(12, 0.0f), {4, 3});
  Tensor bx({2, 2}, cpu), flat({2}, cpu), narrow({2, 2}, cpu);
  EXPECT_THAT(error_of([&] { cpu.sample_rows(x, y, 1, 0, bx, flat); }), HasSubstr("by expected shape [2, 3]"));
  EXPECT_THAT(error_of([&] { cpu.sample_rows(x, y, 1, 0, bx, narrow); }), HasSubstr("by expected shape [2, 3]"));
  const Tensor cube = make(cpu, std::vector<float>(8, 0.0f), {4, 1, 2});
  EXPECT_THAT(error_of([&] { cpu.sample_rows(x, cube, 1, 0, bx, flat); }), HasSubstr("[4, T] with T ≥ 1"));
}

// ---- softmax_cross_entropy: labels checked on the float, before any conversion ----

TEST(SoftmaxCrossEntropy, RejectsLabelsThatAreNoIntegerBeforeConvertingThem) {
  CpuBackend cpu(1);
  Tensor logits({1, 3}, cpu), d({1, 3}, cpu), stats = fresh_loss_stats(cpu);
  cpu.fill(logits, 0.0f);
  for (const float bad : {kNaN, 1e30f, -1e30f, std::numeric_limits<float>::infinity(), 3.0f, -1.0f, 1.5f}) {
    const Tensor labels = make(cpu, {bad}, {1});
    const std::string message = error_of([&] { cpu.softmax_cross_entropy(logits, labels, {}, d, stats); });
    EXPECT_THAT(message, HasSubstr("is not a class index in [0, 3)")) << bad;
  }
  EXPECT_EQ(stats.to_vector(), (std::vector<float>{0.0f, 0.0f, -1.0f, 0.0f})) << "nothing was added";
}

// ---- fit() ----

namespace {

// y = A·x + b with x uniform in [−1, 1]⁴, A 2 × 4, b 2.
struct Linear {
  std::vector<float> x, y;
  int64_t rows;
  explicit Linear(int64_t n, uint64_t seed) : rows(n) {
    const float a[2][4] = {{0.5f, -1.0f, 2.0f, 0.0f}, {1.5f, 0.25f, -0.5f, 1.0f}};
    const float b[2] = {0.3f, -0.7f};
    x = uniform_values(seed, n * 4, -1.0f, 1.0f);
    for (int64_t r = 0; r < n; ++r) {
      for (int o = 0; o < 2; ++o) {
        float v = b[o];
        for (int i = 0; i < 4; ++i) v += a[o][i] * x[r * 4 + i];
        y.push_back(v);
      }
    }
  }
};

// Three labels of x uniform in [−1, 1]⁶, each the sign of a fixed linear function.
struct MultiLabel {
  std::vector<float> x, y;
  int64_t rows;
  explicit MultiLabel(int64_t n, uint64_t seed) : rows(n) {
    const float w[3][6] = {{1, -1, 0, 0.5f, 0, 0}, {0, 1, 1, 0, -1, 0}, {-1, 0, 0, 0, 1, 1}};
    x = uniform_values(seed, n * 6, -1.0f, 1.0f);
    for (int64_t r = 0; r < n; ++r) {
      for (int l = 0; l < 3; ++l) {
        float v = 0.1f;
        for (int i = 0; i < 6; ++i) v += w[l][i] * x[r * 6 + i];
        y.push_back(v > 0.0f ? 1.0f : 0.0f);
      }
    }
  }
};

}  // namespace

TEST(FitWithTargetRows, LearnsALinearRegressionWithMseAndAdam) {
  for (const Sampling sampling : {Sampling::kShuffle, Sampling::kWithReplacement}) {
    CpuBackend cpu(2);
    const Linear train(512, 1), valid(128, 2);
    const Tensor x = make(cpu, train.x, {train.rows, 4}), y = make(cpu, train.y, {train.rows, 2});
    const Tensor vx = make(cpu, valid.x, {valid.rows, 4}), vy = make(cpu, valid.y, {valid.rows, 2});
    Network net(cpu, {4});
    net.add(dense(2));
    net.initialize(1, 0.1f);
    MeanSquaredError loss;
    AdamOptions o;
    o.learn_rate = 0.05f;
    Adam opt(net.param_set(), o);
    FitOptions f;
    f.epochs = 30;
    f.batch = 32;
    f.sampling = sampling;
    f.valid_x = &vx;
    f.valid_y = &vy;
    f.progress = Progress::kNone;
    const History h = fit(net, loss, opt, x, y, f);
    ASSERT_EQ(h.epochs.size(), 30u);
    const EpochReport& first = h.epochs.front();
    const EpochReport& last = h.epochs.back();
    EXPECT_GT(first.loss, 0.1) << "the problem is not trivially solved by the initial weights";
    EXPECT_LT(last.loss, 1e-4);  // ~1e-14 when written: exact data, a linear model
    EXPECT_LT(last.valid_loss, 1e-4);
    EXPECT_EQ(last.err, 0.0);
    EXPECT_EQ(last.valid_err, 0.0);
  }
}

TEST(FitWithTargetRows, LearnsAMultiLabelProblemWithBce) {
  CpuBackend cpu(2);
  const MultiLabel train(1024, 3), valid(256, 4);
  const Tensor x = make(cpu, train.x, {train.rows, 6}), y = make(cpu, train.y, {train.rows, 3});
  const Tensor vx = make(cpu, valid.x, {valid.rows, 6}), vy = make(cpu, valid.y, {valid.rows, 3});
  Network net(cpu, {6});
  net.add(dense(32, Activation::kRelu)).add(dense(3));
  net.initialize(1, 0.1f);
  BinaryCrossEntropyWithLogits loss;
  AdamOptions o;
  o.learn_rate = 0.01f;
  Adam opt(net.param_set(), o);
  {
    Trainer before(net, loss, opt);
    EXPECT_NEAR(before.evaluate(vx, vy, 256).first, std::log(2.0), 0.05) << "small logits: ln 2 per label";
  }
  FitOptions f;
  f.epochs = 30;
  f.batch = 32;
  f.valid_x = &vx;
  f.valid_y = &vy;
  f.progress = Progress::kNone;
  const History h = fit(net, loss, opt, x, y, f);
  const EpochReport& first = h.epochs.front();
  const EpochReport& last = h.epochs.back();
  EXPECT_LT(last.loss, 0.1);  // 0.022 when written
  EXPECT_LT(last.valid_err, 0.05) << "fraction of wrong labels";  // 0.017 when written
  EXPECT_LT(last.err, first.err);
}

// A Trainer step on a batch the caller filled, with targets (B × D).
TEST(FitWithTargetRows, TrainerStepTakesTargetRows) {
  CpuBackend cpu(1);
  Network net(cpu, {4});
  net.add(dense(2));
  net.initialize(1, 0.1f);
  MeanSquaredError loss(Reduction::kSum);
  Adam opt(net.param_set(), AdamOptions{});
  Trainer t(net, loss, opt);
  const Linear data(8, 5);
  const Tensor xb = make(cpu, data.x, {8, 4}), yb = make(cpu, data.y, {8, 2});
  t.step(xb, yb);
  const LossTotals totals = Loss::read(t.stats());
  EXPECT_GT(totals.loss_sum, 0.0);
  EXPECT_EQ(totals.errors, 0.0);
  EXPECT_EQ(totals.bad_step, -1);
}

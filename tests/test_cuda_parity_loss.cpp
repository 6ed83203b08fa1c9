// CPU-vs-CUDA parity, part 2: the loss, prediction, minibatch sampling and RBM primitives
// (the fixture and the tolerances: cuda_parity.hpp).
#include "cuda_parity.hpp"

namespace {
// float ulp of p (≤ 1). The loss sum adds up to 100003 per-row losses in another order.
constexpr Tol kLossSumTol{1e-4, 1e-4};

void expect_stats_match(const std::vector<float>& g, const std::vector<float>& c, const std::string& what) {
  ASSERT_EQ(g.size(), static_cast<size_t>(LossStats::kSize)) << what;
  EXPECT_TRUE(close(g[LossStats::kLossSum], c[LossStats::kLossSum], kLossSumTol.abs, kLossSumTol.rel))
      << what << ": loss sum " << g[LossStats::kLossSum] << ", cpu " << c[LossStats::kLossSum];
  EXPECT_EQ(g[LossStats::kErrors], c[LossStats::kErrors]) << what << ": errors";
  EXPECT_EQ(g[LossStats::kBadStep], c[LossStats::kBadStep]) << what << ": bad step";
  EXPECT_EQ(g[LossStats::kBadValue], c[LossStats::kBadValue]) << what << ": bad value";
}

TEST_F(CudaParity, SoftmaxCrossEntropy) {
  struct Case {
    int64_t rows, classes;
    float grad_scale;
  };
  const Case cases[] = {{1, 2, 1.0f},       {7, 3, 0.5f},    {64, 10, 1.0f / 64}, {257, 10, 1.0f},
                        {100003, 10, 1.0f}, {5, 3001, 1.0f}, {3, 100003, 1.0f}};
  uint64_t seed = 5000;
  for (const Case& c : cases) {
    const std::string what = str("softmax_cross_entropy", c.rows, c.classes);
    const Pair logits = both(uniform_values(++seed, c.rows * c.classes, -5.0f, 5.0f), {c.rows, c.classes});
    const Pair labels = both(label_values(++seed, c.rows, c.classes), {c.rows});
    Pair d = poisoned({c.rows, c.classes});
    Pair stats{fresh_loss_stats(cpu), fresh_loss_stats(gpu())};
    CrossEntropyArgs args;
    args.grad_scale = c.grad_scale;
    args.step = 7;
    cpu.softmax_cross_entropy(logits.cpu, labels.cpu, args, d.cpu, stats.cpu);
    gpu().softmax_cross_entropy(logits.gpu, labels.gpu, args, d.gpu, stats.gpu);
    expect_match(d, {2e-6 * c.grad_scale, 1e-5}, what + " dlogits");
    expect_stats_match(stats.gpu.to_vector(), stats.cpu.to_vector(), what);
    // A second batch adds to the statistics.
    args.step = 8;
    cpu.softmax_cross_entropy(logits.cpu, labels.cpu, args, d.cpu, stats.cpu);
    gpu().softmax_cross_entropy(logits.gpu, labels.gpu, args, d.gpu, stats.gpu);
    expect_stats_match(stats.gpu.to_vector(), stats.cpu.to_vector(), what + ", accumulated");
  }
}

TEST_F(CudaParity, SoftmaxCrossEntropyInPlace) {
  const int64_t shapes[][2] = {{64, 10}, {257, 10}, {5, 3001}};
  uint64_t seed = 6000;
  for (const auto& s : shapes) {
    Pair logits = both(uniform_values(++seed, s[0] * s[1], -5.0f, 5.0f), {s[0], s[1]});
    const Pair labels = both(label_values(++seed, s[0], s[1]), {s[0]});
    Pair stats{fresh_loss_stats(cpu), fresh_loss_stats(gpu())};
    const CrossEntropyArgs args;
    cpu.softmax_cross_entropy(logits.cpu, labels.cpu, args, logits.cpu, stats.cpu);
    gpu().softmax_cross_entropy(logits.gpu, labels.gpu, args, logits.gpu, stats.gpu);
    const std::string what = str("softmax_cross_entropy in place", s[0], s[1]);
    expect_match(logits, {2e-6, 1e-5}, what);
    expect_stats_match(stats.gpu.to_vector(), stats.cpu.to_vector(), what);
  }
}

// Batches of 7 rows × 3 classes, all labelled 0.
std::vector<float> calm_logits() { return uniform_values(6500, 21, -1.0f, 1.0f); }  // mean loss ~1.1
std::vector<float> exploding_logits() {                                             // loss ≈ 50 per row
  std::vector<float> v(21, 0.0f);
  for (int r = 0; r < 7; ++r) v[r * 3 + 1] = 50.0f;
  return v;
}
std::vector<float> nan_logits() {
  std::vector<float> v = calm_logits();
  v[4] = kNaN;  // row 1, class 1
  return v;
}

// The first diverged step is recorded and later ones are not, whether it is a loss above max_loss
// or a NaN; a NaN loss is recorded as non-finite on both.
TEST_F(CudaParity, SoftmaxCrossEntropyRecordsTheFirstDivergedStep) {
  struct Step {
    std::vector<float> logits;
    int64_t step;
  };
  struct Sequence {
    const char* name;
    std::vector<Step> steps;
    float bad_step;
  };
  const Sequence sequences[] = {
      {"calm, exploding, nan", {{calm_logits(), 4}, {exploding_logits(), 5}, {nan_logits(), 6}}, 5.0f},
      {"nan, exploding", {{nan_logits(), 2}, {exploding_logits(), 3}}, 2.0f},
  };
  const Pair labels = both(std::vector<float>(7, 0.0f), {7});
  for (const Sequence& seq : sequences) {
    Pair stats{fresh_loss_stats(cpu), fresh_loss_stats(gpu())};
    Pair d = poisoned({7, 3});
    CrossEntropyArgs args;
    args.max_loss = 10.0f;
    for (const Step& s : seq.steps) {
      const Pair logits = both(s.logits, {7, 3});
      args.step = s.step;
      cpu.softmax_cross_entropy(logits.cpu, labels.cpu, args, d.cpu, stats.cpu);
      gpu().softmax_cross_entropy(logits.gpu, labels.gpu, args, d.gpu, stats.gpu);
    }
    const std::vector<float> g = stats.gpu.to_vector(), c = stats.cpu.to_vector();
    ASSERT_EQ(c[LossStats::kBadStep], seq.bad_step) << seq.name << ": the CPU reference changed";
    EXPECT_EQ(g[LossStats::kBadStep], seq.bad_step) << seq.name;
    if (std::isfinite(c[LossStats::kBadValue])) {
      EXPECT_TRUE(close(g[LossStats::kBadValue], c[LossStats::kBadValue], 1e-4, 1e-5))
          << seq.name << ": bad value " << g[LossStats::kBadValue] << ", cpu " << c[LossStats::kBadValue];
    } else {
      EXPECT_FALSE(std::isfinite(g[LossStats::kBadValue])) << seq.name << ": bad value " << g[LossStats::kBadValue];
    }
  }
}

// ---- the elementwise losses (mean_squared_error, binary_cross_entropy_with_logits) ----

enum class Elementwise { kMse, kBce };

void run_elementwise(Backend& b, Elementwise which, const Tensor& p, const Tensor& t, const ElementwiseLossArgs& args,
                     const Tensor& step, Tensor& d, Tensor& stats) {
  if (which == Elementwise::kMse) {
    b.mean_squared_error(p, t, args, step, d, stats);
  } else {
    b.binary_cross_entropy_with_logits(p, t, args, step, d, stats);
  }
}

// Gradients to a few ulps (CUDA's expf/log1pf against glibc's), the loss sums to the double sum's
// rounding, the error counts exactly (an exact count divided once). Shapes from one element to
// more elements than the block has threads many times over, rows of one value and rows wider
// than the block. Targets: values for MSE; hard and soft labels for BCE.
TEST_F(CudaParity, ElementwiseLosses) {
  const int64_t shapes[][2] = {{1, 1}, {7, 3}, {64, 10}, {257, 1}, {100003, 3}, {5, 3001}, {3, 100003}};
  uint64_t seed = 6100;
  for (const Elementwise which : {Elementwise::kMse, Elementwise::kBce}) {
    for (const auto& s : shapes) {
      const int64_t n = s[0] * s[1];
      const std::string what = str(which == Elementwise::kMse ? "mse" : "bce", s[0], s[1]);
      const Pair p = both(uniform_values(++seed, n, -5.0f, 5.0f), {s[0], s[1]});
      std::vector<float> tv = which == Elementwise::kMse ? uniform_values(++seed, n, -5.0f, 5.0f)
                                                          : uniform_values(++seed, n, 0.0f, 1.0f);
      if (which == Elementwise::kBce)
        for (size_t i = 0; i < tv.size(); i += 2) tv[i] = tv[i] > 0.5f ? 1.0f : 0.0f;  // half hard labels
      const Pair t = both(tv, {s[0], s[1]});
      const Pair step{make_counter(cpu, 9), make_counter(gpu(), 9)};
      Pair d = poisoned({s[0], s[1]});
      Pair stats{fresh_loss_stats(cpu), fresh_loss_stats(gpu())};
      ElementwiseLossArgs args;
      args.grad_scale = 1.0f / static_cast<float>(s[0]);
      run_elementwise(cpu, which, p.cpu, t.cpu, args, step.cpu, d.cpu, stats.cpu);
      run_elementwise(gpu(), which, p.gpu, t.gpu, args, step.gpu, d.gpu, stats.gpu);
      expect_match(d, {2e-6 * args.grad_scale, 1e-5}, what + " gradient");
      expect_stats_match(stats.gpu.to_vector(), stats.cpu.to_vector(), what);
      // In place, and a second batch adds to the statistics.
      Pair q = both(p.cpu.to_vector(), {s[0], s[1]});
      run_elementwise(cpu, which, q.cpu, t.cpu, args, step.cpu, q.cpu, stats.cpu);
      run_elementwise(gpu(), which, q.gpu, t.gpu, args, step.gpu, q.gpu, stats.gpu);
      expect_match(q, {2e-6 * args.grad_scale, 1e-5}, what + " gradient in place");
      expect_stats_match(stats.gpu.to_vector(), stats.cpu.to_vector(), what + ", accumulated");
    }
  }
}

// The first diverged step (a loss above max_loss, then a NaN target) is recorded from the counter
// on both, with the same value.
TEST_F(CudaParity, ElementwiseLossesRecordTheFirstDivergedStep) {
  for (const Elementwise which : {Elementwise::kMse, Elementwise::kBce}) {
    const Pair calm = both(uniform_values(6200, 21, -1.0f, 1.0f), {7, 3});
    const Pair huge = both(std::vector<float>(21, -1000.0f), {7, 3});
    const Pair targets = both(std::vector<float>(21, 1.0f), {7, 3});
    std::vector<float> nan_t(21, 1.0f);
    nan_t[4] = kNaN;
    const Pair nan_targets = both(nan_t, {7, 3});
    Pair stats{fresh_loss_stats(cpu), fresh_loss_stats(gpu())};
    Pair step{make_counter(cpu, 4), make_counter(gpu(), 4)};
    Pair d = poisoned({7, 3});
    ElementwiseLossArgs args;
    args.max_loss = 10.0f;
    const std::pair<const Pair*, const Pair*> batches[] = {{&calm, &targets}, {&huge, &targets}, {&calm, &nan_targets}};
    for (const auto& [p, t] : batches) {
      run_elementwise(cpu, which, p->cpu, t->cpu, args, step.cpu, d.cpu, stats.cpu);
      run_elementwise(gpu(), which, p->gpu, t->gpu, args, step.gpu, d.gpu, stats.gpu);
      cpu.add_to_counter(step.cpu, 1);
      gpu().add_to_counter(step.gpu, 1);
    }
    const std::vector<float> c = stats.cpu.to_vector(), g = stats.gpu.to_vector();
    ASSERT_EQ(c[LossStats::kBadStep], 5.0f) << "the CPU reference changed";
    EXPECT_EQ(g[LossStats::kBadStep], 5.0f);
    EXPECT_TRUE(close(g[LossStats::kBadValue], c[LossStats::kBadValue], 1e-4, 1e-6))
        << "bad value " << g[LossStats::kBadValue] << ", cpu " << c[LossStats::kBadValue];
  }
}

// ---- prediction and sampling ----

// Entries drawn from {-2, -1, 0, 1}, so most rows hold several equal maxima: the first wins.
TEST_F(CudaParity, ArgmaxRowsTakesTheFirstMaximum) {
  const int64_t shapes[][2] = {{1, 1}, {7, 3}, {64, 10}, {3300, 10}, {1000003, 3}, {5, 3001}, {2, 100003}};
  uint64_t seed = 7000;
  for (const auto& s : shapes) {
    std::vector<float> xv = uniform_values(++seed, s[0] * s[1], -2.0f, 2.0f);
    for (float& v : xv) v = std::floor(v);
    const Pair x = both(xv, {s[0], s[1]});
    Pair out = poisoned({s[0]});
    cpu.argmax_rows(x.cpu, out.cpu);
    gpu().argmax_rows(x.gpu, out.gpu);
    expect_match(out, kExact, str("argmax_rows", s[0], s[1]));
  }
  // Rows that are all equal (and negative): class 0.
  const Pair flat = both(std::vector<float>(4 * 5, -1.0f), {4, 5});
  Pair out = poisoned({4});
  gpu().argmax_rows(flat.gpu, out.gpu);
  EXPECT_EQ(out.gpu.to_vector(), std::vector<float>(4, 0.0f));
}

TEST_F(CudaParity, SampleRowsDrawsTheSameRows) {
  struct Case {
    int64_t rows, cols, batch;
    uint64_t seed, first_draw;
  };
  const Case cases[] = {
      {1, 5, 7, 3, 0},
      {13, 3, 40, 9, 1000},
      {6700, 784, 64, 2014, 64 * 103},  // the 2014 run's last minibatch of epoch 1
      {7, 3001, 9, 1, 0},               // rows wider than a block
      {100003, 3, 255, 11, 0},
      {257, 1, 3000001, 5, (uint64_t{1} << 32) - 1000},  // more rows than blocks; counters cross 2^32
  };
  for (const Case& c : cases) {
    const std::string what = str("sample_rows", c.rows, c.cols, c.batch);
    std::vector<float> yv(static_cast<size_t>(c.rows));
    for (int64_t r = 0; r < c.rows; ++r) yv[r] = static_cast<float>(r);  // the label names the row
    const Pair x = both(uniform_values(c.seed + 77, c.rows * c.cols, -1.0f, 1.0f), {c.rows, c.cols});
    const Pair y = both(yv, {c.rows});
    Pair bx = poisoned({c.batch, c.cols}), by = poisoned({c.batch});
    cpu.sample_rows(x.cpu, y.cpu, c.seed, c.first_draw, bx.cpu, by.cpu);
    gpu().sample_rows(x.gpu, y.gpu, c.seed, c.first_draw, bx.gpu, by.gpu);
    expect_match(by, kExact, what + " rows");
    expect_match(bx, kExact, what + " values");
  }
}

// Target rows (R × T) travel with their rows, in both draws (the shuffled one from position R + 1:
// epoch 1, its second row, so B ≤ R − 1); shapes with T wider than a block.
TEST_F(CudaParity, DrawsCopyTheSameTargetRows) {
  const int64_t cases[][4] = {{13, 3, 2, 12}, {257, 5, 1, 64}, {1000, 7, 300, 33}, {100003, 2, 3, 255}};
  uint64_t seed = 7500;
  for (const auto& c : cases) {
    const int64_t rows = c[0], cols = c[1], tcols = c[2], batch = c[3];
    const std::string what = str("draws with targets", rows, cols, tcols);
    const Pair x = both(uniform_values(++seed, rows * cols, -1.0f, 1.0f), {rows, cols});
    const Pair y = both(uniform_values(++seed, rows * tcols, -1.0f, 1.0f), {rows, tcols});
    Pair bx = poisoned({batch, cols}), by = poisoned({batch, tcols});
    cpu.sample_rows(x.cpu, y.cpu, 3, 1000, bx.cpu, by.cpu);
    gpu().sample_rows(x.gpu, y.gpu, 3, 1000, bx.gpu, by.gpu);
    expect_match(bx, kExact, what + " sample_rows x");
    expect_match(by, kExact, what + " sample_rows y");
    const Pair position{make_counter(cpu, static_cast<uint64_t>(rows) + 1), make_counter(gpu(), rows + 1)};
    Pair sx = poisoned({batch, cols}), sy = poisoned({batch, tcols});
    cpu.shuffled_rows(x.cpu, y.cpu, 3, position.cpu, sx.cpu, sy.cpu);
    gpu().shuffled_rows(x.gpu, y.gpu, 3, position.gpu, sx.gpu, sy.gpu);
    expect_match(sx, kExact, what + " shuffled_rows x");
    expect_match(sy, kExact, what + " shuffled_rows y");
  }
}

// The per-step cosine rate (warm-up, the half cosine, the floor after total_steps), read from a
// step counter when the work runs: both compute it in double from the same formula.
TEST_F(CudaParity, CosineLearningRateFollowsTheCounter) {
  CosineArgs args;
  args.base = 0.3f;
  args.warmup_steps = 5;
  args.total_steps = 1000;
  args.min_factor = 0.01f;
  for (const uint64_t t : {uint64_t{0}, uint64_t{4}, uint64_t{5}, uint64_t{6}, uint64_t{501}, uint64_t{999},
                           uint64_t{1000}, uint64_t{1} << 33}) {
    const Pair step{make_counter(cpu, t), make_counter(gpu(), t)};
    Pair lr = poisoned({1});
    cpu.cosine_learning_rate(args, step.cpu, lr.cpu);
    gpu().cosine_learning_rate(args, step.gpu, lr.gpu);
    expect_match(lr, {0.0, 1e-6}, "cosine_learning_rate at step " + std::to_string(t));
  }
}

// ---- updates ----

// RBM units: the same Philox draws give the same states, bit for bit, for all three unit types
// (and whichever elementwise kind the CPU runs): the Bernoulli uniform is an exact float, and
// Gaussian and noisy-ReLU states are computed with formulas/repro_math.hpp's log, cos, exp and
// sigmoid, IEEE operations in a fixed order (__fadd_rn and friends on the device, never
// contracted), not with the two libraries' logf, cosf and expf.
TEST_F(CudaParity, SampleUnitsDrawsTheSameStates) {
  uint64_t seed = 12000;
  for (int64_t n : kSizes) {
    const Pair p = both(uniform_values(++seed, n, 0.0f, 1.0f), {n});
    for (Units units : {Units::kBernoulli, Units::kGaussian, Units::kNoisyRelu}) {
      Pair out = poisoned({n});
      cpu.sample_units(p.cpu, units, 77, (uint64_t{1} << 32) - 1000, out.cpu);  // counters cross 2^32
      gpu().sample_units(p.gpu, units, 77, (uint64_t{1} << 32) - 1000, out.gpu);
      const std::vector<float> c = out.cpu.to_vector(), g = out.gpu.to_vector();
      int64_t differ = 0;
      for (int64_t i = 0; i < n; ++i) differ += c[i] == g[i] ? 0 : 1;  // a NaN (unwritten) differs too
      EXPECT_EQ(differ, 0) << to_string(units) << " n " << n;
    }
  }
}

// Classical momentum (RBM updates) with the decayed prefix split anywhere.
TEST_F(CudaParity, MomentumStepSplitsDecayedPrefix) {
  uint64_t seed = 13000;
  for (int64_t n : kSizes) {
    const std::vector<float> wv = uniform_values(++seed, n, -1.0f, 1.0f);
    const std::vector<float> vv = uniform_values(++seed, n, -1.0f, 1.0f);
    const std::vector<float> gv = uniform_values(++seed, n, -4.0f, 4.0f);
    for (int64_t decayed : {int64_t{0}, (n / 2) | 1, n}) {
      if (decayed > n) continue;
      Pair w = both(wv, {n}), v = both(vv, {n});
      const Pair g = both(gv, {n});
      const MomentumArgs args{0.5f, 1.0f / 64, 0.25f, decayed};
      const Pair lr = both({0.05f}, {1});
      cpu.momentum_step(w.cpu, v.cpu, g.cpu, lr.cpu, args);
      gpu().momentum_step(w.gpu, v.gpu, g.gpu, lr.gpu, args);
      expect_match(w, kUlps, str("momentum_step w n", n) + " decayed " + std::to_string(decayed));
      expect_match(v, kUlps, str("momentum_step v n", n) + " decayed " + std::to_string(decayed));
    }
  }
}

// The fused activation + sampling pass: means to a few ulps; Bernoulli states equal except where
// the CPU's and the GPU's sigmoid activation (libm's and CUDA's expf, an ulp apart) fall on
// either side of the element's uniform: about one element in 10^7, so a handful at most is
// allowed (a missing write is NaN: counted). The Gaussian (identity) and noisy-ReLU (relu) means
// are one addition and a comparison, the same bits on both, so their states are exact.
TEST_F(CudaParity, BiasActivationSampleMatches) {
  uint64_t seed = 14000;
  for (const auto& [rows, cols] : {std::pair<int64_t, int64_t>{1, 1}, {64, 800}, {257, 33}, {4097, 784}}) {
    const std::vector<float> values = uniform_values(++seed, rows * cols, -3.0f, 3.0f);
    const Pair bias = both(uniform_values(++seed, cols, -1.0f, 1.0f), {cols});
    for (Units units : {Units::kBernoulli, Units::kGaussian, Units::kNoisyRelu}) {
      const Activation act = units == Units::kBernoulli ? Activation::kSigmoid
                             : units == Units::kNoisyRelu ? Activation::kRelu
                                                           : Activation::kIdentity;
      Pair y = both(values, {rows, cols});
      Pair states = poisoned({rows, cols});
      cpu.bias_activation_sample(y.cpu, bias.cpu, act, units, 5, 77, states.cpu);
      gpu().bias_activation_sample(y.gpu, bias.gpu, act, units, 5, 77, states.gpu);
      const std::string what = str("bias_activation_sample ", rows, cols) + " " + to_string(units);
      expect_match(y, kUlps, what + " means");
      if (units == Units::kBernoulli) {
        const auto c = states.cpu.to_vector(), g = states.gpu.to_vector();
        int64_t differ = 0;
        for (size_t i = 0; i < c.size(); ++i) differ += c[i] != g[i];
        EXPECT_LE(differ, 2) << what;
      } else {
        expect_match(y, kExact, what + " means");
        expect_match(states, kExact, what + " states");
      }
    }
  }
}

// The counter form (a captured RBM step's draws) reads the counter when the kernel runs, plus the
// offset modulo 2^64: queued after add_to_counter, it draws what the host-counter form draws with
// the advanced value, bit for bit (the same kernel), across 2^32.
TEST_F(CudaParity, BiasActivationSampleReadsTheCounterWhenItRuns) {
  const int64_t rows = 64, cols = 800;
  const std::vector<float> values = uniform_values(14100, rows * cols, -3.0f, 3.0f);
  const Tensor bias = Tensor::from_host(uniform_values(14101, cols, -1.0f, 1.0f), {cols}, gpu());
  Tensor counter = make_counter(gpu(), 0xFFFFFFFFull - 3000);
  for (Units units : {Units::kBernoulli, Units::kNoisyRelu, Units::kGaussian}) {
    const Activation act = units == Units::kBernoulli ? Activation::kSigmoid
                           : units == Units::kNoisyRelu ? Activation::kRelu
                                                         : Activation::kIdentity;
    Tensor y1 = Tensor::from_host(values, {rows, cols}, gpu()), s1({rows, cols}, gpu());
    Tensor y2 = Tensor::from_host(values, {rows, cols}, gpu()), s2({rows, cols}, gpu());
    gpu().add_to_counter(counter, 1000);
    gpu().bias_activation_sample(y1, bias, act, units, 5, counter, 0ull - 64, s1);
    const uint64_t c = read_counter(counter);
    gpu().bias_activation_sample(y2, bias, act, units, 5, c - 64, s2);
    EXPECT_EQ(y1.to_vector(), y2.to_vector()) << to_string(units);
    EXPECT_EQ(s1.to_vector(), s2.to_vector()) << to_string(units) << " at counter " << c;
  }
}

}  // namespace

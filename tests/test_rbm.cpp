// Rbm against exact enumeration on tiny models (4 visible × 3 hidden: every state summed) and
// closed forms for its units.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "cudl/cpu_backend.hpp"
#include "cudl/data.hpp"
#include "cudl/rbm.hpp"
#include "test_support.hpp"
#include "tolerance.hpp"

using namespace cudl;
using cudl::testing::uniform_values;

namespace {

constexpr int64_t kV = 4, kH = 3;

// A 4×3 RBM with parameters uniform in [-scale, scale].
struct Tiny {
  CpuBackend cpu{1};
  Rbm rbm;
  explicit Tiny(RbmConfig cfg = {}, double scale = 1.0, uint64_t seed = 5) : rbm(cpu, kV, kH, cfg) {
    rbm.params().copy_from(uniform_values(seed, rbm.params().size(), static_cast<float>(-scale), static_cast<float>(scale)));
  }
  std::vector<float> w() { return rbm.weights().to_vector(); }
  std::vector<float> b() { return rbm.visible_bias().to_vector(); }
  std::vector<float> c() { return rbm.hidden_bias().to_vector(); }
};

std::vector<float> bits_of(uint32_t state, int64_t n) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[i] = static_cast<float>(state >> i & 1);
  return v;
}

// E(v, h) = −bᵀv − cᵀh − vᵀWh, in double.
double energy(const std::vector<float>& w, const std::vector<float>& b, const std::vector<float>& c,
              const std::vector<float>& v, const std::vector<float>& h) {
  double e = 0.0;
  for (int64_t i = 0; i < kV; ++i) e -= static_cast<double>(b[i]) * v[i];
  for (int64_t j = 0; j < kH; ++j) e -= static_cast<double>(c[j]) * h[j];
  for (int64_t i = 0; i < kV; ++i)
    for (int64_t j = 0; j < kH; ++j) e -= static_cast<double>(v[i]) * w[i * kH + j] * h[j];
  return e;
}

// All 16 visible states as a 16×4 tensor.
Tensor all_visible(Backend& backend) {
  std::vector<float> v;
  for (uint32_t s = 0; s < (1u << kV); ++s)
    for (float x : bits_of(s, kV)) v.push_back(x);
  return Tensor::from_host(v, {1 << kV, kV}, backend);
}

}  // namespace

TEST(Rbm, FreeEnergyMatchesEnumeration) {
  Tiny t;
  const auto w = t.w(), b = t.b(), c = t.c();
  const std::vector<double> f = t.rbm.free_energy(all_visible(t.cpu));
  for (uint32_t vs = 0; vs < (1u << kV); ++vs) {
    double sum = 0.0;  // Σ_h e^(−E(v,h))
    for (uint32_t hs = 0; hs < (1u << kH); ++hs) sum += std::exp(-energy(w, b, c, bits_of(vs, kV), bits_of(hs, kH)));
    EXPECT_NEAR(f[vs], -std::log(sum), 1e-9) << "v state " << vs;
  }
}

TEST(Rbm, ExactLikelihoodIsANormalisedDistribution) {
  Tiny t;
  const double log_z = t.rbm.log_partition();
  double total = 0.0;
  for (double fe : t.rbm.free_energy(all_visible(t.cpu))) total += std::exp(-fe - log_z);
  EXPECT_NEAR(total, 1.0, 1e-12);
}

TEST(Rbm, GaussianVisibleLogPartitionMatchesNumericIntegral) {
  // One Gaussian visible unit, 3 hidden: Z = Σ_h ∫ exp(−½(v−b)² + cᵀh + v·Wh) dv.
  CpuBackend cpu(1);
  RbmConfig cfg;
  cfg.visible = Units::kGaussian;
  Rbm rbm(cpu, 1, 3, cfg);
  rbm.params().copy_from({0.5f, -0.7f, 0.3f, 0.2f, -0.4f, 0.1f, 0.6f});  // W (1×3), b, c (3)
  const auto w = rbm.weights().to_vector(), b = rbm.visible_bias().to_vector(), c = rbm.hidden_bias().to_vector();
  double z = 0.0;
  const double dv = 1e-3;
  for (uint32_t hs = 0; hs < 8; ++hs) {
    double ch = 0.0, wh = 0.0;
    for (int j = 0; j < 3; ++j)
      if (hs >> j & 1) ch += c[j], wh += w[j];
    for (double v = -30.0; v <= 30.0; v += dv) z += std::exp(-0.5 * (v - b[0]) * (v - b[0]) + ch + v * wh) * dv;
  }
  EXPECT_NEAR(rbm.log_partition(), std::log(z), 1e-6);
}

TEST(Rbm, LargeKContrastiveDivergenceApproachesTheExactGradient) {
  RbmConfig cfg;
  cfg.k = 100;
  cfg.reconstruction = Reconstruction::kSamples;  // a true Gibbs chain
  Tiny t(cfg, 0.8);
  const auto w = t.w(), b = t.b(), c = t.c();
  // Data: 8 distinct states, each repeated 512 times (4,096 chains per call).
  const uint32_t patterns[8] = {0x3, 0xC, 0x5, 0xA, 0xF, 0x1, 0x6, 0x9};
  std::vector<float> rows;
  for (int r = 0; r < 4096; ++r)
    for (float x : bits_of(patterns[r % 8], kV)) rows.push_back(x);
  Tensor data = Tensor::from_host(rows, {4096, kV}, t.cpu);
  // Exact gradient of the mean −log p: E_model[v hᵀ] − E_data[v p(h|v)ᵀ].
  double log_z = t.rbm.log_partition();
  std::vector<double> model(kV * kH, 0.0), positive(kV * kH, 0.0);
  for (uint32_t vs = 0; vs < (1u << kV); ++vs)
    for (uint32_t hs = 0; hs < (1u << kH); ++hs) {
      const auto v = bits_of(vs, kV), h = bits_of(hs, kH);
      const double p = std::exp(-energy(w, b, c, v, h) - log_z);
      for (int64_t i = 0; i < kV; ++i)
        for (int64_t j = 0; j < kH; ++j) model[i * kH + j] += p * v[i] * h[j];
    }
  for (uint32_t pattern : patterns) {
    const auto v = bits_of(pattern, kV);
    for (int64_t j = 0; j < kH; ++j) {
      double x = c[j];
      for (int64_t i = 0; i < kV; ++i) x += static_cast<double>(v[i]) * w[i * kH + j];
      const double ph = 1.0 / (1.0 + std::exp(-x));
      for (int64_t i = 0; i < kV; ++i) positive[i * kH + j] += v[i] * ph / 8.0;
    }
  }
  // CD-100 averaged over 4 calls (16,384 chains): standard error ≈ 0.5/√16384 ≈ 0.004.
  std::vector<double> estimate(kV * kH, 0.0);
  for (int call = 0; call < 4; ++call) {
    t.rbm.compute_gradient(data);
    const auto g = t.rbm.gradient().to_vector();
    for (int64_t i = 0; i < kV * kH; ++i) estimate[i] += g[i] / 4096.0 / 4.0;
  }
  for (int64_t i = 0; i < kV * kH; ++i) {
    EXPECT_NEAR(estimate[i], model[i] - positive[i], 0.02) << "weight " << i;
  }
}

TEST(Rbm, TrainingRaisesTheExactLogLikelihood) {
  RbmConfig cfg;
  cfg.learn_rate = 0.1f;
  cfg.momentum = 0.5f;
  cfg.l2 = 0.0f;
  cfg.batch = 16;
  Tiny t(cfg, 0.01);
  // A toy distribution: 0011 and 1100, equally likely.
  std::vector<float> rows;
  for (int r = 0; r < 256; ++r)
    for (float x : bits_of(r % 2 ? 0x3u : 0xCu, kV)) rows.push_back(x);
  Tensor data = Tensor::from_host(rows, {256, kV}, t.cpu);
  const double before = t.rbm.exact_log_likelihood(data);
  for (int epoch = 1; epoch <= 30; ++epoch) t.rbm.train_epoch(data, epoch);
  const double after = t.rbm.exact_log_likelihood(data);
  EXPECT_GT(after, before + 1.0) << "before " << before << ", after " << after;
  EXPECT_GT(after, std::log(0.5) - 0.5);  // near the best possible, log ½, for two equal patterns
}

TEST(Rbm, PersistentChainsCarryOverBetweenBatches) {
  // PCD: batch A, then batch B. Its second negative phase must start from the chains C1 left by
  // the first. Reference: CD with batch A, then batch C1 (the same random counters): its second
  // negative phase starts from C1 too, so the two negative phases are the same, and the
  // visible-bias gradients (Σ v_k − Σ batch, exact for binary states) differ only by the batch sums.
  RbmConfig cfg;
  cfg.reconstruction = Reconstruction::kSamples;
  std::vector<float> a, b;
  for (int r = 0; r < 32; ++r) {
    for (float x : bits_of(0x3u + static_cast<uint32_t>(r % 5), kV)) a.push_back(x);
    for (float x : bits_of(0xFu, kV)) b.push_back(x);
  }
  cfg.negative = Negative::kPersistent;
  Tiny pcd(cfg, 2.0);
  pcd.rbm.compute_gradient(Tensor::from_host(a, {32, kV}, pcd.cpu));
  const std::vector<float> c1 = pcd.rbm.persistent_chains().to_vector();
  EXPECT_NE(c1, a) << "the chains did not move";
  pcd.rbm.compute_gradient(Tensor::from_host(b, {32, kV}, pcd.cpu));
  const std::vector<float> gb_pcd = pcd.rbm.gradient().to_vector();

  cfg.negative = Negative::kContrastive;
  Tiny cd(cfg, 2.0);
  cd.rbm.compute_gradient(Tensor::from_host(a, {32, kV}, cd.cpu));
  cd.rbm.compute_gradient(Tensor::from_host(c1, {32, kV}, cd.cpu));
  const std::vector<float> gb_cd = cd.rbm.gradient().to_vector();
  const int64_t bias0 = kV * kH;  // the visible-bias gradient follows W in the flat layout
  for (int64_t i = 0; i < kV; ++i) {
    double sum_b = 0.0, sum_c1 = 0.0;
    for (int r = 0; r < 32; ++r) sum_b += b[r * kV + i], sum_c1 += c1[r * kV + i];
    EXPECT_EQ(gb_pcd[bias0 + i] + sum_b, gb_cd[bias0 + i] + sum_c1) << "visible unit " << i;
  }
  pcd.rbm.initialize(1, 0.01f);
  EXPECT_TRUE(pcd.rbm.persistent_chains().empty()) << "initialize() resets the chains";
}

// The unit samples continue from step to step (they come from a counter in the backend's memory,
// which each step advances, so that a captured step can be replayed): the second CD-1 step's
// gradient is the one built by hand from the host-counter primitives, its draws numbered after the
// first step's N·H hidden and N·V visible ones. The same after an epoch has run.
TEST(Rbm, EachStepDrawsTheUnitSamplesThatFollowThePreviousStepsOnes) {
  RbmConfig cfg;
  cfg.reconstruction = Reconstruction::kSamples;
  cfg.seed = 9;
  cfg.batch = 6;
  Tiny t(cfg, 1.5);
  CpuBackend& cpu = t.cpu;
  const int64_t n = 6;
  const Tensor v0 = Tensor::from_host(uniform_values(4, n * kV, 0, 1), {n, kV}, cpu);
  // One CD-1 step by hand whose first draw is `counter`: its gradient [gW | gb | gc].
  auto by_hand = [&](uint64_t counter) {
    Tensor p0({n, kH}, cpu), h({n, kH}, cpu), vm({n, kV}, cpu), v({n, kV}, cpu), pk({n, kH}, cpu);
    Tensor g({t.rbm.params().size()}, cpu);
    Tensor gw = g.slice(0, {kV, kH}), gb = g.slice(kV * kH, {kV}), gc = g.slice(kV * kH + kV, {kH});
    cpu.gemm(1.0f, v0, Trans::kNo, t.rbm.weights(), Trans::kNo, 0.0f, p0);
    cpu.bias_activation_sample(p0, t.rbm.hidden_bias(), Activation::kSigmoid, Units::kBernoulli, 9, counter, h);
    cpu.gemm(1.0f, h, Trans::kNo, t.rbm.weights(), Trans::kYes, 0.0f, vm);
    cpu.bias_activation_sample(vm, t.rbm.visible_bias(), Activation::kSigmoid, Units::kBernoulli, 9,
                               counter + n * kH, v);
    t.rbm.hidden_means(v, pk);
    cpu.gemm(1.0f, v, Trans::kYes, pk, Trans::kNo, 0.0f, gw);
    cpu.gemm(-1.0f, v0, Trans::kYes, p0, Trans::kNo, 1.0f, gw);
    cpu.sum_rows(1.0f, v, 0.0f, gb);
    cpu.sum_rows(-1.0f, v0, 1.0f, gb);
    cpu.sum_rows(1.0f, pk, 0.0f, gc);
    cpu.sum_rows(-1.0f, p0, 1.0f, gc);
    return g.to_vector();
  };
  const uint64_t per_step = n * (kH + kV);
  EXPECT_EQ(t.rbm.gradient().size(), static_cast<int64_t>(by_hand(0).size()));
  t.rbm.compute_gradient(v0);
  EXPECT_EQ(t.rbm.gradient().to_vector(), by_hand(0));
  t.rbm.compute_gradient(v0);
  EXPECT_EQ(t.rbm.gradient().to_vector(), by_hand(per_step)) << "the second step drew the first step's samples";
  // An epoch of 3 steps over 18 rows, then one more step: its draws follow the epoch's.
  t.rbm.train_epoch(Tensor::from_host(uniform_values(5, 18 * kV, 0, 1), {18, kV}, cpu), 1);
  t.rbm.compute_gradient(v0);
  EXPECT_EQ(t.rbm.gradient().to_vector(), by_hand(5 * per_step));
}

TEST(Units, SamplesMatchClosedFormMoments) {
  CpuBackend cpu(2);
  const int64_t n = 200000;
  // Bernoulli with p = 0.3: mean 0.3.
  Tensor p({n}, cpu), s({n}, cpu);
  cpu.fill(p, 0.3f);
  cpu.sample_units(p, Units::kBernoulli, 1, 0, s);
  double mean = 0.0;
  for (float x : s.to_vector()) {
    ASSERT_TRUE(x == 0.0f || x == 1.0f);
    mean += x / n;
  }
  EXPECT_NEAR(mean, 0.3, 5 * std::sqrt(0.21 / n));
  // Gaussian around 1.5: mean 1.5, variance 1.
  cpu.fill(p, 1.5f);
  cpu.sample_units(p, Units::kGaussian, 2, 0, s);
  double m = 0.0, m2 = 0.0;
  for (float x : s.to_vector()) m += x / n, m2 += static_cast<double>(x) * x / n;
  EXPECT_NEAR(m, 1.5, 5 / std::sqrt(n));
  EXPECT_NEAR(m2 - m * m, 1.0, 0.02);
  // Noisy ReLU at mean h = 0.8: max(0, h + s·ε) with s = √σ(h) has mean h·Φ(h/s) + s·φ(h/s).
  const double h = 0.8, sd = std::sqrt(1.0 / (1.0 + std::exp(-h)));
  const double expected = h * 0.5 * std::erfc(-h / sd / std::sqrt(2.0)) + sd * std::exp(-0.5 * h * h / (sd * sd)) / std::sqrt(2 * M_PI);
  cpu.fill(p, static_cast<float>(h));
  cpu.sample_units(p, Units::kNoisyRelu, 3, 0, s);
  double nm = 0.0;
  for (float x : s.to_vector()) {
    ASSERT_GE(x, 0.0f);
    nm += x / n;
  }
  EXPECT_NEAR(nm, expected, 0.01);
  // A negative pre-activation has mean max(0, x) = 0: its samples are max(0, 0 + √½·ε).
  cpu.fill(p, -2.0f);
  cpu.sample_units(p, Units::kNoisyRelu, 4, 0, s);
  double zm = 0.0;
  for (float x : s.to_vector()) zm += x / n;
  EXPECT_NEAR(zm, std::sqrt(0.5) / std::sqrt(2 * M_PI), 0.01);
}

TEST(Rbm, ConditionalMeansFollowTheUnitTypes) {
  CpuBackend cpu(1);
  RbmConfig cfg;
  cfg.visible = Units::kGaussian;
  cfg.hidden = Units::kNoisyRelu;
  Rbm rbm(cpu, 2, 2, cfg);
  rbm.params().copy_from({1.0f, -1.0f, 0.5f, 2.0f, 0.25f, -0.5f, 0.1f, -3.0f});  // W 2×2, b 2, c 2
  Tensor v = Tensor::from_host({1.0f, 2.0f}, {1, 2}, cpu), h({1, 2}, cpu), back({1, 2}, cpu);
  rbm.hidden_means(v, h);
  // x = c + vᵀW = (0.1 + 1 + 1, −3 − 1 + 4) = (2.1, 0) → max(0, x)
  cudl::testing::expect_all_close(h.to_vector(), std::vector<double>{2.1, 0.0}, 1e-6, 1e-6, "hidden");
  rbm.visible_means(h, back);
  // b + Wh = (0.25 + 2.1, −0.5 + 1.05) (identity for Gaussian visible units)
  cudl::testing::expect_all_close(back.to_vector(), std::vector<double>{2.35, 0.55}, 1e-6, 1e-6, "visible");
}

TEST(Rbm, GaussianVisibleTrainingRaisesTheExactLogLikelihood) {
  // Two clusters in 2-D, around (2, −1) and (−1, 2), unit variance: what a Gaussian RBM models.
  CpuBackend cpu(1);
  RbmConfig cfg;
  cfg.visible = Units::kGaussian;
  cfg.learn_rate = 0.01f;
  cfg.momentum = 0.5f;
  cfg.l2 = 0.0f;
  cfg.batch = 32;
  Rbm rbm(cpu, 2, 3, cfg);
  rbm.initialize(3, 0.01f);
  std::vector<float> rows;
  const auto noise = uniform_values(9, 2048, -0.5f, 0.5f);
  for (int r = 0; r < 1024; ++r) {
    rows.push_back((r % 2 ? 2.0f : -1.0f) + noise[2 * r]);
    rows.push_back((r % 2 ? -1.0f : 2.0f) + noise[2 * r + 1]);
  }
  Tensor data = Tensor::from_host(rows, {1024, 2}, cpu);
  const double before = rbm.exact_log_likelihood(data);
  for (int epoch = 1; epoch <= 20; ++epoch) rbm.train_epoch(data, epoch);
  const double after = rbm.exact_log_likelihood(data);
  EXPECT_GT(after, before + 0.5) << "before " << before << ", after " << after;
}

TEST(Rbm, EpochReportShowsOverfittingOnHeldOutData) {
  const std::string why = cudl::testing::why_no_shared_mnist();
  if (!why.empty()) GTEST_SKIP() << why;
  const InMemoryDataset data = load_idx_dataset(cudl::testing::shared_mnist_dir(), "MNIST");
  CpuBackend cpu;
  // 128 training digits, trained far too long; 1,000 other digits held out.
  const Tensor train = Tensor::from_host(std::vector<float>(data.x.begin(), data.x.begin() + 128 * 784), {128, 784}, cpu);
  const Tensor held = Tensor::from_host(std::vector<float>(data.x.begin() + 128 * 784, data.x.begin() + 1128 * 784),
                                        {1000, 784}, cpu);
  RbmConfig cfg;
  cfg.batch = 32;
  cfg.learn_rate = 0.1f;
  Rbm rbm(cpu, 784, 64, cfg);
  RbmEpochReport first, last;
  for (int e = 1; e <= 60; ++e) {
    last = rbm.train_epoch(train, e, &held);
    if (e == 1) first = last;
  }
  EXPECT_LT(last.reconstruction_error, first.reconstruction_error);
  // Free energy gap between held-out and training rows grows as the model memorises.
  EXPECT_GT(last.heldout_free_energy - last.free_energy, first.heldout_free_energy - first.free_energy + 1.0)
      << "first gap " << first.heldout_free_energy - first.free_energy << ", last gap "
      << last.heldout_free_energy - last.free_energy;
  EXPECT_TRUE(std::isnan(last.log_likelihood));  // 2^64 hidden states: not enumerated
}

TEST(Rbm, EpochReportGivesTheExactLikelihoodOfSmallModels) {
  RbmConfig cfg;
  cfg.batch = 8;
  Tiny t(cfg, 0.5);
  std::vector<float> rows;
  for (int r = 0; r < 32; ++r)
    for (float x : bits_of(static_cast<uint32_t>(r % 16), kV)) rows.push_back(x);
  Tensor data = Tensor::from_host(rows, {32, kV}, t.cpu);
  const RbmEpochReport r = t.rbm.train_epoch(data, 1);
  EXPECT_NEAR(r.log_likelihood, t.rbm.exact_log_likelihood(data), 1e-9);
  EXPECT_TRUE(std::isnan(r.heldout_reconstruction_error));  // none given
}

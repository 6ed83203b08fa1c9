// The RBM's unit sampling (formulas::sample_unit_at and the CPU's sampling passes): the
// reproducible math it is built on (formulas/repro_math.hpp) against double-precision libm, over
// every uniform the generator gives; and every elementwise kind this CPU supports against the
// scalar formula, bit for bit, for the three unit types, odd lengths, counters that cross 2^32
// and 2^64, and special means. Kinds the CPU lacks are skipped with the reason. Built with
// -ffp-contract=off (tests/CMakeLists.txt): the reference here is the scalar formula compiled in
// this file.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "cpu/elementwise.hpp"
#include "cudl/cpu_backend.hpp"
#include "cudl/rng.hpp"
#include "formulas/repro_math.hpp"
#include "formulas/unit_rules.hpp"
#include "test_support.hpp"

using namespace cudl;
using cpu::ElementwiseKernel;

namespace {

// ---- accuracy of the reproducible functions ----

// |got − ref| in units in the last place of the float nearest ref (2^-149 below the normal range).
double ulp_error(float got, double ref) {
  if (ref == 0.0) return got == 0.0f ? 0.0 : std::numeric_limits<double>::infinity();
  int e = 0;
  std::frexp(ref, &e);  // |ref| = m · 2^e, m in [½, 1): a float's ulp there is 2^(e − 24)
  const double ulp = std::ldexp(1.0, std::max(e - 24, -149));
  return std::fabs(static_cast<double>(got) - ref) / ulp;
}

// The float k / 2^24, k = 1 .. 2^24: every value rng::uniform gives.
float uniform_k(uint32_t k) { return static_cast<float>(k) * 0x1p-24f; }

// The bounds stated in repro_math.hpp (measured: 0.83, 1.72 and 0.96 ulp).
constexpr double kLogUlps = 1.0, kCosUlps = 2.0, kExpUlps = 1.0;

TEST(ReproMath, LogIsWithinItsBoundOnEveryUniform) {
  double worst = 0.0;
  float at = 0.0f;
  for (uint32_t k = 1; k <= (1u << 24); ++k) {
    const float u = uniform_k(k);
    const double err = ulp_error(repro::log_unit(u), std::log(static_cast<double>(u)));
    if (err > worst) worst = err, at = u;
  }
  std::printf("log_unit: max error %.4f ulp (at u = %a)\n", worst, at);
  EXPECT_LE(worst, kLogUlps) << "at u = " << at;
}

// Reference: cos 2πu reduced as cos_2pi does (each step an exact identity, exact in double), then
// the double cos or sin of 2πx for x in [0, ⅛]: exact zeros at ¼ and ¾, relative accuracy near them.
double cos_2pi_reference(double u) {
  const double two_pi = 6.283185307179586476925;
  double a = u > 0.5 ? 1.0 - u : u;
  const bool flip = a > 0.25;
  if (flip) a = 0.5 - a;
  const double r = a > 0.125 ? std::sin(two_pi * (0.25 - a)) : std::cos(two_pi * a);
  return flip ? -r : r;
}

TEST(ReproMath, CosIsWithinItsBoundOnEveryUniform) {
  double worst = 0.0;
  float at = 0.0f;
  for (uint32_t k = 1; k <= (1u << 24); ++k) {
    const float u = uniform_k(k);
    const double err = ulp_error(repro::cos_2pi(u), cos_2pi_reference(u));
    if (err > worst) worst = err, at = u;
  }
  std::printf("cos_2pi: max error %.4f ulp (at u = %a)\n", worst, at);
  EXPECT_LE(worst, kCosUlps) << "at u = " << at;
  // Away from its zeros the reference is the plain double cos(2πu).
  for (uint32_t k = 1; k <= (1u << 24); k += 4099) {
    const float u = uniform_k(k);
    const double plain = std::cos(6.283185307179586476925 * u);
    if (std::fabs(plain) > 1e-3) {
      EXPECT_LE(ulp_error(repro::cos_2pi(u), plain), kCosUlps + 0.01) << u;
    }
  }
}

TEST(ReproMath, ExpIsWithinItsBoundOverItsRange) {
  // Every 37th float from −103.9 up through −0, and from +0 up to 88.72 (the largest x whose e^x is
  // a finite float is 88.7228).
  double worst = 0.0;
  float at = 0.0f;
  auto sweep = [&](float from, float to) {
    uint32_t lo, hi;
    std::memcpy(&lo, &from, 4);
    std::memcpy(&hi, &to, 4);
    for (uint32_t b = lo; b <= hi; b += 37) {  // ascending bit patterns: ascending |x|
      float x;
      std::memcpy(&x, &b, 4);
      const double err = ulp_error(repro::exp(x), std::exp(static_cast<double>(x)));
      if (err > worst) worst = err, at = x;
    }
  };
  sweep(0.0f, 88.72f);
  sweep(-0.0f, -103.9f);
  std::printf("exp: max error %.4f ulp (at x = %a)\n", worst, at);
  EXPECT_LE(worst, kExpUlps) << "at x = " << at;
}

TEST(ReproMath, SpecialValuesAreExact) {
  EXPECT_EQ(repro::log_unit(1.0f), 0.0f);
  EXPECT_EQ(repro::cos_2pi(0.0f), 1.0f);
  EXPECT_EQ(repro::cos_2pi(0.25f), 0.0f);
  EXPECT_EQ(repro::cos_2pi(0.5f), -1.0f);
  EXPECT_EQ(repro::cos_2pi(0.75f), 0.0f);
  EXPECT_EQ(repro::cos_2pi(1.0f), 1.0f);
  EXPECT_EQ(repro::exp(0.0f), 1.0f);
  EXPECT_EQ(repro::exp(-0.0f), 1.0f);
  EXPECT_EQ(repro::exp(-200.0f), 0.0f);
  EXPECT_EQ(repro::exp(-std::numeric_limits<float>::infinity()), 0.0f);
  EXPECT_EQ(repro::exp(88.8f), std::numeric_limits<float>::infinity());
  EXPECT_EQ(repro::exp(std::numeric_limits<float>::infinity()), std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(repro::exp(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_EQ(repro::exp(-103.0f), std::exp(-103.0f));  // subnormal, as libm's
  EXPECT_EQ(repro::sigmoid(0.0f), 0.5f);
  EXPECT_EQ(repro::sigmoid(100.0f), 1.0f);
  // The uniform of the lanes is rng::uniform, bit for bit.
  for (uint32_t w : {0u, 1u, 255u, 256u, 0x80000000u, 0xffffff00u, 0xffffffffu}) {
    EXPECT_EQ(repro::uniform(w), rng::uniform(w)) << w;
  }
}

// repro::normal is a standard normal, and the same function as rng::normal to a few ulps.
TEST(ReproMath, NormalHasTheMomentsOfAStandardNormalAndFollowsRngNormal) {
  const int n = 200000;
  double sum = 0, sum2 = 0, sum4 = 0;
  for (int i = 0; i < n; ++i) {
    const rng::Philox4 r = rng::bits(7, rng::kStreamUnits, static_cast<uint64_t>(i));
    const float z = repro::normal(r.v[0], r.v[1]);
    ASSERT_TRUE(std::isfinite(z));
    ASSERT_NEAR(z, rng::normal(r.v[0], r.v[1]), 2e-5 + 1e-5 * std::fabs(z)) << i;
    sum += z;
    sum2 += static_cast<double>(z) * z;
    sum4 += static_cast<double>(z) * z * z * z;
  }
  const double mean = sum / n, var = sum2 / n - mean * mean;
  EXPECT_NEAR(mean, 0.0, 5.0 / std::sqrt(n));
  EXPECT_NEAR(var, 1.0, 5.0 * std::sqrt(2.0 / n));
  EXPECT_NEAR(sum4 / n, 3.0, 0.05);
}

// ---- every kind against the scalar formula ----

constexpr ElementwiseKernel kKinds[] = {ElementwiseKernel::kBaseline, ElementwiseKernel::kAvx2,
                                        ElementwiseKernel::kAvx512};
constexpr Units kUnits[] = {Units::kBernoulli, Units::kGaussian, Units::kNoisyRelu};
constexpr int64_t kLengths[] = {1, 7, 15, 16, 17, 1003};
// Counters at 0, inside a 32-bit word, just below 2^32 (the vectors' lanes cross it), just past
// it, and just below 2^64 (the counter wraps to 0).
constexpr uint64_t kCounters[] = {0, 12345, (uint64_t{1} << 32) - 5, (uint64_t{1} << 32) + 3, ~uint64_t{0} - 8};
constexpr uint64_t kSeeds[] = {7, 0x0123456789ABCDEFull};

float float_bits(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}

// n means: uniform in [lo, hi) with special values sprinkled through, in every lane position.
std::vector<float> means(int64_t n, uint64_t seed, float lo, float hi) {
  std::vector<float> v = cudl::testing::uniform_values(seed, n, lo, hi, /*stream=*/13);
  const float specials[] = {0.0f, -0.0f, -1.5f, 1.0f, 1e30f, -1e30f, std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN(),
                            float_bits(0xffc01234u) /* a negative NaN with a payload */, 1e-40f, 0.5f, 88.0f, 200.0f};
  constexpr int64_t kSpecials = sizeof specials / sizeof specials[0];
  for (int64_t i = static_cast<int64_t>(seed % 3); i < n; i += 5) v[i] = specials[(i / 5) % kSpecials];
  return v;
}

void expect_bits_equal(const std::vector<float>& want, const std::vector<float>& got, const std::string& what) {
  ASSERT_EQ(want.size(), got.size()) << what;
  for (size_t i = 0; i < want.size(); ++i) {
    if (std::memcmp(&want[i], &got[i], sizeof(float)) != 0) {
      ADD_FAILURE() << what << ": element " << i << " is " << got[i] << ", the scalar formula gives " << want[i];
      return;
    }
  }
}

std::string describe(Units units, int64_t n, uint64_t seed, uint64_t counter) {
  return std::string(to_string(units)) + ", n " + std::to_string(n) + ", seed " + std::to_string(seed) +
         ", counter " + std::to_string(counter);
}

class SampleKinds : public ::testing::TestWithParam<ElementwiseKernel> {
 protected:
  void SetUp() override {
    std::string why;
    if (!cpu::elementwise_kernel_supported(GetParam(), &why)) GTEST_SKIP() << why;
  }
  const cpu::ElementwiseOps& ops() const { return cpu::elementwise_ops(GetParam()); }
};

TEST_P(SampleKinds, SampleUnitsGiveTheScalarFormulasBits) {
  for (Units units : kUnits) {
    for (int64_t n : kLengths) {
      // Bernoulli means are probabilities; the others any value.
      const std::vector<float> m = units == Units::kBernoulli ? means(n, static_cast<uint64_t>(n), -0.25f, 1.25f)
                                                              : means(n, static_cast<uint64_t>(n), -3.0f, 3.0f);
      for (uint64_t seed : kSeeds) {
        for (uint64_t counter : kCounters) {
          std::vector<float> want(m.size()), got(m.size(), -7.0f);
          for (int64_t i = 0; i < n; ++i) want[i] = formulas::sample_unit_at(units, m[i], seed, counter, i);
          ops().sample_units(m.data(), n, units, seed, counter, got.data());
          expect_bits_equal(want, got, describe(units, n, seed, counter));
          std::vector<float> in_place = m;  // means and out the same array
          ops().sample_units(in_place.data(), n, units, seed, counter, in_place.data());
          expect_bits_equal(want, in_place, "in place, " + describe(units, n, seed, counter));
        }
      }
    }
  }
}

TEST_P(SampleKinds, BiasActivationSampleGivesTheScalarFormulasBits) {
  const int64_t rows = 3;
  for (Units units : kUnits) {
    for (Activation act : {Activation::kIdentity, Activation::kRelu, Activation::kSigmoid}) {
      for (int64_t cols : kLengths) {
        const std::vector<float> y0 = means(rows * cols, 40 + static_cast<uint64_t>(cols), -3.0f, 3.0f);
        const std::vector<float> bias = cudl::testing::uniform_values(41, cols, -1.0f, 1.0f);
        for (uint64_t counter : kCounters) {
          std::vector<float> y_want = y0, s_want(y0.size()), y_got = y0, s_got(y0.size(), -7.0f);
          for (int64_t r = 0; r < rows; ++r) {
            for (int64_t c = 0; c < cols; ++c) {
              const int64_t i = r * cols + c;
              y_want[i] = formulas::activate(act, y0[i] + bias[c]);
              s_want[i] = formulas::sample_unit_at(units, y_want[i], 5, counter, i);
            }
          }
          ops().bias_activation_sample(y_got.data(), bias.data(), rows, cols, act, units, 5, counter, s_got.data());
          const std::string what = describe(units, cols, 5, counter) + ", activation " +
                                   std::to_string(static_cast<int>(act));
          expect_bits_equal(y_want, y_got, "means, " + what);
          expect_bits_equal(s_want, s_got, "states, " + what);
        }
      }
    }
  }
}

// Dropout's mask (stream kStreamDropout) and scaling, on values with NaNs, infinities and signed
// zeros among them, kept or zeroed in every lane position; in place too.
TEST_P(SampleKinds, DropoutGivesTheScalarFormulasBits) {
  for (float drop : {0.0f, 0.1f, 0.5f, 0.9f}) {
    const float scale = 1.0f / (1.0f - drop);
    for (int64_t n : kLengths) {
      const std::vector<float> x = means(n, 60 + static_cast<uint64_t>(n), -3.0f, 3.0f);
      for (uint64_t seed : kSeeds) {
        for (uint64_t counter : kCounters) {
          std::vector<float> want(x.size()), got(x.size(), -7.0f);
          for (int64_t i = 0; i < n; ++i) want[i] = formulas::dropout_at(x[i], drop, scale, seed, counter, i);
          ops().dropout(x.data(), n, drop, scale, seed, counter, got.data());
          const std::string what = "dropout " + std::to_string(drop) + ", n " + std::to_string(n) + ", seed " +
                                   std::to_string(seed) + ", counter " + std::to_string(counter);
          expect_bits_equal(want, got, what);
          std::vector<float> in_place = x;
          ops().dropout(in_place.data(), n, drop, scale, seed, counter, in_place.data());
          expect_bits_equal(want, in_place, "in place, " + what);
        }
      }
    }
  }
}

std::string kind_name(const ::testing::TestParamInfo<ElementwiseKernel>& info) { return cpu::to_string(info.param); }

INSTANTIATE_TEST_SUITE_P(Kinds, SampleKinds, ::testing::ValuesIn(kKinds), kind_name);

// The backend splits the work across its threads; each chunk starts at its own counter, so the
// states are the scalar formula's whatever the split (here several chunks per call).
TEST(CpuBackendSampling, ThreadsDrawTheScalarFormulasStates) {
  CpuBackend cpu(2);
  const int64_t rows = 130, cols = 800, n = rows * cols;
  const std::vector<float> values = cudl::testing::uniform_values(3, n, -2.0f, 2.0f);
  const std::vector<float> bias_values = cudl::testing::uniform_values(4, cols, -1.0f, 1.0f);
  const Tensor bias = Tensor::from_host(bias_values, {cols}, cpu);
  const uint64_t counter = (uint64_t{1} << 32) - 1000;
  for (Units units : kUnits) {
    const Activation act = units == Units::kBernoulli ? Activation::kSigmoid
                           : units == Units::kNoisyRelu ? Activation::kRelu
                                                         : Activation::kIdentity;
    Tensor p = Tensor::from_host(values, {n}, cpu), s({n}, cpu);
    cpu.sample_units(p, units, 9, counter, s);
    std::vector<float> want(n);
    for (int64_t i = 0; i < n; ++i) want[i] = formulas::sample_unit_at(units, values[i], 9, counter, i);
    expect_bits_equal(want, s.to_vector(), std::string("sample_units ") + to_string(units));

    Tensor y = Tensor::from_host(values, {rows, cols}, cpu), states({rows, cols}, cpu);
    cpu.bias_activation_sample(y, bias, act, units, 9, counter, states);
    std::vector<float> means_want(n);
    for (int64_t i = 0; i < n; ++i) {
      means_want[i] = formulas::activate(act, values[i] + bias_values[i % cols]);
      want[i] = formulas::sample_unit_at(units, means_want[i], 9, counter, i);
    }
    expect_bits_equal(means_want, y.to_vector(), std::string("bias_activation_sample means ") + to_string(units));
    expect_bits_equal(want, states.to_vector(), std::string("bias_activation_sample states ") + to_string(units));
  }
}

}  // namespace

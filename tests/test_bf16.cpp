// Precision::kBf16 on the CPU (src/cpu/bf16.hpp, src/cpu/cpu_backend_bf16.cpp). The rounding
// against hand-worked values and against a reference that picks the nearer of the two bf16
// neighbours in double; the products on integer data, where every fp32 sum is exact whatever its
// order, bit for bit against the exact result rounded once; random data within one bf16 step;
// the three convolutions likewise; the fused backward; the backend's precision; training.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "cpu/bf16.hpp"
#include "cudl/cpu_backend.hpp"
#include "cudl/device.hpp"
#include "cudl/rng.hpp"
#include "cudl/trainer.hpp"
#include "bf16_data.hpp"
#include "conv_reference.hpp"
#include "test_support.hpp"

using namespace cudl;
using cudl::cpu::round_bf16;
using cudl::testing::bf16_integers;
using cudl::testing::bits_of;
using cudl::testing::from_bits;
using cudl::testing::normal_values;
using ::testing::HasSubstr;

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// The value a bf16 bit pattern (in the top half of u) stands for, with the pattern after the
// largest finite one read as 2^128, as IEEE rounding does when it decides an overflow.
double value_of(uint32_t u) {
  if ((u & 0x7FFFFFFFu) == 0x7F800000u) return (u >> 31 ? -1.0 : 1.0) * std::ldexp(1.0, 128);
  return from_bits(u);
}

// The reference: the nearer of the two bf16 values around x (found by truncating, and one step
// up in magnitude), the even one on a tie. Independent of round_bf16's bit trick.
float nearest_bf16(float x) {
  if (std::isnan(x) || std::isinf(x)) return x;
  const uint32_t u = bits_of(x), lo = u & 0xFFFF0000u, hi = lo + 0x10000u;
  if (lo == u) return x;
  const double to_lo = std::fabs(value_of(lo) - x), to_hi = std::fabs(value_of(hi) - x);
  if (to_lo != to_hi) return from_bits(to_lo < to_hi ? lo : hi);
  return from_bits((lo & 0x10000u) == 0 ? lo : hi);
}

}  // namespace

// ---- rounding ----

TEST(RoundBf16, HandWorkedValues) {
  EXPECT_EQ(round_bf16(1.0f), 1.0f);
  EXPECT_EQ(round_bf16(1.0f + 0x1p-8f), 1.0f);                      // tie: down to the even 1.0
  EXPECT_EQ(round_bf16(1.0f + 3 * 0x1p-8f), 1.0f + 0x1p-6f);        // tie: up to the even 1 + 2/128
  EXPECT_EQ(round_bf16(1.0f + 0x1p-8f + 0x1p-20f), 1.0f + 0x1p-7f);  // just above a tie: up
  EXPECT_EQ(round_bf16(257.0f), 256.0f);
  EXPECT_EQ(round_bf16(259.0f), 260.0f);
  EXPECT_EQ(round_bf16(261.0f), 260.0f);
  EXPECT_EQ(round_bf16(-259.0f), -260.0f);
  EXPECT_EQ(round_bf16(0.1f), 0.10009765625f);
  EXPECT_EQ(round_bf16(3.3895314e38f), 3.3895314e38f);  // the largest finite bf16 stays
  EXPECT_EQ(round_bf16(std::numeric_limits<float>::max()), kInf);  // past its half step: infinity
  EXPECT_EQ(round_bf16(-std::numeric_limits<float>::max()), -kInf);
  EXPECT_EQ(round_bf16(kInf), kInf);
  EXPECT_EQ(round_bf16(-kInf), -kInf);
  EXPECT_TRUE(std::isnan(round_bf16(kNaN)));
  EXPECT_TRUE(std::isnan(round_bf16(from_bits(0x7F800001u))));  // a NaN whose payload is all low bits
  EXPECT_EQ(bits_of(round_bf16(-0.0f)), 0x80000000u);
  EXPECT_EQ(round_bf16(0x1p-149f), 0.0f);                        // below half the smallest bf16 subnormal
  EXPECT_EQ(bits_of(round_bf16(from_bits(0x00018000u))), 0x00020000u);  // subnormal tie, up to even
  EXPECT_EQ(bits_of(round_bf16(from_bits(0x00028000u))), 0x00020000u);  // subnormal tie, down to even
}

TEST(RoundBf16, IsTheNearestBf16TiesToEvenForAMillionBitPatterns) {
  int64_t wrong = 0;
  for (uint64_t i = 0; i < (1u << 20); ++i) {
    const rng::Philox4 b = rng::bits(2026, 9, i);
    // Random patterns, and patterns whose low half is a tie or next to one.
    uint32_t u = b.v[0];
    if (i % 4 == 1) u = (u & 0xFFFF0000u) | 0x8000u;
    if (i % 4 == 2) u = (u & 0xFFFF0000u) | (0x8000u + (b.v[1] & 1u ? 1u : 0xFFFFFFFFu));
    const float x = from_bits(u), got = round_bf16(x), want = nearest_bf16(x);
    const bool same = std::isnan(want) ? std::isnan(got) : bits_of(got) == bits_of(want);
    if (!same && wrong++ < 5) ADD_FAILURE() << "x bits 0x" << std::hex << u << ": got 0x" << bits_of(got) << ", want 0x" << bits_of(want);
  }
  EXPECT_EQ(wrong, 0);
}

// ---- gemm ----

namespace {

// A CpuBackend whose do_gemm (protected) can be called with any leading dimensions.
class Cpu : public CpuBackend {
 public:
  using CpuBackend::CpuBackend;
  using CpuBackend::do_gemm;
};

struct GemmCase {
  int64_t m, n, k;
  Trans ta, tb;
  float alpha, beta;
  std::string name() const {
    return std::to_string(m) + "x" + std::to_string(n) + "x" + std::to_string(k) + (ta == Trans::kYes ? " Aᵀ" : " A") +
           (tb == Trans::kYes ? " Bᵀ" : " B") + " alpha " + std::to_string(alpha) + " beta " + std::to_string(beta);
  }
};

// A and B stored with padded rows (leading dimension = columns + 3, the padding NaN so that a
// read of it shows), C (m × n, leading dimension n + 2) poisoned with NaN when beta is 0.
struct GemmData {
  GemmCase g;
  int64_t lda, ldb, ldc;
  std::vector<float> a, b, c;
  GemmData(const GemmCase& gc, const std::vector<float>& av, const std::vector<float>& bv, const std::vector<float>& cv)
      : g(gc), lda((g.ta == Trans::kNo ? g.k : g.m) + 3), ldb((g.tb == Trans::kNo ? g.n : g.k) + 3), ldc(g.n + 2) {
    a = padded(av, g.ta == Trans::kNo ? g.m : g.k, lda - 3, lda);
    b = padded(bv, g.tb == Trans::kNo ? g.k : g.n, ldb - 3, ldb);
    c = padded(g.beta == 0.0f ? std::vector<float>(cv.size(), kNaN) : cv, g.m, g.n, ldc);
  }
  static std::vector<float> padded(const std::vector<float>& v, int64_t rows, int64_t cols, int64_t ld) {
    std::vector<float> out(static_cast<size_t>(rows * ld), kNaN);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < cols; ++j) out[r * ld + j] = v[r * cols + j];
    return out;
  }
  float a_at(int64_t i, int64_t p) const { return g.ta == Trans::kNo ? a[i * lda + p] : a[p * lda + i]; }
  float b_at(int64_t p, int64_t j) const { return g.tb == Trans::kNo ? b[p * ldb + j] : b[j * ldb + p]; }
  // C (m × n, packed) computed by `cpu`.
  std::vector<float> on(Cpu& cpu) const {
    std::vector<float> out = c;
    cpu.do_gemm(g.ta, g.tb, g.m, g.n, g.k, g.alpha, a.data(), lda, b.data(), ldb, g.beta, out.data(), ldc);
    std::vector<float> packed;
    for (int64_t i = 0; i < g.m; ++i) packed.insert(packed.end(), out.begin() + i * ldc, out.begin() + i * ldc + g.n);
    return packed;
  }
  // Σ_p round(a)·round(b) in double, and Σ_p |round(a)·round(b)|, for element (i, j).
  std::pair<double, double> rounded_sum(int64_t i, int64_t j) const {
    double sum = 0, magnitude = 0;
    for (int64_t p = 0; p < g.k; ++p) {
      const double t = double{nearest_bf16(a_at(i, p))} * nearest_bf16(b_at(p, j));
      sum += t;
      magnitude += std::fabs(t);
    }
    return {sum, magnitude};
  }
};

std::vector<GemmCase> gemm_cases() {
  std::vector<GemmCase> cases;
  for (Trans ta : {Trans::kNo, Trans::kYes})
    for (Trans tb : {Trans::kNo, Trans::kYes})
      for (auto [alpha, beta] : {std::pair{1.0f, 0.0f}, std::pair{0.25f, 0.0f}, std::pair{1.0f, 0.5f}})
        for (auto [m, n, k] : {std::tuple{1, 1, 1}, std::tuple{7, 5, 3}, std::tuple{13, 17, 64}, std::tuple{33, 9, 40}})
          cases.push_back({m, n, k, ta, tb, alpha, beta});
  return cases;
}

}  // namespace

// On integers every fp32 sum is exact, so the only rounding left is the one bf16 asks for:
// operands to the nearest bf16, the exact sum once, then beta·C + that in fp32.
TEST(Bf16Gemm, IntegerProductsAreTheExactSumRoundedOnce) {
  Cpu cpu(2, Precision::kBf16);
  uint64_t seed = 100;
  for (const GemmCase& g : gemm_cases()) {
    const GemmData d(g, bf16_integers(seed, g.m * g.k), bf16_integers(seed + 1, g.k * g.n), bf16_integers(seed + 2, g.m * g.n));
    seed += 3;
    const std::vector<float> got = d.on(cpu);
    for (int64_t i = 0; i < g.m; ++i) {
      for (int64_t j = 0; j < g.n; ++j) {
        const auto [sum, magnitude] = d.rounded_sum(i, j);
        ASSERT_LT(magnitude, 0x1p24) << "the test's data must keep fp32 sums exact";
        const float r = nearest_bf16(static_cast<float>(g.alpha * sum));
        const float want = g.beta == 0.0f ? r : g.beta * d.c[i * d.ldc + j] + r;
        ASSERT_EQ(bits_of(got[i * g.n + j]), bits_of(want)) << g.name() << " at (" << i << ", " << j << ")";
      }
    }
  }
}

// On random data the fp32 sums round too, in the kernel's order: the result is the exact sum of
// the rounded operands within one bf16 step (2^-8 relative) plus the fp32 sum's own error.
// Every element is a bf16 value (beta = 0), and the results differ from fp32's.
TEST(Bf16Gemm, RandomProductsAreWithinOneBf16StepOfTheRoundedOperandsSum) {
  Cpu bf16(2, Precision::kBf16), fp32(2);
  for (Trans ta : {Trans::kNo, Trans::kYes}) {
    for (Trans tb : {Trans::kNo, Trans::kYes}) {
      const GemmCase g{48, 40, 300, ta, tb, 1.0f, 0.0f};
      const GemmData d(g, normal_values(1, g.m * g.k), normal_values(2, g.k * g.n), std::vector<float>(g.m * g.n));
      const std::vector<float> got = d.on(bf16), full = d.on(fp32);
      int64_t differ = 0;
      for (int64_t i = 0; i < g.m; ++i) {
        for (int64_t j = 0; j < g.n; ++j) {
          const auto [sum, magnitude] = d.rounded_sum(i, j);
          const float x = got[i * g.n + j];
          EXPECT_EQ(bits_of(round_bf16(x)), bits_of(x)) << g.name();
          EXPECT_LE(std::fabs(x - sum), 0x1p-8 * std::fabs(sum) + 0x1p-24 * g.k * magnitude) << g.name();
          differ += x != full[i * g.n + j];
        }
      }
      EXPECT_GT(differ, g.m * g.n / 2) << g.name() << ": bf16 should change most results";
    }
  }
}

TEST(Bf16Gemm, EmptySumsScaleC) {
  Cpu cpu(1, Precision::kBf16);
  std::vector<float> c = {1.5f, -2.0f, 3.0f, 4.0f};
  cpu.do_gemm(Trans::kNo, Trans::kNo, 2, 2, 0, 1.0f, nullptr, 1, nullptr, 2, 0.5f, c.data(), 2);
  EXPECT_EQ(c, (std::vector<float>{0.75f, -1.0f, 1.5f, 2.0f}));
  c.assign(4, kNaN);
  cpu.do_gemm(Trans::kNo, Trans::kNo, 2, 2, 0, 1.0f, nullptr, 1, nullptr, 2, 0.0f, c.data(), 2);
  EXPECT_EQ(c, (std::vector<float>(4, 0.0f)));
}

// ---- convolutions ----

namespace {

using cudl::testing::ConvCase;

std::vector<float> rounded(const std::vector<float>& v) {
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = nearest_bf16(v[i]);
  return out;
}

// Each element of `got` is exactly `sum` (exact in double) rounded to bf16, the sums' bound
// checked so that fp32 held them exactly too.
void expect_exact_sums_rounded(const std::vector<float>& got, const std::vector<double>& sum,
                               const std::vector<double>& magnitude, const std::string& what) {
  ASSERT_EQ(got.size(), sum.size()) << what;
  int reported = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_LT(magnitude[i], 0x1p24) << what << ": the test's data must keep fp32 sums exact";
    const float want = nearest_bf16(static_cast<float>(sum[i]));
    if (bits_of(got[i]) != bits_of(want) && reported++ < 5)
      ADD_FAILURE() << what << " element " << i << ": got " << got[i] << ", want " << want;
  }
}

std::vector<float> abs_of(const std::vector<float>& v) {
  std::vector<float> a(v.size());
  for (size_t i = 0; i < v.size(); ++i) a[i] = std::fabs(v[i]);
  return a;
}

}  // namespace

// The three convolutions on integers: each output is its exact sum (the direct loops on the
// rounded operands) rounded once, over every geometry of the convolution tests.
TEST(Bf16Conv2d, IntegerConvolutionsAreTheExactSumsRoundedOnce) {
  CpuBackend cpu(2, Precision::kBf16);
  uint64_t seed = 300;
  for (const ConvCase& cc : cudl::testing::kCases) {
    const std::vector<float> x = bf16_integers(seed, numel(cc.x_shape())), w = bf16_integers(seed + 1, numel(cc.w_shape()));
    const std::vector<float> dy = bf16_integers(seed + 2, numel(cc.y_shape()));
    seed += 3;
    const cudl::testing::Outputs out = cudl::testing::run_all(cpu, cc, x, w, dy);
    const std::vector<float> rx = rounded(x), rw = rounded(w), rdy = rounded(dy);
    expect_exact_sums_rounded(out.y, cudl::testing::forward_loop(cc, rx, rw),
                              cudl::testing::forward_loop(cc, abs_of(rx), abs_of(rw)), cc.name() + " forward");
    expect_exact_sums_rounded(out.dx, cudl::testing::backward_data_loop(cc, rdy, rw),
                              cudl::testing::backward_data_loop(cc, abs_of(rdy), abs_of(rw)), cc.name() + " backward data");
    expect_exact_sums_rounded(out.dw, cudl::testing::backward_filter_loop(cc, rx, rdy),
                              cudl::testing::backward_filter_loop(cc, abs_of(rx), abs_of(rdy)),
                              cc.name() + " backward filter");
  }
}

// A batch the CPU splits into chunks (as test_conv's ChunkedBatchMatchesDirectLoops): the filter
// gradient's sum runs over every chunk in fp32 and is rounded once, at the end, and every output
// is a bf16 value: the bf16 convolutions are the fp32 ones on rounded operands, rounded.
TEST(Bf16Conv2d, AChunkedBatchIsRoundedOnceAfterEveryChunk) {
  const ConvCase cc{5, 16, 54, 54, 2, 3, 3, cudl::testing::geometry(1, 1, 1, 1), 54, 54};
  CpuBackend bf16(2, Precision::kBf16), fp32(2);
  const std::vector<float> x = normal_values(11, numel(cc.x_shape())), w = normal_values(12, numel(cc.w_shape()));
  const std::vector<float> dy = normal_values(13, numel(cc.y_shape()));
  const cudl::testing::Outputs got = cudl::testing::run_all(bf16, cc, x, w, dy);
  const cudl::testing::Outputs full = cudl::testing::run_all(fp32, cc, rounded(x), rounded(w), rounded(dy));
  EXPECT_EQ(got.y, rounded(full.y));
  EXPECT_EQ(got.dx, rounded(full.dx));
  EXPECT_EQ(got.dw, rounded(full.dw));
  EXPECT_NE(got.dw, full.dw);
}

// ---- the rest of the backend ----

// The fused Dense backward is a gemm then the activation's derivative: in bf16 the product is
// rounded before the derivative multiplies it, whichever path the CPU would take in fp32.
TEST(Bf16Backend, GemmActivationBackwardIsTheRoundedProductThenTheDerivative) {
  CpuBackend cpu(2, Precision::kBf16);
  const int64_t m = 16, n = 24, k = 40;
  const Tensor a = Tensor::from_host(normal_values(21, m * k), {m, k}, cpu);
  const Tensor b = Tensor::from_host(normal_values(22, n * k), {n, k}, cpu);
  std::vector<float> yv = normal_values(23, m * n);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n / 2; ++j) yv[i * n + j] = 0.0f;  // half the units silent in every row
  for (Activation act : {Activation::kRelu, Activation::kSigmoid}) {
    std::vector<float> ys = yv;
    if (act == Activation::kSigmoid)
      for (float& v : ys) v = 1.0f / (1.0f + std::exp(-v));
    const Tensor y = Tensor::from_host(ys, {m, n}, cpu);
    Tensor fused({m, n}, cpu), twice({m, n}, cpu);
    cpu.gemm_activation_backward(1.0f, a, Trans::kNo, b, Trans::kYes, fused, y, act);
    cpu.gemm(1.0f, a, Trans::kNo, b, Trans::kYes, 0.0f, twice);
    cpu.activation_backward(twice, y, act);
    EXPECT_EQ(fused.to_vector(), twice.to_vector()) << to_string(act);
  }
}

TEST(Bf16Backend, PrecisionIsWhatTheCpuComputes) {
  EXPECT_EQ(CpuBackend(1).precision(), Precision::kFp32);
  EXPECT_EQ(CpuBackend(1, Precision::kTf32).precision(), Precision::kFp32);  // no tf32 on the CPU
  const CpuBackend bf16(1, Precision::kBf16);
  EXPECT_EQ(bf16.precision(), Precision::kBf16);
  EXPECT_THAT(bf16.describe(), HasSubstr("bf16"));
  BackendOptions options;
  options.precision = Precision::kBf16;
  EXPECT_EQ(make_backend(Device::kCpu, options)->precision(), Precision::kBf16);
  EXPECT_STREQ(to_string(Precision::kBf16), "bf16");
}

// ---- training ----

// The blobs in bf16 learn as in fp32 (the training-loop tests' problem), and the weights differ:
// the mode is in effect all the way through fit.
TEST(Bf16Training, ADenseNetworkLearnsTheBlobsAsInFp32) {
  const cudl::testing::Blobs train_data{640}, valid_data{200, 6};
  std::vector<std::vector<float>> weights;
  for (Precision precision : {Precision::kFp32, Precision::kBf16}) {
    CpuBackend cpu(2, precision);
    Network net(cpu, {8});
    net.add(dense(16, Activation::kRelu)).add(dense(2));
    net.initialize(1, 0.1f);
    const Tensor x = train_data.x_on(cpu), y = train_data.y_on(cpu);
    const Tensor vx = valid_data.x_on(cpu), vy = valid_data.y_on(cpu);
    SoftmaxCrossEntropy loss;
    GdbnNesterovOptions o;
    o.learn_rate = 0.05f;
    GdbnNesterov opt(net.param_set(), o);
    FitOptions f;
    f.epochs = 4;
    f.batch = 64;
    f.valid_x = &vx;
    f.valid_y = &vy;
    f.progress = Progress::kNone;
    const History h = fit(net, loss, opt, x, y, f);
    EXPECT_LT(h.epochs.back().valid_err, 0.02) << to_string(precision);
    EXPECT_LT(h.epochs.back().loss, h.epochs.front().loss) << to_string(precision);
    weights.push_back(net.params().to_vector());
  }
  EXPECT_NE(weights[0], weights[1]);
}

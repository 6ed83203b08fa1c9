// CPU-vs-CUDA parity in Precision::kBf16 (issue 20): CudaBackend with options.precision = kBf16
// (bf16 operands on the tensor cores, cuDNN's bf16 graphs) against CpuBackend(2, kBf16), which
// rounds the same values the same way (src/cpu/cpu_backend_bf16.cpp). Both round each operand to
// the nearest bfloat16 (ties to even), sum the products, exact in fp32, in fp32, and round each
// result to bfloat16 once.
// - On integer data every fp32 sum is exact in any order, so the two agree bit for bit: gemm in
//   every transpose, with alpha 1 and 0.25, beta 0 and 0.5, on strided operands; the three
//   convolutions on geometries with a stride of 2, which no FFT or Winograd engine takes (those
//   need stride 1 and round inside their transforms).
// - On random data only the order of the fp32 sums differs, which can tip a rounding to bf16 by
//   one step: the bound is derived at bf16_bound.
// - Captured products (and the staging buffer's growth around a capture), the plans, the backend's
//   precision. (Training in bf16 on both devices: test_cuda_training_bf16.cpp.) Skipped, with the
//   reason, without a usable GPU.
#include <cstring>
#include <iterator>

#include "bf16_data.hpp"
#include "conv_reference.hpp"
#include "cuda_parity.hpp"
#include "cudl/conv_layers.hpp"
#include "cudl/network.hpp"
#include "cudl/rng.hpp"

namespace {

using cudl::testing::ConvCase;
using cudl::testing::bf16_integers;
using cudl::testing::bits_of;
using cudl::testing::geometry;
using cudl::testing::normal_values;

// Whether x is a bfloat16 value: its low 16 bits are zero.
bool is_bf16(float x) { return (bits_of(x) & 0xFFFFu) == 0; }

// How far the GPU's result may be from the CPU's on random data. Both sum the same products of
// bf16 operands (8-bit significands: each product is exact in fp32) in fp32, in their own orders:
// any order's sum is within (terms − 1)·u·Σ|products| of the exact one, u = 2^-24 (we allow 2^-23,
// should the tensor cores truncate when they align addends), so the two fp32 results t differ by
// at most D = 2·terms·2^-23·mag, mag = |alpha|·Σ|a||b| of the unrounded operands times 1.01 (a bf16
// operand is within 2^-8 of its value; alpha's multiply adds 2^-24 of |t| ≤ mag, inside the slack).
// Rounding each t to bf16 moves it by at most half a bf16 step, ≤ 2^-8·|t|, so the rounded results
// differ by at most D + 2^-8·(|t_cpu| + |t_gpu|) ≤ 2^-7·1.01·|r| + 1.01·D with r the CPU's rounded
// result: one bf16 step of r where the two sums straddle a rounding boundary. beta·C0 is the same
// product on both, and adding it rounds once more, by ≤ 2^-24 of the result each; r is the CPU's
// result less beta·C0 (to 2^-24 of it). So:
//     |gpu − cpu| ≤ 2^-7·1.02·|cpu − beta·C0| + 1.02·D + 2^-22·|cpu|.
// Far looser than fp32's order error, yet a wrong operand, stride or transpose is far outside it;
// whether the roundings happen at all is what the integer tests and is_bf16 check.
double bf16_bound(double cpu, double beta_c0, double mag, int64_t terms) {
  const double d = 2.0 * static_cast<double>(terms) * 0x1p-23 * 1.01 * mag;
  return 0x1p-7 * 1.02 * std::fabs(cpu - beta_c0) + 1.02 * d + 0x1p-22 * std::fabs(cpu);
}

class CudaBf16 : public ::testing::Test {
 protected:
  void SetUp() override { start(ConvSearch::kFastest); }
  void start(ConvSearch search) {
    const GpuProbe probe = probe_gpu();
    if (!probe.usable) GTEST_SKIP() << "no usable GPU: " << probe.reason;
    BackendOptions options;
    options.precision = Precision::kBf16;
    options.conv_search = search;
    gpu_ = std::make_unique<CudaBackend>(options);
  }
  CudaBackend& gpu() { return *gpu_; }

  CpuBackend cpu{2, Precision::kBf16};
  std::unique_ptr<CudaBackend> gpu_;  // set by SetUp when a GPU is usable
};

TEST_F(CudaBf16, SaysBf16) {
  EXPECT_EQ(gpu().precision(), Precision::kBf16);
  EXPECT_THAT(gpu().describe(), HasSubstr("bf16"));
  BackendOptions options;
  options.precision = Precision::kBf16;
  EXPECT_EQ(make_backend(Device::kCuda, options)->precision(), Precision::kBf16);
}

// ---- gemm ----

struct GemmCase {
  int64_t m, n, k;
  Trans ta, tb;
  float alpha, beta;
  std::string name() const {
    return str("gemm m,n,k", m, n, k) + (ta == Trans::kYes ? " Aᵀ" : " A") + (tb == Trans::kYes ? " Bᵀ" : " B") +
           " alpha " + std::to_string(alpha) + " beta " + std::to_string(beta);
  }
};

// op(A) (m×k) and op(B) (k×n) as values, C0 (m×n), and per element mag = Σ_p |a_ip||b_pj|.
struct GemmData {
  std::vector<float> a, b, c0;
  std::vector<double> mag;
};
GemmData gemm_data(const GemmCase& g, std::vector<float> a, std::vector<float> b, std::vector<float> c0) {
  GemmData d{std::move(a), std::move(b), std::move(c0), std::vector<double>(static_cast<size_t>(g.m * g.n), 0.0)};
  for (int64_t i = 0; i < g.m; ++i)
    for (int64_t p = 0; p < g.k; ++p)
      for (int64_t j = 0; j < g.n; ++j)
        d.mag[i * g.n + j] += std::fabs(static_cast<double>(d.a[i * g.k + p]) * d.b[p * g.n + j]);
  return d;
}

// Stores a rows×cols matrix given as `at(r, c)` with row stride cols + 3, the padding NaN (a read
// of it shows in the result).
template <typename At>
std::vector<float> padded(int64_t rows, int64_t cols, At at) {
  std::vector<float> out(static_cast<size_t>(rows * (cols + 3)), kNaN);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) out[r * (cols + 3) + c] = at(r, c);
  return out;
}

// C = alpha·op(A)·op(B) + beta·C on both backends through do_gemm, with A and B stored (as
// op(A)ᵀ and op(B)ᵀ where transposed) with padded rows, and C with row stride n + 2: C0 where
// beta ≠ 0, NaN where beta = 0 (it must not be read), and 7 in the two columns past n, which must
// stay. Returns {gpu, cpu}, each m×n packed.
std::pair<std::vector<float>, std::vector<float>> run_gemm(CpuBackend& cpu, CudaBackend& gpu, const GemmCase& g,
                                                           const GemmData& d) {
  const int64_t a_rows = g.ta == Trans::kNo ? g.m : g.k, a_cols = g.ta == Trans::kNo ? g.k : g.m;
  const int64_t b_rows = g.tb == Trans::kNo ? g.k : g.n, b_cols = g.tb == Trans::kNo ? g.n : g.k;
  const std::vector<float> as = padded(a_rows, a_cols, [&](int64_t r, int64_t c) {
    return g.ta == Trans::kNo ? d.a[r * g.k + c] : d.a[c * g.k + r];
  });
  const std::vector<float> bs = padded(b_rows, b_cols, [&](int64_t r, int64_t c) {
    return g.tb == Trans::kNo ? d.b[r * g.n + c] : d.b[c * g.n + r];
  });
  const int64_t ldc = g.n + 2;
  std::vector<float> cs(static_cast<size_t>(g.m * ldc), 7.0f);
  for (int64_t i = 0; i < g.m; ++i)
    for (int64_t j = 0; j < g.n; ++j) cs[i * ldc + j] = g.beta == 0.0f ? kNaN : d.c0[i * g.n + j];
  constexpr auto do_gemm = DoGemm::pointer();
  std::vector<std::vector<float>> out;
  for (Backend* backend : {static_cast<Backend*>(&gpu), static_cast<Backend*>(&cpu)}) {
    const Tensor a = Tensor::from_host(as, {a_rows, a_cols + 3}, *backend);
    const Tensor b = Tensor::from_host(bs, {b_rows, b_cols + 3}, *backend);
    Tensor c = Tensor::from_host(cs, {g.m, ldc}, *backend);
    (backend->*do_gemm)(g.ta, g.tb, g.m, g.n, g.k, g.alpha, a.data(), a_cols + 3, b.data(), b_cols + 3, g.beta,
                        c.data(), ldc);
    const std::vector<float> v = c.to_vector();
    std::vector<float> packed;
    for (int64_t i = 0; i < g.m; ++i) {
      packed.insert(packed.end(), v.begin() + i * ldc, v.begin() + i * ldc + g.n);
      EXPECT_TRUE(v[i * ldc + g.n] == 7.0f && v[i * ldc + g.n + 1] == 7.0f)
          << g.name() << " on " << backend->describe() << ": wrote past column n of row " << i;
    }
    out.push_back(std::move(packed));
  }
  return {out[0], out[1]};
}

std::vector<GemmCase> integer_gemm_cases() {
  std::vector<GemmCase> cases;
  const int64_t shapes[][3] = {{1, 1, 1},    {7, 5, 3},    {13, 17, 64}, {33, 9, 40},
                               {128, 96, 64}, {1, 257, 33}, {255, 1, 17}};
  for (Trans ta : {Trans::kNo, Trans::kYes})
    for (Trans tb : {Trans::kNo, Trans::kYes})
      for (auto [alpha, beta] : {std::pair{1.0f, 0.0f}, std::pair{0.25f, 0.0f}, std::pair{1.0f, 0.5f},
                                 std::pair{0.25f, 0.5f}})
        for (const auto& s : shapes) cases.push_back({s[0], s[1], s[2], ta, tb, alpha, beta});
  return cases;
}

// On integers both backends compute the exact sums and round them once, the same way: the same
// bits, ties to even included (a GPU that truncated an operand or a result would differ).
TEST_F(CudaBf16, IntegerGemmIsBitExact) {
  uint64_t seed = 100;
  for (const GemmCase& g : integer_gemm_cases()) {
    const GemmData d = gemm_data(g, bf16_integers(seed, g.m * g.k), bf16_integers(seed + 1, g.k * g.n),
                                 bf16_integers(seed + 2, g.m * g.n));
    seed += 3;
    const auto [on_gpu, on_cpu] = run_gemm(cpu, gpu(), g, d);
    int reported = 0;
    for (size_t i = 0; i < on_cpu.size(); ++i) {
      ASSERT_LT(d.mag[i] * 1.01, 0x1p24) << g.name() << ": the test's sums must stay exact in fp32";
      if (bits_of(on_gpu[i]) != bits_of(on_cpu[i]) && reported++ < 5)
        ADD_FAILURE() << g.name() << " element " << i << ": gpu " << on_gpu[i] << ", cpu " << on_cpu[i];
    }
  }
}

// Each element of on_gpu within bf16_bound of on_cpu and, where beta = 0, a bf16 value.
void expect_within_bound(const GemmCase& g, const GemmData& d, const std::vector<float>& on_gpu,
                         const std::vector<float>& on_cpu) {
  int reported = 0;
  for (size_t i = 0; i < on_cpu.size(); ++i) {
    const double bound =
        bf16_bound(on_cpu[i], static_cast<double>(g.beta) * d.c0[i], std::fabs(g.alpha) * d.mag[i], g.k);
    const bool ok =
        std::fabs(static_cast<double>(on_gpu[i]) - on_cpu[i]) <= bound && (g.beta != 0.0f || is_bf16(on_gpu[i]));
    if (!ok && reported++ < 5)
      ADD_FAILURE() << g.name() << " element " << i << ": gpu " << on_gpu[i] << ", cpu " << on_cpu[i] << " (bound "
                    << bound << (g.beta == 0.0f ? ", and a bf16 value)" : ")");
  }
}

// Random normal operands, C0 uniform in [-1, 1], through every transpose.
TEST_F(CudaBf16, RandomGemmIsWithinOneBf16StepOfTheCpu) {
  const int64_t shapes[][3] = {{1, 1, 1},       {7, 5, 3},       {1, 257, 33},   {255, 1, 129}, {33, 65, 1025},
                               {129, 257, 31}, {64, 800, 784}, {784, 800, 64}, {800, 10, 64}};
  const std::pair<float, float> scales[] = {{1.0f, 0.0f}, {0.25f, 0.5f}, {-1.5f, 1.0f}};
  uint64_t seed = 200;
  for (const auto& s : shapes)
    for (auto [alpha, beta] : scales) {
      const GemmCase shape{s[0], s[1], s[2], Trans::kNo, Trans::kNo, alpha, beta};
      const GemmData d = gemm_data(shape, normal_values(seed, s[0] * s[2]), normal_values(seed + 1, s[2] * s[1]),
                                   uniform_values(seed + 2, s[0] * s[1], -1.0f, 1.0f));
      seed += 3;
      for (Trans ta : {Trans::kNo, Trans::kYes})
        for (Trans tb : {Trans::kNo, Trans::kYes}) {
          const GemmCase g{s[0], s[1], s[2], ta, tb, alpha, beta};
          const auto [on_gpu, on_cpu] = run_gemm(cpu, gpu(), g, d);
          expect_within_bound(g, d, on_gpu, on_cpu);
        }
    }
}

// k = 0: an empty sum, so C = beta·C in bf16 as in fp32 (zeros over NaN for beta = 0).
TEST_F(CudaBf16, GemmWithKZeroScalesC) {
  uint64_t seed = 300;
  for (float beta : {0.0f, 0.5f}) {
    const GemmCase g{37, 5, 0, Trans::kNo, Trans::kYes, 1.0f, beta};
    const GemmData d = gemm_data(g, {}, {}, uniform_values(++seed, g.m * g.n, -1.0f, 1.0f));
    const auto [on_gpu, on_cpu] = run_gemm(cpu, gpu(), g, d);
    expect_all_close(on_gpu, on_cpu, 0.0, 0.0, g.name());
  }
}

// gemm_activation_backward is the Backend's default on the GPU, gemm then activation_backward: the
// product is rounded to bf16 before the derivative multiplies it, as on the CPU. With integers and
// ReLU (a multiplication by 0 or 1) that is bit for bit the CPU's, and the two calls' result.
TEST_F(CudaBf16, GemmActivationBackwardRoundsTheProductFirst) {
  const int64_t m = 24, n = 40, k = 64;
  const std::vector<float> av = bf16_integers(800, m * k), bv = bf16_integers(801, n * k);
  std::vector<float> yv = uniform_values(802, m * n, -1.0f, 1.0f);
  for (float& v : yv) v = std::max(v, 0.0f);  // a ReLU layer's output: about half the units silent
  std::vector<std::vector<float>> fused, twice;
  for (Backend* b : {static_cast<Backend*>(&gpu()), static_cast<Backend*>(&cpu)}) {
    const Tensor a = Tensor::from_host(av, {m, k}, *b), bt = Tensor::from_host(bv, {n, k}, *b);
    const Tensor y = Tensor::from_host(yv, {m, n}, *b);
    Tensor c({m, n}, *b), d({m, n}, *b);
    b->fill(c, kNaN);
    b->gemm_activation_backward(1.0f, a, Trans::kNo, bt, Trans::kYes, c, y, Activation::kRelu);
    b->gemm(1.0f, a, Trans::kNo, bt, Trans::kYes, 0.0f, d);
    b->activation_backward(d, y, Activation::kRelu);
    fused.push_back(c.to_vector());
    twice.push_back(d.to_vector());
  }
  for (size_t i = 0; i < fused[1].size(); ++i) {
    ASSERT_EQ(bits_of(fused[0][i]), bits_of(fused[1][i])) << "element " << i << ": gpu " << fused[0][i] << ", cpu "
                                                          << fused[1][i];
    ASSERT_EQ(bits_of(fused[0][i]), bits_of(twice[0][i])) << "element " << i << ": fused against gemm + derivative";
    ASSERT_TRUE(is_bf16(fused[0][i])) << "element " << i << ": " << fused[0][i];
  }
}

// ---- products in a captured graph ----

// A product captured after an eager one of its size, then a larger eager product (the staging
// buffer grows), then a tensor allocated where the old staging buffer could have been freed to:
// the replay still computes the captured product, and leaves that tensor alone (the old buffer
// was kept for the graph, not freed under it).
TEST_F(CudaBf16, CapturedProductsKeepTheirStagingWhenItGrows) {
  const int64_t m = 64, n = 96, k = 128;
  const Tensor a = Tensor::from_host(normal_values(400, m * k), {m, k}, gpu());
  const Tensor b = Tensor::from_host(normal_values(401, k * n), {k, n}, gpu());
  Tensor eager({m, n}, gpu()), replayed({m, n}, gpu());
  gpu().gemm(1.0f, a, Trans::kNo, b, Trans::kNo, 0.0f, eager);  // sizes the staging buffer
  gpu().fill(replayed, kNaN);
  gpu().begin_capture();
  gpu().gemm(1.0f, a, Trans::kNo, b, Trans::kNo, 0.0f, replayed);
  std::unique_ptr<Captured> graph = gpu().end_capture();
  const int64_t big = 4 * m;
  const Tensor a2 = Tensor::from_host(normal_values(402, big * big), {big, big}, gpu());
  Tensor c2({big, big}, gpu());
  gpu().gemm(1.0f, a2, Trans::kNo, a2, Trans::kYes, 0.0f, c2);  // grows the staging buffer
  Tensor bystander({4 * (m * k + k * n + m * n)}, gpu());      // more than the old staging buffer
  gpu().fill(bystander, 3.0f);
  graph->replay();
  const std::vector<float> want = eager.to_vector(), got = replayed.to_vector(), still = bystander.to_vector();
  expect_all_close(got, want, 0.0, 0.0, "captured gemm replayed after the staging grew");
  EXPECT_EQ(std::count(still.begin(), still.end(), 3.0f), static_cast<std::ptrdiff_t>(still.size()))
      << "the replay wrote into memory allocated after the staging buffer grew";
}

// A product that needs more staging than any before it cannot be captured: the buffer would grow
// inside the graph. The error says so, and the backend stays usable.
TEST_F(CudaBf16, GrowingTheStagingWhileCapturingIsAnError) {
  const GemmCase g{32, 32, 48, Trans::kNo, Trans::kYes, 1.0f, 0.0f};
  const Tensor a = Tensor::from_host(normal_values(410, g.m * g.k), {g.m, g.k}, gpu());
  const Tensor b = Tensor::from_host(normal_values(411, g.n * g.k), {g.n, g.k}, gpu());
  Tensor c({g.m, g.n}, gpu());
  gpu().begin_capture();
  gpu().fill(c, 0.0f);  // something in the graph
  const std::string message = error_of([&] { gpu().gemm(g.alpha, a, g.ta, b, g.tb, g.beta, c); });
  gpu().end_capture();
  EXPECT_THAT(message, HasSubstr("bf16 staging buffer"));
  EXPECT_THAT(message, HasSubstr("while a CUDA graph is being captured"));
  std::vector<float> bt(static_cast<size_t>(g.k * g.n));  // op(B) = Bᵀ as values
  const std::vector<float> bv = normal_values(411, g.n * g.k);
  for (int64_t j = 0; j < g.n; ++j)
    for (int64_t p = 0; p < g.k; ++p) bt[p * g.n + j] = bv[j * g.k + p];
  const GemmData d = gemm_data(g, normal_values(410, g.m * g.k), bt, std::vector<float>(g.m * g.n, 0.0f));
  const auto [on_gpu, on_cpu] = run_gemm(cpu, gpu(), g, d);  // eagerly, it works
  expect_within_bound(g, d, on_gpu, on_cpu);
}

// ---- convolutions ----

class CudaBf16Conv : public CudaBf16, public ::testing::WithParamInterface<ConvSearch> {
 protected:
  void SetUp() override { start(GetParam()); }

  // The three convolutions of `cc` on both backends (outputs poisoned with NaN first), and the
  // lines of the plans the GPU made for them.
  struct Both {
    cudl::testing::Outputs on_gpu, on_cpu;
    std::string plans;
  };
  Both run(const ConvCase& cc, const std::vector<float>& x, const std::vector<float>& w, const std::vector<float>& dy) {
    const std::vector<std::string> before = convolution_plans(gpu());
    Both r{cudl::testing::run_all(gpu(), cc, x, w, dy), cudl::testing::run_all(cpu, cc, x, w, dy), ""};
    for (const std::string& line : convolution_plans(gpu()))
      if (std::find(before.begin(), before.end(), line) == before.end()) r.plans += "\n  plan: " + line;
    return r;
  }
};

std::string search_name(const ::testing::TestParamInfo<ConvSearch>& info) {
  return info.param == ConvSearch::kFastest ? "Fastest" : "Precise";
}

std::vector<float> abs_of(const std::vector<float>& v) {
  std::vector<float> a(v.size());
  for (size_t i = 0; i < v.size(); ++i) a[i] = std::fabs(v[i]);
  return a;
}

// One operation's output: on integer data (terms < 0: the sums are exact) bit for bit, else within
// bf16_bound of the CPU's with `terms` products per sum, and under kFastest (whose engine may
// compute less exactly, as the fp32 tests allow) within 1e-2 of it normwise. Either way every
// element is a bf16 value. mag holds each output's Σ|a||b|.
void expect_conv_match(const std::vector<float>& on_gpu, const std::vector<float>& on_cpu,
                       const std::vector<double>& mag, int64_t terms, ConvSearch search, const std::string& what) {
  ASSERT_EQ(on_gpu.size(), on_cpu.size()) << what;
  double diff2 = 0.0, ref2 = 0.0;
  int reported = 0;
  for (size_t i = 0; i < on_cpu.size(); ++i) {
    const double e = static_cast<double>(on_gpu[i]) - on_cpu[i];
    diff2 += e * e;
    ref2 += static_cast<double>(on_cpu[i]) * on_cpu[i];
    bool ok = is_bf16(on_gpu[i]);
    if (terms < 0) {
      ok = ok && bits_of(on_gpu[i]) == bits_of(on_cpu[i]);
    } else if (search == ConvSearch::kPrecise) {
      ok = ok && std::fabs(e) <= bf16_bound(on_cpu[i], 0.0, mag[i], terms);
    }
    if (!ok && reported++ < 5)
      ADD_FAILURE() << what << " element " << i << ": gpu " << on_gpu[i] << ", cpu " << on_cpu[i];
  }
  const double rel = ref2 > 0.0 ? std::sqrt(diff2 / ref2) : std::sqrt(diff2);
  if (terms >= 0 && search == ConvSearch::kFastest) {
    EXPECT_LE(rel, 1e-2) << what;
  }
  std::printf("%s: normwise relative difference %.3g\n", what.c_str(), rel);
}

// Every stride is 2 on at least one axis, so no FFT or Winograd engine applies: every engine sums
// the exact products, and the outputs are bit for bit the CPU's. P and Q are worked out by hand.
const ConvCase kStridedCases[] = {
    {2, 3, 9, 9, 4, 3, 3, geometry(2, 2, 1, 1), 5, 5},
    {3, 3, 11, 8, 5, 3, 2, geometry(2, 1, 1, 0), 6, 7},
    {4, 3, 8, 7, 2, 1, 1, geometry(2, 2, 0, 0), 4, 4},
    {2, 3, 13, 12, 6, 5, 5, geometry(2, 2, 2, 2), 7, 6},
    {2, 2, 9, 10, 3, 2, 3, geometry(3, 2, 0, 1, 2, 1), 3, 5},
    {2, 3, 10, 10, 4, 3, 3, geometry(2, 2, 2, 2, 2, 2), 5, 5},
};

TEST_P(CudaBf16Conv, IntegerConvolutionsAreBitExact) {
  uint64_t seed = 500;
  for (const ConvCase& cc : kStridedCases) {
    const std::vector<float> x = bf16_integers(seed, numel(cc.x_shape()));
    const std::vector<float> w = bf16_integers(seed + 1, numel(cc.w_shape()));
    const std::vector<float> dy = bf16_integers(seed + 2, numel(cc.y_shape()));
    seed += 3;
    const std::vector<float> ax = abs_of(x), aw = abs_of(w), ady = abs_of(dy);
    for (const std::vector<double>& mag : {cudl::testing::forward_loop(cc, ax, aw),
                                           cudl::testing::backward_data_loop(cc, ady, aw),
                                           cudl::testing::backward_filter_loop(cc, ax, ady)})
      for (double m : mag) ASSERT_LT(m * 1.01, 0x1p24) << cc.name() << ": the test's sums must stay exact in fp32";
    const Both r = run(cc, x, w, dy);
    expect_conv_match(r.on_gpu.y, r.on_cpu.y, {}, -1, GetParam(), cc.name() + " forward" + r.plans);
    expect_conv_match(r.on_gpu.dx, r.on_cpu.dx, {}, -1, GetParam(), cc.name() + " backward data" + r.plans);
    expect_conv_match(r.on_gpu.dw, r.on_cpu.dw, {}, -1, GetParam(), cc.name() + " backward filter" + r.plans);
  }
}

// Random normal data on the CPU tests' geometries (stride 1 too) and the two layers of an MNIST
// network (at batch 8).
TEST_P(CudaBf16Conv, RandomConvolutionsAreWithinOneBf16StepOfTheCpu) {
  std::vector<ConvCase> cases(std::begin(cudl::testing::kCases), std::end(cudl::testing::kCases));
  cases.push_back({8, 1, 28, 28, 32, 5, 5, geometry(1, 1, 2, 2), 28, 28});
  cases.push_back({8, 32, 14, 14, 64, 5, 5, geometry(1, 1, 2, 2), 14, 14});
  uint64_t seed = 600;
  for (const ConvCase& cc : cases) {
    const std::vector<float> x = normal_values(seed, numel(cc.x_shape()));
    const std::vector<float> w = normal_values(seed + 1, numel(cc.w_shape()));
    const std::vector<float> dy = normal_values(seed + 2, numel(cc.y_shape()));
    seed += 3;
    const Both r = run(cc, x, w, dy);
    const std::vector<float> ax = abs_of(x), aw = abs_of(w), ady = abs_of(dy);
    expect_conv_match(r.on_gpu.y, r.on_cpu.y, cudl::testing::forward_loop(cc, ax, aw), cc.c * cc.r * cc.s, GetParam(),
                      cc.name() + " forward" + r.plans);
    expect_conv_match(r.on_gpu.dx, r.on_cpu.dx, cudl::testing::backward_data_loop(cc, ady, aw), cc.k * cc.r * cc.s,
                      GetParam(), cc.name() + " backward data" + r.plans);
    expect_conv_match(r.on_gpu.dw, r.on_cpu.dw, cudl::testing::backward_filter_loop(cc, ax, ady), cc.n * cc.p * cc.q,
                      GetParam(), cc.name() + " backward filter" + r.plans);
  }
}

INSTANTIATE_TEST_SUITE_P(Search, CudaBf16Conv, ::testing::Values(ConvSearch::kFastest, ConvSearch::kPrecise),
                         search_name);

// The plans say bf16 and keep the engine filter: tensor cores are allowed, never an engine that
// down-converts its inputs or reduces in reduced precision.
TEST_F(CudaBf16, ConvPlansSayBf16AndKeepTheEngineFilter) {
  const ConvCase& cc = cudl::testing::kCases[1];
  const std::vector<float> x = normal_values(700, numel(cc.x_shape())), w = normal_values(701, numel(cc.w_shape()));
  cudl::testing::run_all(gpu(), cc, x, w, normal_values(702, numel(cc.y_shape())));
  const std::vector<std::string> plans = convolution_plans(gpu());
  ASSERT_EQ(plans.size(), 3u);
  for (const std::string& line : plans) {
    EXPECT_THAT(line, HasSubstr(", bf16: engine ")) << line;
    // "...: engine 12 [tensor-core] (fastest of 5), ...; rejected 3 down-convert-inputs"
    const size_t open = line.find(" [", line.find(": engine ")), close = line.find(']', open);
    ASSERT_NE(close, std::string::npos) << line;
    const std::string notes = line.substr(open + 1, close - open);
    EXPECT_THAT(notes, ::testing::Not(HasSubstr("down-convert-inputs"))) << line;
    EXPECT_THAT(notes, ::testing::Not(HasSubstr("reduced-precision-reduction"))) << line;
    std::printf("%s\n", line.c_str());
  }
}

}  // namespace

// cudl's own product for few rows on the GPU (cuda/rows_gemm.hpp, issue 17):
// - with CUDL_GEMM_KERNELS=cudl every call it serves runs it, and its results are the host
//   emulation's bits (cuda/rows_gemm_plan.hpp: the same fmaf chains and slice order) for each
//   epilogue, transpose, stride, alpha and beta, at the 2014 network's shapes and ragged ones, and
//   for gemm_sum_rows (the weight gradient with the sums of B's rows: the bias gradient);
// - a captured call replays to the eager bits, again and again (the tickets are reset), and a
//   shape first seen while capturing stays with the library;
// - by default each shape is timed against cuBLAS and the faster kept, listed with both times, and
//   the results agree with the CPU.
// Skipped, with the reason, without a usable GPU.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "cuda_parity.hpp"
#include "rows_gemm_plan.hpp"

namespace {

namespace rg = cudl::cuda::rows_gemm;

// CUDL_GEMM_KERNELS as it was when made, restored when destroyed (also on a throw).
class SavedVariable {
 public:
  SavedVariable() {
    const char* old = std::getenv("CUDL_GEMM_KERNELS");
    had_ = old != nullptr;
    if (had_) value_ = old;
  }
  ~SavedVariable() {
    if (had_) {
      setenv("CUDL_GEMM_KERNELS", value_.c_str(), 1);
    } else {
      unsetenv("CUDL_GEMM_KERNELS");
    }
  }
  SavedVariable(const SavedVariable&) = delete;
  SavedVariable& operator=(const SavedVariable&) = delete;

 private:
  bool had_ = false;
  std::string value_;
};

// A CudaBackend made while CUDL_GEMM_KERNELS has `mode`; the variable is restored after.
std::unique_ptr<CudaBackend> backend_in_mode(const char* mode) {
  const SavedVariable saved;
  setenv("CUDL_GEMM_KERNELS", mode, 1);
  return std::make_unique<CudaBackend>(BackendOptions{});
}

int multiprocessors() {
  int sms = 0;
  EXPECT_EQ(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0), cudaSuccess);
  return sms;
}

struct Shape3 {
  int64_t m, n, k;
};
const Shape3 kShapes[] = {{1, 1, 1},    {7, 5, 3},       {64, 800, 784}, {64, 784, 800}, {64, 10, 800},
                          {65, 33, 17}, {130, 40, 1000}, {256, 64, 64},  {3, 2, 5000},   {784, 800, 64}};

uint32_t bits_of(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}

// Every output of `got` has the bits of `want` (NaN only where `want` has one).
void expect_same_bits(const std::vector<float>& got, const std::vector<float>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  int reported = 0;
  for (size_t i = 0; i < got.size() && reported < 5; ++i)
    if (bits_of(got[i]) != bits_of(want[i])) {
      ADD_FAILURE() << what << ": element " << i << " is " << got[i] << ", the emulation gives " << want[i];
      ++reported;
    }
}

class CudaRowsGemm : public CudaParity {};

TEST_F(CudaRowsGemm, GivesItsHostEmulationsBitsForEveryEpilogue) {
  auto g = backend_in_mode("cudl");
  constexpr auto do_gemm = DoGemm::pointer();
  const int sms = multiprocessors();
  uint64_t seed = 300;
  for (const Shape3& s : kShapes)
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (rg::Epilogue epi : {rg::Epilogue::kPlain, rg::Epilogue::kBiasAct, rg::Epilogue::kActBackward})
          for (Activation act : {Activation::kIdentity, Activation::kRelu, Activation::kSigmoid}) {
            // The sigmoid's gradient is products only (exact); its forward calls expf, which is not
            // the host's on the GPU.
            if (epi == rg::Epilogue::kPlain && act != Activation::kIdentity) continue;
            if (epi == rg::Epilogue::kBiasAct && act == Activation::kSigmoid) continue;
            // The large shapes (the 2014 step's, emulated on one host core) in the transposes the
            // step uses: forward A·B, input gradient A·Bᵀ, weight gradient Aᵀ·B.
            const bool large = s.m * s.n * s.k > (int64_t{1} << 24);
            if (large && ta && (tb || s.k != 64)) continue;
            // kPlain: row strides past the columns (do_gemm), alpha and beta; the others as Backend
            // calls them (strides = columns).
            const bool plain = epi == rg::Epilogue::kPlain;
            const int64_t pad = plain ? 3 : 0;
            const int64_t lda = (ta ? s.m : s.k) + pad, ldb = (tb ? s.k : s.n) + pad, ldc = s.n + pad;
            const int64_t a_rows = ta ? s.k : s.m, b_rows = tb ? s.n : s.k;
            const std::vector<float> a = uniform_values(++seed, a_rows * lda, -1.0f, 1.0f);
            const std::vector<float> b = uniform_values(++seed, b_rows * ldb, -1.0f, 1.0f);
            const std::vector<float> bias = uniform_values(++seed, s.n, -1.0f, 1.0f);
            const std::vector<float> y = uniform_values(++seed, s.m * s.n, -1.0f, 1.0f);
            std::vector<float> want = uniform_values(++seed, s.m * ldc, -1.0f, 1.0f);
            const Tensor a_g = Tensor::from_host(a, {a_rows, lda}, *g), b_g = Tensor::from_host(b, {b_rows, ldb}, *g);
            const Tensor bias_g = Tensor::from_host(bias, {s.n}, *g), y_g = Tensor::from_host(y, {s.m, s.n}, *g);
            Tensor c_g = Tensor::from_host(want, {s.m, ldc}, *g);
            const float alpha = plain ? -0.75f : 1.5f, beta = plain ? 0.5f : 0.0f;
            const Trans tra = ta ? Trans::kYes : Trans::kNo, trb = tb ? Trans::kYes : Trans::kNo;
            if (plain) {
              ((*g).*do_gemm)(tra, trb, s.m, s.n, s.k, alpha, a_g.data(), lda, b_g.data(), ldb, beta, c_g.data(), ldc);
            } else if (epi == rg::Epilogue::kBiasAct) {
              g->gemm_bias_activation(alpha, a_g, tra, b_g, trb, bias_g, act, c_g);
            } else {
              g->gemm_activation_backward(alpha, a_g, tra, b_g, trb, c_g, y_g, act);
            }
            rg::Outputs o;
            o.epilogue = epi;
            o.alpha = alpha;
            o.beta = beta;
            o.c = want.data();
            o.ldc = ldc;
            o.bias = bias.data();
            o.y = y.data();
            o.act = act;
            rg::emulate(ta, tb, s.m, s.n, s.k, a.data(), lda, b.data(), ldb, rg::split_for(s.m, s.n, s.k, sms), o);
            expect_same_bits(c_g.to_vector(), want,
                             str("m,n,k", s.m, s.n, s.k) + (ta ? " Aᵀ" : " A") + (tb ? " Bᵀ" : " B") + " epilogue " +
                                 std::to_string(static_cast<int>(epi)) + " " + to_string(act));
          }
  const std::vector<std::string> choices = g->gemm_kernel_choices();
  ASSERT_FALSE(choices.empty());
  for (const std::string& line : choices) {
    std::cout << "  " << line << "\n";
    EXPECT_THAT(line, HasSubstr("forced by CUDL_GEMM_KERNELS=cudl: cudl's kernel"));
  }
}

// gemm_sum_rows: the product and the sums of B's rows, and of A's where A is stored K×M (one
// slice, so each sum is one block's), all the emulation's bits, with beta and sum_beta each 0 and
// not.
TEST_F(CudaRowsGemm, SumsBsRowsAsItStreamsThemWithTheEmulationsBits) {
  auto g = backend_in_mode("cudl");
  const int sms = multiprocessors();
  uint64_t seed = 600;
  for (const Shape3& s : {Shape3{784, 800, 64}, Shape3{800, 10, 64}, Shape3{7, 5, 3}, Shape3{70, 33, 300}})
    for (bool ta : {false, true})
      for (const auto& [beta, sum_beta] : {std::pair{0.0f, 1.0f}, std::pair{0.5f, 0.0f}}) {
        const std::vector<float> a = uniform_values(++seed, s.m * s.k, -1.0f, 1.0f);
        const std::vector<float> b = uniform_values(++seed, s.k * s.n, -1.0f, 1.0f);
        std::vector<float> want = uniform_values(++seed, s.m * s.n, -1.0f, 1.0f);
        std::vector<float> want_sums = uniform_values(++seed, s.n, -1.0f, 1.0f);
        std::vector<float> want_a_sums = uniform_values(++seed, s.m, -1.0f, 1.0f);  // with Aᵀ only
        const Tensor a_g = Tensor::from_host(a, ta ? cudl::Shape{s.k, s.m} : cudl::Shape{s.m, s.k}, *g);
        const Tensor b_g = Tensor::from_host(b, {s.k, s.n}, *g);
        Tensor c_g = Tensor::from_host(want, {s.m, s.n}, *g), sums_g = Tensor::from_host(want_sums, {s.n}, *g);
        Tensor a_sums_g = Tensor::from_host(want_a_sums, {s.m}, *g);
        g->gemm_sum_rows(-0.75f, a_g, ta ? Trans::kYes : Trans::kNo, b_g, beta, c_g, -1.0f, sum_beta, sums_g,
                         ta ? &a_sums_g : nullptr);
        rg::Outputs o;
        o.alpha = -0.75f;
        o.beta = beta;
        o.c = want.data();
        o.ldc = s.n;
        o.sums = want_sums.data();
        o.a_sums = ta ? want_a_sums.data() : nullptr;
        o.sum_alpha = -1.0f;
        o.sum_beta = sum_beta;
        rg::emulate(ta, false, s.m, s.n, s.k, a.data(), ta ? s.m : s.k, b.data(), s.n,
                    rg::split_for(s.m, s.n, s.k, sms, /*one_slice=*/true), o);
        const std::string what = str("gemm_sum_rows m,n,k", s.m, s.n, s.k) + (ta ? " Aᵀ" : " A") + " beta " +
                                 std::to_string(beta) + " sum_beta " + std::to_string(sum_beta);
        expect_same_bits(c_g.to_vector(), want, what);
        expect_same_bits(sums_g.to_vector(), want_sums, what + ", sums");
        expect_same_bits(a_sums_g.to_vector(), want_a_sums, what + ", A's sums");
      }
}

// A shape first seen while capturing stays with the library, captured and eager alike (the choice
// needs the host); decided shapes are captured as chosen.
TEST_F(CudaRowsGemm, AShapeFirstSeenWhileCapturingStaysWithTheLibrary) {
  auto g = backend_in_mode("cudl");
  const Tensor x = Tensor::from_host(uniform_values(4, 64 * 800, -1.0f, 1.0f), {64, 800}, *g);
  const Tensor w = Tensor::from_host(uniform_values(5, 800 * 10, -1.0f, 1.0f), {800, 10}, *g);
  const Tensor bias = Tensor::from_host(uniform_values(6, 10, -1.0f, 1.0f), {10}, *g);
  Tensor captured({64, 10}, *g), eager({64, 10}, *g);
  g->begin_capture();
  g->gemm_bias_activation(1.0f, x, Trans::kNo, w, Trans::kNo, bias, Activation::kIdentity, captured);
  auto graph = g->end_capture();
  graph->replay();
  g->gemm_bias_activation(1.0f, x, Trans::kNo, w, Trans::kNo, bias, Activation::kIdentity, eager);
  expect_same_bits(eager.to_vector(), captured.to_vector(), "eager after a capture");
  const std::vector<std::string> choices = g->gemm_kernel_choices();
  ASSERT_EQ(choices.size(), 1u);
  EXPECT_THAT(choices[0], HasSubstr("first seen while capturing: the library's"));
}

TEST_F(CudaRowsGemm, CapturedCallsReplayToTheEagerBits) {
  auto g = backend_in_mode("cudl");
  const int64_t m = 64, n = 800, k = 784;  // ten slices on an H100 or H200: tickets in use
  const Tensor x = Tensor::from_host(uniform_values(1, m * k, -1.0f, 1.0f), {m, k}, *g);
  const Tensor w = Tensor::from_host(uniform_values(2, k * n, -1.0f, 1.0f), {k, n}, *g);
  const Tensor bias = Tensor::from_host(uniform_values(3, n, -1.0f, 1.0f), {n}, *g);
  Tensor eager({m, n}, *g), replayed({m, n}, *g);
  g->gemm_bias_activation(1.0f, x, Trans::kNo, w, Trans::kNo, bias, Activation::kRelu, eager);
  const std::vector<float> want = eager.to_vector();
  g->begin_capture();
  g->gemm_bias_activation(1.0f, x, Trans::kNo, w, Trans::kNo, bias, Activation::kRelu, replayed);
  auto graph = g->end_capture();
  for (int i = 0; i < 3; ++i) {
    g->fill(replayed, kNaN);
    graph->replay();
    expect_same_bits(replayed.to_vector(), want, "replay " + std::to_string(i));
  }
}

TEST_F(CudaRowsGemm, ChoosesTheFasterPerShapeAndAgreesWithTheCpu) {
  auto g = backend_in_mode("auto");
  uint64_t seed = 900;
  for (const Shape3& s : {Shape3{64, 800, 784}, Shape3{64, 800, 800}, Shape3{64, 10, 800}}) {
    const std::vector<float> a = uniform_values(++seed, s.m * s.k, -1.0f, 1.0f);
    const std::vector<float> b = uniform_values(++seed, s.k * s.n, -1.0f, 1.0f);
    const std::vector<float> bias = uniform_values(++seed, s.n, -1.0f, 1.0f);
    Tensor c_cpu({s.m, s.n}, cpu), c_gpu({s.m, s.n}, *g);
    cpu.gemm_bias_activation(1.0f, Tensor::from_host(a, {s.m, s.k}, cpu), Trans::kNo,
                             Tensor::from_host(b, {s.k, s.n}, cpu), Trans::kNo, Tensor::from_host(bias, {s.n}, cpu),
                             Activation::kRelu, c_cpu);
    g->gemm_bias_activation(1.0f, Tensor::from_host(a, {s.m, s.k}, *g), Trans::kNo,
                            Tensor::from_host(b, {s.k, s.n}, *g), Trans::kNo, Tensor::from_host(bias, {s.n}, *g),
                            Activation::kRelu, c_gpu);
    // Sums of k products of magnitude ≤ 1 in another order: |error| ≤ ~k·2⁻²⁴ per unit of sum.
    expect_all_close(c_gpu.to_vector(), c_cpu.to_vector(), 1e-4, 1e-4, str("auto m,n,k", s.m, s.n, s.k));
  }
  // A weight gradient's shape (k is the batch) with its bias gradient: little work, served though
  // m > 256.
  const int64_t d = 784, h = 800, batch = 64;
  const std::vector<float> x = uniform_values(++seed, batch * d, -1.0f, 1.0f);
  const std::vector<float> dz = uniform_values(++seed, batch * h, -1.0f, 1.0f);
  Tensor gw_cpu({d, h}, cpu), gw_gpu({d, h}, *g), gb_cpu({h}, cpu), gb_gpu({h}, *g);
  cpu.gemm_sum_rows(1.0f, Tensor::from_host(x, {batch, d}, cpu), Trans::kYes, Tensor::from_host(dz, {batch, h}, cpu),
                    0.0f, gw_cpu, 1.0f, 0.0f, gb_cpu);
  g->gemm_sum_rows(1.0f, Tensor::from_host(x, {batch, d}, *g), Trans::kYes, Tensor::from_host(dz, {batch, h}, *g),
                   0.0f, gw_gpu, 1.0f, 0.0f, gb_gpu);
  expect_all_close(gw_gpu.to_vector(), gw_cpu.to_vector(), 1e-5, 1e-5, "auto weight gradient 784x800x64");
  expect_all_close(gb_gpu.to_vector(), gb_cpu.to_vector(), 1e-5, 1e-5, "auto bias gradient 800");
  const std::vector<std::string> choices = g->gemm_kernel_choices();
  ASSERT_EQ(choices.size(), 4u);
  for (const std::string& line : choices) {
    std::cout << "  " << line << "\n";
    EXPECT_THAT(line, HasSubstr(" us; library "));
  }
}

// BackendOptions::gpu_gemm_kernels chooses as the variable does, and the variable, where set, wins.
TEST_F(CudaRowsGemm, TheBackendsOptionChoosesTheKernelsUnlessTheVariableIsSet) {
  const SavedVariable saved;
  auto product = [](CudaBackend& g) {  // one product our kernel serves
    const Tensor a = Tensor::from_host(uniform_values(1, 64 * 800, -1.0f, 1.0f), {64, 800}, g);
    const Tensor b = Tensor::from_host(uniform_values(2, 800 * 800, -1.0f, 1.0f), {800, 800}, g);
    Tensor c({64, 800}, g);
    g.gemm(1.0f, a, Trans::kNo, b, Trans::kNo, 0.0f, c);
    return g.gemm_kernel_choices();
  };
  unsetenv("CUDL_GEMM_KERNELS");
  BackendOptions options;
  options.gpu_gemm_kernels = GpuGemmKernels::kCudl;
  CudaBackend forced(options);
  EXPECT_THAT(forced.describe(), HasSubstr(", gemm kernels cudl"));
  const std::vector<std::string> lines = product(forced);
  ASSERT_FALSE(lines.empty());
  for (const std::string& line : lines)
    EXPECT_THAT(line, HasSubstr("forced by BackendOptions::gpu_gemm_kernels = cudl: cudl's kernel"));
  options.gpu_gemm_kernels = GpuGemmKernels::kLibrary;
  CudaBackend library(options);
  EXPECT_THAT(library.describe(), HasSubstr(", gemm kernels library"));
  EXPECT_TRUE(product(library).empty()) << "the library's mode decides nothing";
  setenv("CUDL_GEMM_KERNELS", "library", 1);
  options.gpu_gemm_kernels = GpuGemmKernels::kCudl;
  CudaBackend overridden(options);
  EXPECT_THAT(overridden.describe(), HasSubstr(", gemm kernels library"));
  EXPECT_TRUE(product(overridden).empty()) << "CUDL_GEMM_KERNELS=library wins over the option";
}

TEST_F(CudaRowsGemm, RejectsAnUnknownMode) {
  const std::string message = error_of([] { backend_in_mode("fastest"); });
  EXPECT_THAT(message, HasSubstr("CUDL_GEMM_KERNELS must be auto, cudl or library, not \"fastest\""));
}

}  // namespace

// CPU-vs-CUDA parity, part 1: memory, fills, GEMM, activations, reductions, updates and errors
// (the fixture and the tolerances: cuda_parity.hpp).
#include "cuda_parity.hpp"

namespace {

TEST_F(CudaParity, DescribesTheGpuAndItsPrecision) {
  EXPECT_EQ(gpu().device(), Device::kCuda);
  EXPECT_EQ(gpu().precision(), Precision::kFp32);
  EXPECT_THAT(gpu().describe(), HasSubstr("cuda: "));
  EXPECT_THAT(gpu().describe(), HasSubstr("fp32"));
}

TEST_F(CudaParity, Fill) {
  for (int64_t n : kSizes) {
    Pair x = poisoned({n});
    cpu.fill(x.cpu, 2.5f);
    gpu().fill(x.gpu, 2.5f);
    expect_match(x, kExact, str("fill n", n));
  }
}

// A view at an odd offset (not 16-byte aligned) is filled up to its ends and not one past them.
TEST_F(CudaParity, FillWritesExactlyAnUnalignedView) {
  for (int64_t n : kSizes) {
    Tensor whole({n + 2}, gpu());
    gpu().fill(whole, kNaN);
    Tensor view = whole.slice(1, {n});
    gpu().fill(view, -3.0f);
    const std::vector<float> v = whole.to_vector();
    EXPECT_TRUE(std::isnan(v.front()) && std::isnan(v.back())) << "fill wrote outside a view of " << n;
    EXPECT_EQ(std::count(v.begin() + 1, v.end() - 1, -3.0f), n) << "fill of a view of " << n;
  }
}

TEST_F(CudaParity, FillNormalDrawsTheSameNumbers) {
  for (int64_t n : kSizes) {
    Pair x = poisoned({n});
    cpu.fill_normal(x.cpu, 2014, 1.0f, 0.5f);
    gpu().fill_normal(x.gpu, 2014, 1.0f, 0.5f);
    expect_match(x, kUlps, str("fill_normal n", n));
  }
  // A seed using both 32-bit halves of the key; a view at an odd offset draws from index 0.
  const int64_t n = 100003;
  Pair x = poisoned({n + 1});
  Tensor cpu_view = x.cpu.slice(1, {n}), gpu_view = x.gpu.slice(1, {n});
  cpu.fill_normal(cpu_view, 0x0123456789ABCDEFull, 0.0f, 1.0f);
  gpu().fill_normal(gpu_view, 0x0123456789ABCDEFull, 0.0f, 1.0f);
  EXPECT_TRUE(std::isnan(x.gpu.to_vector()[0])) << "fill_normal wrote before its view";
  expect_all_close(gpu_view.to_vector(), cpu_view.to_vector(), kUlps.abs, kUlps.rel, "fill_normal, 64-bit seed");
}

// ---- gemm ----

struct GemmShape {
  int64_t m, n, k;
};
const GemmShape kGemmShapes[] = {
    {1, 1, 1},
    {7, 5, 3},
    {1, 257, 33},
    {255, 1, 129},
    {33, 65, 1025},
    {129, 257, 31},
    // 784-800-800-10 at batch 64 (forward, weight gradients, input gradients) and predict's 1000.
    {64, 800, 784},
    {64, 800, 800},
    {64, 10, 800},
    {784, 800, 64},
    {800, 10, 64},
    {64, 800, 10},
    {1000, 800, 784}};
struct GemmScale {
  float alpha, beta;
};
// beta = 0 runs over a NaN-filled C (which must not be read); the others over a random C.
const GemmScale kGemmScales[] = {{1.0f, 0.0f}, {-0.75f, 1.0f}, {1.5f, -0.5f}};

// C(m×n) = alpha·op(A)·op(B) + beta·C on the CPU and on `g` from the same random A, B, C in [-1, 1].
struct GemmResult {
  std::vector<float> gpu, cpu;
  std::string what;
};
GemmResult run_gemm(CpuBackend& cpu, CudaBackend& g, const GemmShape& s, Trans ta, Trans tb, const GemmScale& sc,
                    uint64_t seed) {
  const Shape a_shape = ta == Trans::kNo ? Shape{s.m, s.k} : Shape{s.k, s.m};
  const Shape b_shape = tb == Trans::kNo ? Shape{s.k, s.n} : Shape{s.n, s.k};
  const std::vector<float> av = uniform_values(seed, s.m * s.k, -1.0f, 1.0f);
  const std::vector<float> bv = uniform_values(seed + 1, s.k * s.n, -1.0f, 1.0f);
  const std::vector<float> cv = sc.beta == 0.0f ? std::vector<float>(static_cast<size_t>(s.m * s.n), kNaN)
                                                : uniform_values(seed + 2, s.m * s.n, -1.0f, 1.0f);
  Tensor a_cpu = Tensor::from_host(av, a_shape, cpu), b_cpu = Tensor::from_host(bv, b_shape, cpu);
  Tensor c_cpu = Tensor::from_host(cv, {s.m, s.n}, cpu);
  Tensor a_gpu = Tensor::from_host(av, a_shape, g), b_gpu = Tensor::from_host(bv, b_shape, g);
  Tensor c_gpu = Tensor::from_host(cv, {s.m, s.n}, g);
  cpu.gemm(sc.alpha, a_cpu, ta, b_cpu, tb, sc.beta, c_cpu);
  g.gemm(sc.alpha, a_gpu, ta, b_gpu, tb, sc.beta, c_gpu);
  std::string what = str("gemm m,n,k", s.m, s.n, s.k) + (ta == Trans::kYes ? " Aᵀ" : " A") +
                     (tb == Trans::kYes ? " Bᵀ" : " B") + " alpha " + std::to_string(sc.alpha) + " beta " +
                     std::to_string(sc.beta);
  return {c_gpu.to_vector(), c_cpu.to_vector(), what};
}

// Strict fp32 on both sides; only the summation order differs, an error that grows like
// sqrt(k)·ulp for random signs. Allowing 1e-4·sqrt(k) (with |op(A)·op(B)| ~ sqrt(k)/3) is some
// thousand times that, yet a tf32 product (~5e-4 relative) or a wrong operand fails it.
TEST_F(CudaParity, GemmFp32AllTransposes) {
  uint64_t seed = 100;
  for (const GemmShape& s : kGemmShapes)
    for (Trans ta : {Trans::kNo, Trans::kYes})
      for (Trans tb : {Trans::kNo, Trans::kYes})
        for (const GemmScale& sc : kGemmScales) {
          const GemmResult r = run_gemm(cpu, gpu(), s, ta, tb, sc, seed += 3);
          const double abs = 1e-4 * (std::fabs(sc.alpha) * std::sqrt(static_cast<double>(s.k)) + std::fabs(sc.beta));
          expect_all_close(r.gpu, r.cpu, abs, 1e-4, r.what);
        }
}

// TF32 rounds both operands to a 10-bit mantissa (relative error ≤ 2^-11 each), so each product
// is off by ~1e-3 at worst and the error of a sum of k random-sign products, relative to the
// result, is ~5e-4: compared as a whole, ‖gpu − cpu‖ ≤ 1e-2·‖cpu‖. A 1×1 product can cancel to
// almost nothing against beta·C, so shapes with fewer than 16 results are left to the fp32 test.
TEST_F(CudaParity, GemmTf32AllTransposes) {
  BackendOptions options;
  options.precision = Precision::kTf32;
  CudaBackend tf32(options);
  EXPECT_EQ(tf32.precision(), Precision::kTf32);
  EXPECT_THAT(tf32.describe(), HasSubstr("tf32"));
  uint64_t seed = 500;
  for (const GemmShape& s : kGemmShapes) {
    if (s.m * s.n < 16) continue;
    for (Trans ta : {Trans::kNo, Trans::kYes})
      for (Trans tb : {Trans::kNo, Trans::kYes})
        for (const GemmScale& sc : kGemmScales) {
          const GemmResult r = run_gemm(cpu, tf32, s, ta, tb, sc, seed += 3);
          double diff2 = 0.0, ref2 = 0.0;
          bool finite = true;
          for (size_t i = 0; i < r.cpu.size(); ++i) {
            finite = finite && std::isfinite(r.gpu[i]);
            diff2 += (static_cast<double>(r.gpu[i]) - r.cpu[i]) * (static_cast<double>(r.gpu[i]) - r.cpu[i]);
            ref2 += static_cast<double>(r.cpu[i]) * r.cpu[i];
          }
          EXPECT_TRUE(finite) << r.what << ": non-finite result (unwritten C?)";
          EXPECT_LE(std::sqrt(diff2), 1e-2 * std::sqrt(ref2)) << r.what;
        }
  }
}

// k = 0: an empty sum, so C = beta·C; beta = 0 writes exact zeros without reading C (NaN there is
// overwritten). An A of m×0 (or a B of 0×n) has a zero row stride, which cuBLAS rejects: the
// backend must not hand it over. beta·C is one multiplication on either side: exact.
const GemmScale kEmptySumScales[] = {{1.0f, 0.0f}, {1.5f, 0.5f}, {-0.75f, 1.0f}, {2.0f, -2.0f}};

TEST_F(CudaParity, GemmWithKZeroScalesC) {
  const GemmShape shapes[] = {{1, 1, 0}, {7, 5, 0}, {64, 800, 0}, {257, 255, 0}, {1000, 1500, 0}};
  uint64_t seed = 700;
  for (const GemmShape& s : shapes)
    for (Trans ta : {Trans::kNo, Trans::kYes})
      for (Trans tb : {Trans::kNo, Trans::kYes})
        for (const GemmScale& sc : kEmptySumScales) {
          const GemmResult r = run_gemm(cpu, gpu(), s, ta, tb, sc, seed += 3);
          expect_all_close(r.gpu, r.cpu, 0.0, 0.0, r.what);
          if (sc.beta == 0.0f) {
            EXPECT_EQ(std::count(r.gpu.begin(), r.gpu.end(), 0.0f), s.m * s.n) << r.what << ": not all zeros";
          }
        }
}

// k = 0 on an m×n window of an m×ldc buffer (ldc > n): the window becomes beta·C (zeros for
// beta = 0 over NaN), and the columns past n, finite values distinct from any result, are left
// alone. A and B are null: with k = 0 neither may be read.
TEST_F(CudaParity, GemmWithKZeroKeepsColumnsPastNOfAStridedC) {
  struct Strided {
    int64_t m, n, ldc;
  };
  // 1000×1500 needs several grid-stride passes.
  const Strided shapes[] = {{1, 1, 2}, {7, 5, 9}, {37, 5, 64}, {64, 800, 801}, {1000, 1500, 1503}};
  constexpr auto do_gemm = DoGemm::pointer();
  uint64_t seed = 800;
  for (const Strided& s : shapes)
    for (const GemmScale& sc : kEmptySumScales) {
      const std::string what = str("gemm k 0, m,n,ldc", s.m, s.n, s.ldc) + " alpha " + std::to_string(sc.alpha) +
                               " beta " + std::to_string(sc.beta);
      // The window: random in [-1, 1], or NaN for beta = 0; the columns past n: in [2, 3].
      std::vector<float> cv = uniform_values(++seed, s.m * s.ldc, 2.0f, 3.0f);
      const std::vector<float> window = uniform_values(++seed, s.m * s.n, -1.0f, 1.0f);
      std::vector<float> expected = cv;
      for (int64_t i = 0; i < s.m; ++i)
        for (int64_t j = 0; j < s.n; ++j) {
          const size_t at = static_cast<size_t>(i * s.ldc + j);
          cv[at] = sc.beta == 0.0f ? kNaN : window[static_cast<size_t>(i * s.n + j)];
          expected[at] = sc.beta == 0.0f ? 0.0f : sc.beta * cv[at];
        }
      Pair c = both(cv, {s.m, s.ldc});
      for (Trans ta : {Trans::kNo, Trans::kYes}) {
        Tensor c_gpu = Tensor::from_host(cv, {s.m, s.ldc}, gpu());
        (gpu().*do_gemm)(ta, Trans::kNo, s.m, s.n, 0, sc.alpha, nullptr, 0, nullptr, 0, sc.beta, c_gpu.data(), s.ldc);
        expect_all_close(c_gpu.to_vector(), expected, 0.0, 0.0, what + (ta == Trans::kYes ? " Aᵀ" : " A"));
      }
      (cpu.*do_gemm)(Trans::kNo, Trans::kNo, s.m, s.n, 0, sc.alpha, nullptr, 0, nullptr, 0, sc.beta, c.cpu.data(),
                     s.ldc);
      (gpu().*do_gemm)(Trans::kNo, Trans::kNo, s.m, s.n, 0, sc.alpha, nullptr, 0, nullptr, 0, sc.beta, c.gpu.data(),
                       s.ldc);
      expect_match(c, kExact, what + " (against CpuBackend)");
    }
}

// ---- activations ----

const Activation kActivations[] = {Activation::kIdentity, Activation::kRelu, Activation::kSigmoid};
// Identity and ReLU are an add and a comparison: exact. The sigmoid calls expf.
Tol activation_tol(Activation act) { return act == Activation::kSigmoid ? kUlps : kExact; }

TEST_F(CudaParity, BiasActivation) {
  const int64_t shapes[][2] = {{1, 1}, {7, 3}, {64, 800}, {64, 10}, {257, 255}, {1000, 3001}};
  uint64_t seed = 1000;
  for (const auto& s : shapes)
    for (Activation act : kActivations) {
      Pair y = both(uniform_values(++seed, s[0] * s[1], -4.0f, 4.0f), {s[0], s[1]});
      Pair bias = both(uniform_values(++seed, s[1], -1.0f, 1.0f), {s[1]});
      cpu.bias_activation(y.cpu, bias.cpu, act);
      gpu().bias_activation(y.gpu, bias.gpu, act);
      expect_match(y, activation_tol(act), str("bias_activation", s[0], s[1]) + " " + to_string(act));
    }
}

TEST_F(CudaParity, Activation) {
  uint64_t seed = 2000;
  for (int64_t n : kSizes)
    for (Activation act : kActivations) {
      Pair y = both(uniform_values(++seed, n, -8.0f, 8.0f), {n});
      cpu.activation(y.cpu, act);
      gpu().activation(y.gpu, act);
      expect_match(y, activation_tol(act), str("activation n", n) + " " + to_string(act));
    }
}

TEST_F(CudaParity, ActivationBackward) {
  uint64_t seed = 3000;
  for (int64_t n : kSizes)
    for (Activation act : kActivations) {
      // A forward output of act: ReLU outputs are ≥ 0 with exact zeros (about half), sigmoid's in (0, 1).
      std::vector<float> yv = uniform_values(++seed, n, -1.0f, 1.0f);
      for (float& v : yv)
        v = act == Activation::kRelu ? std::max(v, 0.0f) : act == Activation::kSigmoid ? 0.5f + 0.5f * v : v;
      const Pair y = both(yv, {n});
      Pair dy = both(uniform_values(++seed, n, -2.0f, 2.0f), {n});
      cpu.activation_backward(dy.cpu, y.cpu, act);
      gpu().activation_backward(dy.gpu, y.gpu, act);
      expect_match(dy, activation_tol(act), str("activation_backward n", n) + " " + to_string(act));
    }
}

// ---- reductions ----

// Inputs are multiples of 1/64 (quantized_values) and alpha, beta powers of two, so every
// partial sum and the final alpha·S + beta·out (one rounding) are the same in any order: exact.
// The GPU's tiles are 32 columns by up to 16 row slices, one pass up to 512 rows and two passes
// (chunks of rows, then their sums) above: so one row, columns short of a tile or one past it, rows
// not a multiple of the slices, either side of 512 rows, and tall inputs of one and many tiles.
TEST_F(CudaParity, SumRows) {
  const int64_t shapes[][2] = {{1, 1},    {7, 5},     {1, 800},   {64, 800},  {64, 10},
                               {64, 33},  {63, 31},   {3, 97},    {257, 255}, {512, 65},
                               {513, 33}, {1000, 1},  {4099, 800}, {100003, 3}, {2, 1500001}};
  const GemmScale scales[] = {{1.0f, 0.0f}, {0.25f, 0.0f}, {-2.0f, 0.5f}, {1.0f, 1.0f}};
  uint64_t seed = 4000;
  for (const auto& s : shapes)
    for (const GemmScale& sc : scales) {
      const Pair x = both(quantized_values(++seed, s[0] * s[1]), {s[0], s[1]});
      Pair out = sc.beta == 0.0f ? poisoned({s[1]}) : both(quantized_values(++seed, s[1]), {s[1]});
      cpu.sum_rows(sc.alpha, x.cpu, sc.beta, out.cpu);
      gpu().sum_rows(sc.alpha, x.gpu, sc.beta, out.gpu);
      expect_match(
          out, kExact,
          str("sum_rows", s[0], s[1]) + " alpha " + std::to_string(sc.alpha) + " beta " + std::to_string(sc.beta));
    }
}

// No atomics: on random data (where the order of the sums matters) two runs give the same bits, in
// one pass and in two.
TEST_F(CudaParity, SumRowsIsDeterministic) {
  const int64_t shapes[][2] = {{64, 800}, {4099, 800}, {100003, 3}};
  uint64_t seed = 4500;
  for (const auto& s : shapes) {
    const Tensor x = Tensor::from_host(uniform_values(++seed, s[0] * s[1], -1.0f, 1.0f), {s[0], s[1]}, gpu());
    Tensor first({s[1]}, gpu()), second({s[1]}, gpu());
    gpu().sum_rows(1.0f, x, 0.0f, first);
    gpu().sum_rows(1.0f, x, 0.0f, second);
    EXPECT_EQ(first.to_vector(), second.to_vector()) << str("sum_rows", s[0], s[1]);
  }
}

// ---- softmax cross-entropy ----

// Per element the GPU computes the softmax in float, the CPU in double: dlogits differ by a few

// Σ (a − b)² in double: the CPU's within double rounding (another summation order), and the same
// bits at every call (fixed grid, no atomics).
TEST_F(CudaParity, SquaredDistance) {
  for (int64_t n : kSizes) {
    const Pair a = both(uniform_values(600 + n, n, -2.0f, 2.0f), {n});
    const Pair b = both(uniform_values(700 + n, n, -2.0f, 2.0f), {n});
    const double want = cpu.squared_distance(a.cpu, b.cpu);
    const double got = gpu().squared_distance(a.gpu, b.gpu);
    EXPECT_NEAR(got, want, 1e-12 * want) << n << " elements";
    EXPECT_EQ(gpu().squared_distance(a.gpu, b.gpu), got) << n << " elements, a second call";
  }
  const Tensor empty({0}, gpu());
  EXPECT_EQ(gpu().squared_distance(empty, empty), 0.0);
}

TEST_F(CudaParity, Axpy) {
  uint64_t seed = 8000;
  for (int64_t n : kSizes)
    for (float alpha : {0.3f, -1.5f}) {
      const Pair x = both(uniform_values(++seed, n, -1.0f, 1.0f), {n});
      Pair y = both(uniform_values(++seed, n, -1.0f, 1.0f), {n});
      cpu.axpy(alpha, x.cpu, y.cpu);
      gpu().axpy(alpha, x.gpu, y.gpu);
      expect_match(y, kUlps, str("axpy n", n) + " alpha " + std::to_string(alpha));
    }
}

// The decayed prefix ends anywhere, odd positions included; l2 is large so that applying decay to
// one element too many or too few is far outside the tolerance.
TEST_F(CudaParity, NesterovStepSplitsDecayedPrefix) {
  struct Case {
    int64_t n;
    std::vector<int64_t> decayed;
    float l2;
  };
  std::vector<Case> cases;
  for (int64_t n : kSizes) cases.push_back({n, {0, 1, (n / 2) | 1, n - 1, n}, 0.25f});
  cases.push_back({1276810, {1275200}, 1e-4f});  // 784-800-800-10: 1,275,200 weights, then 1,610 biases
  uint64_t seed = 9000;
  for (const Case& c : cases) {
    const std::vector<float> wv = uniform_values(++seed, c.n, -1.0f, 1.0f);
    const std::vector<float> vv = uniform_values(++seed, c.n, -1.0f, 1.0f);
    const std::vector<float> gv = uniform_values(++seed, c.n, -4.0f, 4.0f);
    for (int64_t decayed : c.decayed) {
      if (decayed < 0 || decayed > c.n) continue;
      const std::string what = str("nesterov_step n", c.n) + " decayed " + std::to_string(decayed);
      Pair w = both(wv, {c.n}), v = both(vv, {c.n});
      const Pair g = both(gv, {c.n}), lr = both({0.3f}, {1});
      const NesterovArgs args{0.9f, 1.0f / 64, c.l2, decayed};
      cpu.nesterov_step(w.cpu, v.cpu, g.cpu, lr.cpu, args);
      gpu().nesterov_step(w.gpu, v.gpu, g.gpu, lr.gpu, args);
      expect_match(w, kUlps, what + " w");
      expect_match(v, kUlps, what + " v");
    }
  }
}

// The learning rate is read from its tensor when the kernel runs: changing the tensor between
// two queued steps changes the second.
TEST_F(CudaParity, NesterovStepReadsTheLearningRateTensor) {
  const int64_t n = 257;
  Pair w = both(uniform_values(9100, n, -1.0f, 1.0f), {n}), v = both(uniform_values(9101, n, -1.0f, 1.0f), {n});
  const Pair g = both(uniform_values(9102, n, -4.0f, 4.0f), {n});
  Pair lr = both({0.3f}, {1});
  const NesterovArgs args{0.9f, 1.0f / 64, 0.25f, n / 2};
  for (float rate : {0.3f, 0.0f, 1.5f}) {
    lr.cpu.copy_from(std::vector<float>{rate});
    lr.gpu.copy_from(std::vector<float>{rate});
    cpu.nesterov_step(w.cpu, v.cpu, g.cpu, lr.cpu, args);
    gpu().nesterov_step(w.gpu, v.gpu, g.gpu, lr.gpu, args);
  }
  expect_match(w, kUlps, "nesterov_step w after three rates");
  expect_match(v, kUlps, "nesterov_step v after three rates");
}

// Three steps of each SGD form, the decayed prefix ending at an odd position, the step counter
// advanced between them as Sgd does. The GPU's momentum buffer starts as NaN: the first step
// (counter 0) must set it to the gradient without reading it.
TEST_F(CudaParity, SgdStepFollowsTheCounter) {
  struct Form {
    const char* name;
    SgdArgs args;
  };
  const Form forms[] = {{"plain", {0.0f, 0.0f, false, 0.1f, 0}},
                        {"momentum dampening", {0.9f, 0.25f, false, 0.1f, 0}},
                        {"nesterov", {0.9f, 0.0f, true, 0.25f, 0}}};
  uint64_t seed = 9200;
  for (int64_t n : kSizes) {
    for (const Form& f : forms) {
      const std::string what = str("sgd_step n", n) + " " + f.name;
      SgdArgs args = f.args;
      args.decayed = std::min<int64_t>((n / 2) | 1, n);
      Pair w = both(uniform_values(++seed, n, -1.0f, 1.0f), {n});
      Pair buf = args.momentum != 0.0f ? poisoned({n}) : Pair{};
      const Pair lr = both({0.05f}, {1});
      Pair step{make_counter(cpu), make_counter(gpu())};
      for (int s = 0; s < 3; ++s) {
        const Pair g = both(uniform_values(++seed, n, -4.0f, 4.0f), {n});
        cpu.sgd_step(w.cpu, buf.cpu, g.cpu, lr.cpu, step.cpu, args);
        gpu().sgd_step(w.gpu, buf.gpu, g.gpu, lr.gpu, step.gpu, args);
        cpu.add_to_counter(step.cpu, 1);
        gpu().add_to_counter(step.gpu, 1);
      }
      expect_match(w, kUlps, what + " w");
      if (args.momentum != 0.0f) expect_match(buf, kUlps, what + " buf");
    }
  }
}

// Three steps of each Adam form (the counter advanced before each, as Adam does), then one at
// step 10⁶ (bias corrections near 1) with another learning rate; amsgrad's maximum included.
TEST_F(CudaParity, AdamStepFollowsTheCounter) {
  struct Form {
    const char* name;
    AdamArgs args;
  };
  const Form forms[] = {{"adam", {0.9f, 0.999f, 1e-8f, 0.0f, false, false, 0}},
                        {"adam l2 amsgrad", {0.8f, 0.99f, 1e-6f, 0.1f, false, true, 0}},
                        {"adamw", {0.9f, 0.999f, 1e-8f, 0.25f, true, false, 0}},
                        {"adamw amsgrad", {0.9f, 0.95f, 1e-8f, 0.5f, true, true, 0}}};
  uint64_t seed = 9300;
  for (int64_t n : kSizes) {
    for (const Form& f : forms) {
      const std::string what = str("adam_step n", n) + " " + f.name;
      AdamArgs args = f.args;
      args.decayed = std::min<int64_t>((n / 2) | 1, n);
      Pair w = both(uniform_values(++seed, n, -1.0f, 1.0f), {n});
      Pair m = both(std::vector<float>(n, 0.0f), {n}), v = both(std::vector<float>(n, 0.0f), {n});
      Pair vmax = args.amsgrad ? both(std::vector<float>(n, 0.0f), {n}) : Pair{};
      Pair lr = both({0.01f}, {1});
      Pair step{make_counter(cpu), make_counter(gpu())};
      for (int s = 0; s < 4; ++s) {
        if (s == 3) {
          cpu.set_counter(step.cpu, 999999);
          gpu().set_counter(step.gpu, 999999);
          lr.cpu.copy_from(std::vector<float>{0.003f});
          lr.gpu.copy_from(std::vector<float>{0.003f});
        }
        const Pair g = both(uniform_values(++seed, n, -4.0f, 4.0f), {n});
        cpu.add_to_counter(step.cpu, 1);
        gpu().add_to_counter(step.gpu, 1);
        cpu.adam_step(w.cpu, m.cpu, v.cpu, vmax.cpu, g.cpu, lr.cpu, step.cpu, args);
        gpu().adam_step(w.gpu, m.gpu, v.gpu, vmax.gpu, g.gpu, lr.gpu, step.gpu, args);
      }
      expect_match(w, kUlps, what + " w");
      expect_match(m, kUlps, what + " m");
      expect_match(v, kUlps, what + " v");
      if (args.amsgrad) expect_match(vmax, kUlps, what + " vmax");
    }
  }
}

// ---- errors ----

TEST_F(CudaParity, RejectsATensorOfAnotherBackendNamingBoth) {
  Tensor on_cpu({3}, cpu);
  std::string message = error_of([&] { gpu().fill(on_cpu, 1.0f); });
  EXPECT_THAT(message, HasSubstr(cpu.describe()));
  EXPECT_THAT(message, HasSubstr(gpu().describe()));
  Tensor on_gpu({3}, gpu());
  message = error_of([&] { cpu.fill(on_gpu, 1.0f); });
  EXPECT_THAT(message, HasSubstr(cpu.describe()));
  EXPECT_THAT(message, HasSubstr(gpu().describe()));
  Tensor a({2, 2}, gpu()), b({2, 2}, cpu), c({2, 2}, gpu());
  message = error_of([&] { gpu().gemm(1.0f, a, Trans::kNo, b, Trans::kNo, 0.0f, c); });
  EXPECT_THAT(message, HasSubstr("tensor B"));
  EXPECT_THAT(message, HasSubstr(cpu.describe()));
}

TEST_F(CudaParity, AbsurdAllocationThrowsAndTheBackendStaysUsable) {
  const int64_t n = int64_t{1} << 40;  // floats: 4 TiB, more than any GPU has
  const std::string message = error_of([&] { Tensor huge({n}, gpu()); });
  EXPECT_THAT(message, HasSubstr("bytes"));
  EXPECT_THAT(message, HasSubstr(std::to_string(n * static_cast<int64_t>(sizeof(float)))));  // 4398046511104
  Tensor x = Tensor::from_host({1.0f, 2.0f, 3.0f}, {3}, gpu());
  Tensor y = Tensor::from_host({10.0f, 20.0f, 30.0f}, {3}, gpu());
  gpu().axpy(2.0f, x, y);
  EXPECT_EQ(y.to_vector(), (std::vector<float>{12.0f, 24.0f, 36.0f}));
}

}  // namespace

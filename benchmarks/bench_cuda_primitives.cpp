// Google Benchmark cases for the CUDA primitives of the 2014 training step, timed with CUDA
// events on the backend's stream (manual time): the GEMM shapes of one 784-800-800-10 step at
// batch 64 in fp32 and tf32, the fused update, softmax-CE, bias+ReLU, the bias gradient's column
// sum, Dense's forward fused (cuBLASLt epilogue) and unfused, minibatch sampling and a whole step;
// then each convolution (fp32 and tf32), pooling and dropout primitive on VGG16's shapes at
// 224×224, batch 64, and LeNet-like ones; each convolution case gives its effective rate beside the
// precision's peak and names the cuDNN engine that ran (its label, marked when above the peak).
// Skips every case with the reason where no GPU can be used.
//   build/benchmarks/bench_cuda_primitives --benchmark_min_time=0.2
//   build/benchmarks/bench_cuda_primitives --benchmark_filter='Conv2d|Pool2d|Dropout|Channel'
//   build/benchmarks/bench_cuda_primitives --benchmark_filter='SumRows|DenseForward|BiasRelu|TrainStep'
#include <benchmark/benchmark.h>
#include <cuda_runtime.h>

#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "conv_report.hpp"
#include "guarded.hpp"
#include "cudl/cudl.hpp"
#include "cudl/cuda_backend.hpp"

namespace {

// The GPU backends the cases share (one per precision), created on first use. main owns them, so
// they are destroyed before main returns, while the CUDA runtime is still up (a static backend
// would be destroyed at exit, after the runtime has begun tearing itself down).
class Backends {
 public:
  // The backend of that precision, or null (every later call too) when no GPU can be used.
  cudl::CudaBackend* get(cudl::Precision precision) {
    if (!why_.empty()) return nullptr;
    auto& slot = precision == cudl::Precision::kFp32 ? fp32_ : precision == cudl::Precision::kTf32 ? tf32_ : bf16_;
    if (!slot) {
      const cudl::GpuProbe probe = cudl::probe_gpu();
      if (!probe.usable) {
        why_ = probe.reason;
        return nullptr;
      }
      cudl::BackendOptions options;
      options.precision = precision;
      slot = std::make_unique<cudl::CudaBackend>(options);
    }
    return slot.get();
  }

 private:
  std::unique_ptr<cudl::CudaBackend> fp32_, tf32_, bf16_;
  std::string why_;
};

Backends* the_backends = nullptr;  // main's, while the benchmarks run
using bench::guarded;               // a throwing case is reported as an error (common/guarded.hpp)

cudl::CudaBackend* backend(cudl::Precision precision) { return the_backends->get(precision); }
using bench::engine_of_case;
using bench::peak_tflops;

// Times fn over one iteration with events on the backend's stream; returns the seconds timed.
template <class Fn>
double timed_loop(benchmark::State& state, cudl::CudaBackend& gpu, Fn fn) {
  double total = 0.0;
  auto stream = static_cast<cudaStream_t>(gpu.stream());
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  for (int i = 0; i < 3; ++i) fn();  // warm-up
  for (auto _ : state) {
    cudaEventRecord(start, stream);
    fn();
    cudaEventRecord(stop, stream);
    cudaEventSynchronize(stop);
    float ms = 0.0f;
    cudaEventElapsedTime(&ms, start, stop);
    state.SetIterationTime(ms * 1e-3);
    total += ms * 1e-3;
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return total;
}

cudl::Tensor random_tensor(cudl::Backend& b, cudl::Shape shape, uint64_t seed) {
  cudl::Tensor t(std::move(shape), b);
  b.fill_normal(t, seed, 0.0f, 1.0f);
  return t;
}

// Args: m, n, k, transA, transB, tf32.
void BM_CudaGemm(benchmark::State& state) {
  cudl::CudaBackend* gpu = backend(state.range(5) ? cudl::Precision::kTf32 : cudl::Precision::kFp32);
  if (gpu == nullptr) return state.SkipWithError("no usable GPU");
  const int64_t m = state.range(0), n = state.range(1), k = state.range(2);
  const auto ta = state.range(3) ? cudl::Trans::kYes : cudl::Trans::kNo;
  const auto tb = state.range(4) ? cudl::Trans::kYes : cudl::Trans::kNo;
  cudl::Tensor a = random_tensor(*gpu, ta == cudl::Trans::kNo ? cudl::Shape{m, k} : cudl::Shape{k, m}, 1);
  cudl::Tensor b = random_tensor(*gpu, tb == cudl::Trans::kNo ? cudl::Shape{k, n} : cudl::Shape{n, k}, 2);
  cudl::Tensor c({m, n}, *gpu);
  timed_loop(state, *gpu, [&] { gpu->gemm(1.0f, a, ta, b, tb, 0.0f, c); });
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * m * n * k * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_CudaGemm)
    ->ArgNames({"m", "n", "k", "tA", "tB", "tf32"})
    ->ArgsProduct({{64}, {800}, {784}, {0}, {0}, {0, 1}})
    ->ArgsProduct({{784}, {800}, {64}, {1}, {0}, {0, 1}})
    ->ArgsProduct({{64}, {800}, {800}, {0}, {1}, {0, 1}})
    ->ArgsProduct({{64}, {10}, {800}, {0}, {0}, {0, 1}})
    ->UseManualTime();

void BM_CudaNesterovStep(benchmark::State& state) {
  cudl::CudaBackend* gpu = backend(cudl::Precision::kFp32);
  if (gpu == nullptr) return state.SkipWithError("no usable GPU");
  const int64_t p = state.range(0);
  cudl::Tensor w = random_tensor(*gpu, {p}, 1), v = random_tensor(*gpu, {p}, 2), g = random_tensor(*gpu, {p}, 3);
  const cudl::Tensor lr = cudl::Tensor::from_host({0.1f}, {1}, *gpu);
  const cudl::NesterovArgs args{0.9f, 1.0f / 64, 1e-4f, p - 1610};
  timed_loop(state, *gpu, [&] { gpu->nesterov_step(w, v, g, lr, args); });
  state.counters["GB/s"] = benchmark::Counter(20.0 * p * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_CudaNesterovStep)->Arg(784 * 800 + 800 * 800 + 800 * 10 + 1610)->UseManualTime();

void BM_CudaSoftmaxCrossEntropy(benchmark::State& state) {
  cudl::CudaBackend* gpu = backend(cudl::Precision::kFp32);
  if (gpu == nullptr) return state.SkipWithError("no usable GPU");
  cudl::Tensor logits = random_tensor(*gpu, {64, 10}, 1), d({64, 10}, *gpu);
  std::vector<float> labels(64);
  for (int i = 0; i < 64; ++i) labels[i] = static_cast<float>(i % 10);
  cudl::Tensor y = cudl::Tensor::from_host(labels, {64}, *gpu);
  cudl::Tensor stats = cudl::Tensor::from_host({0, 0, -1, 0}, {4}, *gpu);
  timed_loop(state, *gpu, [&] { gpu->softmax_cross_entropy(logits, y, {}, d, stats); });
}
BENCHMARK(BM_CudaSoftmaxCrossEntropy)->UseManualTime();

void BM_CudaBiasRelu(benchmark::State& state) {
  cudl::CudaBackend* gpu = backend(cudl::Precision::kFp32);
  if (gpu == nullptr) return state.SkipWithError("no usable GPU");
  cudl::Tensor y = random_tensor(*gpu, {64, 800}, 1), b = random_tensor(*gpu, {800}, 2);
  timed_loop(state, *gpu, [&] { gpu->bias_activation(y, b, cudl::Activation::kRelu); });
}
BENCHMARK(BM_CudaBiasRelu)->UseManualTime();

// The bias gradient's column sum, out(H) ← Σ_n dz(n, :), at the 2014 step's shapes (64×800 twice,
// 64×10) and a tall one that takes two passes. Args: rows, cols.
void BM_CudaSumRows(benchmark::State& state) {
  cudl::CudaBackend* gpu = backend(cudl::Precision::kFp32);
  if (gpu == nullptr) return state.SkipWithError("no usable GPU");
  const int64_t rows = state.range(0), cols = state.range(1);
  cudl::Tensor x = random_tensor(*gpu, {rows, cols}, 1), out({cols}, *gpu);
  timed_loop(state, *gpu, [&] { gpu->sum_rows(1.0f, x, 0.0f, out); });
  state.counters["GB/s"] = benchmark::Counter(4e-9 * static_cast<double>(x.size()),
                                              benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_CudaSumRows)
    ->ArgNames({"rows", "cols"})
    ->Args({64, 800})
    ->Args({64, 10})
    ->Args({4096, 800})
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);

// Dense's forward pass, y(m×n) = act(x(m×k)·W(k×n) + b): fused (gemm_bias_activation, one cuBLASLt
// call with the epilogue) beside the two calls it replaces (gemm, bias_activation), at the 2014
// network's three layers. Args: m, n, k, relu (0: identity), fused, precision (0 fp32, 1 tf32, 2
// bf16, where the fused call is the two calls). The fused cases' label says what ran it: cudl's own
// kernel for few rows (with its time and cuBLAS's, from the choice), cuBLASLt, or the two calls.
void BM_CudaDenseForward(benchmark::State& state) {
  const cudl::Precision precision = state.range(5) == 0   ? cudl::Precision::kFp32
                                    : state.range(5) == 1 ? cudl::Precision::kTf32
                                                          : cudl::Precision::kBf16;
  cudl::CudaBackend* gpu = backend(precision);
  if (gpu == nullptr) return state.SkipWithError("no usable GPU");
  guarded(state, [&] {
    const int64_t m = state.range(0), n = state.range(1), k = state.range(2);
    const auto act = state.range(3) ? cudl::Activation::kRelu : cudl::Activation::kIdentity;
    cudl::Tensor x = random_tensor(*gpu, {m, k}, 1), w = random_tensor(*gpu, {k, n}, 2);
    cudl::Tensor b = random_tensor(*gpu, {n}, 3), y({m, n}, *gpu);
    if (state.range(4)) {
      timed_loop(state, *gpu,
                 [&] { gpu->gemm_bias_activation(1.0f, x, cudl::Trans::kNo, w, cudl::Trans::kNo, b, act, y); });
      const std::vector<std::string> plans = gpu->epilogue_plans();
      std::string label = "no cuBLASLt plan";
      for (const std::string& line : plans)
        if (line.find(std::to_string(m) + "x" + std::to_string(n) + "x" + std::to_string(k)) != std::string::npos)
          label = line.find(": cuBLASLt") != std::string::npos ? "cuBLASLt" : "fallback: " + line;
      for (const std::string& line : gpu->gemm_kernel_choices())  // cudl's own kernel, where it was faster
        if (line.find(" " + std::to_string(m) + "x" + std::to_string(n) + "x" + std::to_string(k) + " +bias") !=
                std::string::npos && line.find("cudl's kernel") != std::string::npos)
          label = "cudl's kernel: " + line.substr(line.rfind(": ") + 2);
      state.SetLabel(label);
    } else {
      timed_loop(state, *gpu, [&] {
        gpu->gemm(1.0f, x, cudl::Trans::kNo, w, cudl::Trans::kNo, 0.0f, y);
        gpu->bias_activation(y, b, act);
      });
    }
    state.counters["GFLOP/s"] =
        benchmark::Counter(2.0 * m * n * k * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  });
}
BENCHMARK(BM_CudaDenseForward)
    ->ArgNames({"m", "n", "k", "relu", "fused", "prec"})
    ->ArgsProduct({{64}, {800}, {784}, {1}, {0, 1}, {0, 1}})
    ->ArgsProduct({{64}, {800}, {800}, {1}, {0, 1}, {0, 1}})
    ->ArgsProduct({{64}, {10}, {800}, {0}, {0, 1}, {0, 1}})
    ->ArgsProduct({{64}, {800}, {784}, {1}, {1}, {2}})
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);

void BM_CudaSampleRows(benchmark::State& state) {
  cudl::CudaBackend* gpu = backend(cudl::Precision::kFp32);
  if (gpu == nullptr) return state.SkipWithError("no usable GPU");
  cudl::Tensor x = random_tensor(*gpu, {46900, 784}, 1), y = random_tensor(*gpu, {46900}, 2);
  cudl::Tensor bx({64, 784}, *gpu), by({64}, *gpu);
  uint64_t draw = 0;
  timed_loop(state, *gpu, [&] {
    gpu->sample_rows(x, y, 1, draw, bx, by);
    draw += 64;
  });
}
BENCHMARK(BM_CudaSampleRows)->UseManualTime();

// One whole 2014 training step, launched op by op (no graph): the launch-bound baseline.
void BM_CudaTrainStep(benchmark::State& state) {
  cudl::CudaBackend* gpu = backend(state.range(0) ? cudl::Precision::kTf32 : cudl::Precision::kFp32);
  if (gpu == nullptr) return state.SkipWithError("no usable GPU");
  const int64_t rows = 46900;
  cudl::Tensor x = random_tensor(*gpu, {rows, 784}, 1);
  std::vector<float> labels(rows);
  for (int64_t i = 0; i < rows; ++i) labels[i] = static_cast<float>(i % 10);
  cudl::Tensor y = cudl::Tensor::from_host(labels, {rows}, *gpu);
  cudl::Network net(*gpu, {784});
  net.add(cudl::dense(800, cudl::Activation::kRelu)).add(cudl::dense(800, cudl::Activation::kRelu)).add(cudl::dense(10));
  net.initialize(1, 0.05f);
  cudl::GdbnNesterov opt(net.param_set(), {/*learn_rate=*/0.01f, /*momentum=*/0.9f, /*l2=*/1e-4f,
                                           /*grad_scale=*/1.0f / 64});
  cudl::Tensor xb({64, 784}, *gpu), yb({64}, *gpu), d({64, 10}, *gpu);
  cudl::Tensor stats = cudl::Tensor::from_host({0, 0, -1, 0}, {4}, *gpu);
  opt.begin();
  uint64_t draw = 0;
  timed_loop(state, *gpu, [&] {
    gpu->sample_rows(x, y, 1, draw, xb, yb);
    draw += 64;
    const cudl::Tensor& logits = net.forward(xb, cudl::Mode::kTrain);
    gpu->softmax_cross_entropy(logits, yb, {}, d, stats);
    net.backward(xb, d);
    opt.step();
  });
  state.counters["epoch_ms"] = benchmark::Counter(1e-3 / 732, benchmark::Counter::kIsIterationInvariantRate |
                                                                   benchmark::Counter::kInvert);
}
BENCHMARK(BM_CudaTrainStep)->ArgNames({"tf32"})->Arg(0)->Arg(1)->UseManualTime()->Unit(benchmark::kMicrosecond);

// One CD-1 update of a 784-800 RBM at batch 64 (Gaussian visible, noisy-ReLU hidden), op by op.
void BM_CudaRbmCd1Step(benchmark::State& state) {
  cudl::CudaBackend* gpu = backend(cudl::Precision::kFp32);
  if (gpu == nullptr) return state.SkipWithError("no usable GPU");
  const int64_t rows = 46900;
  cudl::Tensor x = random_tensor(*gpu, {rows, 784}, 1), labels({rows}, *gpu);
  gpu->fill(labels, 0.0f);
  cudl::RbmConfig cfg;
  cfg.visible = cudl::Units::kGaussian;
  cfg.hidden = cudl::Units::kNoisyRelu;
  cfg.learn_rate = 0.001f;
  cudl::Rbm rbm(*gpu, 784, 800, cfg);
  cudl::Tensor batch({64, 784}, *gpu), batch_labels({64}, *gpu);
  uint64_t draw = 0;
  timed_loop(state, *gpu, [&] {
    gpu->sample_rows(x, labels, 1, draw, batch, batch_labels);
    draw += 64;
    rbm.train_batch(batch);
  });
  state.counters["epoch_ms"] = benchmark::Counter(1e-3 / 732, benchmark::Counter::kIsIterationInvariantRate |
                                                                   benchmark::Counter::kInvert);
}
BENCHMARK(BM_CudaRbmCd1Step)->UseManualTime()->Unit(benchmark::kMicrosecond);

// One CD-1 epoch of the same RBM as Rbm::train_epoch runs it (issue 17's point 4: ≤ 10 ms): 732
// steps of 64 rows drawn from 46,900, queued eagerly or replayed from one captured step, timed as
// the epoch reports it (from its start until its work has finished; the monitoring afterwards is
// left out). Args: captured (0: StepLaunch::kEager), tf32.
void BM_CudaRbmEpoch(benchmark::State& state) {
  cudl::CudaBackend* gpu = backend(state.range(1) ? cudl::Precision::kTf32 : cudl::Precision::kFp32);
  if (gpu == nullptr) return state.SkipWithError("no usable GPU");
  guarded(state, [&] {
    const int64_t rows = 46900;
    const cudl::Tensor x = random_tensor(*gpu, {rows, 784}, 1);
    cudl::RbmConfig cfg;
    cfg.visible = cudl::Units::kGaussian;
    cfg.hidden = cudl::Units::kNoisyRelu;
    cfg.learn_rate = 0.001f;
    cfg.launch = state.range(0) ? cudl::StepLaunch::kAuto : cudl::StepLaunch::kEager;
    cudl::Rbm rbm(*gpu, 784, 800, cfg);
    int epoch = 1;
    rbm.train_epoch(x, epoch++);  // warm-up: the first step, the capture, cuBLAS's choices
    bool captured = true;
    for (auto _ : state) {
      const cudl::RbmEpochReport r = rbm.train_epoch(x, epoch++);
      captured = captured && r.captured;
      state.SetIterationTime(r.seconds);
    }
    state.counters["captured"] = captured ? 1 : 0;
    state.counters["step_us"] = benchmark::Counter(1e-6 * 732, benchmark::Counter::kIsIterationInvariantRate |
                                                                  benchmark::Counter::kInvert);
  });
}
BENCHMARK(BM_CudaRbmEpoch)
    ->ArgNames({"captured", "tf32"})
    ->ArgsProduct({{0, 1}, {0, 1}})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

// ---- convolution, pooling, dropout (NCHW) ----

// Conv2d shapes: N, C, H = W, K, R = S, stride, pad, tf32. VGG16's 3×3 layers at 224×224,
// batch 64 (one per block, and the first, whose C = 3); LeNet-like 5×5 layers on 28×28, batch 64;
// a strided 3×3 (ResNet-like downsampling).
void CudaConvShapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"n", "c", "hw", "k", "rs", "stride", "pad", "tf32"});
  for (int64_t tf32 : {0, 1}) {
    b->Args({64, 3, 224, 64, 3, 1, 1, tf32});
    b->Args({64, 64, 224, 64, 3, 1, 1, tf32});
    b->Args({64, 128, 112, 128, 3, 1, 1, tf32});
    b->Args({64, 256, 56, 256, 3, 1, 1, tf32});
    b->Args({64, 512, 28, 512, 3, 1, 1, tf32});
    b->Args({64, 512, 14, 512, 3, 1, 1, tf32});
    b->Args({64, 1, 28, 32, 5, 1, 2, tf32});
    b->Args({64, 32, 14, 64, 5, 1, 2, tf32});
    b->Args({64, 64, 56, 128, 3, 2, 1, tf32});
  }
  b->UseManualTime()->Unit(benchmark::kMicrosecond);
}

enum class ConvPass { kForward, kBackwardData, kBackwardFilter };

void run_conv(benchmark::State& state, ConvPass pass) {
  cudl::CudaBackend* gpu = backend(state.range(7) ? cudl::Precision::kTf32 : cudl::Precision::kFp32);
  if (gpu == nullptr) return state.SkipWithError("no usable GPU");
  guarded(state, [&] {
    const int64_t n = state.range(0), c = state.range(1), hw = state.range(2), k = state.range(3),
                  rs = state.range(4);
    cudl::Conv2dParams params;
    params.stride_h = params.stride_w = state.range(5);
    params.pad_h = params.pad_w = state.range(6);
    const int64_t pq = cudl::window_output_size(hw, rs, params.stride_h, params.pad_h, 1);
    cudl::Tensor x = random_tensor(*gpu, {n, c, hw, hw}, 1), w = random_tensor(*gpu, {k, c, rs, rs}, 2);
    cudl::Tensor y = random_tensor(*gpu, {n, k, pq, pq}, 3);
    const std::vector<std::string> plans_before = gpu->convolution_plans();
    const double seconds = timed_loop(state, *gpu, [&] {
      if (pass == ConvPass::kForward) {
        gpu->conv2d_forward(x, w, params, y);
      } else if (pass == ConvPass::kBackwardData) {
        gpu->conv2d_backward_data(y, w, params, x);  // y plays dy, x plays dx
      } else {
        gpu->conv2d_backward_filter(x, y, params, w);  // y plays dy, w plays dw
      }
    });
    // Direct-convolution FLOPs over the time, beside the precision's peak; the engine that ran is
    // the case's label, marked when its effective rate is above the peak.
    const double flop = 2.0 * n * k * pq * pq * c * rs * rs;
    state.counters["TFLOP/s"] = benchmark::Counter(flop * 1e-12, benchmark::Counter::kIsIterationInvariantRate);
    const cudl::Precision precision = state.range(7) ? cudl::Precision::kTf32 : cudl::Precision::kFp32;
    const double peak = peak_tflops(precision);
    const double rate = seconds > 0.0 ? flop * static_cast<double>(state.iterations()) / seconds * 1e-12 : 0.0;
    state.counters["peak TFLOP/s"] = peak;
    std::string case_key = std::to_string(static_cast<int>(pass));  // State::name() is not in every version
    for (int i = 0; i < 8; ++i) case_key += "/" + std::to_string(state.range(i));
    const std::string engine = engine_of_case(case_key, plans_before, gpu->convolution_plans());
    const bool above = peak > 0.0 && rate > peak;
    state.SetLabel(above ? "above the " + std::string(cudl::to_string(precision)) + " peak: " + engine : engine);
  });
}
void BM_CudaConv2dForward(benchmark::State& state) { run_conv(state, ConvPass::kForward); }
void BM_CudaConv2dBackwardData(benchmark::State& state) { run_conv(state, ConvPass::kBackwardData); }
void BM_CudaConv2dBackwardFilter(benchmark::State& state) { run_conv(state, ConvPass::kBackwardFilter); }
BENCHMARK(BM_CudaConv2dForward)->Apply(CudaConvShapes);
BENCHMARK(BM_CudaConv2dBackwardData)->Apply(CudaConvShapes);
BENCHMARK(BM_CudaConv2dBackwardFilter)->Apply(CudaConvShapes);

// Pooling: N, C, H = W, window, stride, pad, average (0: max, 1: average). VGG16's first 2×2
// pooling at 224×224, batch 64; LeNet's 2×2 on 28×28; an overlapping 3×3 stride 2 (ResNet's stem).
void CudaPoolShapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"n", "c", "hw", "win", "stride", "pad", "avg"});
  for (int64_t avg : {0, 1}) {
    b->Args({64, 64, 224, 2, 2, 0, avg});
    b->Args({64, 32, 28, 2, 2, 0, avg});
    b->Args({64, 64, 112, 3, 2, 1, avg});
  }
  b->UseManualTime()->Unit(benchmark::kMicrosecond);
}

// Bytes: forward reads x and writes y; backward reads x, y and dy and writes dx.
void run_pool(benchmark::State& state, bool backward) {
  cudl::CudaBackend* gpu = backend(cudl::Precision::kFp32);
  if (gpu == nullptr) return state.SkipWithError("no usable GPU");
  guarded(state, [&] {
    const int64_t n = state.range(0), c = state.range(1), hw = state.range(2);
    cudl::Pool2dParams params;
    params.mode = state.range(6) ? cudl::PoolMode::kAverage : cudl::PoolMode::kMax;
    params.window_h = params.window_w = state.range(3);
    params.stride_h = params.stride_w = state.range(4);
    params.pad_h = params.pad_w = state.range(5);
    const int64_t pq = cudl::window_output_size(hw, params.window_h, params.stride_h, params.pad_h, 1);
    cudl::Tensor x = random_tensor(*gpu, {n, c, hw, hw}, 1), dx({n, c, hw, hw}, *gpu);
    cudl::Tensor y({n, c, pq, pq}, *gpu), dy = random_tensor(*gpu, {n, c, pq, pq}, 2);
    gpu->pool2d_forward(x, params, y);
    if (backward) {
      timed_loop(state, *gpu, [&] { gpu->pool2d_backward(x, y, dy, params, dx); });
    } else {
      timed_loop(state, *gpu, [&] { gpu->pool2d_forward(x, params, y); });
    }
    const double bytes = 4.0 * (backward ? 2 * x.size() + 2 * y.size() : x.size() + y.size());
    state.counters["GB/s"] = benchmark::Counter(bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  });
}
void BM_CudaPool2dForward(benchmark::State& state) { run_pool(state, false); }
void BM_CudaPool2dBackward(benchmark::State& state) { run_pool(state, true); }
BENCHMARK(BM_CudaPool2dForward)->Apply(CudaPoolShapes);
BENCHMARK(BM_CudaPool2dBackward)->Apply(CudaPoolShapes);

// Inverted dropout over n elements (VGG16's 64×4096 dense activations; a 64×64×112×112 feature
// map): reads x, writes y, one Philox draw per element.
void BM_CudaDropout(benchmark::State& state) {
  cudl::CudaBackend* gpu = backend(cudl::Precision::kFp32);
  if (gpu == nullptr) return state.SkipWithError("no usable GPU");
  guarded(state, [&] {
    cudl::Tensor x = random_tensor(*gpu, {state.range(0)}, 1), y({state.range(0)}, *gpu);
    uint64_t counter = 0;
    timed_loop(state, *gpu, [&] {
      gpu->dropout(x, 0.5f, 7, counter, y);
      counter += static_cast<uint64_t>(x.size());
    });
    state.counters["GB/s"] = benchmark::Counter(8e-9 * static_cast<double>(x.size()),
                                                benchmark::Counter::kIsIterationInvariantRate);
  });
}
BENCHMARK(BM_CudaDropout)->ArgName("n")->Arg(64 * 4096)->Arg(64 * 64 * 112 * 112)->UseManualTime()->Unit(
    benchmark::kMicrosecond);

// The convolution's bias + ReLU in place (reads and writes y), and the bias gradient's
// per-channel sum (reads x), over N×C×H×W. Args: N, C, H = W (VGG16's first and last blocks).
void CudaChannelShapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"n", "c", "hw"})->Args({64, 64, 224})->Args({64, 512, 14})->Args({64, 32, 28});
  b->UseManualTime()->Unit(benchmark::kMicrosecond);
}
void BM_CudaChannelBiasRelu(benchmark::State& state) {
  cudl::CudaBackend* gpu = backend(cudl::Precision::kFp32);
  if (gpu == nullptr) return state.SkipWithError("no usable GPU");
  guarded(state, [&] {
    const int64_t n = state.range(0), c = state.range(1), hw = state.range(2);
    cudl::Tensor y = random_tensor(*gpu, {n, c, hw, hw}, 1), b = random_tensor(*gpu, {c}, 2);
    timed_loop(state, *gpu, [&] { gpu->channel_bias_activation(y, b, cudl::Activation::kRelu); });
    state.counters["GB/s"] = benchmark::Counter(8e-9 * static_cast<double>(y.size()),
                                                benchmark::Counter::kIsIterationInvariantRate);
  });
}
void BM_CudaSumChannels(benchmark::State& state) {
  cudl::CudaBackend* gpu = backend(cudl::Precision::kFp32);
  if (gpu == nullptr) return state.SkipWithError("no usable GPU");
  guarded(state, [&] {
    const int64_t n = state.range(0), c = state.range(1), hw = state.range(2);
    cudl::Tensor x = random_tensor(*gpu, {n, c, hw, hw}, 1), out({c}, *gpu);
    timed_loop(state, *gpu, [&] { gpu->sum_channels(1.0f, x, 0.0f, out); });
    state.counters["GB/s"] = benchmark::Counter(4e-9 * static_cast<double>(x.size()),
                                                benchmark::Counter::kIsIterationInvariantRate);
  });
}
BENCHMARK(BM_CudaChannelBiasRelu)->Apply(CudaChannelShapes);
BENCHMARK(BM_CudaSumChannels)->Apply(CudaChannelShapes);

}  // namespace

// BENCHMARK_MAIN(), with the backends owned here: they go before main returns.
int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  {
    Backends backends;
    the_backends = &backends;
    benchmark::RunSpecifiedBenchmarks();
    the_backends = nullptr;
  }
  benchmark::Shutdown();
  return 0;
}

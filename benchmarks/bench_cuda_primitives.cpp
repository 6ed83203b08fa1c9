// Google Benchmark cases for the CUDA primitives of the 2014 training step, timed with CUDA
// events on the backend's stream (manual time): the GEMM shapes of one 784-800-800-10 step at
// batch 64 in fp32 and tf32, the fused update, softmax-CE, bias+ReLU, minibatch sampling and a
// whole step. Skips every case with the reason where no GPU can be used.
//   build/benchmarks/bench_cuda_primitives --benchmark_min_time=0.2
#include <benchmark/benchmark.h>
#include <cuda_runtime.h>

#include <memory>
#include <stdexcept>

#include "cudl/cudl.hpp"
#include "cudl/cuda_backend.hpp"

namespace {

cudl::CudaBackend* backend(cudl::Precision precision) {
  static std::unique_ptr<cudl::CudaBackend> fp32, tf32;
  static std::string why;
  if (!why.empty()) return nullptr;
  auto& slot = precision == cudl::Precision::kFp32 ? fp32 : tf32;
  if (!slot) {
    const cudl::GpuProbe probe = cudl::probe_gpu();
    if (!probe.usable) {
      why = probe.reason;
      return nullptr;
    }
    cudl::BackendOptions options;
    options.precision = precision;
    slot = std::make_unique<cudl::CudaBackend>(options);
  }
  return slot.get();
}

// Times fn over one iteration with events on the backend's stream.
template <class Fn>
void timed_loop(benchmark::State& state, cudl::CudaBackend& gpu, Fn fn) {
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
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
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
  const cudl::NesterovArgs args{0.1f, 0.9f, 1.0f / 64, 1e-4f, p - 1610};
  timed_loop(state, *gpu, [&] { gpu->nesterov_step(w, v, g, args); });
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
  cudl::NesterovSgd opt(net, {0.01f, 0.9f, 1e-4f});
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
    opt.step(64);
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

}  // namespace

BENCHMARK_MAIN();

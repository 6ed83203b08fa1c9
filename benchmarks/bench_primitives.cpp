// Google Benchmark cases for the CPU primitives that dominate the 2014 training step, with
// GFLOP/s or GB/s counters. Threads: $CUDL_THREADS, else all available.
//   build/benchmarks/bench_primitives --benchmark_min_time=0.2
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <memory>

#include "cudl/cudl.hpp"

namespace {

cudl::CpuBackend& backend() {
  static cudl::CpuBackend cpu(std::getenv("CUDL_THREADS") ? std::atoi(std::getenv("CUDL_THREADS")) : 0);
  return cpu;
}

cudl::Tensor random_tensor(cudl::Shape shape, uint64_t seed) {
  cudl::Tensor t(std::move(shape), backend());
  backend().fill_normal(t, seed, 0.0f, 1.0f);
  return t;
}

// C(m×n) = op(A)·op(B), op(A) m×k. Args: m, n, k, transA, transB.
void BM_Gemm(benchmark::State& state) {
  const int64_t m = state.range(0), n = state.range(1), k = state.range(2);
  const auto ta = state.range(3) ? cudl::Trans::kYes : cudl::Trans::kNo;
  const auto tb = state.range(4) ? cudl::Trans::kYes : cudl::Trans::kNo;
  cudl::Tensor a = random_tensor(ta == cudl::Trans::kNo ? cudl::Shape{m, k} : cudl::Shape{k, m}, 1);
  cudl::Tensor b = random_tensor(tb == cudl::Trans::kNo ? cudl::Shape{k, n} : cudl::Shape{n, k}, 2);
  cudl::Tensor c({m, n}, backend());
  for (auto _ : state) {
    backend().gemm(1.0f, a, ta, b, tb, 0.0f, c);
    benchmark::DoNotOptimize(c.data());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * m * n * k * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
// The GEMMs of one 784-800-800-10 step at batch 64 (forward NN, weight gradient TN, input gradient NT).
BENCHMARK(BM_Gemm)
    ->ArgNames({"m", "n", "k", "tA", "tB"})
    ->Args({64, 800, 784, 0, 0})
    ->Args({64, 800, 800, 0, 0})
    ->Args({64, 10, 800, 0, 0})
    ->Args({784, 800, 64, 1, 0})
    ->Args({800, 800, 64, 1, 0})
    ->Args({800, 10, 64, 1, 0})
    ->Args({64, 800, 800, 0, 1})
    ->Args({64, 800, 10, 0, 1})
    ->Args({64, 784, 800, 0, 1})
    ->UseRealTime();

// The fused Nesterov + L2 step over all parameters of the 784-800-800-10 network.
void BM_NesterovStep(benchmark::State& state) {
  const int64_t p = state.range(0);
  cudl::Tensor w = random_tensor({p}, 1), v = random_tensor({p}, 2), g = random_tensor({p}, 3);
  const cudl::NesterovArgs args{0.1f, 0.9f, 1.0f / 64, 1e-4f, p - 1610};
  for (auto _ : state) backend().nesterov_step(w, v, g, args);
  state.counters["GB/s"] = benchmark::Counter(20.0 * p * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_NesterovStep)->Arg(784 * 800 + 800 * 800 + 800 * 10 + 1610)->UseRealTime();

// Softmax cross-entropy with gradient and statistics, 64×10.
void BM_SoftmaxCrossEntropy(benchmark::State& state) {
  const int64_t n = state.range(0), k = state.range(1);
  cudl::Tensor logits = random_tensor({n, k}, 1), d({n, k}, backend());
  std::vector<float> labels(n);
  for (int64_t i = 0; i < n; ++i) labels[i] = static_cast<float>(i % k);
  cudl::Tensor y = cudl::Tensor::from_host(labels, {n}, backend());
  cudl::Tensor stats = cudl::Tensor::from_host({0, 0, -1, 0}, {4}, backend());
  for (auto _ : state) backend().softmax_cross_entropy(logits, y, {}, d, stats);
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_SoftmaxCrossEntropy)->Args({64, 10});

// Bias + ReLU over a 64×800 activation.
void BM_BiasRelu(benchmark::State& state) {
  cudl::Tensor y = random_tensor({64, 800}, 1), b = random_tensor({800}, 2);
  for (auto _ : state) backend().bias_activation(y, b, cudl::Activation::kRelu);
  state.SetBytesProcessed(state.iterations() * 2 * 64 * 800 * 4);
}
BENCHMARK(BM_BiasRelu);

// One whole 2014 training step: draw 64 rows, forward, loss, backward, update.
void BM_TrainStep(benchmark::State& state) {
  const int64_t rows = 4096;
  cudl::Tensor x = random_tensor({rows, 784}, 1);
  std::vector<float> labels(rows);
  for (int64_t i = 0; i < rows; ++i) labels[i] = static_cast<float>(i % 10);
  cudl::Tensor y = cudl::Tensor::from_host(labels, {rows}, backend());
  cudl::Network net(backend(), {784});
  net.add(cudl::dense(800, cudl::Activation::kRelu)).add(cudl::dense(800, cudl::Activation::kRelu)).add(cudl::dense(10));
  net.initialize(1, 0.05f);
  cudl::NesterovSgd opt(net, {0.01f, 0.9f, 1e-4f});
  cudl::Tensor xb({64, 784}, backend()), yb({64}, backend()), d({64, 10}, backend());
  cudl::Tensor stats = cudl::Tensor::from_host({0, 0, -1, 0}, {4}, backend());
  opt.begin();
  uint64_t draw = 0;
  for (auto _ : state) {
    backend().sample_rows(x, y, 1, draw, xb, yb);
    draw += 64;
    const cudl::Tensor& logits = net.forward(xb, cudl::Mode::kTrain);
    backend().softmax_cross_entropy(logits, yb, {}, d, stats);
    net.backward(xb, d);
    opt.step(64);
  }
  const double flops = 2.0 * 64 * (2 * 784 * 800 + 3 * 800 * 800 + 3 * 800 * 10);
  state.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  // seconds per 732-step epoch = (iterations / 732 / seconds)⁻¹
  state.counters["epoch_s"] = benchmark::Counter(1.0 / 732, benchmark::Counter::kIsIterationInvariantRate |
                                                          benchmark::Counter::kInvert);
}
BENCHMARK(BM_TrainStep)->UseRealTime()->Unit(benchmark::kMillisecond);

// One CD-1 update of a 784-800 RBM at batch 64 (gdbn's first pretraining layer: Gaussian visible,
// noisy-ReLU hidden), drawn from 46,900 rows: epoch_s is the time of a 732-batch epoch.
void BM_RbmCd1Step(benchmark::State& state) {
  const int64_t rows = 46900;
  cudl::Tensor x = random_tensor({rows, 784}, 1);
  cudl::RbmConfig cfg;
  cfg.visible = cudl::Units::kGaussian;
  cfg.hidden = cudl::Units::kNoisyRelu;
  cfg.learn_rate = 0.001f;
  cudl::Rbm rbm(backend(), 784, 800, cfg);
  cudl::Tensor labels({rows}, backend()), batch({64, 784}, backend()), batch_labels({64}, backend());
  backend().fill(labels, 0.0f);
  uint64_t draw = 0;
  for (auto _ : state) {
    backend().sample_rows(x, labels, 1, draw, batch, batch_labels);
    draw += 64;
    rbm.train_batch(batch);
  }
  state.counters["epoch_s"] = benchmark::Counter(1.0 / 732, benchmark::Counter::kIsIterationInvariantRate |
                                                                 benchmark::Counter::kInvert);
}
BENCHMARK(BM_RbmCd1Step)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();

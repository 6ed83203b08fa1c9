// Google Benchmark cases for the CPU primitives that dominate the 2014 training step, and for
// each convolution, pooling and dropout primitive on VGG- and LeNet-like shapes, with GFLOP/s or
// GB/s counters. Threads: $CUDL_THREADS, else all available.
//   build/benchmarks/bench_primitives --benchmark_min_time=0.2
//   build/benchmarks/bench_primitives --benchmark_filter='Conv2d|Pool2d|Dropout|Channel'
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdlib>
#include <exception>
#include <memory>
#include <vector>

#include "guarded.hpp"
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

// The input gradient of the 2014 network's second layer ahead of the first layer's ReLU: dx(64×800)
// = (dz·Wᵀ) ⊙ relu'(h1), h1 with `silent` percent of its 800 units zero in every row (the ones a
// trained network's first layer has: about 55) and half the others' values zero. fused 1: one
// gemm_activation_backward (on the CPU, only the kept units' columns); 0: gemm, then
// activation_backward. Args: silent percent, fused.
void BM_GemmReluBackward(benchmark::State& state) {
  const int64_t m = 64, n = 800, k = 800, silent = state.range(0) * n / 100;
  const bool fused = state.range(1) != 0;
  cudl::Tensor dz = random_tensor({m, k}, 1), w = random_tensor({n, k}, 2), dx({m, n}, backend());
  std::vector<float> hv = random_tensor({m, n}, 3).to_vector();
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) hv[i * n + j] = j < silent ? 0.0f : std::max(hv[i * n + j], 0.0f);
  const cudl::Tensor h = cudl::Tensor::from_host(hv, {m, n}, backend());
  for (auto _ : state) {
    if (fused) {
      backend().gemm_activation_backward(1.0f, dz, cudl::Trans::kNo, w, cudl::Trans::kYes, dx, h,
                                         cudl::Activation::kRelu);
    } else {
      backend().gemm(1.0f, dz, cudl::Trans::kNo, w, cudl::Trans::kYes, 0.0f, dx);
      backend().activation_backward(dx, h, cudl::Activation::kRelu);
    }
    benchmark::DoNotOptimize(dx.data());
  }
}
BENCHMARK(BM_GemmReluBackward)->ArgNames({"silent", "fused"})->ArgsProduct({{0, 55, 90}, {0, 1}})->UseRealTime();

// The first layer's weight gradient xᵀ·dz (784×800×64) when `silent` percent of dz's 800 columns
// are zero (its ReLU units silent for the whole batch; about 55 in the 2014 run): the product on
// the others, spread into C (product_on_columns). Arg: silent percent.
void BM_GemmZeroColumns(benchmark::State& state) {
  const int64_t m = 784, n = 800, k = 64, silent = state.range(0) * n / 100;
  const cudl::Tensor x = random_tensor({k, m}, 1);
  std::vector<float> dzv = random_tensor({k, n}, 2).to_vector();
  for (int64_t p = 0; p < k; ++p)
    for (int64_t j = 0; j < n; ++j)
      if ((j * 37) % n < silent) dzv[p * n + j] = 0.0f;  // silent columns spread over the layer
  const cudl::Tensor dz = cudl::Tensor::from_host(dzv, {k, n}, backend());
  cudl::Tensor gw({m, n}, backend());
  for (auto _ : state) {
    backend().gemm(1.0f, x, cudl::Trans::kYes, dz, cudl::Trans::kNo, 0.0f, gw);
    benchmark::DoNotOptimize(gw.data());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * m * n * k * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_GemmZeroColumns)->ArgName("silent")->Arg(0)->Arg(55)->UseRealTime();

// The fused Nesterov + L2 step over all parameters of the 784-800-800-10 network.
void BM_NesterovStep(benchmark::State& state) {
  const int64_t p = state.range(0);
  cudl::Tensor w = random_tensor({p}, 1), v = random_tensor({p}, 2), g = random_tensor({p}, 3);
  const cudl::Tensor lr = cudl::Tensor::from_host({0.1f}, {1}, backend());
  const cudl::NesterovArgs args{0.9f, 1.0f / 64, 1e-4f, p - 1610};
  for (auto _ : state) backend().nesterov_step(w, v, g, lr, args);
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
  const cudl::Activation relu = cudl::Activation::kRelu;
  net.add(cudl::dense(800, relu)).add(cudl::dense(800, relu)).add(cudl::dense(10));
  net.initialize(1, 0.05f);
  cudl::GdbnNesterov opt(net.param_set(), {/*learn_rate=*/0.01f, /*momentum=*/0.9f, /*l2=*/1e-4f,
                                           /*grad_scale=*/1.0f / 64});
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
    opt.step();
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
  // Drawn once per process, not once per run of this function (Google Benchmark runs it several
  // times to choose the iteration count): the draw would otherwise be a third of a profile.
  static const cudl::Tensor x = random_tensor({rows, 784}, 1);
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

// The unit sampling alone, on the 64×800 hidden layer of BM_RbmCd1Step. Arg: the Units value
// (0 Bernoulli, 1 Gaussian, 2 noisy ReLU).
void BM_SampleUnits(benchmark::State& state) {
  const auto units = static_cast<cudl::Units>(state.range(0));
  cudl::Tensor means = random_tensor({64, 800}, 1), states({64, 800}, backend());
  uint64_t counter = 0;
  for (auto _ : state) {
    backend().sample_units(means, units, 1, counter, states);
    counter += 64 * 800;
  }
  state.SetItemsProcessed(state.iterations() * 64 * 800);
}
BENCHMARK(BM_SampleUnits)->ArgName("units")->DenseRange(0, 2)->UseRealTime();

// ---- cudl's own host work per eager step ----

// A CPU backend whose every primitive does nothing: what a step costs on it is cudl's own host
// work (argument checks, views, dispatch, the optimizer's and the RBM's bookkeeping), the part of
// an eager GPU step's host time that is not the CUDA runtime's or cuBLAS's.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
}  // namespace
namespace cudl::bench {  // the primitives' list names cudl's types unqualified
class HostWorkOnly final : public CpuBackend {
 public:
  HostWorkOnly() : CpuBackend(1) {}

 protected:
#define CUDL_BACKEND_PRIMITIVE(name, params) \
  void name params override {}
#include "cudl/backend_primitives.inc"
#undef CUDL_BACKEND_PRIMITIVE
  void do_gemm_activation_backward(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                                   int64_t lda, const float* b, int64_t ldb, float* c, const float* y,
                                   Activation act) override {}
};
}  // namespace cudl::bench
#pragma GCC diagnostic pop
namespace {
using cudl::bench::HostWorkOnly;

// One eager CD-1 step of BM_RbmCd1Step's RBM (Rbm::train_batch), its primitives no-ops.
void BM_RbmStepHostWork(benchmark::State& state) {
  HostWorkOnly host;
  cudl::RbmConfig cfg;
  cfg.visible = cudl::Units::kGaussian;
  cfg.hidden = cudl::Units::kNoisyRelu;
  cudl::Rbm rbm(host, 784, 800, cfg);
  const cudl::Tensor batch({64, 784}, host);
  for (auto _ : state) rbm.train_batch(batch);
}
BENCHMARK(BM_RbmStepHostWork);

// One eager step of the 2014 network (Trainer::step: forward, loss, backward, Nesterov update), its
// primitives no-ops.
void BM_TrainStepHostWork(benchmark::State& state) {
  HostWorkOnly host;
  cudl::Network net(host, {784});
  net.add(cudl::dense(800, cudl::Activation::kRelu)).add(cudl::dense(800, cudl::Activation::kRelu)).add(cudl::dense(10));
  cudl::presets::Gdbn2014 preset;
  auto opt = preset.optimizer(net.param_set());
  const cudl::SoftmaxCrossEntropy loss = preset.loss();
  cudl::Trainer trainer(net, loss, *opt, nullptr, cudl::StepLaunch::kEager);
  const cudl::Tensor xb({64, 784}, host), yb({64}, host);
  opt->begin();  // as fit() does before an epoch's steps (GdbnNesterov's look-ahead point)
  for (auto _ : state) trainer.step(xb, yb);
}
BENCHMARK(BM_TrainStepHostWork);

// ---- convolution, pooling, dropout (NCHW) ----
using bench::guarded;  // a throwing case is reported as an error (common/guarded.hpp)

// Conv2d shapes: N, C, H = W, K, R = S, stride, pad. VGG16's 3×3 layers at 32×32 (batch 16, as
// bench_vgg runs on the CPU) and one at 224×224 (batch 1); LeNet-like 5×5 layers on 28×28
// (batch 64); a strided 3×3 (ResNet-like downsampling).
void ConvShapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"n", "c", "hw", "k", "rs", "stride", "pad"});
  b->Args({16, 3, 32, 64, 3, 1, 1});
  b->Args({16, 64, 32, 64, 3, 1, 1});
  b->Args({16, 128, 16, 128, 3, 1, 1});
  b->Args({16, 256, 8, 256, 3, 1, 1});
  b->Args({16, 512, 4, 512, 3, 1, 1});
  b->Args({16, 512, 2, 512, 3, 1, 1});
  b->Args({1, 64, 224, 64, 3, 1, 1});
  b->Args({64, 1, 28, 32, 5, 1, 2});
  b->Args({64, 32, 14, 64, 5, 1, 2});
  b->Args({16, 64, 32, 128, 3, 2, 1});
  b->UseRealTime();
}

enum class ConvPass { kForward, kBackwardData, kBackwardFilter };

// Tensors of one convolution: x (N×C×H×W), w (K×C×R×S), y (N×K×P×Q), and its FLOP per pass.
struct ConvCase {
  explicit ConvCase(const benchmark::State& state) {
    const int64_t n = state.range(0), c = state.range(1), hw = state.range(2), k = state.range(3), rs = state.range(4);
    params.stride_h = params.stride_w = state.range(5);
    params.pad_h = params.pad_w = state.range(6);
    const int64_t pq = cudl::window_output_size(hw, rs, params.stride_h, params.pad_h, 1);
    x = random_tensor({n, c, hw, hw}, 1);
    w = random_tensor({k, c, rs, rs}, 2);
    y = random_tensor({n, k, pq, pq}, 3);
    flop = 2.0 * n * k * pq * pq * c * rs * rs;
  }
  cudl::Conv2dParams params;
  cudl::Tensor x, w, y;
  double flop = 0;
};

void run_conv(benchmark::State& state, ConvPass pass) {
  guarded(state, [&] {
    ConvCase cc(state);
    for (auto _ : state) {
      if (pass == ConvPass::kForward) {
        backend().conv2d_forward(cc.x, cc.w, cc.params, cc.y);
      } else if (pass == ConvPass::kBackwardData) {
        backend().conv2d_backward_data(cc.y, cc.w, cc.params, cc.x);  // y plays dy, x plays dx
      } else {
        backend().conv2d_backward_filter(cc.x, cc.y, cc.params, cc.w);  // y plays dy, w plays dw
      }
    }
    state.counters["GFLOP/s"] = benchmark::Counter(cc.flop * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  });
}
void BM_Conv2dForward(benchmark::State& state) { run_conv(state, ConvPass::kForward); }
void BM_Conv2dBackwardData(benchmark::State& state) { run_conv(state, ConvPass::kBackwardData); }
void BM_Conv2dBackwardFilter(benchmark::State& state) { run_conv(state, ConvPass::kBackwardFilter); }
BENCHMARK(BM_Conv2dForward)->Apply(ConvShapes);
BENCHMARK(BM_Conv2dBackwardData)->Apply(ConvShapes);
BENCHMARK(BM_Conv2dBackwardFilter)->Apply(ConvShapes);

// Pooling shapes: N, C, H = W, window, stride, pad, average (0: max, 1: average). VGG's 2×2 at
// 32×32, LeNet's 2×2 on 28×28, an overlapping 3×3 stride 2 (ResNet's stem).
void PoolShapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"n", "c", "hw", "win", "stride", "pad", "avg"});
  for (int64_t avg : {0, 1}) {
    b->Args({16, 64, 32, 2, 2, 0, avg});
    b->Args({64, 32, 28, 2, 2, 0, avg});
    b->Args({16, 64, 32, 3, 2, 1, avg});
  }
  b->UseRealTime();
}

struct PoolCase {
  explicit PoolCase(const benchmark::State& state) {
    const int64_t n = state.range(0), c = state.range(1), hw = state.range(2);
    params.mode = state.range(6) ? cudl::PoolMode::kAverage : cudl::PoolMode::kMax;
    params.window_h = params.window_w = state.range(3);
    params.stride_h = params.stride_w = state.range(4);
    params.pad_h = params.pad_w = state.range(5);
    const int64_t pq = cudl::window_output_size(hw, params.window_h, params.stride_h, params.pad_h, 1);
    x = random_tensor({n, c, hw, hw}, 1);
    dx = random_tensor({n, c, hw, hw}, 2);
    y = random_tensor({n, c, pq, pq}, 3);
    dy = random_tensor({n, c, pq, pq}, 4);
  }
  cudl::Pool2dParams params;
  cudl::Tensor x, dx, y, dy;
};

// Bytes: forward reads x and writes y; backward reads x, y and dy and writes dx.
void BM_Pool2dForward(benchmark::State& state) {
  guarded(state, [&] {
    PoolCase pc(state);
    for (auto _ : state) backend().pool2d_forward(pc.x, pc.params, pc.y);
    state.SetBytesProcessed(state.iterations() * 4 * (pc.x.size() + pc.y.size()));
  });
}
void BM_Pool2dBackward(benchmark::State& state) {
  guarded(state, [&] {
    PoolCase pc(state);
    backend().pool2d_forward(pc.x, pc.params, pc.y);
    for (auto _ : state) backend().pool2d_backward(pc.x, pc.y, pc.dy, pc.params, pc.dx);
    state.SetBytesProcessed(state.iterations() * 4 * (2 * pc.x.size() + 2 * pc.y.size()));
  });
}
BENCHMARK(BM_Pool2dForward)->Apply(PoolShapes);
BENCHMARK(BM_Pool2dBackward)->Apply(PoolShapes);

// Inverted dropout over n elements (VGG's 16×4096 dense activations; a 16×64×32×32 feature map):
// reads x, writes y, one Philox draw per element.
void BM_Dropout(benchmark::State& state) {
  guarded(state, [&] {
    cudl::Tensor x = random_tensor({state.range(0)}, 1), y({state.range(0)}, backend());
    uint64_t counter = 0;
    for (auto _ : state) {
      backend().dropout(x, 0.5f, 7, counter, y);
      counter += static_cast<uint64_t>(x.size());
    }
    state.SetBytesProcessed(state.iterations() * 8 * x.size());
    state.SetItemsProcessed(state.iterations() * x.size());
  });
}
BENCHMARK(BM_Dropout)->ArgName("n")->Arg(16 * 4096)->Arg(16 * 64 * 32 * 32)->UseRealTime();

// The convolution's bias + ReLU over N×C×H×W in place (reads and writes y), and the bias
// gradient's per-channel sum (reads x). Args: N, C, H = W.
void BM_ChannelBiasRelu(benchmark::State& state) {
  guarded(state, [&] {
    const int64_t n = state.range(0), c = state.range(1), hw = state.range(2);
    cudl::Tensor y = random_tensor({n, c, hw, hw}, 1), b = random_tensor({c}, 2);
    for (auto _ : state) backend().channel_bias_activation(y, b, cudl::Activation::kRelu);
    state.SetBytesProcessed(state.iterations() * 8 * y.size());
  });
}
void BM_SumChannels(benchmark::State& state) {
  guarded(state, [&] {
    const int64_t n = state.range(0), c = state.range(1), hw = state.range(2);
    cudl::Tensor x = random_tensor({n, c, hw, hw}, 1), out({c}, backend());
    for (auto _ : state) backend().sum_channels(1.0f, x, 0.0f, out);
    state.SetBytesProcessed(state.iterations() * 4 * x.size());
  });
}
void ChannelShapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"n", "c", "hw"})->Args({16, 64, 32})->Args({16, 512, 4})->Args({64, 32, 28})->UseRealTime();
}
BENCHMARK(BM_ChannelBiasRelu)->Apply(ChannelShapes);
BENCHMARK(BM_SumChannels)->Apply(ChannelShapes);

}  // namespace

BENCHMARK_MAIN();

// bench_cuda_primitives' case for the persistent training step (cuda/mlp_step.hpp; issue 17,
// step 3): the 2014 network, 784-800-800-10 at batch 64 in fp32, trained on 46,900 resident rows
// (the 2014 run's training split) for `steps` steps per cooperative launch, timed with CUDA
// events. Counters: us_per_step, and ms_per_epoch for the run's 732 steps, to set beside bench_dbn's
// captured-graph epoch and PyTorch's in the same device run. Data and weights are random (the
// time does not depend on them); the arithmetic is test_cuda_mlp_step's.
//   build/benchmarks/bench_cuda_primitives --benchmark_filter='MlpStep|GridBarrier'
// Each case also profiles one launch: every phase's time per step (draw_us, fwd0_us, ...), and
// BM_CudaGridBarrier times the grid barrier alone.
#include <benchmark/benchmark.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>
#include <vector>

#include "check.hpp"
#include "cudl/cudl.hpp"
#include "cudl/cuda_backend.hpp"
#include "guarded.hpp"
#include "mlp_step.hpp"

namespace {

constexpr int64_t kRows = 46900, kBatch = 64, kStepsPerEpoch = 732;
const int64_t kSizes[] = {784, 800, 800, 10};

// A stream and two timing events, destroyed with it.
struct Timing {
  cudaStream_t stream = nullptr;
  cudaEvent_t start = nullptr, stop = nullptr;
  Timing() {
    CUDL_CUDA_CHECK(cudaStreamCreate(&stream));
    CUDL_CUDA_CHECK(cudaEventCreate(&start));
    CUDL_CUDA_CHECK(cudaEventCreate(&stop));
  }
  ~Timing() {
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    cudaStreamDestroy(stream);
  }
  Timing(const Timing&) = delete;
  Timing& operator=(const Timing&) = delete;

  // Runs launch() once untimed, then once per iteration between the events (manual time);
  // returns the milliseconds of all the timed ones.
  template <typename Launch>
  double loop(benchmark::State& state, Launch launch) {
    launch();
    CUDL_CUDA_CHECK(cudaStreamSynchronize(stream));
    double total_ms = 0.0;
    for (auto _ : state) {
      CUDL_CUDA_CHECK(cudaEventRecord(start, stream));
      launch();
      CUDL_CUDA_CHECK(cudaEventRecord(stop, stream));
      CUDL_CUDA_CHECK(cudaEventSynchronize(stop));
      float ms = 0.0f;
      CUDL_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
      state.SetIterationTime(ms * 1e-3);
      total_ms += ms;
    }
    return total_ms;
  }
};

void BM_CudaMlpStep(benchmark::State& state) {
  const cudl::GpuProbe probe = cudl::probe_gpu();
  if (!probe.usable) return state.SkipWithError(("no usable GPU: " + probe.reason).c_str());
  bench::guarded(state, [&] {
    cudl::CudaBackend gpu{cudl::BackendOptions{}};
    std::vector<cudl::Tensor> keep;  // every buffer, alive for the case
    auto tensor = [&](cudl::Shape shape, float stddev, uint64_t seed) -> float* {
      keep.emplace_back(std::move(shape), gpu);
      gpu.fill_normal(keep.back(), seed, 0.0f, stddev);
      return keep.back().data();
    };
    std::vector<float> labels(static_cast<size_t>(kRows)), stats{0.0f, 0.0f, -1.0f, 0.0f};
    for (int64_t r = 0; r < kRows; ++r) labels[static_cast<size_t>(r)] = static_cast<float>((r * 7) % 10);
    keep.push_back(cudl::Tensor::from_host(labels, {kRows}, gpu));
    const float* y = keep.back().data();
    keep.push_back(cudl::Tensor::from_host(stats, {4}, gpu));
    float* stats_dev = keep.back().data();
    keep.push_back(cudl::Tensor::from_host({0.01f}, {1}, gpu));
    const float* lr = keep.back().data();
    cudl::cuda::mlp_step::Args a;
    a.layers = 3;
    for (int i = 0; i < 3; ++i) {
      cudl::cuda::mlp_step::LayerArgs& l = a.layer[i];
      l.in = kSizes[i];
      l.out = kSizes[i + 1];
      l.act = i < 2 ? cudl::Activation::kRelu : cudl::Activation::kIdentity;
      l.w = tensor({l.in, l.out}, 0.05f, 10 + static_cast<uint64_t>(i));
      l.b = tensor({l.out}, 0.0f, 20);
      l.vw = tensor({l.in, l.out}, 0.0f, 21);
      l.vb = tensor({l.out}, 0.0f, 22);
      l.a = tensor({kBatch, l.out}, 0.0f, 23);
      l.dz = tensor({kBatch, l.out}, 0.0f, 24);
    }
    a.batch = kBatch;
    a.x = tensor({kRows, kSizes[0]}, 1.0f, 1);
    a.y = y;
    a.rows = kRows;
    a.seed = 2014;
    keep.push_back(cudl::make_counter(gpu));
    a.draw = reinterpret_cast<uint64_t*>(keep.back().data());
    keep.push_back(cudl::make_counter(gpu));
    a.step = reinterpret_cast<uint64_t*>(keep.back().data());
    const int phases = cudl::cuda::mlp_step::phases(a.layers);  // the profile's counters, 2 floats each
    keep.push_back(cudl::Tensor({2 * phases}, gpu));
    gpu.fill(keep.back(), 0.0f);
    auto* ns = reinterpret_cast<unsigned long long*>(keep.back().data());
    a.xb = tensor({kBatch, kSizes[0]}, 0.0f, 25);
    a.yb = tensor({kBatch}, 0.0f, 26);
    a.stats = stats_dev;
    a.loss.max_loss = 1e30f;
    a.lr = lr;
    a.momentum = 0.9f;
    a.grad_scale = 1.0f / kBatch;
    a.l2 = 1e-4f;
    a.steps = state.range(0);
    gpu.synchronize();
    Timing timing;
    const cudaStream_t stream = timing.stream;
    {
      cudl::cuda::MlpStep step(stream);
      const double total_ms = timing.loop(state, [&] { step.run(a); });  // its first launch: scratch, caches
      const double us_per_step = 1e3 * total_ms / static_cast<double>(state.iterations() * a.steps);
      state.counters["us_per_step"] = us_per_step;
      state.counters["ms_per_epoch"] = us_per_step * kStepsPerEpoch * 1e-3;
      // One more launch, profiled: each phase's time per step, on block 0, barrier end to barrier end.
      cudl::cuda::mlp_step::Args profiled = a;
      profiled.phase_ns = ns;
      step.run(profiled);
      std::vector<unsigned long long> host(static_cast<size_t>(phases));
      CUDL_CUDA_CHECK(cudaMemcpyAsync(host.data(), ns, sizeof(unsigned long long) * host.size(),
                                      cudaMemcpyDeviceToHost, stream));
      CUDL_CUDA_CHECK(cudaStreamSynchronize(stream));
      const char* names[] = {"draw", "fwd0", "fwd1", "fwd2", "loss", "back2", "back1", "back0"};
      for (int p = 0; p < phases; ++p)
        state.counters[std::string(names[p]) + "_us"] = 1e-3 * static_cast<double>(host[static_cast<size_t>(p)]) /
                                                        static_cast<double>(a.steps);
      state.SetLabel(std::to_string(step.blocks()) + " blocks (" + std::to_string(step.blocks_per_sm()) +
                     " per SM), persistent fp32");
    }
  });
}

// The grid barrier alone on the step's grid (2 blocks per SM): us_per_barrier, the floor of each
// of the step's 8 phases.
void BM_CudaGridBarrier(benchmark::State& state) {
  const cudl::GpuProbe probe = cudl::probe_gpu();
  if (!probe.usable) return state.SkipWithError(("no usable GPU: " + probe.reason).c_str());
  bench::guarded(state, [&] {
    Timing timing;
    {
      cudl::cuda::MlpStep step(timing.stream);
      const int64_t rounds = state.range(0);
      const double total_ms = timing.loop(state, [&] { step.run_barriers(rounds); });
      state.counters["us_per_barrier"] = 1e3 * total_ms / static_cast<double>(state.iterations() * rounds);
      state.SetLabel(std::to_string(step.blocks()) + " blocks");
    }
  });
}
BENCHMARK(BM_CudaGridBarrier)->ArgName("rounds")->Arg(1000)->UseManualTime()->Unit(benchmark::kMillisecond);

BENCHMARK(BM_CudaMlpStep)
    ->ArgName("steps")
    ->Arg(1)
    ->Arg(kStepsPerEpoch)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace

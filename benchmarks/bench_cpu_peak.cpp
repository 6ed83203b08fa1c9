// What the CPU itself can do, beside bench_primitives' products: the FMA peak of one core (12
// independent chains of 8- or 16-lane FMAs, as many as a register kernel keeps in flight) and, with
// 2 threads, of two cores at once. Issue 16's "dense FMA floor" of an epoch is its 0.300 TFLOP of
// products at this rate. Built into bench_primitives:
//   build/benchmarks/bench_primitives --benchmark_filter=FmaPeak
#include <benchmark/benchmark.h>
#include <immintrin.h>

#include <cstdint>

namespace {

__attribute__((target("avx2,fma"), noinline)) float fma_chains_256(int64_t n) {
  __m256 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(static_cast<float>(i) * 1e-3f);
  const __m256 mul = _mm256_set1_ps(0.999999f), add = _mm256_set1_ps(1e-7f);
  for (int64_t s = 0; s < n; ++s) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(acc[i], mul, add);
  }
  __m256 sum = acc[0];
  for (int i = 1; i < 12; ++i) sum = _mm256_add_ps(sum, acc[i]);
  return _mm256_cvtss_f32(sum);
}

__attribute__((target("avx512f"), noinline)) float fma_chains_512(int64_t n) {
  __m512 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i) * 1e-3f);
  const __m512 mul = _mm512_set1_ps(0.999999f), add = _mm512_set1_ps(1e-7f);
  for (int64_t s = 0; s < n; ++s) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) acc[i] = _mm512_fmadd_ps(acc[i], mul, add);
  }
  __m512 sum = acc[0];
  for (int i = 1; i < 12; ++i) sum = _mm512_add_ps(sum, acc[i]);
  float lanes[16];
  _mm512_storeu_ps(lanes, sum);  // (not _mm512_reduce_add_ps: GCC 12 warns inside it)
  return lanes[0];
}

// Arg: the vector width in bits (256: AVX2 + FMA, 512: AVX-512 F). GFLOP/s: all threads together.
void BM_FmaPeak(benchmark::State& state) {
  const int bits = static_cast<int>(state.range(0));
  __builtin_cpu_init();
  const bool has = bits == 512 ? __builtin_cpu_supports("avx512f")
                                : __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (!has) {
    state.SkipWithError(bits == 512 ? "this CPU has no AVX-512 F" : "this CPU has no AVX2 and FMA");
    return;
  }
  constexpr int64_t kSteps = 1 << 20;
  for (auto _ : state) {
    int64_t steps = kSteps;
    benchmark::DoNotOptimize(steps);  // else the compiler calls the (pure) function once, outside the loop
    benchmark::DoNotOptimize(bits == 512 ? fma_chains_512(steps) : fma_chains_256(steps));
  }
  const double flops = 12.0 * (bits / 32) * 2 * kSteps;
  // The rate is over all threads' iterations already: each thread's copy is that total, not a part.
  state.counters["GFLOP/s"] = benchmark::Counter(
      flops / 1e9, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kAvgThreads);
}
BENCHMARK(BM_FmaPeak)->ArgName("bits")->Arg(256)->Arg(512)->Threads(1)->Threads(2)->UseRealTime();

}  // namespace

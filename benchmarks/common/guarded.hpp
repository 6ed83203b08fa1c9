#pragma once
// Google Benchmark helper shared by bench_primitives and bench_cuda_primitives.
#include <benchmark/benchmark.h>

#include <exception>

namespace bench {

// Runs fn; a primitive that throws (a cuDNN error, a bad shape) reports the case as an error
// and the program goes on to the next case instead of crashing.
template <class Fn>
void guarded(benchmark::State& state, Fn fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}

}  // namespace bench

#pragma once
// What bench_cuda_primitives reports beside a convolution's effective rate: the precision's
// arithmetic peak on this GPU and the cuDNN engine that ran (issue 20: name the algorithm behind
// any rate above the peak).
#include <cuda_runtime.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "cudl/precision.hpp"

namespace bench {

// The arithmetic upper bound of a precision on this GPU, TFLOP/s: SMs × the highest SM clock ×
// dense FLOPs per clock per SM, known here for compute capability 9.x (Hopper: 256 in fp32 on the
// CUDA cores, 2048 in tf32 and 4096 in bf16 on the tensor cores; the H200's fp32 is 66.9 TFLOP/s
// at 1.98 GHz). 0 where unknown. An effective rate above it means fewer multiplications than a
// direct convolution (FFT, Winograd) or, in fp32, arithmetic that is not fp32.
inline double peak_tflops(cudl::Precision precision) {
  int device = 0, major = 0, sms = 0, khz = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess ||
      cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess ||
      cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, device) != cudaSuccess || major != 9)
    return 0.0;
  const double per_clock = precision == cudl::Precision::kFp32   ? 256
                           : precision == cudl::Precision::kTf32 ? 2048
                                                                 : 4096;
  return sms * (khz * 1e3) * per_clock * 1e-12;
}

// The cuDNN engine of the plan a case made, "engine 17 [winograd]", from the backend's plan lines
// ("<what>: <engine> (<how>), workspace ..."): the lines that appeared in the case's first run
// (Google Benchmark runs a case more than once; the plan is made in the first).
inline std::string engine_of_case(const std::string& name, const std::vector<std::string>& before,
                                  const std::vector<std::string>& after) {
  static std::map<std::string, std::string> engines;
  std::string& engine = engines[name];
  for (const std::string& line : after) {
    if (!engine.empty() || std::find(before.begin(), before.end(), line) != before.end()) continue;
    const size_t from = line.find(": "), to = line.find(" (", from);
    if (from != std::string::npos && to != std::string::npos) engine = line.substr(from + 2, to - from - 2);
  }
  return engine.empty() ? "engine not found in the plan list" : engine;
}

}  // namespace bench

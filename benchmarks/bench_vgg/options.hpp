#pragma once
// bench_vgg's command line.
#include <cstdint>
#include <optional>
#include <string>

#include "cudl/device.hpp"

namespace bench {

struct VggOptions {
  std::string device = "cpu";  // cpu | gpu
  std::string json;            // --json FILE
  cudl::Precision precision = cudl::Precision::kFp32;  // asked for; the backend says what it runs
  cudl::ConvDeterminism conv_determinism = cudl::ConvDeterminism::kAny;  // GPU convolutions
  int64_t size = 0;            // input S×S; 0: 224 on the GPU, 32 on the CPU
  int64_t batch = 0;           // 0: 64 on the GPU, 16 on the CPU
  int64_t classes = 1000;
  int warmup = -1;             // untimed iterations first; -1: 5 on the GPU, 2 on the CPU
  int iters = 0;               // timed iterations; 0: 20 on the GPU, 10 on the CPU
  int threads = 0;             // CPU threads (0: all available)
  uint64_t seed = 2014;        // synthetic data and initial weights
  float learn_rate = 1e-4f;    // GdbnNesterov, as the 2014 preset uses it
  float momentum = 0.9f;
  float l2 = 5e-4f;            // the VGG paper's weight decay
  bool layers = false;         // --layers: a per-layer profile over --iters more steps
};

// Parses argv into *o and fills the device-dependent defaults. Returns nothing when the run goes
// on, else the status to exit with: 0 after --help or --version, 2 after printing
// "bench_vgg: MESSAGE" (a bad flag or value).
std::optional<int> parse_vgg_options(int argc, char** argv, VggOptions* o);

}  // namespace bench

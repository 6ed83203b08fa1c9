#pragma once
// CPU-vs-CUDA parity of every Backend primitive: CpuBackend is the reference and CudaBackend
// must agree with it on the same random inputs, at sizes that leave ragged tails in a block
// (1, 7, 255, 256, 257, 100003) and one that needs several grid-stride passes (3,000,001), and
// at the shapes of the 784-800-800-10 network. Every GPU output that the primitive writes (not
// updates in place) is first filled with NaN, so an element it forgets to write fails.
// Tolerances follow tolerance.hpp's rule |gpu − cpu| ≤ abs + rel·|cpu|. Every test skips, with
// the probe's reason, where no GPU can be used.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "cudl/cpu_backend.hpp"
#include "cudl/cuda_backend.hpp"
#include "cudl/device.hpp"
#include "cudl/error.hpp"
#include "test_support.hpp"
#include "tolerance.hpp"

using namespace cudl;
using cudl::testing::close;
using cudl::testing::error_of;
using cudl::testing::expect_all_close;
using cudl::testing::fresh_loss_stats;
using cudl::testing::uniform_values;
using ::testing::HasSubstr;

namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// Element counts for the elementwise primitives.
const int64_t kSizes[] = {1, 7, 255, 256, 257, 100003, 3000001};

struct Tol {
  double abs, rel;
};
// The same float operations in the same order (a copy, one add, a comparison): bit-identical.
constexpr Tol kExact{0.0, 0.0};
// A few float operations whose rounding may differ (FMA contraction, association) or a libm call
// (CUDA's expf/logf/cosf are within 2 ulp, glibc's within 1). Values here are at most ~6 in
// magnitude, so a few ulp is well under these bounds; a wrong formula is far outside them.
constexpr Tol kUlps{2e-6, 1e-5};

// n values that are multiples of 1/64 in [-1, 1]. Any sum of up to 2^17 of them is an exact
// float (23 significant bits), so column sums agree exactly whatever the summation order.
inline std::vector<float> quantized_values(uint64_t seed, int64_t n) {
  std::vector<float> v = uniform_values(seed, n, -64.0f, 64.0f);
  for (float& x : v) x = std::round(x) / 64.0f;
  return v;
}

// n class indices in [0, classes), stored as floats.
inline std::vector<float> label_values(uint64_t seed, int64_t n, int64_t classes) {
  std::vector<float> v = uniform_values(seed, n, 0.0f, static_cast<float>(classes));
  for (float& x : v) x = std::min(std::floor(x), static_cast<float>(classes - 1));
  return v;
}

inline std::string str(const char* what, int64_t a, int64_t b = -1, int64_t c = -1) {
  std::string s = std::string(what) + " " + std::to_string(a);
  if (b >= 0) s += "x" + std::to_string(b);
  if (c >= 0) s += "x" + std::to_string(c);
  return s;
}

// Backend::gemm always passes row strides equal to the column counts, so operands with longer
// rows are reached through do_gemm, which is protected: a pointer to it taken in a class derived
// from Backend calls each backend's own do_gemm (a virtual call) with any strides. The class is
// never instantiated.
struct DoGemm : Backend {
  static constexpr auto pointer() { return &DoGemm::do_gemm; }
};

class CudaParity : public ::testing::Test {
 protected:
  void SetUp() override {
    const GpuProbe probe = probe_gpu();
    if (!probe.usable) GTEST_SKIP() << "no usable GPU: " << probe.reason;
    gpu_ = std::make_unique<CudaBackend>(BackendOptions{});
  }

  CudaBackend& gpu() { return *gpu_; }

  // One tensor on each backend.
  struct Pair {
    Tensor cpu, gpu;
  };
  // The same host values on both backends.
  Pair both(const std::vector<float>& values, const Shape& shape) {
    return {Tensor::from_host(values, shape, cpu), Tensor::from_host(values, shape, gpu())};
  }
  // An output on both backends, filled with NaN by each backend.
  Pair poisoned(const Shape& shape) {
    Pair p{Tensor(shape, cpu), Tensor(shape, gpu())};
    cpu.fill(p.cpu, kNaN);
    gpu().fill(p.gpu, kNaN);
    return p;
  }
  static void expect_match(const Pair& p, Tol tol, const std::string& what) {
    expect_all_close(p.gpu.to_vector(), p.cpu.to_vector(), tol.abs, tol.rel, what);
  }

  CpuBackend cpu{2};
  std::unique_ptr<CudaBackend> gpu_;  // set by SetUp when a GPU is usable
};

}  // namespace

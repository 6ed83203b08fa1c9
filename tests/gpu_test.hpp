#pragma once
// What the GPU training tests share: a fixture that skips, with the probe's reason, where no GPU
// can be used, and holds an fp32 CudaBackend beside a CpuBackend (all threads); and the relative
// L2 difference of two parameter vectors.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include "cudl/cpu_backend.hpp"
#include "cudl/cuda_backend.hpp"
#include "cudl/device.hpp"

namespace cudl::testing {

class GpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const GpuProbe probe = probe_gpu();
    if (!probe.usable) GTEST_SKIP() << "no usable GPU: " << probe.reason;
    gpu_ = std::make_unique<CudaBackend>(BackendOptions{});  // Precision::kFp32
  }
  CudaBackend& gpu() { return *gpu_; }

  CpuBackend cpu;  // all threads
  std::unique_ptr<CudaBackend> gpu_;
};

// ‖a − b‖ / ‖b‖ (infinite when the sizes differ or b is zero).
inline double relative_l2(const std::vector<float>& a, const std::vector<float>& b) {
  double diff2 = 0.0, ref2 = 0.0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    diff2 += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
    ref2 += static_cast<double>(b[i]) * b[i];
  }
  return a.size() == b.size() && ref2 > 0.0 ? std::sqrt(diff2 / ref2) : std::numeric_limits<double>::infinity();
}

}  // namespace cudl::testing

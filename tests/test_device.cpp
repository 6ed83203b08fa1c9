// Device selection: asking for a GPU where none can be used is one clear error, never a crash.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cudl/device.hpp"
#include "cudl/error.hpp"

using namespace cudl;
using ::testing::HasSubstr;

TEST(Device, CpuBackendIsAlwaysAvailable) {
  BackendOptions one_thread;
  one_thread.threads = 1;
  const auto backend = make_backend(Device::kCpu, one_thread);
  EXPECT_EQ(backend->device(), Device::kCpu);
  EXPECT_THAT(backend->describe(), HasSubstr("1 thread"));
}

TEST(Device, GpuRequestWithoutUsableGpuSaysWhy) {
  const GpuProbe probe = probe_gpu();
  if (probe.usable) GTEST_SKIP() << "a usable GPU is present (" << probe.description << "); this test is for machines without one";
  EXPECT_FALSE(probe.reason.empty());
  if (!built_with_cuda()) {
    EXPECT_THAT(probe.reason, HasSubstr("no CUDA backend"));
  }
  try {
    make_backend(Device::kCuda);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("cannot use the GPU: " + probe.reason));
  }
}

TEST(Device, ProbeDescribesAUsableGpu) {
  const GpuProbe probe = probe_gpu();
  if (!probe.usable) GTEST_SKIP() << "no usable GPU: " << probe.reason;
  EXPECT_THAT(probe.description, HasSubstr("sm_"));
  EXPECT_TRUE(probe.reason.empty());
}

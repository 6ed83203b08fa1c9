// Device selection: asking for a GPU where none can be used is one clear error, never a crash.
#include <dlfcn.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>

#include "cudl/device.hpp"
#include "cudl/error.hpp"
#include "cudl/version.hpp"
#include "plugin/cuda_plugin.hpp"
#include "test_support.hpp"

using namespace cudl;
using ::testing::EndsWith;
using ::testing::HasSubstr;

TEST(Device, CpuBackendIsAlwaysAvailable) {
  BackendOptions one_thread;
  one_thread.threads = 1;
  const auto backend = make_backend(Device::kCpu, one_thread);
  EXPECT_EQ(backend->device(), Device::kCpu);
  EXPECT_THAT(backend->describe(), HasSubstr("1 thread"));
}

// The GPU's choice of kernels for its small products: auto unless asked (BackendOptions), by name.
TEST(Device, GpuGemmKernelsAreAutoUnlessAskedAndHaveNames) {
  EXPECT_EQ(BackendOptions{}.gpu_gemm_kernels, GpuGemmKernels::kAuto);
  EXPECT_STREQ(to_string(GpuGemmKernels::kAuto), "auto");
  EXPECT_STREQ(to_string(GpuGemmKernels::kCudl), "cudl");
  EXPECT_STREQ(to_string(GpuGemmKernels::kLibrary), "library");
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

// The CUDA backend is a plugin, libcudl_cuda.so, loaded on first use (src/plugin/cuda_plugin.cpp).
// Every way it can be missing or wrong is one sentence, never a loader error.
TEST(CudaPlugin, IsLookedForBesideLibcudlOrWhereTheEnvironmentSays) {
  {
    cudl::testing::ScopedEnv unset("CUDL_CUDA_PLUGIN", std::nullopt);
    EXPECT_THAT(detail::cuda_plugin_path(), EndsWith("/libcudl_cuda.so"));
  }
  cudl::testing::ScopedEnv elsewhere("CUDL_CUDA_PLUGIN", "/opt/elsewhere/libcudl_cuda.so");
  EXPECT_EQ(detail::cuda_plugin_path(), "/opt/elsewhere/libcudl_cuda.so");
}

TEST(CudaPlugin, AMissingFileIsNamed) {
  const detail::LoadedCudaPlugin p = detail::load_cuda_plugin("/nonexistent/libcudl_cuda.so");
  EXPECT_EQ(p.api, nullptr);
  EXPECT_THAT(p.reason, HasSubstr("cudl's CUDA plugin is not installed: there is no /nonexistent/libcudl_cuda.so"));
}

TEST(CudaPlugin, ALibraryThatIsNoPluginIsRefused) {
  Dl_info info{};
  ASSERT_NE(dladdr(reinterpret_cast<void*>(&zlibVersion), &info), 0);
  const detail::LoadedCudaPlugin p = detail::load_cuda_plugin(info.dli_fname);
  EXPECT_EQ(p.api, nullptr);
  EXPECT_THAT(p.reason, HasSubstr("is not a cudl CUDA plugin: it has no cudl_cuda_plugin_v1 entry point"));
}

TEST(CudaPlugin, AFileThatIsNoLibraryIsRefusedWithTheLoadersWords) {
  const std::string path = ::testing::TempDir() + "not_a_library.so";
  std::FILE* f = std::fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fputs("just text\n", f);
  std::fclose(f);
  const detail::LoadedCudaPlugin p = detail::load_cuda_plugin(path);
  std::remove(path.c_str());
  EXPECT_EQ(p.api, nullptr);
  EXPECT_THAT(p.reason, HasSubstr("cudl's CUDA plugin " + path + " cannot be loaded: "));
}

TEST(CudaPlugin, APluginOfAnotherVersionIsRefusedNamingBoth) {
  const detail::LoadedCudaPlugin p = detail::load_cuda_plugin(CUDL_FAKE_CUDA_PLUGIN);
  EXPECT_EQ(p.api, nullptr);
  EXPECT_THAT(p.reason, HasSubstr("belongs to cudl 9.9.9 (plugin interface " +
                                  std::to_string(detail::kCudaPluginAbi + 1) + "), but this libcudl is cudl " +
                                  CUDL_VERSION_STRING));
  EXPECT_THAT(p.reason, HasSubstr("install libcudl and libcudl_cuda from the same build"));
}

TEST(CudaPlugin, ThisBuildsPluginLoadsWhereItWasBuilt) {
  if (!built_with_cuda()) {
    EXPECT_EQ(detail::cuda_plugin().api, nullptr);
    EXPECT_THAT(detail::cuda_plugin().reason, HasSubstr("this build of cudl has no CUDA backend"));
    return;
  }
  // Built with CUDA: the toolkit's libraries are on this machine, so the plugin must load (it
  // reports on the GPU itself through its probe).
  const detail::LoadedCudaPlugin& p = detail::cuda_plugin();
  ASSERT_NE(p.api, nullptr) << p.reason;
  EXPECT_EQ(std::string(p.api->version), CUDL_VERSION_STRING);
  EXPECT_EQ(p.api->probe().usable, probe_gpu().usable);
}

#pragma once
// The interface between libcudl and its CUDA plugin, libcudl_cuda.so (cuda/plugin.cpp), which
// libcudl loads with dlopen the first time a GPU is asked for (src/plugin/cuda_plugin.cpp). The
// core library and a consumer's binary therefore need neither the CUDA toolkit nor a driver; the
// plugin needs the CUDA runtime, cuBLAS and cuDNN, and links against libcudl.so for Backend,
// Tensor and Error (so there is one copy of each, and exceptions and RTTI cross the boundary).
//
// The plugin exports one C symbol, kCudaPluginEntry, returning a pointer to a static
// CudaPluginApi. libcudl reads `abi` and `version` first, and uses nothing else unless both equal
// its own: the C++ types in the rest of the struct are only compatible between a core and a
// plugin built from the same sources, by the same compiler.
#include <memory>
#include <string>
#include <vector>

#include "cudl/backend.hpp"
#include "cudl/device.hpp"

namespace cudl::detail {

// Raise when CudaPluginApi or a type it passes changes (BackendOptions, GpuProbe, Backend's
// members): the version check alone cannot tell two builds of one unreleased version apart.
// 2: BackendOptions::conv_determinism. 3: Backend::host_staging and the base class's buffer for it.
// 4: do_bias_activation_sample takes a counter's address (RBM steps captured). 5: do_squared_distance.
// 6: Backend::TimeMark, create_time_mark, mark, elapsed_ms. 7: do_gemm_sum_rows.
// 8: Backend::fused_mlp_refusal, fused_mlp_steps (FusedMlpArgs). 9: FusedMlpLayer::gw, gb.
// 10: BackendOptions::gpu_gemm_kernels.
inline constexpr int kCudaPluginAbi = 10;
inline constexpr const char* kCudaPluginEntry = "cudl_cuda_plugin_v1";
// The plugin's file name, looked for beside libcudl.so (or given by $CUDL_CUDA_PLUGIN).
inline constexpr const char* kCudaPluginFile = "libcudl_cuda.so";

struct CudaPluginApi {
  int abi;              // kCudaPluginAbi of the plugin's build
  const char* version;  // CUDL_VERSION_STRING of the plugin's build
  GpuProbe (*probe)();  // never throws
  std::unique_ptr<Backend> (*make_backend)(const BackendOptions& options);  // throws cudl::Error
  std::vector<std::string> (*convolution_plans)(const Backend& backend);   // empty for a non-CUDA backend
};

using CudaPluginEntry = const CudaPluginApi* (*)();

}  // namespace cudl::detail

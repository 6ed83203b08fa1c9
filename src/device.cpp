#include "cudl/device.hpp"

#include "cudl/cpu_backend.hpp"
#include "cudl/error.hpp"
#include "cudl/version.hpp"  // CUDL_HAVE_CUDA: 1 in a build with the CUDA backend (the plugin)
#include "plugin/cuda_plugin.hpp"

namespace cudl {

// The GPU is reached only through the plugin, libcudl_cuda.so, loaded on first use
// (plugin/cuda_plugin.cpp): libcudl itself needs nothing of CUDA.
bool built_with_cuda() { return CUDL_HAVE_CUDA != 0; }

GpuProbe probe_gpu() {
  const detail::LoadedCudaPlugin& plugin = detail::cuda_plugin();
  if (plugin.api == nullptr) {
    GpuProbe p;
    p.reason = plugin.reason;
    return p;
  }
  return plugin.api->probe();
}

const char* to_string(ConvSearch search) { return search == ConvSearch::kFastest ? "fastest" : "precise"; }

const char* to_string(ConvDeterminism determinism) {
  return determinism == ConvDeterminism::kAny ? "any" : "deterministic";
}

const char* to_string(GpuGemmKernels kernels) {
  switch (kernels) {
    case GpuGemmKernels::kCudl:
      return "cudl";
    case GpuGemmKernels::kLibrary:
      return "library";
    case GpuGemmKernels::kAuto:
      break;
  }
  return "auto";
}

std::unique_ptr<Backend> make_backend(Device device, const BackendOptions& options) {
  if (device == Device::kCpu) return std::make_unique<CpuBackend>(options.threads, options.precision);
  const detail::LoadedCudaPlugin& plugin = detail::cuda_plugin();
  if (plugin.api == nullptr) throw Error("cannot use the GPU: " + plugin.reason);
  return plugin.api->make_backend(options);
}

std::vector<std::string> convolution_plans(const Backend& backend) {
  if (backend.device() != Device::kCuda) return {};
  const detail::LoadedCudaPlugin& plugin = detail::cuda_plugin();
  return plugin.api == nullptr ? std::vector<std::string>{} : plugin.api->convolution_plans(backend);
}

}  // namespace cudl

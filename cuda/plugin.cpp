// The entry point of libcudl_cuda.so, the CUDA backend as a plugin: libcudl finds it with dlsym
// (src/plugin/cuda_plugin.cpp) and checks abi and version before it uses anything else.
#include "cudl/cuda_backend.hpp"
#include "cudl/version.hpp"
#include "plugin/cuda_plugin_abi.hpp"

namespace cudl {
GpuProbe probe_cuda_runtime();  // probe.cu
}

namespace {

std::unique_ptr<cudl::Backend> make(const cudl::BackendOptions& options) {
  return std::make_unique<cudl::CudaBackend>(options);
}

std::vector<std::string> plans(const cudl::Backend& backend) {
  const auto* gpu = dynamic_cast<const cudl::CudaBackend*>(&backend);
  return gpu == nullptr ? std::vector<std::string>{} : gpu->convolution_plans();
}

const cudl::detail::CudaPluginApi kApi{cudl::detail::kCudaPluginAbi, CUDL_VERSION_STRING, &cudl::probe_cuda_runtime,
                                       &make, &plans};

}  // namespace

// The name is cudl::detail::kCudaPluginEntry; extern "C", so dlsym finds it unmangled.
extern "C" __attribute__((visibility("default"))) const cudl::detail::CudaPluginApi* cudl_cuda_plugin_v1() {
  return &kApi;
}

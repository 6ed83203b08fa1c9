// A stand-in for libcudl_cuda.so that belongs to another cudl: its entry point answers with another
// plugin interface and version. test_device checks that libcudl refuses it, naming both versions,
// and never calls into it.
#include "plugin/cuda_plugin_abi.hpp"

namespace {
const cudl::detail::CudaPluginApi kOther{cudl::detail::kCudaPluginAbi + 1, "9.9.9", nullptr, nullptr, nullptr};
}  // namespace

extern "C" __attribute__((visibility("default"))) const cudl::detail::CudaPluginApi* cudl_cuda_plugin_v1() {
  return &kOther;
}

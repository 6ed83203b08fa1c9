// Finds out whether a CUDA GPU is usable, in words a user can act on. Never throws.
#include <cuda_runtime.h>

#include <string>

#include "cudl/device.hpp"

namespace cudl {
namespace {
std::string version_string(int v) { return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10); }
}  // namespace

GpuProbe probe_cuda_runtime() {
  GpuProbe p;
  int runtime = 0, driver = 0;
  cudaRuntimeGetVersion(&runtime);
  cudaDriverGetVersion(&driver);
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (driver == 0) {
    p.reason = "no NVIDIA driver is installed on this machine (libcuda was not found), so there is no usable GPU";
    return p;
  }
  // A driver older than the runtime may still run it (CUDA's minor-version compatibility within a
  // major version), so the versions are not compared here: the runtime itself says when it cannot.
  if (err == cudaErrorInsufficientDriver || err == cudaErrorSystemDriverMismatch ||
      err == cudaErrorCompatNotSupportedOnDevice) {
    p.reason = "the NVIDIA driver (which supports CUDA " + version_string(driver) + ") cannot run cudl's CUDA " +
               version_string(runtime) + " runtime (" + cudaGetErrorName(err) + ": " + cudaGetErrorString(err) +
               "); update the driver";
    return p;
  }
  if (err == cudaErrorNoDevice || (err == cudaSuccess && count == 0)) {
    p.reason = "no CUDA GPU is present on this machine";
    return p;
  }
  if (err != cudaSuccess) {
    p.reason = std::string("the CUDA runtime could not enumerate GPUs: ") + cudaGetErrorString(err);
    return p;
  }
  cudaDeviceProp prop{};
  const cudaError_t perr = cudaGetDeviceProperties(&prop, 0);
  if (perr != cudaSuccess) {
    p.reason = std::string("the CUDA runtime could not query GPU 0: ") + cudaGetErrorString(perr);
    return p;
  }
  p.usable = true;
  p.description = std::string(prop.name) + " (sm_" + std::to_string(prop.major) + std::to_string(prop.minor) +
                  ", driver " + version_string(driver) + ", runtime " + version_string(runtime) + ")";
  return p;
}

}  // namespace cudl

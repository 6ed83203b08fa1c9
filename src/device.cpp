#include "cudl/device.hpp"

#include "cudl/cpu_backend.hpp"
#include "cudl/version.hpp"  // CUDL_HAVE_CUDA: 1 in a build with the CUDA backend
#if CUDL_HAVE_CUDA
#include "cudl/cuda_backend.hpp"
#endif
#include "cudl/error.hpp"

namespace cudl {

#if CUDL_HAVE_CUDA
GpuProbe probe_cuda_runtime();  // cuda/probe.cu
bool built_with_cuda() { return true; }
GpuProbe probe_gpu() { return probe_cuda_runtime(); }
#else
bool built_with_cuda() { return false; }
GpuProbe probe_gpu() {
  GpuProbe p;
  p.reason =
      "this build of cudl has no CUDA backend: reconfigure with -DCUDL_CUDA=ON on a machine with the CUDA "
      "toolkit (nvcc, cuBLAS)";
  return p;
}
#endif

const char* to_string(Precision precision) { return precision == Precision::kFp32 ? "fp32" : "tf32"; }
const char* to_string(ConvSearch search) { return search == ConvSearch::kFastest ? "fastest" : "precise"; }

std::unique_ptr<Backend> make_backend(Device device, const BackendOptions& options) {
  if (device == Device::kCpu) return std::make_unique<CpuBackend>(options.threads);
#if CUDL_HAVE_CUDA
  return std::make_unique<CudaBackend>(options);
#else
  throw Error("cannot use the GPU: " + probe_gpu().reason);
#endif
}

std::vector<std::string> convolution_plans(const Backend& backend) {
#if CUDL_HAVE_CUDA
  if (const auto* gpu = dynamic_cast<const CudaBackend*>(&backend)) return gpu->convolution_plans();
#endif
  (void)backend;
  return {};
}

}  // namespace cudl

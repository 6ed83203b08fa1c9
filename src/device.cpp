#include "cudl/device.hpp"

#include "cudl/cpu_backend.hpp"
#include "cudl/error.hpp"

namespace cudl {

#if defined(CUDL_HAVE_CUDA)
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

std::unique_ptr<Backend> make_backend(Device device, int threads) {
  if (device == Device::kCpu) return std::make_unique<CpuBackend>(threads);
  const GpuProbe probe = probe_gpu();
  if (!probe.usable) throw Error("cannot use the GPU: " + probe.reason);
  throw Error("cannot use the GPU " + probe.description +
              ": the CUDA backend is not part of this version of cudl yet (it is the next milestone)");
}

}  // namespace cudl

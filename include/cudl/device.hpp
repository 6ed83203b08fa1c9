#pragma once
// Choosing a device at run time. The CUDA backend is optional at build time (CUDL_CUDA) and
// needs a GPU and a recent enough driver at run time; each absence is reported in one sentence.
#include <memory>
#include <string>

#include "cudl/backend.hpp"

namespace cudl {

// Whether this build of cudl contains the CUDA backend.
bool built_with_cuda();

struct GpuProbe {
  bool usable = false;
  std::string description;  // e.g. "NVIDIA H100 80GB HBM3 (sm_90, driver 13.0, runtime 13.0)"
  std::string reason;       // when not usable: one sentence saying why
};
// Looks for a usable CUDA GPU without creating a backend. Never throws.
GpuProbe probe_gpu();

// A backend for `device`; threads applies to the CPU (0 = all hardware threads). Throws
// cudl::Error with the probe's sentence when a GPU is asked for and cannot be used.
std::unique_ptr<Backend> make_backend(Device device, int threads = 0);

}  // namespace cudl

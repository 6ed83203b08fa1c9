#pragma once
// Choosing a device at run time. The CUDA backend is optional at build time (CUDL_CUDA) and
// needs a GPU and a recent enough driver at run time; each absence is reported in one sentence.
#include <memory>
#include <string>
#include <vector>

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

// Arithmetic of the GPU's products: strict fp32 (the default; results agree with the CPU), or
// tf32 tensor cores (10-bit mantissa inputs, fp32 accumulation) where cuBLAS can use them.
enum class Precision { kFp32, kTf32 };
const char* to_string(Precision precision);

struct BackendOptions {
  int threads = 0;                        // CPU threads (0: all this process may use)
  int gpu = 0;                            // CUDA device ordinal
  Precision precision = Precision::kFp32;  // GPU only
  // GPU convolutions only: whether cuDNN may choose FFT and Winograd engines. They compute in the
  // chosen precision with fewer multiplications, so their rounding error is larger than a direct
  // or implicit-GEMM convolution's (about 1e-3 relative to the output's scale has been seen on a
  // 5×5 filter gradient, against ~1e-6 for the direct form); PyTorch allows them too. false keeps
  // every convolution to the direct arithmetic (CUDL_CUDNN_TRANSFORMS=0 in the environment does
  // the same for every backend of the process).
  bool conv_transforms = true;
};

// The convolution plans a GPU backend has chosen so far, one line each (operation, shape, cuDNN
// engine, how it was chosen, workspace); empty for the CPU backend or before any convolution.
std::vector<std::string> convolution_plans(const Backend& backend);

// A backend for `device`. Throws cudl::Error with the probe's sentence when a GPU is asked for
// and cannot be used.
std::unique_ptr<Backend> make_backend(Device device, const BackendOptions& options = {});

}  // namespace cudl

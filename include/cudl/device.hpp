#pragma once
/// @file
/// Choosing a device at run time. The CUDA backend is optional at build time (CUDL_CUDA) and
/// needs a GPU and a recent enough driver at run time; each absence is reported in one sentence.
#include <memory>
#include <string>
#include <vector>

#include "cudl/backend.hpp"

namespace cudl {

/// Whether this build of cudl has the CUDA backend: the plugin libcudl_cuda.so, which libcudl loads
/// (dlopen) beside itself, or from $CUDL_CUDA_PLUGIN, the first time a GPU is probed or asked for.
bool built_with_cuda();

/// What probe_gpu() found.
struct GpuProbe {
  bool usable = false;      ///< whether make_backend(Device::kCuda) can succeed
  std::string description;  ///< e.g. "NVIDIA H100 80GB HBM3 (sm_90, driver 13.0, runtime 13.0)"
  std::string reason;       ///< when not usable: one sentence saying why
};
/// Looks for a usable CUDA GPU without creating a backend: loads the plugin, then asks the CUDA
/// runtime. Never throws; `reason` says what is missing (the plugin, a CUDA library, the driver, a
/// GPU).
GpuProbe probe_gpu();

/// How the GPU backend chooses each convolution's cuDNN engine (once per operation and shape).
/// Either way only engines that compute in the backend's Precision are considered: never one that
/// down-converts its inputs or reduces in lower precision, and tensor cores only in tf32 and bf16;
/// ConvDeterminism::kDeterministic narrows them further. Ignored by the CPU backend.
enum class ConvSearch {
  /// Every such engine configuration cuDNN proposes (its heuristics' list, then its fallback list;
  /// FFT and Winograd ones too, unless kDeterministic; up to 32, or CUDL_CUDNN_CANDIDATES, past the
  /// first 8 only within 1.5 s of searching, or CUDL_CUDNN_SEARCH_MS) is timed
  /// on the first call and the fastest kept, as PyTorch does with cudnn.benchmark. Some of them
  /// trade accuracy for speed: on an H200 the fastest fp32 filter gradient of a 64×32×14×14 input
  /// and 5×5 filters (cuDNN 9.19 engine 17, which carries no numerical note) is 1.4e-3 off the
  /// exact result, normwise, where a direct convolution is ~1e-6 off.
  kFastest,
  /// The same candidates, timed the same way, but each one's output on the first call is also
  /// compared with a reference engine's (the first of cuDNN's fallback list without FFT or Winograd
  /// notes that the precision and ConvDeterminism admit), and one further than 1e-4 from it,
  /// normwise (5e-3 in tf32, 1e-2 in bf16, whose results are rounded to bf16 and may differ by one
  /// bf16 step), is never chosen: the fastest engine that agrees is kept. Costs one extra run per
  /// candidate, once per shape.
  /// Engines cannot be judged by their notes alone: on the H200 the FFT engine of that filter
  /// gradient agrees with the CPU to fp32 rounding, the un-noted engine 17 does not.
  kPrecise,
};
/// "fastest" or "precise".
const char* to_string(ConvSearch search);

/// Whether the GPU backend's convolutions must give the same bits every time a plan runs on the
/// same inputs. Ignored by the CPU backend, whose convolutions are deterministic already (im2col
/// and its own GEMM: no atomics, the sums in a fixed order).
enum class ConvDeterminism {
  /// Every engine the precision and ConvSearch allow, including those cuDNN notes as
  /// nondeterministic (they may add partial sums in whatever order the GPU's threads finish, so a
  /// gradient may change in its last bits from run to run).
  kAny,
  /// Only direct and implicit-GEMM engines that cuDNN does not note as nondeterministic: engines
  /// noted nondeterministic, FFT or Winograd (any tile size) are rejected, for the forward pass and
  /// both gradients; ConvSearch still chooses among the rest. Stricter than PyTorch's
  /// torch.backends.cudnn.deterministic, which rejects only the nondeterministic ones (FFT and
  /// Winograd engines are deterministic, but their arithmetic is not the direct sum's). Each
  /// (operation, shape) keeps the engine chosen on its first call, so a backend repeats itself bit
  /// for bit; another process may time the candidates differently and choose another engine,
  /// deterministic too but summing in another order (CUDL_CUDNN_AUTOTUNE=0 takes cuDNN's heuristics'
  /// first instead of timing). Deterministic is not exact: on an H200 the un-noted fp32
  /// filter-gradient engine ConvSearch::kFastest describes is admitted (ConvSearch::kPrecise
  /// guards against that).
  kDeterministic,
};
/// "any" or "deterministic".
const char* to_string(ConvDeterminism determinism);

/// Which kernels the GPU backend runs its products of few rows on (a 64-row batch's forward and
/// input-gradient products, small weight gradients). Ignored by the CPU backend.
enum class GpuGemmKernels {
  /// Timed on each shape's first eager call, cudl's own kernel against cuBLAS / cuBLASLt, the
  /// faster kept for the backend's life: fastest, but a timing, so two processes (or two ranks)
  /// may choose differently and so round differently.
  kAuto,
  /// cudl's own kernel wherever it serves the shape, whatever the timing: the same bits in every
  /// process on GPUs of one model (its split depends on the multiprocessor count).
  kCudl,
  /// cuBLAS and cuBLASLt only.
  kLibrary,
};
/// "auto", "cudl" or "library".
const char* to_string(GpuGemmKernels kernels);

/// How make_backend sets up a backend; each field applies to one device only.
struct BackendOptions {
  int threads = 0;                        ///< CPU threads (0: all this process may use)
  int gpu = 0;                            ///< CUDA device ordinal
  Precision precision = Precision::kFp32;  ///< the products' arithmetic (the CPU runs kTf32 as kFp32)
  ConvSearch conv_search = ConvSearch::kFastest;  ///< GPU convolutions only
  ConvDeterminism conv_determinism = ConvDeterminism::kAny;  ///< GPU convolutions only
  /// GPU products of few rows only; $CUDL_GEMM_KERNELS (auto, cudl or library), where set, wins.
  GpuGemmKernels gpu_gemm_kernels = GpuGemmKernels::kAuto;
};

/// The convolution plans a GPU backend has chosen so far, one line each (operation, shape, cuDNN
/// engine with all its numerical notes, e.g. "engine 7 [winograd, winograd-4x4]" or "engine 20
/// [nondeterministic]", its knob choices, how it was chosen and in how many milliseconds,
/// workspace, the engines rejected); empty for the CPU
/// backend or before any convolution.
std::vector<std::string> convolution_plans(const Backend& backend);

/// A backend for `device`: a CpuBackend, or a CudaBackend from the plugin loaded at run time.
/// Throws cudl::Error with the probe's sentence when a GPU is asked for and cannot be used
/// (a build without CUDA, no plugin, driver or GPU).
std::unique_ptr<Backend> make_backend(Device device, const BackendOptions& options = {});

}  // namespace cudl

#pragma once
// Convolutions through cuDNN 9's graph API (the backend descriptors; the legacy
// cudnnConvolution* calls are deprecated in cuDNN 9). One operation graph per (operation,
// shape, tensor data type, pointer alignment), planned once and cached:
//   - the tensors are fp32, or bf16 in Precision::kBf16 (fp32 accumulation either way: the
//     "pseudo-bf16" configuration of PyTorch's autocast); the caller stages bf16 copies;
//   - candidates come from cuDNN's heuristics (mode A's list, then the fallback list, each
//     configuration of an engine and its knobs once, up to 32: CUDL_CUDNN_CANDIDATES; past the
//     first 8 only while the search has taken under 1.5 s: CUDL_CUDNN_SEARCH_MS);
//   - engines are filtered by their numerical notes (rejection() in conv_engines.hpp, tested on
//     engine lists as data): never one that down-converts its inputs or reduces in reduced
//     precision; tensor cores (TF32 for float data, bf16 for bf16 data) only with Precision::kTf32
//     or kBf16; FFT and Winograd engines (fewer multiplications, another rounding error) are
//     allowed unless ConvDeterminism::kDeterministic, which also rejects nondeterministic ones;
//   - when several candidates finalize, each is timed on the real tensors and the fastest kept
//     (one warm-up, then up to three timed runs, one for a candidate over twice the fastest so
//     far; CUDL_CUDNN_AUTOTUNE=0 takes them in the heuristics' order instead);
//   - ConvSearch::kPrecise also compares each candidate's output with a reference engine's (the
//     first fallback engine without FFT/Winograd notes that the filter admits) and never keeps one
//     that disagrees;
//   - the workspace is the backend's (a growable stream-ordered buffer passed in by the caller).
#include <cudnn.h>

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "conv_engines.hpp"
#include "cudl/backend.hpp"
#include "cudl/device.hpp"
#include "cudnn_graph.hpp"

namespace cudl::cuda {

class ConvPlans {
 public:
  // workspace(bytes) returns a device buffer of at least `bytes`, valid in stream order.
  ConvPlans(cudnnHandle_t handle, cudaStream_t stream, Precision precision, ConvSearch search,
            ConvDeterminism determinism, std::function<void*(std::size_t)> workspace);
  ~ConvPlans();
  ConvPlans(const ConvPlans&) = delete;
  ConvPlans& operator=(const ConvPlans&) = delete;

  // Queues `op` with x (N×C×H×W), w (K×C×R×S), y (N×K×P×Q), packed, each of the precision's
  // tensor type (tensor_type: float, or __nv_bfloat16 in kBf16); the operation's output is y for
  // kForward, x for kBackwardData (x then holds dx) and w for kBackwardFilter (dw); it is
  // overwritten (beta = 0).
  void run(ConvOp op, const Conv2dShape& shape, const void* x, const void* w, const void* y);

  // One line per plan (plan_line in conv_engines.hpp): "forward 64×3×224×224 ⋆ 64×3×3×3 (...):
  // engine 12 [no numerical notes] knobs [2=3] (fastest of 5, chosen in 40 ms), workspace 0 B;
  // rejected 3 tensor-core" (", bf16" or ", tf32" after the shape in those precisions), every
  // numerical note of the engine named (Winograd's tile size, nondeterministic, ...), its
  // behaviour notes if any, and its knob choices.
  // CUDL_CUDNN_VERBOSE=1 also prints every engine the heuristics list, why it was rejected, and
  // each candidate's time, to stderr as plans are made.
  std::vector<std::string> describe() const;

 private:
  struct Plan;
  Plan& plan_for(ConvOp op, const Conv2dShape& shape, const void* x, const void* w, const void* y);

  cudnnHandle_t handle_;
  cudaStream_t stream_;
  Precision precision_;
  ConvSearch search_;
  ConvDeterminism determinism_;
  std::function<void*(std::size_t)> workspace_;
  std::map<std::vector<int64_t>, std::unique_ptr<Plan>> plans_;
};

}  // namespace cudl::cuda

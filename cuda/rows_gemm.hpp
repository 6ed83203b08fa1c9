#pragma once
// cudl's own product for few rows (rows_gemm_plan.hpp says what it computes), and the choice,
// per shape, between it and the library's kernels (cuBLAS, cuBLASLt): on the first eager call of
// a shape both are timed on the backend's stream, and the faster one runs from then on, so our
// kernel is used only where it wins. Queued on the stream; capturable once a shape is decided.
#include <cuda_runtime.h>

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "cudl/device.hpp"
#include "rows_gemm_plan.hpp"

namespace cudl::cuda {

// One product as the Backend call gives it; out.ldc is n except for kPlain.
struct RowsGemmCall {
  bool ta = false, tb = false;
  int64_t m = 0, n = 0, k = 0;
  const float* a = nullptr;
  int64_t lda = 0;
  const float* b = nullptr;
  int64_t ldb = 0;
  rows_gemm::Outputs out;
};

class RowsGemm {
 public:
  // BackendOptions::gpu_gemm_kernels: "auto" (timed per shape), "cudl" (ours wherever it serves
  // the shape), "library" (never ours); CUDL_GEMM_KERNELS, where set (auto, cudl or library), wins
  // over the option, and anything else in it is an Error naming the value.
  // *source says which decided: "CUDL_GEMM_KERNELS=cudl" or "BackendOptions::gpu_gemm_kernels = cudl".
  enum class Mode { kAuto, kCudl, kLibrary };
  static Mode mode_for(GpuGemmKernels option, std::string* source);

  // Products on `stream` of a GPU with `sms` multiprocessors; `scratch(bytes)` hands out the
  // backend's stream-ordered scratch (valid until its next call); `source` as mode_for gives it.
  RowsGemm(cudaStream_t stream, int sms, Mode mode, std::string source, std::function<void*(size_t)> scratch);
  ~RowsGemm();
  RowsGemm(const RowsGemm&) = delete;
  RowsGemm& operator=(const RowsGemm&) = delete;

  // Queues `call` with our kernel and returns true where it is chosen for this shape; returns
  // false, having queued nothing, where the library's kernels are to run it. `library(out)` queues
  // the library's way of computing the call with its results written where `out` says (call.out,
  // or scratch in its place: out.c with row stride out.ldc, out.sums and out.a_sums where set):
  // the first eager call of a shape times it against ours, into scratch. A shape first seen while
  // the stream is being captured is left to the library (its choice needs the host).
  bool run(const RowsGemmCall& call, const std::function<void(const rows_gemm::Outputs&)>& library);

  // Our kernel, whatever the choice; `partials` as partial_bytes() says (may be null for one slice).
  void launch(const RowsGemmCall& call, float* partials);
  // The scratch our kernel needs for this call's partial sums (0 when k is one slice).
  size_t partial_bytes(const RowsGemmCall& call) const;
  rows_gemm::Split split(const RowsGemmCall& call) const;

  Mode mode() const { return mode_; }

  // One line per decided shape: the call, our split, both times and the choice.
  std::vector<std::string> describe() const;

 private:
  struct Choice {
    bool ours = false;
    double ours_us = 0.0, library_us = 0.0;  // 0: not timed (Mode::kCudl)
    std::string what;
  };
  using Key = std::array<int64_t, 15>;
  Choice decide(const RowsGemmCall& call, const std::function<void(const rows_gemm::Outputs&)>& library);
  // "NN 64x800x784 +bias relu: 1 x 25 tiles, 10 slices of 80".
  std::string describe_call(const RowsGemmCall& call) const;
  // Microseconds per call of f, the best of three rounds of five calls.
  double time_us(const std::function<void()>& f);

  cudaStream_t stream_;
  int sms_;
  Mode mode_;
  std::string source_;  // what set mode_ (for the choices' lines)
  std::function<void*(size_t)> scratch_;
  // kMaxTiles counters (cudaMalloc'd by the constructor), zero between launches; one launch uses
  // them at a time (the backend's stream, or a graph of it replayed there).
  int* tickets_ = nullptr;
  cudaEvent_t start_ = nullptr, stop_ = nullptr;
  std::map<Key, Choice> choices_;
};

}  // namespace cudl::cuda

#pragma once
// cuBLASLt products whose epilogue adds a bias and applies an activation (Backend::
// gemm_bias_activation on the GPU): one kernel where gemm + bias_activation take two or three.
// A plan (descriptors and algorithm) is made once per shape, transposes, epilogue, compute type,
// leading dimensions and operand alignments, with cuBLASLt's heuristic, and kept; a call with a
// known plan only sets the bias pointer and queues the product, so it neither allocates nor
// synchronises and can be captured in a CUDA graph. Where cuBLASLt has no algorithm, the plan
// says so and the caller runs the two unfused calls.
#include <cublasLt.h>
#include <cuda_runtime.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "cudl/backend.hpp"

namespace cudl::cuda {

struct LtHandleDestroy {
  void operator()(cublasLtHandle_t h) const noexcept { cublasLtDestroy(h); }
};
// The cuBLASLt handle; destroyed (status ignored) with its owner.
using LtHandle = std::unique_ptr<std::remove_pointer_t<cublasLtHandle_t>, LtHandleDestroy>;

class GemmEpilogue {
 public:
  // Creates the cuBLASLt handle. The products run on `stream` and may use `workspace_bytes` of
  // device memory at `workspace` (in stream order; it must outlive this object).
  GemmEpilogue(cudaStream_t stream, void* workspace, size_t workspace_bytes);
  ~GemmEpilogue();
  GemmEpilogue(const GemmEpilogue&) = delete;
  GemmEpilogue& operator=(const GemmEpilogue&) = delete;

  // Row-major C(m×n, row stride n) ← act(alpha·op(A)·op(B) + bias(n)) in one cuBLASLt call, in
  // `compute` (CUBLAS_COMPUTE_32F or CUBLAS_COMPUTE_32F_FAST_TF32), for act identity or ReLU;
  // lda and ldb are row strides, 1 ≤ m, n, k ≤ INT_MAX. Returns false, having queued nothing, when
  // cuBLASLt cannot run it (remembered: it is not asked again).
  bool run(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
           const float* b, int64_t ldb, const float* bias, Activation act, cublasComputeType_t compute, float* c);

  // One line per plan: what it computes, then the algorithm or why cuBLASLt could not run it.
  std::vector<std::string> describe() const;

 private:
  struct Plan;
  // m, n, k, ta, tb, act, compute, lda, ldb, and the alignments of A, B, C and the bias.
  using Key = std::array<int64_t, 13>;
  // The plan for `key`, made on first use.
  Plan& plan(const Key& key, Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, int64_t lda, int64_t ldb,
             const float* bias, Activation act, cublasComputeType_t compute);

  cudaStream_t stream_;
  void* workspace_;
  size_t workspace_bytes_;
  LtHandle handle_;
  std::map<Key, std::unique_ptr<Plan>> plans_;
};

}  // namespace cudl::cuda

#pragma once
// CudaBackend's private state, shared by cuda_backend.cu (memory, products, elementwise
// primitives) and cuda_backend_conv.cpp (convolutions, pooling, dropout).
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <array>
#include <cstddef>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "cudl/cuda_backend.hpp"
#include "cudnn_conv.hpp"
#include "gemm_epilogue.hpp"
#include "mlp_step.hpp"
#include "rows_gemm.hpp"

namespace cudl {

namespace cuda {

// Owners of CudaBackend's resources. Each frees its resource when destroyed, ignoring the status
// (destructors never throw).

// The stream; converts to cudaStream_t, so calls take it as the stream itself. It is synchronised
// before it is destroyed, so the stream-ordered frees queued on it complete first.
struct Stream {
  cudaStream_t handle = nullptr;
  Stream() = default;
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  ~Stream() {
    if (handle == nullptr) return;
    cudaStreamSynchronize(handle);
    cudaStreamDestroy(handle);
  }
  operator cudaStream_t() const { return handle; }
};

struct CublasDestroy {
  void operator()(cublasHandle_t h) const noexcept { cublasDestroy(h); }
};
using CublasHandle = std::unique_ptr<std::remove_pointer_t<cublasHandle_t>, CublasDestroy>;

// Memory from cudaMalloc.
struct DeviceFree {
  void operator()(void* p) const noexcept { cudaFree(p); }
};
using DeviceMemory = std::unique_ptr<void, DeviceFree>;

// Stream-ordered memory (cudaMallocAsync), freed in order on its stream.
struct StreamFree {
  cudaStream_t stream = nullptr;
  void operator()(void* p) const noexcept { cudaFreeAsync(p, stream); }
};
using StreamMemory = std::unique_ptr<void, StreamFree>;

// Stream-ordered scratch that grows on demand (to at least half again its size) and is reused in
// stream order. Its address may be recorded in a CUDA graph, so:
// - growing while the stream is being captured is an Error (the allocation and the free would be
//   recorded too): the work is run once eagerly before it is captured (train() and fit() do so),
//   which sizes the buffer;
// - a buffer handed out during a capture is never freed before the backend (a graph may replay
//   on it): when outgrown it is kept aside; otherwise it is freed in stream order, so work
//   already queued on it still finds it.
class GrowingBuffer {
 public:
  // At least `bytes` of device memory on `stream`, valid in stream order until the next call (the
  // next caller may overwrite it). `what` and `gpu` name it and the device in errors.
  void* get(size_t bytes, cudaStream_t stream, const char* what, const std::string& gpu);

 private:
  StreamMemory memory_;
  size_t bytes_ = 0;
  bool captured_ = false;              // memory_ was handed out while the stream was capturing
  std::vector<StreamMemory> retired_;  // outgrown buffers that a captured graph may still use
};

}  // namespace cuda

// Whatever CudaBackend's constructor created before a throw is freed with impl_: each resource
// has its owner here, and the members are freed in the reverse of their declaration order.
struct CudaBackend::Impl {
  Impl() = default;
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
  // Synchronises the stream, then frees the host staging buffer, the cuDNN plans and handle; the members' own
  // destructors then free the cuBLASLt plans and handle, the cuBLAS handle, the workspaces and
  // last the stream.
  ~Impl();

  int gpu = 0;
  Precision precision = Precision::kFp32;
  ConvSearch conv_search = ConvSearch::kFastest;  // BackendOptions::conv_search
  ConvDeterminism conv_determinism = ConvDeterminism::kAny;  // BackendOptions::conv_determinism
  std::string description;
  cuda::Stream stream;                  // destroyed last
  cuda::Stream copy_stream;             // uploads (Queue::kCopy), created on first use
  cuda::DeviceMemory cublas_workspace;  // outlives the cuBLAS handle that uses it
  static constexpr size_t kCublasWorkspace = size_t{32} << 20;  // cuBLAS's advice for Hopper
  cuda::GrowingBuffer workspace;        // cuDNN's and our kernels' scratch
  cuda::GrowingBuffer staging;          // Precision::kBf16: a product's bf16 operands and its result
  cuda::CublasHandle cublas;
  std::unique_ptr<cuda::GemmEpilogue> epilogue;  // cuBLASLt and its plans; shares cublas_workspace
  std::unique_ptr<cuda::RowsGemm> rows_gemm;     // our products of few rows; uses `workspace`
  std::unique_ptr<cuda::MlpStep> mlp_step;       // the fused training step, made on first use
  std::string mlp_step_unavailable;             // why it cannot be made here (once tried)
  // Created on first use by conv_plans() (the handle costs ~0.1 s), for convolutions; ~Impl
  // destroys the plans, then the handle.
  cudnnHandle_t cudnn = nullptr;
  std::unique_ptr<cuda::ConvPlans> conv;  // cuDNN plans, created with the handle
  void* host_staging = nullptr;           // CudaBackend::host_staging (page-locked); ~Impl frees it
  size_t host_staging_bytes = 0;

  // The stream of a queue (creating the copy stream on first use).
  cudaStream_t queue(Backend::Queue q);
  // A scratch buffer of at least `bytes`, valid in stream order until the next call.
  void* scratch(size_t bytes);
  // Precision::kBf16: three parts of the staging buffer, of the given sizes in bytes, each on a
  // 256-byte boundary (cuBLAS and cuDNN want 16); valid in stream order until the next call.
  std::array<void*, 3> staging_parts(const std::array<size_t, 3>& bytes);
  // do_gemm by cuBLAS in kFp32 and kTf32, its arguments checked and k ≥ 1 (cuda_backend.cu).
  void gemm_cublas(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                   const float* b, int64_t ldb, float beta, float* c, int64_t ldc);
  // do_gemm in Precision::kBf16, its arguments checked and k ≥ 1 (cuda_backend.cu).
  void gemm_bf16(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                 const float* b, int64_t ldb, float beta, float* c, int64_t ldc);
  // A convolution (ConvPlans::run's arguments, in fp32): run as it is in kFp32 and kTf32; in kBf16
  // on bf16 copies of x, w and y, the two inputs rounded into them first and the output widened
  // back to fp32 after (cuda_backend_conv.cpp).
  void convolve(cuda::ConvOp op, const Conv2dShape& shape, const float* x, const float* w, const float* y);
  // The cuDNN plans (creating the cuDNN handle on first use).
  cuda::ConvPlans& conv_plans();
};

}  // namespace cudl

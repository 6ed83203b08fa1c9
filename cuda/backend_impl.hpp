#pragma once
// CudaBackend's private state, shared by cuda_backend.cu (memory, products, elementwise
// primitives) and cuda_backend_conv.cpp (convolutions, pooling, dropout).
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <cstddef>
#include <memory>
#include <string>
#include <type_traits>

#include "cudl/cuda_backend.hpp"
#include "cudnn_conv.hpp"

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

}  // namespace cuda

// Whatever CudaBackend's constructor created before a throw is freed with impl_: each resource
// has its owner here, and the members are freed in the reverse of their declaration order.
struct CudaBackend::Impl {
  Impl() = default;
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
  // Synchronises the stream, then frees the cuDNN plans and handle; the members' own
  // destructors then free the cuBLAS handle, the workspaces and last the stream.
  ~Impl();

  int gpu = 0;
  Precision precision = Precision::kFp32;
  ConvSearch conv_search = ConvSearch::kFastest;  // BackendOptions::conv_search
  std::string description;
  cuda::Stream stream;                  // destroyed last
  cuda::Stream copy_stream;             // uploads (Queue::kCopy), created on first use
  cuda::DeviceMemory cublas_workspace;  // outlives the cuBLAS handle that uses it
  static constexpr size_t kCublasWorkspace = size_t{32} << 20;  // cuBLAS's advice for Hopper
  cuda::StreamMemory workspace;         // cuDNN's and our kernels' scratch, grown on demand
  size_t workspace_bytes = 0;
  cuda::CublasHandle cublas;
  // Created on first use by conv_plans() (the handle costs ~0.1 s), for convolutions; ~Impl
  // destroys the plans, then the handle.
  cudnnHandle_t cudnn = nullptr;
  std::unique_ptr<cuda::ConvPlans> conv;  // cuDNN plans, created with the handle

  // The stream of a queue (creating the copy stream on first use).
  cudaStream_t queue(Backend::Queue q);
  // A scratch buffer of at least `bytes`, valid in stream order until the next call.
  void* scratch(size_t bytes);
  // The cuDNN plans (creating the cuDNN handle on first use).
  cuda::ConvPlans& conv_plans();
};

}  // namespace cudl

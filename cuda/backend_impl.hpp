#pragma once
// CudaBackend's private state, shared by cuda_backend.cu (memory, products, elementwise
// primitives) and cuda_backend_conv.cpp (convolutions, pooling, dropout).
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <cstddef>
#include <memory>
#include <string>

#include "cudl/cuda_backend.hpp"
#include "cudnn_conv.hpp"

namespace cudl {

struct CudaBackend::Impl {
  int gpu = 0;
  Precision precision = Precision::kFp32;
  std::string description;
  cudaStream_t stream = nullptr;
  cublasHandle_t cublas = nullptr;
  void* cublas_workspace = nullptr;
  static constexpr size_t kCublasWorkspace = size_t{32} << 20;  // cuBLAS's advice for Hopper
  cudnnHandle_t cudnn = nullptr;             // created on first use (it costs ~0.1 s); for convolutions
  std::unique_ptr<cuda::ConvPlans> conv;     // cuDNN plans, created with the handle
  void* workspace = nullptr;                 // cuDNN's and our kernels' scratch, grown on demand
  size_t workspace_bytes = 0;

  // A scratch buffer of at least `bytes`, valid in stream order until the next call.
  void* scratch(size_t bytes);
  // The cuDNN plans (creating the cuDNN handle on first use).
  cuda::ConvPlans& conv_plans();
};

}  // namespace cudl

#pragma once
// Status checks for CUDA, cuBLAS and cuDNN calls: a failure throws cudl::Error naming the
// call, file:line and the library's own status text. Kernel launches are checked with
// CUDL_CHECK_LAUNCH() right after the launch.
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <string>

#include "cudl/error.hpp"

namespace cudl::cuda {

[[noreturn]] inline void fail_status(const char* expr, const char* file, int line, const std::string& status) {
  detail::fail(file, line, std::string(expr) + " failed: " + status);
}

// A cuDNN status's name, and cuDNN's own account of the last error where it kept one (which
// operand, attribute or engine knob it objected to: cudnnGetLastErrorString, cuDNN 9).
inline std::string cudnn_status_text(cudnnStatus_t status) {
  std::string text = cudnnGetErrorString(status);
  char last[512] = {};
  cudnnGetLastErrorString(last, sizeof last);
  if (last[0] != '\0') text += std::string(" (cuDNN: ") + last + ")";
  return text;
}

}  // namespace cudl::cuda

#define CUDL_CUDA_CHECK(expr)                                                                             \
  do {                                                                                                    \
    const cudaError_t cudl_status_ = (expr);                                                              \
    if (cudl_status_ != cudaSuccess)                                                                      \
      ::cudl::cuda::fail_status(#expr, __FILE__, __LINE__,                                                \
                                std::string(cudaGetErrorName(cudl_status_)) + ": " + cudaGetErrorString(cudl_status_)); \
  } while (0)

#define CUDL_CUBLAS_CHECK(expr)                                                                      \
  do {                                                                                               \
    const cublasStatus_t cudl_status_ = (expr);                                                      \
    if (cudl_status_ != CUBLAS_STATUS_SUCCESS)                                                       \
      ::cudl::cuda::fail_status(#expr, __FILE__, __LINE__,                                           \
                                std::string(cublasGetStatusName(cudl_status_)) + ": " +              \
                                    cublasGetStatusString(cudl_status_));                            \
  } while (0)

#define CUDL_CUDNN_CHECK(expr)                                                                                \
  do {                                                                                                        \
    const cudnnStatus_t cudl_status_ = (expr);                                                                \
    if (cudl_status_ != CUDNN_STATUS_SUCCESS)                                                                 \
      ::cudl::cuda::fail_status(#expr, __FILE__, __LINE__, ::cudl::cuda::cudnn_status_text(cudl_status_));    \
  } while (0)

// After a kernel launch: a bad configuration or an earlier asynchronous fault surfaces here.
#define CUDL_CHECK_LAUNCH() CUDL_CUDA_CHECK(cudaGetLastError())

namespace cudl::cuda {

// Whether `stream` is being captured into a CUDA graph. Work that allocates or waits for the host
// would fail there with a capture error that does not say why: callers check this first and name
// the cause (CUDL_REQUIRE builds the message only when it fails).
inline bool capturing(cudaStream_t stream) {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  CUDL_CUDA_CHECK(cudaStreamIsCapturing(stream, &status));
  return status != cudaStreamCaptureStatusNone;
}

}  // namespace cudl::cuda

// CudaBackend's convolutions, through cuDNN's graph API (cudnn_conv.cpp), and its scratch
// workspace; the convolutional layers' other primitives are our kernels (conv_kernels.cu).
#include <algorithm>
#include <string>
#include <utility>

#include "backend_impl.hpp"
#include "check.hpp"

namespace cudl {

void* CudaBackend::Impl::scratch(size_t bytes) {
  if (bytes <= workspace_bytes) return workspace.get();
  const size_t grown = std::max(bytes, workspace_bytes + workspace_bytes / 2);
  void* fresh = nullptr;
  const cudaError_t status = cudaMallocAsync(&fresh, grown, stream);
  if (status != cudaSuccess) {
    cudaGetLastError();  // clear this call's error so the backend stays usable
    throw Error(std::string(status == cudaErrorMemoryAllocation ? "out of GPU memory" : "GPU allocation failed") +
                " allocating a " + std::to_string(grown) + "-byte workspace on " + description + ": " +
                cudaGetErrorName(status) + ": " + cudaGetErrorString(status));
  }
  // The new buffer is owned before the old one is let go; the old one is freed in stream order,
  // so work already queued on it still finds it.
  cuda::StreamMemory old = std::exchange(workspace, cuda::StreamMemory(fresh, cuda::StreamFree{stream}));
  workspace_bytes = grown;
  if (old) CUDL_CUDA_CHECK(cudaFreeAsync(old.release(), stream));
  return workspace.get();
}

cuda::ConvPlans& CudaBackend::Impl::conv_plans() {
  if (!conv) {
    if (cudnn == nullptr) {
      CUDL_CUDNN_CHECK(cudnnCreate(&cudnn));
      CUDL_CUDNN_CHECK(cudnnSetStream(cudnn, stream));
    }
    conv = std::make_unique<cuda::ConvPlans>(cudnn, stream, precision, conv_search,
                                             [this](size_t bytes) { return scratch(bytes); });
  }
  return *conv;
}

void CudaBackend::do_conv2d_forward(const float* x, const float* w, const Conv2dShape& shape, float* y) {
  impl_->conv_plans().run(cuda::ConvOp::kForward, shape, x, w, y);
}

void CudaBackend::do_conv2d_backward_data(const float* dy, const float* w, const Conv2dShape& shape, float* dx) {
  impl_->conv_plans().run(cuda::ConvOp::kBackwardData, shape, dx, w, dy);
}

void CudaBackend::do_conv2d_backward_filter(const float* x, const float* dy, const Conv2dShape& shape, float* dw) {
  impl_->conv_plans().run(cuda::ConvOp::kBackwardFilter, shape, x, dw, dy);
}

std::vector<std::string> CudaBackend::convolution_plans() const {
  return impl_->conv ? impl_->conv->describe() : std::vector<std::string>{};
}

}  // namespace cudl

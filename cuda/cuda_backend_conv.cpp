// CudaBackend's convolutional primitives: convolutions through cuDNN's graph API
// (cudnn_conv.cpp), the rest through our kernels (conv_kernels.cu).
#include <algorithm>
#include <string>
#include <utility>

#include "backend_impl.hpp"
#include "check.hpp"
#include "kernels.hpp"

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

void CudaBackend::do_channel_bias_activation(float* y, const float* bias, int64_t outer, int64_t channels,
                                             int64_t inner, Activation act) {
  cuda::channel_bias_activation(impl_->stream, y, bias, outer, channels, inner, act);
}

void CudaBackend::do_sum_channels(float alpha, const float* x, int64_t outer, int64_t channels, int64_t inner,
                                  float beta, float* out) {
  const int splits = cuda::sum_channels_splits(outer, channels, inner);
  auto* partial = static_cast<float*>(impl_->scratch(sizeof(float) * static_cast<size_t>(channels) * splits));
  cuda::sum_channels(impl_->stream, alpha, x, outer, channels, inner, beta, out, partial);
}

void CudaBackend::do_pool2d_forward(const float* x, const Pool2dShape& shape, float* y) {
  cuda::pool2d_forward(impl_->stream, x, shape, y);
}

void CudaBackend::do_pool2d_backward(const float* x, const float*, const float* dy, const Pool2dShape& shape,
                                     float* dx) {
  cuda::pool2d_backward(impl_->stream, x, dy, shape, dx);
}

void CudaBackend::do_dropout(const float* x, int64_t n, float drop, uint64_t seed, uint64_t counter, float* y) {
  cuda::dropout(impl_->stream, x, n, drop, seed, counter, y);
}

void CudaBackend::do_batch_norm_train(const float* x, const float* gamma, const float* beta, int64_t outer,
                                      int64_t channels, int64_t inner, const BatchNormArgs& args, float* running_mean,
                                      float* running_var, float* saved, float* y) {
  cuda::batch_norm_train(impl_->stream, x, gamma, beta, outer, channels, inner, args, running_mean, running_var, saved,
                         y);
}

void CudaBackend::do_batch_norm_infer(const float* x, const float* gamma, const float* beta, const float* running_mean,
                                      const float* running_var, int64_t outer, int64_t channels, int64_t inner,
                                      float epsilon, float* y) {
  cuda::batch_norm_infer(impl_->stream, x, gamma, beta, running_mean, running_var, outer, channels, inner, epsilon, y);
}

void CudaBackend::do_batch_norm_backward(const float* x, const float* dy, const float* gamma, const float* saved,
                                         int64_t outer, int64_t channels, int64_t inner, float* dx, float* dgamma,
                                         float* dbeta) {
  cuda::batch_norm_backward(impl_->stream, x, dy, gamma, saved, outer, channels, inner, dx, dgamma, dbeta);
}

std::vector<std::string> CudaBackend::convolution_plans() const {
  return impl_->conv ? impl_->conv->describe() : std::vector<std::string>{};
}

}  // namespace cudl

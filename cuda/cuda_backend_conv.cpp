// CudaBackend's convolutions, through cuDNN's graph API (cudnn_conv.cpp), in bf16 on staged copies
// where the precision asks for it, and the scratch buffers (the workspace, the bf16 staging); the
// convolutional layers' other primitives are our kernels (conv_kernels.cu).
#include <algorithm>
#include <string>
#include <utility>

#include "backend_impl.hpp"
#include "check.hpp"
#include "kernels.hpp"

namespace cudl {

void* cuda::GrowingBuffer::get(size_t bytes, cudaStream_t stream, const char* what, const std::string& gpu) {
  cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
  if (bytes > bytes_ || !captured_) CUDL_CUDA_CHECK(cudaStreamIsCapturing(stream, &capturing));
  if (bytes <= bytes_) {
    captured_ = captured_ || capturing != cudaStreamCaptureStatusNone;
    return memory_.get();
  }
  CUDL_REQUIRE(capturing == cudaStreamCaptureStatusNone,
               std::string("the ") + what + " on " + gpu + " would have to grow from " + std::to_string(bytes_) +
                   " to " + std::to_string(bytes) + " bytes while a CUDA graph is being captured: queue the work "
                   "once before capturing it (train() and fit() run their first step eagerly for this)");
  const size_t grown = std::max(bytes, bytes_ + bytes_ / 2);
  void* fresh = nullptr;
  const cudaError_t status = cudaMallocAsync(&fresh, grown, stream);
  if (status != cudaSuccess) {
    cudaGetLastError();  // clear this call's error so the backend stays usable
    throw Error(std::string(status == cudaErrorMemoryAllocation ? "out of GPU memory" : "GPU allocation failed") +
                " allocating a " + std::to_string(grown) + "-byte " + what + " on " + gpu + ": " +
                cudaGetErrorName(status) + ": " + cudaGetErrorString(status));
  }
  // The new buffer is owned before the old one is let go; the old one is freed in stream order,
  // so work already queued on it still finds it, unless a graph may hold it: then it is kept.
  StreamMemory old = std::exchange(memory_, StreamMemory(fresh, StreamFree{stream}));
  bytes_ = grown;
  if (old && captured_) {
    retired_.push_back(std::move(old));
  } else if (old) {
    CUDL_CUDA_CHECK(cudaFreeAsync(old.release(), stream));
  }
  captured_ = false;
  return memory_.get();
}

void* CudaBackend::Impl::scratch(size_t bytes) { return workspace.get(bytes, stream, "workspace", description); }

std::array<void*, 3> CudaBackend::Impl::staging_parts(const std::array<size_t, 3>& bytes) {
  constexpr size_t kAlign = 256;
  auto rounded = [](size_t b) { return (b + kAlign - 1) / kAlign * kAlign; };
  auto* base = static_cast<char*>(staging.get(rounded(bytes[0]) + rounded(bytes[1]) + rounded(bytes[2]), stream,
                                              "bf16 staging buffer", description));
  return {base, base + rounded(bytes[0]), base + rounded(bytes[0]) + rounded(bytes[1])};
}

cuda::ConvPlans& CudaBackend::Impl::conv_plans() {
  if (!conv) {
    if (cudnn == nullptr) {
      CUDL_CUDNN_CHECK(cudnnCreate(&cudnn));
      CUDL_CUDNN_CHECK(cudnnSetStream(cudnn, stream));
    }
    conv = std::make_unique<cuda::ConvPlans>(cudnn, stream, precision, conv_search, conv_determinism,
                                             [this](size_t bytes) { return scratch(bytes); });
  }
  return *conv;
}

// Precision::kBf16: x, w and y (N×C×H×W, K×C×R×S, N×K×P×Q) get packed bf16 copies; the op's two
// inputs are rounded into theirs, cuDNN's bf16 graph (fp32 accumulation) writes the output's copy,
// each element rounded to bf16 once (for the filter gradient: its whole sum over the batch), and
// that copy is widened into the fp32 output.
void CudaBackend::Impl::convolve(cuda::ConvOp op, const Conv2dShape& s, const float* x, const float* w,
                                 const float* y) {
  cuda::ConvPlans& plans = conv_plans();
  if (precision != Precision::kBf16) {
    plans.run(op, s, x, w, y);
    return;
  }
  const int64_t count[3] = {s.n * s.c * s.h * s.w, s.k * s.c * s.r * s.s, s.n * s.k * s.p * s.q};
  const float* fp32[3] = {x, w, y};
  const int out = op == cuda::ConvOp::kForward ? 2 : op == cuda::ConvOp::kBackwardData ? 0 : 1;
  const std::array<void*, 3> part = staging_parts({sizeof(__nv_bfloat16) * static_cast<size_t>(count[0]),
                                                   sizeof(__nv_bfloat16) * static_cast<size_t>(count[1]),
                                                   sizeof(__nv_bfloat16) * static_cast<size_t>(count[2])});
  for (int i = 0; i < 3; ++i)
    if (i != out) cuda::to_bf16(stream, fp32[i], 1, count[i], count[i], static_cast<__nv_bfloat16*>(part[i]));
  plans.run(op, s, part[0], part[1], part[2]);
  // The output's fp32 tensor is the caller's, writable (ConvPlans::run takes all three as const).
  cuda::store_bf16(stream, static_cast<const __nv_bfloat16*>(part[out]), 1, count[out], 0.0f,
                   const_cast<float*>(fp32[out]), count[out]);
}

void CudaBackend::do_conv2d_forward(const float* x, const float* w, const Conv2dShape& shape, float* y) {
  impl_->convolve(cuda::ConvOp::kForward, shape, x, w, y);
}

void CudaBackend::do_conv2d_backward_data(const float* dy, const float* w, const Conv2dShape& shape, float* dx) {
  impl_->convolve(cuda::ConvOp::kBackwardData, shape, dx, w, dy);
}

void CudaBackend::do_conv2d_backward_filter(const float* x, const float* dy, const Conv2dShape& shape, float* dw) {
  impl_->convolve(cuda::ConvOp::kBackwardFilter, shape, x, dw, dy);
}

std::vector<std::string> CudaBackend::convolution_plans() const {
  return impl_->conv ? impl_->conv->describe() : std::vector<std::string>{};
}

}  // namespace cudl

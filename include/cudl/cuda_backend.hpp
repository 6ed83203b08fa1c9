#pragma once
// CudaBackend: every primitive on one NVIDIA GPU, with cuBLAS for the products, cuDNN's graph
// API for the convolutions and our own kernels for the rest (cuda/). It owns its stream, cuBLAS
// handle and workspace, and a cuDNN handle created on first use; every CUDA, cuBLAS and cuDNN status is checked and reported as
// cudl::Error with the library's own status text. No CUDA type appears here, so this header
// compiles anywhere; the class is defined in the CUDA plugin, libcudl_cuda.so, which exists only in
// builds with the CUDA backend (cudl::built_with_cuda()). Code that names CudaBackend links that
// library (CMake: cudl::cuda, from find_package(cudl COMPONENTS CUDA)) and so needs the CUDA
// libraries to load; portable code uses cudl::make_backend(Device::kCuda, ...), which loads the
// plugin at run time and needs nothing of CUDA until then.
// One difference from CpuBackend, where a kernel cannot throw: softmax_cross_entropy with a
// label outside [0, K) makes that row's loss NaN, which the divergence check then reports.
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "cudl/backend.hpp"
#include "cudl/device.hpp"

namespace cudl {

class CudaBackend final : public Backend {
 public:
  // Throws cudl::Error (with the probe's sentence) when the GPU cannot be used.
  explicit CudaBackend(const BackendOptions& options = {});
  ~CudaBackend() override;

  Device device() const override { return Device::kCuda; }
  // "cuda: NVIDIA H100 80GB HBM3 (sm_90, 132 SMs), fp32"
  std::string describe() const override;
  Precision precision() const;
  // The cudaStream_t every primitive is queued on, for interoperation (capture, events).
  void* stream() const;
  // One line per cached cuDNN convolution plan: operation, shape, engine, how it was chosen and
  // its workspace (see cuda/cudnn_conv.hpp).
  std::vector<std::string> convolution_plans() const;

  void* allocate(std::size_t bytes) override;
  void deallocate(void* ptr) noexcept override;
  void copy_to_host(const void* src, void* host_dst, std::size_t bytes) override;
  void copy_from_host(const void* host_src, void* dst, std::size_t bytes) override;
  void copy(const void* src, void* dst, std::size_t bytes) override;
  void synchronize() override;
  // Uploads on a second stream (kCopy) from page-locked memory (cudaHostAlloc); events are CUDA
  // events without timing.
  std::unique_ptr<Event> create_event() override;
  void record(Event& event, Queue queue) override;
  void wait(Queue queue, const Event& event) override;
  void host_wait(const Event& event) override;
  bool async_uploads() const override { return true; }
  void* allocate_host(std::size_t bytes) override;
  void deallocate_host(void* ptr) noexcept override;
  void upload_async(const void* host_src, void* dst, std::size_t bytes) override;
  // CUDA graphs: begin_capture() starts capturing this backend's stream, end_capture()
  // instantiates the graph; Captured::replay() launches it on the stream.
  bool can_capture() const override { return true; }
  void begin_capture() override;
  std::unique_ptr<Captured> end_capture() override;

 protected:
  // The primitives, each beside its kernel: cuda/elementwise.cu, loss.cu, elementwise_losses.cu,
  // optim.cu (the optimizers' updates), training_step.cu (shuffled minibatches, the cosine
  // schedule), conv_kernels.cu; the products in cuda_backend.cu (cuBLAS) and
  // cuda_backend_conv.cpp (cuDNN).
#define CUDL_BACKEND_PRIMITIVE(name, params) void name params override;
#include "cudl/backend_primitives.inc"
#undef CUDL_BACKEND_PRIMITIVE

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cudl

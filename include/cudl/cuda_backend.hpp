#pragma once
// CudaBackend: every primitive on one NVIDIA GPU, with cuBLAS for the products, cuDNN's graph
// API for the convolutions and our own kernels for the rest (cuda/). It owns its stream, cuBLAS
// handle and workspace, and a cuDNN handle created on first use; every CUDA, cuBLAS and cuDNN status is checked and reported as
// cudl::Error with the library's own status text. No CUDA type appears here, so this header
// compiles anywhere; the class is defined only in builds with the CUDA backend
// (cudl::built_with_cuda()). Portable code uses cudl::make_backend(Device::kCuda, ...).
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
  // CUDA graphs: begin_capture() starts capturing this backend's stream, end_capture()
  // instantiates the graph; Captured::replay() launches it on the stream.
  bool can_capture() const override { return true; }
  void begin_capture() override;
  std::unique_ptr<Captured> end_capture() override;

 protected:
  void do_fill(float* x, int64_t n, float value) override;
  void do_fill_normal(float* x, int64_t n, uint64_t seed, float mean, float stddev) override;
  void do_gemm(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
               const float* b, int64_t ldb, float beta, float* c, int64_t ldc) override;
  void do_bias_activation(float* y, const float* bias, int64_t rows, int64_t cols, Activation act) override;
  void do_activation(float* y, int64_t n, Activation act) override;
  void do_activation_backward(float* dy, const float* y, int64_t n, Activation act) override;
  void do_sum_rows(float alpha, const float* x, int64_t rows, int64_t cols, float beta, float* out) override;
  void do_softmax_cross_entropy(const float* logits, const float* labels, int64_t rows, int64_t classes,
                                const CrossEntropyArgs& args, const uint64_t* step_counter, float* dlogits,
                                float* stats) override;
  void do_argmax_rows(const float* x, int64_t rows, int64_t cols, float* out) override;
  void do_cosine_learning_rate(const CosineArgs& args, const uint64_t* step, float* lr) override;
  void do_shuffled_rows(const float* x, const float* y, int64_t rows, int64_t cols, int64_t target_cols, uint64_t seed,
                        const uint64_t* position, float* bx, float* by, int64_t batch) override;
  void do_sample_rows(const float* x, const float* y, int64_t rows, int64_t cols, int64_t target_cols, uint64_t seed,
                      uint64_t first_draw, const uint64_t* draw_counter, float* bx, float* by, int64_t batch) override;
  // The elementwise losses (cuda/elementwise_losses.cu).
  void do_mean_squared_error(const float* pred, const float* target, int64_t rows, int64_t cols,
                             const ElementwiseLossArgs& args, const uint64_t* step, float* dpred,
                             float* stats) override;
  void do_binary_cross_entropy_with_logits(const float* logits, const float* targets, int64_t rows, int64_t cols,
                                           const ElementwiseLossArgs& args, const uint64_t* step, float* dlogits,
                                           float* stats) override;
  void do_add_to_counter(uint64_t* counter, uint64_t delta) override;
  void do_bias_activation_sample(float* y, const float* bias, int64_t rows, int64_t cols, Activation act,
                                  Units units, uint64_t seed, uint64_t counter, float* states) override;
  void do_sample_units(const float* means, int64_t n, Units units, uint64_t seed, uint64_t counter,
                       float* out) override;
  void do_momentum_step(float* w, float* v, const float* g, int64_t n, const float* lr,
                        const MomentumArgs& args) override;
  void do_axpy(float alpha, const float* x, float* y, int64_t n) override;
  // The optimizers' updates (cuda/optim.cu).
  void do_nesterov_step(float* w, float* v, const float* g, int64_t n, const float* lr,
                        const NesterovArgs& args) override;
  void do_sgd_step(float* w, float* buf, const float* g, int64_t n, const float* lr, const uint64_t* step,
                   const SgdArgs& args) override;
  void do_adam_step(float* w, float* m, float* v, float* vmax, const float* g, int64_t n, const float* lr,
                    const uint64_t* step, const AdamArgs& args) override;
  void do_conv2d_forward(const float* x, const float* w, const Conv2dShape& shape, float* y) override;
  void do_conv2d_backward_data(const float* dy, const float* w, const Conv2dShape& shape, float* dx) override;
  void do_conv2d_backward_filter(const float* x, const float* dy, const Conv2dShape& shape, float* dw) override;
  void do_channel_bias_activation(float* y, const float* bias, int64_t outer, int64_t channels, int64_t inner,
                                  Activation act) override;
  void do_sum_channels(float alpha, const float* x, int64_t outer, int64_t channels, int64_t inner, float beta,
                       float* out) override;
  void do_pool2d_forward(const float* x, const Pool2dShape& shape, float* y) override;
  void do_pool2d_backward(const float* x, const float* y, const float* dy, const Pool2dShape& shape,
                          float* dx) override;
  void do_dropout(const float* x, int64_t n, float drop, uint64_t seed, uint64_t counter, float* y) override;
  void do_batch_norm_train(const float* x, const float* gamma, const float* beta, int64_t outer, int64_t channels,
                           int64_t inner, const BatchNormArgs& args, float* running_mean, float* running_var,
                           float* saved, float* y) override;
  void do_batch_norm_infer(const float* x, const float* gamma, const float* beta, const float* running_mean,
                           const float* running_var, int64_t outer, int64_t channels, int64_t inner, float epsilon,
                           float* y) override;
  void do_batch_norm_backward(const float* x, const float* dy, const float* gamma, const float* saved, int64_t outer,
                              int64_t channels, int64_t inner, float* dx, float* dgamma, float* dbeta) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cudl

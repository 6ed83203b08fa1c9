#pragma once
// CpuBackend: the reference implementation of every primitive, multi-threaded on a pool of
// sleeping (not busy-waiting) threads. GEMM is our packed AVX2/FMA kernel when the build
// targets a CPU with those instructions (CUDL_NATIVE=ON), Eigen's otherwise; the elementwise
// primitives use Eigen's vectorised arrays.
#include <memory>
#include <string>
#include <vector>

#include "cudl/backend.hpp"

namespace cudl {

namespace cpu {
class ThreadPool;
}

// The CPU's model name (from /proc/cpuinfo), or "unknown CPU".
std::string cpu_model_name();
// Hardware threads available to this process (at least 1).
int hardware_threads();

class CpuBackend final : public Backend {
 public:
  // threads = 0 uses hardware_threads().
  explicit CpuBackend(int threads = 0);
  ~CpuBackend() override;

  int threads() const;
  Device device() const override { return Device::kCpu; }
  std::string describe() const override;  // "cpu: AMD EPYC, 2 threads, gemm avx2-fma 6x16"

  void* allocate(std::size_t bytes) override;
  void deallocate(void* ptr) noexcept override;
  void copy_to_host(const void* src, void* host_dst, std::size_t bytes) override;
  void copy_from_host(const void* host_src, void* dst, std::size_t bytes) override;
  void copy(const void* src, void* dst, std::size_t bytes) override;
  void synchronize() override {}

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
  // The elementwise losses (src/cpu/elementwise_losses.cpp).
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
  // The optimizers' updates (src/cpu/optim.cpp).
  void do_nesterov_step(float* w, float* v, const float* g, int64_t n, const float* lr,
                        const NesterovArgs& args) override;
  void do_sgd_step(float* w, float* buf, const float* g, int64_t n, const float* lr, const uint64_t* step,
                   const SgdArgs& args) override;
  void do_adam_step(float* w, float* m, float* v, float* vmax, const float* g, int64_t n, const float* lr,
                    const uint64_t* step, const AdamArgs& args) override;
  // Convolution by im2col + GEMM (src/cpu/conv.cpp); pooling, dropout and the per-channel
  // primitives (src/cpu/pool.cpp).
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
  const float* conv_output_gradient(const float* dy, const Conv2dShape& shape, int64_t n0, int64_t nb);

  std::unique_ptr<cpu::ThreadPool> pool_;
  // Convolution scratch, grown on demand and reused: the im2col matrix and the output (or its
  // gradient) in channel-major order (see conv.cpp).
  std::vector<float> col_, kmajor_;
};

}  // namespace cudl

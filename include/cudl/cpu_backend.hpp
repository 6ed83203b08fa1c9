#pragma once
/// @file
/// CpuBackend: the reference implementation of every primitive, multi-threaded on a pool of
/// sleeping (not busy-waiting) threads. GEMM is our packed AVX-512 or AVX2/FMA kernel, whichever
/// this CPU runs (chosen at run time), Eigen's otherwise; the elementwise primitives likewise.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cudl/backend.hpp"

namespace cudl {

namespace cpu {
class ThreadPool;
}

/// The CPU's model name (from /proc/cpuinfo), or "unknown CPU".
std::string cpu_model_name();
/// Hardware threads available to this process (at least 1).
int hardware_threads();

/// Every Backend primitive on the host CPU, the reference the GPU is tested against.
///
/// Work runs when it is called: synchronize() and the event waits return at once, uploads are
/// plain copies, and nothing can be captured (can_capture() is false). Where CudaBackend leaves
/// a bad value to the divergence check (a label outside [0, K) in softmax_cross_entropy), the
/// CPU throws Error instead. One backend is used from one thread at a time; its primitives
/// spread their work over the backend's own pool of threads.
class CpuBackend : public Backend {
 public:
  /// A backend with a pool of `threads` threads (0 uses hardware_threads()) whose products run in
  /// `precision`: kBf16 rounds their operands and results to bfloat16 as the GPU does (see
  /// Precision); kTf32, which the CPU cannot compute, runs as kFp32.
  explicit CpuBackend(int threads = 0, Precision precision = Precision::kFp32);
  ~CpuBackend() override;

  /// Threads the primitives are spread over.
  int threads() const;
  Device device() const override { return Device::kCpu; }
  /// kFp32 or kBf16.
  Precision precision() const override { return precision_; }
  /// e.g. "cpu: AMD EPYC, 2 threads, gemm avx2-fma 6x16" (and ", bf16 products (emulated by rounding)").
  std::string describe() const override;

  void* allocate(std::size_t bytes) override;
  void deallocate(void* ptr) noexcept override;
  void copy_to_host(const void* src, void* host_dst, std::size_t bytes) override;
  void copy_from_host(const void* host_src, void* dst, std::size_t bytes) override;
  void copy(const void* src, void* dst, std::size_t bytes) override;
  void synchronize() override {}

 protected:
  // The primitives: src/cpu/cpu_backend.cpp (elementwise, products, losses, sampling),
  // elementwise_losses.cpp, optim.cpp (the optimizers' updates), conv.cpp (convolution by im2col +
  // GEMM), pool.cpp (pooling, dropout, the per-channel primitives), batch_norm.cpp.
#define CUDL_BACKEND_PRIMITIVE(name, params) void name params override;
#include "cudl/backend_primitives.inc"
#undef CUDL_BACKEND_PRIMITIVE
  // Dense's input gradient ahead of a ReLU: only the units some row keeps are computed.
  void do_gemm_activation_backward(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                                   int64_t lda, const float* b, int64_t ldb, float* c, const float* y,
                                   Activation act) override;

 private:
  const float* conv_output_gradient(const float* dy, const Conv2dShape& shape, int64_t n0, int64_t nb);
  // Precision::kBf16 (cpu_backend_bf16.cpp). product: C = alpha·op(A)·op(B) + beta·C in fp32, on
  // operands rounded to bf16 when the precision is kBf16 (the result is left for the caller to
  // round once: a convolution's sums span several products). round_result: rounds x (rows × cols,
  // leading dimension ld) to bf16 in kBf16, else nothing. gemm_bf16: do_gemm's kBf16 form.
  void product(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
               const float* b, int64_t ldb, float beta, float* c, int64_t ldc);
  void round_result(float* x, int64_t rows, int64_t cols, int64_t ld);
  void gemm_bf16(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                 const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

  std::unique_ptr<cpu::ThreadPool> pool_;
  Precision precision_;
  // Convolution scratch, grown on demand and reused: the im2col matrix and the output (or its
  // gradient) in channel-major order (see conv.cpp).
  std::vector<float> col_, kmajor_;
  // do_gemm_activation_backward's scratch: the columns kept and their product.
  std::vector<int32_t> kept_;
  std::vector<float> kept_product_;
  // kBf16's scratch: the rounded operands and a product to be rounded before beta·C is added.
  std::vector<float> bf16_a_, bf16_b_, bf16_t_;
};

}  // namespace cudl

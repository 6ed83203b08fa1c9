#pragma once
/// @file
/// CudaBackend: every primitive on one NVIDIA GPU, with cuBLAS for the products, cuDNN's graph
/// API for the convolutions and our own kernels for the rest (cuda/). It owns its stream, cuBLAS
/// handle and workspace, and a cuDNN handle created on first use; every CUDA, cuBLAS and cuDNN
/// status is checked and reported as cudl::Error with the library's own status text. No CUDA type appears here, so this header
/// compiles anywhere; the class is defined in the CUDA plugin, libcudl_cuda.so, which exists only in
/// builds with the CUDA backend (cudl::built_with_cuda()). Code that names CudaBackend links that
/// library (CMake: cudl::cuda, from find_package(cudl COMPONENTS CUDA)) and so needs the CUDA
/// libraries to load; portable code uses cudl::make_backend(Device::kCuda, ...), which loads the
/// plugin at run time and needs nothing of CUDA until then.
/// One difference from CpuBackend, where a kernel cannot throw: softmax_cross_entropy with a
/// label outside [0, K) makes that row's loss NaN, which the divergence check then reports.
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "cudl/backend.hpp"
#include "cudl/device.hpp"

namespace cudl {

/// Every Backend primitive on one NVIDIA GPU, queued on the backend's own CUDA stream.
///
/// Primitives return once their work is queued; transfers to the host and synchronize() wait for
/// it. Supports uploads that overlap the computation and capture as a CUDA graph. The random
/// draws are the CPU's; results agree with CpuBackend up to float rounding in Precision::kFp32
/// (less closely in kTf32, and for the convolution engines ConvSearch::kFastest may pick), and
/// with a CpuBackend in kBf16 up to the order of the fp32 sums in kBf16 (bf16 tensor cores: needs
/// compute capability 8.0 or later). Use one backend from one thread at a time.
class CudaBackend final : public Backend {
 public:
  /// A backend on GPU options.gpu with options.precision, conv_search and conv_determinism. Throws
  /// cudl::Error (with the probe's sentence) when the GPU cannot be used or does not exist.
  explicit CudaBackend(const BackendOptions& options = {});
  ~CudaBackend() override;

  Device device() const override { return Device::kCuda; }
  /// e.g. "cuda: NVIDIA H100 80GB HBM3 (sm_90, 132 SMs), fp32", then ", deterministic
  /// convolutions" with ConvDeterminism::kDeterministic.
  std::string describe() const override;
  /// The arithmetic of the products, as given in BackendOptions.
  Precision precision() const override;
  /// The cudaStream_t every primitive is queued on, for interoperation (capture, events).
  void* stream() const;
  /// One line per cached cuDNN convolution plan: operation, shape, engine and its numerical notes,
  /// how it was chosen and its workspace (see cudl::convolution_plans).
  std::vector<std::string> convolution_plans() const;
  /// One line per cached cuBLASLt plan of gemm_bias_activation: shape, transposes, epilogue,
  /// precision and operand alignments, then the algorithm's workspace, or why cuBLASLt could not
  /// run it (those calls take gemm and bias_activation instead).
  std::vector<std::string> epilogue_plans() const;
  /// One line per product shape seen so far in kFp32 or kTf32 that cudl's own kernel serves (at
  /// most 256 rows, or m·n·k ≤ 2^27): the call, how the kernel splits it, and which ran it, cudl's
  /// kernel or the library's, with both times where they were measured. The first eager call of
  /// each shape times the two and keeps the faster (a shape first seen while capturing stays with
  /// the library); CUDL_GEMM_KERNELS=cudl or =library forces one (for tests and comparisons).
  std::vector<std::string> gemm_kernel_choices() const;
  /// The fused training step (fused_mlp.hpp; cudl's persistent kernel, docs/design/gpu-step.md)
  /// runs in kFp32 only (it computes strict fp32: tf32 and bf16 keep the library's products), on a
  /// GPU that launches cooperative kernels, unless CUDL_FUSED_STEP=0 turns it off.
  std::string fused_mlp_refusal(const FusedMlpArgs& args) override;
  /// One cooperative launch of the persistent kernel for args.steps steps (fused_mlp.hpp).
  void fused_mlp_steps(const FusedMlpArgs& args) override;

  /// Device memory (stream-ordered). Throws Error when the GPU is out of memory (saying how much
  /// is free) or while capturing.
  void* allocate(std::size_t bytes) override;
  void deallocate(void* ptr) noexcept override;
  void copy_to_host(const void* src, void* host_dst, std::size_t bytes) override;
  void copy_from_host(const void* host_src, void* dst, std::size_t bytes) override;
  void copy(const void* src, void* dst, std::size_t bytes) override;
  void synchronize() override;
  /// A CUDA event without timing. Uploads run on a second stream (kCopy) from page-locked memory.
  std::unique_ptr<Event> create_event() override;
  void record(Event& event, Queue queue) override;
  void wait(Queue queue, const Event& event) override;
  void host_wait(const Event& event) override;
  std::unique_ptr<TimeMark> create_time_mark() override;
  void mark(TimeMark& m) override;
  double elapsed_ms(const TimeMark& from, const TimeMark& to) override;
  bool async_uploads() const override { return true; }
  /// Page-locked host memory (cudaHostAlloc), which uploads read at full speed.
  void* allocate_host(std::size_t bytes) override;
  void deallocate_host(void* ptr) noexcept override;
  /// Queues the copy on the second stream (kCopy), beside the computation.
  void upload_async(const void* host_src, void* dst, std::size_t bytes) override;
  /// Page-locked (cudaHostAlloc), grown when asked for more, freed with the backend.
  void* host_staging(std::size_t bytes) override;
  bool can_capture() const override { return true; }
  /// Starts capturing this backend's stream into a CUDA graph.
  void begin_capture() override;
  /// Ends the capture and instantiates the graph; Captured::replay() launches it on the stream.
  std::unique_ptr<Captured> end_capture() override;

 protected:
  // The primitives, each beside its kernel: cuda/elementwise.cu, loss.cu, elementwise_losses.cu,
  // optim.cu (the optimizers' updates), training_step.cu (shuffled minibatches, the cosine
  // schedule), conv_kernels.cu; the products in cuda_backend.cu (cuBLAS) and
  // cuda_backend_conv.cpp (cuDNN).
#define CUDL_BACKEND_PRIMITIVE(name, params) void name params override;
#include "cudl/backend_primitives.inc"
#undef CUDL_BACKEND_PRIMITIVE
  // Dense's forward product with its bias and activation: our kernel where chosen for the shape,
  // else a cuBLASLt epilogue (identity, ReLU; kFp32, kTf32), else the two calls (cuda/gemm_epilogue.cpp).
  void do_gemm_bias_activation(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                               int64_t lda, const float* b, int64_t ldb, const float* bias, Activation act,
                               float* c) override;
  // The input gradient's product with the activation's gradient: our kernel where chosen, else
  // the two calls.
  void do_gemm_activation_backward(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                                   int64_t lda, const float* b, int64_t ldb, float* c, const float* y,
                                   Activation act) override;
  // A weight gradient with the sum of B's rows (the bias gradient): our kernel where chosen, else
  // the two calls.
  void do_gemm_sum_rows(Trans ta, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                        const float* b, float beta, float* c, int64_t ldc, float sum_alpha, float sum_beta,
                        float* sums, float* a_sums) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cudl

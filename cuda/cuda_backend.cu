// CudaBackend: handles, stream, memory, CUDA graphs and the cuBLAS products (fp32, tf32, bf16; the
// fused cuBLASLt ones are in gemm_epilogue.cpp). Every other primitive is defined beside its kernel
// (elementwise.cu, loss.cu, optim.cu, conv_kernels.cu, …). Everything is queued on one stream; only
// the explicit transfers synchronise.
#include "cudl/cuda_backend.hpp"

#include <climits>
#include <cstdint>

#include "backend_impl.hpp"
#include "check.hpp"
#include "kernels.hpp"

namespace cudl {

GpuProbe probe_cuda_runtime();  // probe.cu

CudaBackend::CudaBackend(const BackendOptions& options) : impl_(std::make_unique<Impl>()) {
  const GpuProbe probe = probe_cuda_runtime();  // not probe_gpu(): that goes through the plugin's loader
  if (!probe.usable) throw Error("cannot use the GPU: " + probe.reason);
  int count = 0;
  CUDL_CUDA_CHECK(cudaGetDeviceCount(&count));
  CUDL_REQUIRE(options.gpu >= 0 && options.gpu < count, "GPU " + std::to_string(options.gpu) +
                                                            " does not exist: this machine has " +
                                                            std::to_string(count) + " (numbered from 0)");
  impl_->gpu = options.gpu;
  impl_->precision = options.precision;
  impl_->conv_search = options.conv_search;
  impl_->conv_determinism = options.conv_determinism;
  CUDL_CUDA_CHECK(cudaSetDevice(impl_->gpu));
  cudaDeviceProp prop{};
  CUDL_CUDA_CHECK(cudaGetDeviceProperties(&prop, impl_->gpu));
  impl_->description = std::string(prop.name) + " (sm_" + std::to_string(prop.major) + std::to_string(prop.minor) +
                       ", " + std::to_string(prop.multiProcessorCount) + " SMs)";
  // cuBLAS and cuDNN take bf16 operands from compute capability 8.0 (Ampere) on.
  CUDL_REQUIRE(impl_->precision != Precision::kBf16 || prop.major >= 8,
               "bf16 products need a GPU of compute capability 8.0 or newer; " + impl_->description +
                   " is older: use Precision::kFp32 there");
  // Keep freed memory in the stream-ordered pool instead of returning it at each synchronisation.
  cudaMemPool_t pool = nullptr;
  CUDL_CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, impl_->gpu));
  uint64_t keep = UINT64_MAX;
  CUDL_CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep));
  // Each resource goes to its owner in impl_ as soon as it exists: if a later step throws,
  // destroying impl_ frees it (see Impl).
  CUDL_CUDA_CHECK(cudaStreamCreateWithFlags(&impl_->stream.handle, cudaStreamNonBlocking));
  cublasHandle_t cublas = nullptr;
  CUDL_CUBLAS_CHECK(cublasCreate(&cublas));
  impl_->cublas.reset(cublas);
  CUDL_CUBLAS_CHECK(cublasSetStream(cublas, impl_->stream));
  // A workspace of our own, so cuBLAS never allocates inside a captured CUDA graph.
  void* cublas_workspace = nullptr;
  CUDL_CUDA_CHECK(cudaMalloc(&cublas_workspace, Impl::kCublasWorkspace));
  impl_->cublas_workspace.reset(cublas_workspace);
  CUDL_CUBLAS_CHECK(cublasSetWorkspace(cublas, cublas_workspace, Impl::kCublasWorkspace));
  // kBf16 needs no mode of its own: cuBLAS runs bf16 operands on tensor cores by default, and
  // do_gemm asks for an fp32 result (accumulated in fp32, CUBLAS_COMPUTE_32F).
  CUDL_CUBLAS_CHECK(cublasSetMathMode(cublas, impl_->precision == Precision::kTf32 ? CUBLAS_TF32_TENSOR_OP_MATH
                                                                                   : CUBLAS_DEFAULT_MATH));
  // cuBLASLt, for the products with a bias and activation in the epilogue (gemm_epilogue.cpp): its
  // kernels run in stream order with cuBLAS's, so they share the workspace.
  impl_->epilogue = std::make_unique<cuda::GemmEpilogue>(impl_->stream, cublas_workspace, Impl::kCublasWorkspace);
  // Our own kernel for products of few rows, where it is faster than cuBLAS's (rows_gemm.hpp).
  auto scratch = [impl = impl_.get()](size_t bytes) { return impl->scratch(bytes); };
  std::string source;
  const cuda::RowsGemm::Mode mode = cuda::RowsGemm::mode_for(options.gpu_gemm_kernels, &source);
  impl_->rows_gemm = std::make_unique<cuda::RowsGemm>(impl_->stream, prop.multiProcessorCount, mode, source, scratch);
}

CudaBackend::~CudaBackend() = default;  // Impl frees everything, in order

// Destructors never throw: statuses are deliberately ignored here. Work still queued may use any
// of the resources, so the stream is synchronised first; then the plans go before the cuDNN
// handle they were made with, and the members (declared in the reverse order) free the cuBLASLt
// plans and handle, the cuBLAS handle, then the workspaces (the stream-ordered one on the stream),
// then the stream.
CudaBackend::Impl::~Impl() {
  if (stream.handle != nullptr) cudaStreamSynchronize(stream.handle);
  if (host_staging != nullptr) cudaFreeHost(host_staging);
  conv.reset();
  if (cudnn != nullptr) cudnnDestroy(cudnn);
}

std::string CudaBackend::describe() const {
  const cuda::RowsGemm::Mode gemm = impl_->rows_gemm->mode();
  return "cuda: " + impl_->description + ", " + to_string(impl_->precision) +
         (impl_->conv_determinism == ConvDeterminism::kDeterministic ? ", deterministic convolutions" : "") +
         (gemm == cuda::RowsGemm::Mode::kCudl      ? ", gemm kernels cudl"
          : gemm == cuda::RowsGemm::Mode::kLibrary ? ", gemm kernels library"
                                                   : "");
}

Precision CudaBackend::precision() const { return impl_->precision; }
void* CudaBackend::stream() const { return impl_->stream.handle; }

void* CudaBackend::allocate(std::size_t bytes) {
  CUDL_REQUIRE(!cuda::capturing(impl_->stream), "cannot allocate " + std::to_string(bytes) +
                                                    " bytes while capturing: allocate every tensor (e.g. "
                                                    "Network::reserve) before begin_capture()");
  void* p = nullptr;
  const cudaError_t status = cudaMallocAsync(&p, bytes == 0 ? 1 : bytes, impl_->stream);
  if (status != cudaSuccess) {
    cudaGetLastError();  // clear this call's error so the backend stays usable
    size_t free_bytes = 0, total_bytes = 0;
    cudaMemGetInfo(&free_bytes, &total_bytes);
    throw Error(std::string(status == cudaErrorMemoryAllocation ? "out of GPU memory" : "GPU allocation failed") +
                " allocating " + std::to_string(bytes) + " bytes on " + impl_->description + " (" +
                std::to_string(free_bytes >> 20) + " MiB free of " + std::to_string(total_bytes >> 20) +
                " MiB): " + cudaGetErrorName(status) + ": " + cudaGetErrorString(status));
  }
  return p;
}

void CudaBackend::deallocate(void* ptr) noexcept {
  if (ptr != nullptr) cudaFreeAsync(ptr, impl_->stream);
}

void CudaBackend::copy_to_host(const void* src, void* host_dst, std::size_t bytes) {
  CUDL_REQUIRE(!cuda::capturing(impl_->stream), "cannot copy " + std::to_string(bytes) +
                                                    " bytes to the host while capturing (a captured step cannot "
                                                    "wait for the host)");
  CUDL_CUDA_CHECK(cudaMemcpyAsync(host_dst, src, bytes, cudaMemcpyDeviceToHost, impl_->stream));
  CUDL_CUDA_CHECK(cudaStreamSynchronize(impl_->stream));
}

void CudaBackend::copy_from_host(const void* host_src, void* dst, std::size_t bytes) {
  CUDL_REQUIRE(!cuda::capturing(impl_->stream), "cannot copy " + std::to_string(bytes) +
                                                    " bytes from the host while capturing (set counters and "
                                                    "inputs before begin_capture())");
  CUDL_CUDA_CHECK(cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, impl_->stream));
  // The caller's host buffer may be pageable and freed as soon as we return.
  CUDL_CUDA_CHECK(cudaStreamSynchronize(impl_->stream));
}

void CudaBackend::copy(const void* src, void* dst, std::size_t bytes) {
  CUDL_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, impl_->stream));
}

// All queued work: the compute stream's and, where uploads have made one, the copy stream's.
void CudaBackend::synchronize() {
  CUDL_REQUIRE(!cuda::capturing(impl_->stream), "cannot synchronize while capturing");
  CUDL_CUDA_CHECK(cudaStreamSynchronize(impl_->stream));
  if (impl_->copy_stream.handle != nullptr) CUDL_CUDA_CHECK(cudaStreamSynchronize(impl_->copy_stream.handle));
}

// ---- uploads on a second stream ----

namespace {

struct CudaEvent final : Backend::Event {
  cudaEvent_t event = nullptr;
  ~CudaEvent() override {
    if (event != nullptr) cudaEventDestroy(event);
  }
};

cudaEvent_t event_of(const Backend::Event& e) {
  const auto* cuda_event = dynamic_cast<const CudaEvent*>(&e);
  CUDL_REQUIRE(cuda_event != nullptr, "CudaBackend: an event of another backend");
  return cuda_event->event;
}

}  // namespace

cudaStream_t CudaBackend::Impl::queue(Backend::Queue q) {
  if (q == Backend::Queue::kCompute) return stream;
  if (copy_stream.handle == nullptr) {
    CUDL_CUDA_CHECK(cudaSetDevice(gpu));
    CUDL_CUDA_CHECK(cudaStreamCreateWithFlags(&copy_stream.handle, cudaStreamNonBlocking));
  }
  return copy_stream;
}

std::unique_ptr<Backend::Event> CudaBackend::create_event() {
  auto e = std::make_unique<CudaEvent>();
  CUDL_CUDA_CHECK(cudaEventCreateWithFlags(&e->event, cudaEventDisableTiming));
  return e;
}

void CudaBackend::record(Event& event, Queue queue) {
  CUDL_CUDA_CHECK(cudaEventRecord(event_of(event), impl_->queue(queue)));
}

void CudaBackend::wait(Queue queue, const Event& event) {
  CUDL_CUDA_CHECK(cudaStreamWaitEvent(impl_->queue(queue), event_of(event), 0));
}

void CudaBackend::host_wait(const Event& event) { CUDL_CUDA_CHECK(cudaEventSynchronize(event_of(event))); }

// ---- timing marks: CUDA events made with timing ----

namespace {

struct CudaTimeMark final : Backend::TimeMark {
  cudaEvent_t event = nullptr;
  bool set = false;
  ~CudaTimeMark() override {
    if (event != nullptr) cudaEventDestroy(event);
  }
};

const CudaTimeMark& set_mark(const Backend::TimeMark& m) {
  const auto* c = dynamic_cast<const CudaTimeMark*>(&m);
  CUDL_REQUIRE(c != nullptr, "elapsed_ms: a time mark of another backend");
  CUDL_REQUIRE(c->set, "elapsed_ms: a time mark that was never set (Backend::mark)");
  return *c;
}

}  // namespace

std::unique_ptr<Backend::TimeMark> CudaBackend::create_time_mark() {
  auto m = std::make_unique<CudaTimeMark>();
  CUDL_CUDA_CHECK(cudaEventCreate(&m->event));
  return m;
}

void CudaBackend::mark(TimeMark& m) {
  auto* c = dynamic_cast<CudaTimeMark*>(&m);
  CUDL_REQUIRE(c != nullptr, "mark: a time mark of another backend");
  CUDL_REQUIRE(!cuda::capturing(impl_->stream), "cannot set a time mark while capturing (time eager steps)");
  CUDL_CUDA_CHECK(cudaEventRecord(c->event, impl_->stream));
  c->set = true;
}

double CudaBackend::elapsed_ms(const TimeMark& from, const TimeMark& to) {
  const CudaTimeMark &a = set_mark(from), &b = set_mark(to);
  CUDL_CUDA_CHECK(cudaEventSynchronize(a.event));
  CUDL_CUDA_CHECK(cudaEventSynchronize(b.event));
  float ms = 0.0f;
  CUDL_CUDA_CHECK(cudaEventElapsedTime(&ms, a.event, b.event));
  return ms;
}

void* CudaBackend::allocate_host(std::size_t bytes) {
  if (bytes == 0) return nullptr;
  void* p = nullptr;
  const cudaError_t status = cudaHostAlloc(&p, bytes, cudaHostAllocDefault);
  if (status != cudaSuccess) {
    cudaGetLastError();  // clear this call's error so the backend stays usable
    throw Error("cannot allocate " + std::to_string(bytes) + " bytes of page-locked host memory for uploads to " +
                impl_->description + ": " + cudaGetErrorName(status) + ": " + cudaGetErrorString(status));
  }
  return p;
}

void CudaBackend::deallocate_host(void* ptr) noexcept {
  if (ptr != nullptr) cudaFreeHost(ptr);
}

void* CudaBackend::host_staging(std::size_t bytes) {
  if (bytes == 0) return nullptr;
  if (bytes > impl_->host_staging_bytes) {
    if (impl_->host_staging != nullptr) CUDL_CUDA_CHECK(cudaFreeHost(impl_->host_staging));
    impl_->host_staging = nullptr;
    impl_->host_staging_bytes = 0;
    impl_->host_staging = allocate_host(bytes);  // page-locked; its error names the bytes
    impl_->host_staging_bytes = bytes;
  }
  return impl_->host_staging;
}

void CudaBackend::upload_async(const void* host_src, void* dst, std::size_t bytes) {
  CUDL_CUDA_CHECK(cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, impl_->queue(Queue::kCopy)));
}

// Our kernel where it was chosen for the shape (rows_gemm.hpp: products of few rows), else cuBLAS.
void CudaBackend::do_gemm(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    // An empty sum: C = beta·C, as CpuBackend (cuBLAS would reject the zero leading dimension of
    // an empty A or B).
    cuda::scale_matrix(impl_->stream, c, m, n, ldc, beta);
    return;
  }
  for (int64_t d : {m, n, k, lda, ldb, ldc})
    CUDL_REQUIRE(d <= INT_MAX, "gemm: dimension " + std::to_string(d) + " exceeds cuBLAS's 32-bit limit");
  if (impl_->precision == Precision::kBf16) {
    impl_->gemm_bf16(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  cuda::RowsGemmCall call{ta == Trans::kYes, tb == Trans::kYes, m, n, k, a, lda, b, ldb, {}};
  call.out.alpha = alpha;
  call.out.beta = beta;
  call.out.c = c;
  call.out.ldc = ldc;
  auto library = [&](const cuda::rows_gemm::Outputs& out) {
    impl_->gemm_cublas(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, out.c, ldc);
  };
  if (!impl_->rows_gemm->run(call, library)) library(call.out);
}

// do_gemm in kFp32 and kTf32 by cuBLAS, its arguments checked and k ≥ 1. Row-major C(m×n) =
// op(A)·op(B) is column-major Cᵀ(n×m) = op(B)ᵀ·op(A)ᵀ, and a row-major matrix read column-major is
// its transpose: so cuBLAS gets B first, then A, with their own transpose flags, and n, m, k.
void CudaBackend::Impl::gemm_cublas(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                                    int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  const cublasComputeType_t compute =
      precision == Precision::kTf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  CUDL_CUBLAS_CHECK(cublasGemmEx(cublas.get(), tb == Trans::kYes ? CUBLAS_OP_T : CUBLAS_OP_N,
                                 ta == Trans::kYes ? CUBLAS_OP_T : CUBLAS_OP_N, static_cast<int>(n),
                                 static_cast<int>(m), static_cast<int>(k), &alpha, b, CUDA_R_32F,
                                 static_cast<int>(ldb), a, CUDA_R_32F, static_cast<int>(lda), &beta, c, CUDA_R_32F,
                                 static_cast<int>(ldc), compute, CUBLAS_GEMM_DEFAULT));
}

// Precision::kBf16 (see Precision): the stored matrices of A (m×k, or k×m for op(A) = Aᵀ) and B
// (k×n, or n×k) are rounded into packed bf16 copies (row strides their column counts), cuBLAS
// multiplies those with fp32 accumulation into an fp32 T = alpha·op(A)·op(B) (beta 0: T is not
// read), and C = beta·C + bf16(T) rounds each result once, in our kernel. T is fp32 rather than
// bf16 so that cuBLAS's own conversion (its rounding, and any split-K partial sums it might keep in
// the output type) plays no part: the one rounding is __float2bfloat16_rn, which the CPU emulates.
// The operand swap is the fp32 path's (above).
void CudaBackend::Impl::gemm_bf16(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                                  int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  const int64_t a_rows = ta == Trans::kNo ? m : k, a_cols = ta == Trans::kNo ? k : m;
  const int64_t b_rows = tb == Trans::kNo ? k : n, b_cols = tb == Trans::kNo ? n : k;
  const auto part = staging_parts({sizeof(__nv_bfloat16) * static_cast<size_t>(a_rows * a_cols),
                                   sizeof(__nv_bfloat16) * static_cast<size_t>(b_rows * b_cols),
                                   sizeof(float) * static_cast<size_t>(m * n)});
  auto* a16 = static_cast<__nv_bfloat16*>(part[0]);
  auto* b16 = static_cast<__nv_bfloat16*>(part[1]);
  auto* t = static_cast<float*>(part[2]);  // m×n, packed
  cuda::to_bf16(stream, a, a_rows, a_cols, lda, a16);
  cuda::to_bf16(stream, b, b_rows, b_cols, ldb, b16);
  const float zero = 0.0f;
  CUDL_CUBLAS_CHECK(cublasGemmEx(cublas.get(), tb == Trans::kYes ? CUBLAS_OP_T : CUBLAS_OP_N,
                                 ta == Trans::kYes ? CUBLAS_OP_T : CUBLAS_OP_N, static_cast<int>(n),
                                 static_cast<int>(m), static_cast<int>(k), &alpha, b16, CUDA_R_16BF,
                                 static_cast<int>(b_cols), a16, CUDA_R_16BF, static_cast<int>(a_cols), &zero, t,
                                 CUDA_R_32F, static_cast<int>(n), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  cuda::store_bf16(stream, t, m, n, beta, c, ldc);
}

// ---- CUDA graphs ----

namespace {

class CudaGraph final : public Captured {
 public:
  CudaGraph(cudaGraphExec_t exec, cudaStream_t stream) : exec_(exec), stream_(stream) {}
  ~CudaGraph() override { cudaGraphExecDestroy(exec_); }
  void replay() override { CUDL_CUDA_CHECK(cudaGraphLaunch(exec_, stream_)); }

 private:
  cudaGraphExec_t exec_;
  cudaStream_t stream_;
};

}  // namespace

void CudaBackend::begin_capture() {
  // Thread-local mode: another thread's unrelated CUDA calls do not invalidate the capture.
  CUDL_CUDA_CHECK(cudaStreamBeginCapture(impl_->stream, cudaStreamCaptureModeThreadLocal));
}

std::unique_ptr<Captured> CudaBackend::end_capture() {
  cudaGraph_t graph = nullptr;
  CUDL_CUDA_CHECK(cudaStreamEndCapture(impl_->stream, &graph));
  cudaGraphExec_t exec = nullptr;
  const cudaError_t status = cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphDestroy(graph);
  CUDL_CUDA_CHECK(status);
  return std::make_unique<CudaGraph>(exec, impl_->stream);
}

}  // namespace cudl

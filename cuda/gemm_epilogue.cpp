// gemm_bias_activation on the GPU: cuBLASLt with CUBLASLT_EPILOGUE_BIAS (identity) or
// CUBLASLT_EPILOGUE_RELU_BIAS (ReLU), one kernel instead of the product (often two kernels: split-K
// and its reduction) and bias_activation. The sigmoid, Precision::kBf16 (whose product is rounded
// to bf16 before the bias is added: docs/design/bf16.md) and whatever cuBLASLt declines take
// Backend's default, gemm then bias_activation.
#include "gemm_epilogue.hpp"

#include <algorithm>
#include <climits>
#include <initializer_list>
#include <sstream>

#include "backend_impl.hpp"
#include "check.hpp"

namespace cudl {
namespace cuda {
namespace {

struct DescDestroy {
  void operator()(cublasLtMatmulDesc_t d) const noexcept { cublasLtMatmulDescDestroy(d); }
};
struct LayoutDestroy {
  void operator()(cublasLtMatrixLayout_t l) const noexcept { cublasLtMatrixLayoutDestroy(l); }
};
struct PreferenceDestroy {
  void operator()(cublasLtMatmulPreference_t p) const noexcept { cublasLtMatmulPreferenceDestroy(p); }
};
using MatmulDesc = std::unique_ptr<std::remove_pointer_t<cublasLtMatmulDesc_t>, DescDestroy>;
using Layout = std::unique_ptr<std::remove_pointer_t<cublasLtMatrixLayout_t>, LayoutDestroy>;
using Preference = std::unique_ptr<std::remove_pointer_t<cublasLtMatmulPreference_t>, PreferenceDestroy>;

// The largest power of two (at most 256, cuBLASLt's default assumption) that divides the address.
int64_t pointer_alignment(const void* p) {
  const auto bits = reinterpret_cast<std::uintptr_t>(p);
  return bits == 0 ? 256 : static_cast<int64_t>(std::min<std::uintptr_t>(256, bits & (~bits + 1)));
}

// A column-major rows × cols float matrix with leading dimension ld.
Layout layout(int64_t rows, int64_t cols, int64_t ld) {
  cublasLtMatrixLayout_t l = nullptr;
  CUDL_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&l, CUDA_R_32F, static_cast<uint64_t>(rows),
                                               static_cast<uint64_t>(cols), ld));
  return Layout(l);
}

template <class T>
void set(cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attr, const T& value) {
  CUDL_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc, attr, &value, sizeof value));
}

template <class T>
void set(cublasLtMatmulPreference_t pref, cublasLtMatmulPreferenceAttributes_t attr, const T& value) {
  CUDL_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, attr, &value, sizeof value));
}

// The statuses by which cuBLASLt declines a configuration (at the heuristic, or at cublasLtMatmul
// before anything is queued: "parameters are in conflict or in an impossible configuration",
// cublasLt.h); the call then falls back to gemm + bias_activation. Any other failure is an Error.
bool declined(cublasStatus_t s) {
  return s == CUBLAS_STATUS_NOT_SUPPORTED || s == CUBLAS_STATUS_INVALID_VALUE || s == CUBLAS_STATUS_ARCH_MISMATCH;
}

std::string status_text(cublasStatus_t s) {
  return std::string(cublasGetStatusName(s)) + ": " + cublasGetStatusString(s);
}

}  // namespace

struct GemmEpilogue::Plan {
  std::string what;              // the key, for describe()
  MatmulDesc desc;
  Layout a, b, c;                // cuBLASLt's A (our B), B (our A), and C = D
  cublasLtMatmulAlgo_t algo{};
  size_t workspace = 0;
  std::string why_not;           // empty when cuBLASLt runs it
};

GemmEpilogue::GemmEpilogue(cudaStream_t stream, void* workspace, size_t workspace_bytes)
    : stream_(stream), workspace_(workspace), workspace_bytes_(workspace_bytes) {
  cublasLtHandle_t h = nullptr;
  CUDL_CUBLAS_CHECK(cublasLtCreate(&h));
  handle_.reset(h);
}

GemmEpilogue::~GemmEpilogue() = default;  // the plans, then the handle

// The operand swap of CudaBackend::do_gemm (cuda_backend.cu): row-major C(m×n) = op(A)·op(B) is
// column-major Cᵀ(n×m) = op(B)ᵀ·op(A)ᵀ, so cuBLASLt's A is our B (n × k after its op) and its B
// our A (k × m). The bias, one value per column of our C, is then one per row of cuBLASLt's D
// (n rows), which is what its bias epilogue adds.
GemmEpilogue::Plan& GemmEpilogue::plan(const Key& key, Trans ta, Trans tb, int64_t m, int64_t n, int64_t k,
                                       int64_t lda, int64_t ldb, const float* bias, Activation act,
                                       cublasComputeType_t compute) {
  auto found = plans_.find(key);
  if (found != plans_.end()) return *found->second;
  auto p = std::make_unique<Plan>();
  std::ostringstream what;
  what << "gemm_bias_activation m,n,k " << m << "x" << n << "x" << k << (ta == Trans::kYes ? " Aᵀ" : " A")
       << (tb == Trans::kYes ? " Bᵀ" : " B") << " " << to_string(act)
       << (compute == CUBLAS_COMPUTE_32F_FAST_TF32 ? " tf32" : " fp32") << " lda,ldb " << lda << "," << ldb
       << " align A,B,C,bias " << key[9] << "," << key[10] << "," << key[11] << "," << key[12];
  p->what = what.str();
  if (key[12] < 16) {
    // The preferences give cuBLASLt A, B, C and D's alignment but not the bias's, and a kernel
    // that assumes a 16-byte bias faults with a misaligned address, an error that ends the CUDA
    // context (reported in pytorch/pytorch#194497; Marian requires 16 bytes too): fall back.
    p->why_not = "bias aligned to " + std::to_string(key[12]) + " bytes, not 16";
    return *plans_.emplace(key, std::move(p)).first->second;
  }
  cublasLtMatmulDesc_t desc = nullptr;
  CUDL_CUBLAS_CHECK(cublasLtMatmulDescCreate(&desc, compute, CUDA_R_32F));
  p->desc.reset(desc);
  set(desc, CUBLASLT_MATMUL_DESC_TRANSA, tb == Trans::kYes ? CUBLAS_OP_T : CUBLAS_OP_N);
  set(desc, CUBLASLT_MATMUL_DESC_TRANSB, ta == Trans::kYes ? CUBLAS_OP_T : CUBLAS_OP_N);
  set(desc, CUBLASLT_MATMUL_DESC_EPILOGUE,
      act == Activation::kRelu ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_BIAS);
  set(desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, static_cast<int32_t>(CUDA_R_32F));
  // The heuristic reads the bias pointer's alignment (cublasLt.h): the real one, hence the key's.
  set(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, static_cast<const void*>(bias));
  // Stored (row-major) B is k×n, or n×k when transposed: read column-major, n×k or k×n.
  p->a = tb == Trans::kNo ? layout(n, k, ldb) : layout(k, n, ldb);
  p->b = ta == Trans::kNo ? layout(k, m, lda) : layout(m, k, lda);
  p->c = layout(n, m, n);
  cublasLtMatmulPreference_t pref_handle = nullptr;
  CUDL_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref_handle));
  const Preference pref(pref_handle);
  set(pref_handle, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, static_cast<uint64_t>(workspace_bytes_));
  set(pref_handle, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, static_cast<uint32_t>(key[10]));  // our B
  set(pref_handle, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, static_cast<uint32_t>(key[9]));   // our A
  set(pref_handle, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, static_cast<uint32_t>(key[11]));
  set(pref_handle, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, static_cast<uint32_t>(key[11]));
  cublasLtMatmulHeuristicResult_t result{};
  int count = 0;
  const cublasStatus_t status = cublasLtMatmulAlgoGetHeuristic(handle_.get(), desc, p->a.get(), p->b.get(),
                                                               p->c.get(), p->c.get(), pref_handle, 1, &result, &count);
  if (declined(status)) {
    p->why_not = "heuristic: " + status_text(status);
  } else {
    CUDL_CUBLAS_CHECK(status);
    if (count < 1) {
      p->why_not = "heuristic: no algorithm";
    } else if (result.state != CUBLAS_STATUS_SUCCESS) {
      p->why_not = "heuristic: " + status_text(result.state);
    } else if (result.workspaceSize > workspace_bytes_) {
      p->why_not = "heuristic: wants " + std::to_string(result.workspaceSize) + " bytes of workspace";
    } else {
      p->algo = result.algo;
      p->workspace = result.workspaceSize;
    }
  }
  return *plans_.emplace(key, std::move(p)).first->second;
}

bool GemmEpilogue::run(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                       const float* b, int64_t ldb, const float* bias, Activation act, cublasComputeType_t compute,
                       float* c) {
  const Key key{m, n, k, static_cast<int64_t>(ta), static_cast<int64_t>(tb), static_cast<int64_t>(act),
                static_cast<int64_t>(compute), lda, ldb, pointer_alignment(a), pointer_alignment(b),
                pointer_alignment(c), pointer_alignment(bias)};
  Plan& p = plan(key, ta, tb, m, n, k, lda, ldb, bias, act, compute);
  if (!p.why_not.empty()) return false;
  set(p.desc.get(), CUBLASLT_MATMUL_DESC_BIAS_POINTER, static_cast<const void*>(bias));
  const float zero = 0.0f;  // C is not read: D = C's memory, written whole
  const cublasStatus_t status =
      cublasLtMatmul(handle_.get(), p.desc.get(), &alpha, b, p.a.get(), a, p.b.get(), &zero, c, p.c.get(), c,
                     p.c.get(), &p.algo, p.workspace > 0 ? workspace_ : nullptr, p.workspace, stream_);
  if (declined(status)) {  // refused before anything was queued
    p.why_not = "cublasLtMatmul: " + status_text(status);
    return false;
  }
  CUDL_CUBLAS_CHECK(status);
  return true;
}

std::vector<std::string> GemmEpilogue::describe() const {
  std::vector<std::string> lines;
  for (const auto& entry : plans_) {
    const Plan& p = *entry.second;
    lines.push_back(p.what + ": " +
                    (p.why_not.empty() ? "cuBLASLt, workspace " + std::to_string(p.workspace) + " bytes"
                                       : "gemm + bias_activation (" + p.why_not + ")"));
  }
  return lines;
}

}  // namespace cuda

namespace {

// Whether a product takes the fp32/tf32 paths (cudl's few-row kernel or the library's): not in
// kBf16, no empty dimension (m, n, k first), every dimension within cuBLAS's 32-bit int.
bool fp32_path(Precision precision, std::initializer_list<int64_t> dims) {
  if (precision == Precision::kBf16) return false;
  int i = 0;
  for (int64_t d : dims) {
    if ((i++ < 3 && d == 0) || d > INT_MAX) return false;
  }
  return true;
}

// The call as cudl's few-row kernel takes it; the caller adds the epilogue's operands.
cuda::RowsGemmCall few_rows_call(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
                                 const float* b, int64_t ldb, cuda::rows_gemm::Epilogue epilogue, float alpha,
                                 float* c, int64_t ldc) {
  cuda::RowsGemmCall call{ta == Trans::kYes, tb == Trans::kYes, m, n, k, a, lda, b, ldb, {}};
  call.out.epilogue = epilogue;
  call.out.alpha = alpha;
  call.out.c = c;
  call.out.ldc = ldc;
  return call;
}

}  // namespace

// Our kernel where it was chosen for the shape (rows_gemm.hpp), else one cuBLASLt call with the
// epilogue, else cuBLAS and bias_activation.
void CudaBackend::do_gemm_bias_activation(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, float alpha,
                                          const float* a, int64_t lda, const float* b, int64_t ldb, const float* bias,
                                          Activation act, float* c) {
  if (!fp32_path(impl_->precision, {m, n, k, lda, ldb})) {
    Backend::do_gemm_bias_activation(ta, tb, m, n, k, alpha, a, lda, b, ldb, bias, act, c);  // do_gemm's path
    return;
  }
  // n = 1 or k = 1 stays unfused, as PyTorch keeps it (addmm's cuBLASLt path wants both above 1;
  // its comment: with one row or column in mat2 the heuristic answered INVALID_VALUE).
  const bool fusable = (act == Activation::kIdentity || act == Activation::kRelu) && n > 1 && k > 1;
  const cublasComputeType_t compute =
      impl_->precision == Precision::kTf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  auto library = [&](const cuda::rows_gemm::Outputs& out) {
    if (fusable && impl_->epilogue->run(ta, tb, m, n, k, alpha, a, lda, b, ldb, bias, act, compute, out.c)) return;
    impl_->gemm_cublas(ta, tb, m, n, k, alpha, a, lda, b, ldb, 0.0f, out.c, n);
    do_bias_activation(out.c, bias, m, n, act);
  };
  cuda::RowsGemmCall call =
      few_rows_call(ta, tb, m, n, k, a, lda, b, ldb, cuda::rows_gemm::Epilogue::kBiasAct, alpha, c, n);
  call.out.bias = bias;
  call.out.act = act;
  if (!impl_->rows_gemm->run(call, library)) library(call.out);
}

// Our kernel where it was chosen for the shape, else cuBLAS and activation_backward.
void CudaBackend::do_gemm_activation_backward(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, float alpha,
                                              const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
                                              const float* y, Activation act) {
  if (!fp32_path(impl_->precision, {m, n, k, lda, ldb})) {
    Backend::do_gemm_activation_backward(ta, tb, m, n, k, alpha, a, lda, b, ldb, c, y, act);  // do_gemm's path
    return;
  }
  auto library = [&](const cuda::rows_gemm::Outputs& out) {
    impl_->gemm_cublas(ta, tb, m, n, k, alpha, a, lda, b, ldb, 0.0f, out.c, n);
    do_activation_backward(out.c, y, m * n, act);
  };
  cuda::RowsGemmCall call =
      few_rows_call(ta, tb, m, n, k, a, lda, b, ldb, cuda::rows_gemm::Epilogue::kActBackward, alpha, c, n);
  call.out.y = y;
  call.out.act = act;
  if (!impl_->rows_gemm->run(call, library)) library(call.out);
}

// Our kernel, summing B's rows (and A's) as it streams them, where chosen for the shape; else
// cuBLAS and sum_rows.
void CudaBackend::do_gemm_sum_rows(Trans ta, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                                   int64_t lda, const float* b, float beta, float* c, int64_t ldc, float sum_alpha,
                                   float sum_beta, float* sums, float* a_sums) {
  if (!fp32_path(impl_->precision, {m, n, k, lda, ldc})) {
    Backend::do_gemm_sum_rows(ta, m, n, k, alpha, a, lda, b, beta, c, ldc, sum_alpha, sum_beta, sums, a_sums);
    return;
  }
  auto library = [&](const cuda::rows_gemm::Outputs& out) {
    impl_->gemm_cublas(ta, Trans::kNo, m, n, k, alpha, a, lda, b, n, beta, out.c, ldc);
    do_sum_rows(sum_alpha, b, k, n, sum_beta, out.sums);
    if (out.a_sums != nullptr) do_sum_rows(sum_alpha, a, k, m, sum_beta, out.a_sums);
  };
  cuda::RowsGemmCall call =
      few_rows_call(ta, Trans::kNo, m, n, k, a, lda, b, n, cuda::rows_gemm::Epilogue::kPlain, alpha, c, ldc);
  call.out.beta = beta;
  call.out.sums = sums;
  call.out.a_sums = a_sums;
  call.out.sum_alpha = sum_alpha;
  call.out.sum_beta = sum_beta;
  if (!impl_->rows_gemm->run(call, library)) library(call.out);
}

std::vector<std::string> CudaBackend::gemm_kernel_choices() const { return impl_->rows_gemm->describe(); }

std::vector<std::string> CudaBackend::epilogue_plans() const { return impl_->epilogue->describe(); }

}  // namespace cudl

// The checked front half of the Backend's matrix products (gemm and the fused forms), and the
// default hooks of the fused forms: a backend overrides them to fuse (see backend.cpp).
#include <string>

#include "backend_checks.hpp"
#include "cudl/backend.hpp"
#include "cudl/error.hpp"

namespace cudl {

using detail::require_on;
using detail::require_rank;
using detail::require_shape;

namespace {

struct GemmDims {
  int64_t m, n, k;
};

// The checks of gemm's operands (op names the primitive in the messages): each on `backend`, 2-D,
// op(A) M×K, op(B) K×N, C M×N.
GemmDims check_gemm(const Backend& backend, const Tensor& a, Trans ta, const Tensor& b, Trans tb, const Tensor& c,
                    const char* op) {
  require_on(backend, a, op, "A");
  require_on(backend, b, op, "B");
  require_on(backend, c, op, "C");
  require_rank(a, 2, op, "A");
  require_rank(b, 2, op, "B");
  require_rank(c, 2, op, "C");
  const int64_t m = ta == Trans::kNo ? a.dim(0) : a.dim(1);
  const int64_t k = ta == Trans::kNo ? a.dim(1) : a.dim(0);
  const int64_t kb = tb == Trans::kNo ? b.dim(0) : b.dim(1);
  const int64_t n = tb == Trans::kNo ? b.dim(1) : b.dim(0);
  CUDL_REQUIRE(k == kb, std::string(op) + ": inner dimensions differ: op(A) is " + std::to_string(m) + "x" +
                            std::to_string(k) + " (A " + to_string(a.shape()) + (ta == Trans::kYes ? "ᵀ" : "") +
                            "), op(B) is " + std::to_string(kb) + "x" + std::to_string(n) + " (B " +
                            to_string(b.shape()) + (tb == Trans::kYes ? "ᵀ" : "") + ")");
  require_shape(c, {m, n}, op, "C");
  return {m, n, k};
}

}  // namespace

void Backend::gemm(float alpha, const Tensor& a, Trans ta, const Tensor& b, Trans tb, float beta, Tensor& c) {
  const GemmDims d = check_gemm(*this, a, ta, b, tb, c, "gemm");
  do_gemm(ta, tb, d.m, d.n, d.k, alpha, a.data(), a.dim(1), b.data(), b.dim(1), beta, c.data(), c.dim(1));
}

void Backend::gemm_activation_backward(float alpha, const Tensor& a, Trans ta, const Tensor& b, Trans tb, Tensor& c,
                                       const Tensor& y, Activation act) {
  const char* op = "gemm_activation_backward";
  const GemmDims d = check_gemm(*this, a, ta, b, tb, c, op);
  require_on(*this, y, op, "y");
  require_shape(y, c.shape(), op, "y");
  do_gemm_activation_backward(ta, tb, d.m, d.n, d.k, alpha, a.data(), a.dim(1), b.data(), b.dim(1), c.data(),
                              y.data(), act);
}

void Backend::do_gemm_activation_backward(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, float alpha,
                                          const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
                                          const float* y, Activation act) {
  do_gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, 0.0f, c, n);
  do_activation_backward(c, y, m * n, act);
}

void Backend::gemm_bias_activation(float alpha, const Tensor& a, Trans ta, const Tensor& b, Trans tb,
                                   const Tensor& bias, Activation act, Tensor& c) {
  const char* op = "gemm_bias_activation";
  const GemmDims d = check_gemm(*this, a, ta, b, tb, c, op);
  require_on(*this, bias, op, "bias");
  require_shape(bias, {d.n}, op, "bias");
  do_gemm_bias_activation(ta, tb, d.m, d.n, d.k, alpha, a.data(), a.dim(1), b.data(), b.dim(1), bias.data(), act,
                          c.data());
}

void Backend::do_gemm_bias_activation(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, float alpha,
                                      const float* a, int64_t lda, const float* b, int64_t ldb, const float* bias,
                                      Activation act, float* c) {
  do_gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, 0.0f, c, n);
  do_bias_activation(c, bias, m, n, act);
}

void Backend::gemm_sum_rows(float alpha, const Tensor& a, Trans ta, const Tensor& b, float beta, Tensor& c,
                            float sum_alpha, float sum_beta, Tensor& sums, Tensor* a_sums) {
  const char* op = "gemm_sum_rows";
  const GemmDims d = check_gemm(*this, a, ta, b, Trans::kNo, c, op);
  require_on(*this, sums, op, "sums");
  require_shape(sums, {d.n}, op, "sums");
  if (a_sums != nullptr) {
    CUDL_REQUIRE(ta == Trans::kYes, std::string(op) + ": a_sums (the sums of A's rows) needs A transposed (K×M)");
    require_on(*this, *a_sums, op, "a_sums");
    require_shape(*a_sums, {d.m}, op, "a_sums");
  }
  do_gemm_sum_rows(ta, d.m, d.n, d.k, alpha, a.data(), a.dim(1), b.data(), beta, c.data(), c.dim(1), sum_alpha,
                   sum_beta, sums.data(), a_sums != nullptr ? a_sums->data() : nullptr);
}

void Backend::do_gemm_sum_rows(Trans ta, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                               const float* b, float beta, float* c, int64_t ldc, float sum_alpha, float sum_beta,
                               float* sums, float* a_sums) {
  do_gemm(ta, Trans::kNo, m, n, k, alpha, a, lda, b, n, beta, c, ldc);
  do_sum_rows(sum_alpha, b, k, n, sum_beta, sums);
  if (a_sums != nullptr) do_sum_rows(sum_alpha, a, k, m, sum_beta, a_sums);
}

}  // namespace cudl

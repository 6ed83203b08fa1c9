// The checked front half of every Backend primitive: shapes and devices are validated here,
// once, so CpuBackend and CudaBackend implement only the arithmetic.
#include "cudl/backend.hpp"

#include "backend_checks.hpp"
#include "cudl/error.hpp"

namespace cudl {

using detail::require_on;
using detail::require_rank;
using detail::require_same_size;
using detail::require_shape;
using detail::require_update;

const char* to_string(Activation act) {
  switch (act) {
    case Activation::kIdentity: return "identity";
    case Activation::kRelu: return "relu";
    case Activation::kSigmoid: return "sigmoid";
  }
  return "?";
}

const char* to_string(Units units) {
  switch (units) {
    case Units::kBernoulli: return "bernoulli";
    case Units::kGaussian: return "gaussian";
    case Units::kNoisyRelu: return "noisy-relu";
  }
  return "?";
}


void Backend::fill(Tensor& x, float value) {
  require_on(*this, x, "fill", "x");
  do_fill(x.data(), x.size(), value);
}

void Backend::fill_normal(Tensor& x, uint64_t seed, float mean, float stddev) {
  require_on(*this, x, "fill_normal", "x");
  do_fill_normal(x.data(), x.size(), seed, mean, stddev);
}

void Backend::gemm(float alpha, const Tensor& a, Trans ta, const Tensor& b, Trans tb, float beta, Tensor& c) {
  const char* op = "gemm";
  require_on(*this, a, op, "A");
  require_on(*this, b, op, "B");
  require_on(*this, c, op, "C");
  require_rank(a, 2, op, "A");
  require_rank(b, 2, op, "B");
  require_rank(c, 2, op, "C");
  const int64_t m = ta == Trans::kNo ? a.dim(0) : a.dim(1);
  const int64_t k = ta == Trans::kNo ? a.dim(1) : a.dim(0);
  const int64_t kb = tb == Trans::kNo ? b.dim(0) : b.dim(1);
  const int64_t n = tb == Trans::kNo ? b.dim(1) : b.dim(0);
  CUDL_REQUIRE(k == kb, std::string("gemm: inner dimensions differ: op(A) is ") + std::to_string(m) + "x" +
                            std::to_string(k) + " (A " + to_string(a.shape()) + (ta == Trans::kYes ? "ᵀ" : "") +
                            "), op(B) is " + std::to_string(kb) + "x" + std::to_string(n) + " (B " +
                            to_string(b.shape()) + (tb == Trans::kYes ? "ᵀ" : "") + ")");
  require_shape(c, {m, n}, op, "C");
  do_gemm(ta, tb, m, n, k, alpha, a.data(), a.dim(1), b.data(), b.dim(1), beta, c.data(), c.dim(1));
}

void Backend::bias_activation(Tensor& y, const Tensor& bias, Activation act) {
  const char* op = "bias_activation";
  require_on(*this, y, op, "y");
  require_on(*this, bias, op, "bias");
  require_rank(y, 2, op, "y");
  require_shape(bias, {y.dim(1)}, op, "bias");
  do_bias_activation(y.data(), bias.data(), y.dim(0), y.dim(1), act);
}

void Backend::activation(Tensor& y, Activation act) {
  require_on(*this, y, "activation", "y");
  do_activation(y.data(), y.size(), act);
}

void Backend::activation_backward(Tensor& dy, const Tensor& y, Activation act) {
  const char* op = "activation_backward";
  require_on(*this, dy, op, "dy");
  require_on(*this, y, op, "y");
  require_shape(dy, y.shape(), op, "dy");
  do_activation_backward(dy.data(), y.data(), y.size(), act);
}

void Backend::sum_rows(float alpha, const Tensor& x, float beta, Tensor& out) {
  const char* op = "sum_rows";
  require_on(*this, x, op, "x");
  require_on(*this, out, op, "out");
  require_rank(x, 2, op, "x");
  require_shape(out, {x.dim(1)}, op, "out");
  do_sum_rows(alpha, x.data(), x.dim(0), x.dim(1), beta, out.data());
}

void Backend::softmax_cross_entropy(const Tensor& logits, const Tensor& labels, const CrossEntropyArgs& args,
                                    Tensor& dlogits, Tensor& stats) {
  const char* op = "softmax_cross_entropy";
  require_on(*this, logits, op, "logits");
  require_on(*this, labels, op, "labels");
  require_on(*this, dlogits, op, "dlogits");
  require_on(*this, stats, op, "stats");
  require_rank(logits, 2, op, "logits");
  require_shape(labels, {logits.dim(0)}, op, "labels");
  require_shape(dlogits, logits.shape(), op, "dlogits");
  require_shape(stats, {LossStats::kSize}, op, "stats");
  do_softmax_cross_entropy(logits.data(), labels.data(), logits.dim(0), logits.dim(1), args, dlogits.data(),
                           stats.data());
}

void Backend::argmax_rows(const Tensor& x, Tensor& out) {
  const char* op = "argmax_rows";
  require_on(*this, x, op, "x");
  require_on(*this, out, op, "out");
  require_rank(x, 2, op, "x");
  require_shape(out, {x.dim(0)}, op, "out");
  do_argmax_rows(x.data(), x.dim(0), x.dim(1), out.data());
}

void Backend::sample_rows(const Tensor& x, const Tensor& y, uint64_t seed, uint64_t first_draw, Tensor& bx,
                          Tensor& by) {
  const char* op = "sample_rows";
  require_on(*this, x, op, "x");
  require_on(*this, y, op, "y");
  require_on(*this, bx, op, "bx");
  require_on(*this, by, op, "by");
  require_rank(x, 2, op, "x");
  CUDL_REQUIRE(x.dim(0) > 0, "sample_rows: the data has no rows");
  CUDL_REQUIRE(x.dim(0) <= 0xFFFFFFFFll, "sample_rows: more than 2^32 rows");
  require_shape(y, {x.dim(0)}, op, "y");
  require_rank(bx, 2, op, "bx");
  require_shape(bx, {bx.dim(0), x.dim(1)}, op, "bx");
  require_shape(by, {bx.dim(0)}, op, "by");
  do_sample_rows(x.data(), y.data(), x.dim(0), x.dim(1), seed, first_draw, bx.data(), by.data(), bx.dim(0));
}

void Backend::bias_activation_sample(Tensor& y, const Tensor& bias, Activation act, Units units, uint64_t seed,
                                     uint64_t counter, Tensor& states) {
  const char* op = "bias_activation_sample";
  require_on(*this, y, op, "y");
  require_on(*this, bias, op, "bias");
  require_on(*this, states, op, "states");
  require_rank(y, 2, op, "y");
  require_shape(bias, {y.dim(1)}, op, "bias");
  require_shape(states, y.shape(), op, "states");
  do_bias_activation_sample(y.data(), bias.data(), y.dim(0), y.dim(1), act, units, seed, counter, states.data());
}

void Backend::sample_units(const Tensor& means, Units units, uint64_t seed, uint64_t counter, Tensor& out) {
  require_on(*this, means, "sample_units", "means");
  require_on(*this, out, "sample_units", "out");
  require_same_size(means, out, "sample_units", "means", "out");
  do_sample_units(means.data(), means.size(), units, seed, counter, out.data());
}

void Backend::momentum_step(Tensor& w, Tensor& v, const Tensor& g, const NesterovArgs& args) {
  require_update(*this, w, v, g, args, "momentum_step");
  do_momentum_step(w.data(), v.data(), g.data(), w.size(), args);
}

void Backend::axpy(float alpha, const Tensor& x, Tensor& y) {
  require_on(*this, x, "axpy", "x");
  require_on(*this, y, "axpy", "y");
  require_same_size(x, y, "axpy", "x", "y");
  do_axpy(alpha, x.data(), y.data(), y.size());
}

void Backend::nesterov_step(Tensor& w, Tensor& v, const Tensor& g, const NesterovArgs& args) {
  require_update(*this, w, v, g, args, "nesterov_step");
  do_nesterov_step(w.data(), v.data(), g.data(), w.size(), args);
}

}  // namespace cudl

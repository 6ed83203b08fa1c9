// The checked front half of the convolution, pooling and dropout primitives: every size is
// resolved from the tensors and checked here, once, so the backends implement only arithmetic.
#include <initializer_list>
#include <limits>
#include <string>
#include <utility>

#include "backend_checks.hpp"
#include "cudl/backend.hpp"
#include "cudl/error.hpp"

namespace cudl {

using detail::counter_bits;
using detail::require_counter;
using detail::require_on;
using detail::require_rank;
using detail::require_same_size;
using detail::require_shape;

int64_t window_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad, int64_t dilation) {
  if (stride <= 0) return 0;
  // In 128 bits: a hostile saved architecture (a padding or dilation near 2^63, found by the
  // checkpoint fuzzer at 1,028,289 runs) must not overflow; every term fits.
  using Wide = __int128;
  const Wide span = Wide{in} + 2 * Wide{pad} - Wide{dilation} * (Wide{kernel} - 1) - 1;
  if (span < 0) return 0;
  const Wide out = span / stride + 1;
  CUDL_REQUIRE(out <= Wide{std::numeric_limits<int64_t>::max()},
               "window of size " + std::to_string(kernel) + " (dilation " + std::to_string(dilation) +
                   ", stride " + std::to_string(stride) + ") over " + std::to_string(in) + " values padded by " +
                   std::to_string(pad) + " on each side: the output size does not fit in 64 bits");
  return static_cast<int64_t>(out);
}

const char* to_string(PoolMode mode) { return mode == PoolMode::kMax ? "max" : "average"; }

namespace {

std::string pair(int64_t a, int64_t b) { return std::to_string(a) + "×" + std::to_string(b); }

void require_positive(int64_t value, const char* op, const char* name) {
  CUDL_REQUIRE(value > 0, std::string(op) + ": " + name + " must be positive, got " + std::to_string(value));
}

// Resolves and checks a convolution of x-shaped input by w-shaped filters.
Conv2dShape conv_shape(const Shape& x, const Shape& w, const Conv2dParams& p, const char* op) {
  CUDL_REQUIRE(x.size() == 4, std::string(op) + ": input must be N×C×H×W, found " + to_string(x));
  CUDL_REQUIRE(w.size() == 4, std::string(op) + ": filters must be K×C×R×S, found " + to_string(w));
  CUDL_REQUIRE(w[1] == x[1], std::string(op) + ": filters " + to_string(w) + " expect " + std::to_string(w[1]) +
                                 " input channels, input " + to_string(x) + " has " + std::to_string(x[1]));
  require_positive(p.stride_h, op, "stride_h");
  require_positive(p.stride_w, op, "stride_w");
  require_positive(p.dilation_h, op, "dilation_h");
  require_positive(p.dilation_w, op, "dilation_w");
  CUDL_REQUIRE(p.pad_h >= 0 && p.pad_w >= 0, std::string(op) + ": negative padding " + pair(p.pad_h, p.pad_w));
  Conv2dShape s;
  s.n = x[0], s.c = x[1], s.h = x[2], s.w = x[3];
  s.k = w[0], s.r = w[2], s.s = w[3];
  s.p = window_output_size(s.h, s.r, p.stride_h, p.pad_h, p.dilation_h);
  s.q = window_output_size(s.w, s.s, p.stride_w, p.pad_w, p.dilation_w);
  s.params = p;
  CUDL_REQUIRE(s.p > 0 && s.q > 0, std::string(op) + ": a " + pair(s.r, s.s) + " filter (dilation " +
                                       pair(p.dilation_h, p.dilation_w) + ", padding " + pair(p.pad_h, p.pad_w) +
                                       ") does not fit the " + pair(s.h, s.w) + " input");
  return s;
}

Shape output_of(const Conv2dShape& s) { return {s.n, s.k, s.p, s.q}; }

Pool2dShape pool_shape(const Shape& x, const Pool2dParams& p, const char* op) {
  CUDL_REQUIRE(x.size() == 4, std::string(op) + ": input must be N×C×H×W, found " + to_string(x));
  require_positive(p.window_h, op, "window_h");
  require_positive(p.window_w, op, "window_w");
  require_positive(p.stride_h, op, "stride_h");
  require_positive(p.stride_w, op, "stride_w");
  CUDL_REQUIRE(p.pad_h >= 0 && p.pad_w >= 0 && 2 * p.pad_h <= p.window_h && 2 * p.pad_w <= p.window_w,
               std::string(op) + ": padding " + pair(p.pad_h, p.pad_w) + " must be between 0 and half the " +
                   pair(p.window_h, p.window_w) + " window");
  Pool2dShape s;
  s.n = x[0], s.c = x[1], s.h = x[2], s.w = x[3];
  s.p = window_output_size(s.h, p.window_h, p.stride_h, p.pad_h, 1);
  s.q = window_output_size(s.w, p.window_w, p.stride_w, p.pad_w, 1);
  s.params = p;
  CUDL_REQUIRE(s.p > 0 && s.q > 0, std::string(op) + ": a " + pair(p.window_h, p.window_w) + " window (padding " +
                                       pair(p.pad_h, p.pad_w) + ") does not fit the " + pair(s.h, s.w) + " input");
  return s;
}

// (outer, channels, inner) of an N×C×... tensor.
void channel_split(const Tensor& t, const char* op, int64_t& outer, int64_t& channels, int64_t& inner) {
  CUDL_REQUIRE(t.rank() >= 2, std::string(op) + ": expected N×C×..., found " + to_string(t.shape()));
  outer = t.dim(0);
  channels = t.dim(1);
  inner = channels == 0 ? 0 : t.size() / (outer * channels);
}

}  // namespace

void Backend::conv2d_forward(const Tensor& x, const Tensor& w, const Conv2dParams& params, Tensor& y) {
  require_on(*this, x, "conv2d_forward", "x");
  require_on(*this, w, "conv2d_forward", "w");
  require_on(*this, y, "conv2d_forward", "y");
  const Conv2dShape s = conv_shape(x.shape(), w.shape(), params, "conv2d_forward");
  require_shape(y, output_of(s), "conv2d_forward", "y");
  do_conv2d_forward(x.data(), w.data(), s, y.data());
}

void Backend::conv2d_backward_data(const Tensor& dy, const Tensor& w, const Conv2dParams& params, Tensor& dx) {
  require_on(*this, dy, "conv2d_backward_data", "dy");
  require_on(*this, w, "conv2d_backward_data", "w");
  require_on(*this, dx, "conv2d_backward_data", "dx");
  const Conv2dShape s = conv_shape(dx.shape(), w.shape(), params, "conv2d_backward_data");
  require_shape(dy, output_of(s), "conv2d_backward_data", "dy");
  do_conv2d_backward_data(dy.data(), w.data(), s, dx.data());
}

void Backend::conv2d_backward_filter(const Tensor& x, const Tensor& dy, const Conv2dParams& params, Tensor& dw) {
  require_on(*this, x, "conv2d_backward_filter", "x");
  require_on(*this, dy, "conv2d_backward_filter", "dy");
  require_on(*this, dw, "conv2d_backward_filter", "dw");
  const Conv2dShape s = conv_shape(x.shape(), dw.shape(), params, "conv2d_backward_filter");
  require_shape(dy, output_of(s), "conv2d_backward_filter", "dy");
  do_conv2d_backward_filter(x.data(), dy.data(), s, dw.data());
}

void Backend::channel_bias_activation(Tensor& y, const Tensor& bias, Activation act) {
  require_on(*this, y, "channel_bias_activation", "y");
  require_on(*this, bias, "channel_bias_activation", "bias");
  int64_t outer, channels, inner;
  channel_split(y, "channel_bias_activation", outer, channels, inner);
  require_shape(bias, {channels}, "channel_bias_activation", "bias");
  do_channel_bias_activation(y.data(), bias.data(), outer, channels, inner, act);
}

void Backend::sum_channels(float alpha, const Tensor& x, float beta, Tensor& out) {
  require_on(*this, x, "sum_channels", "x");
  require_on(*this, out, "sum_channels", "out");
  int64_t outer, channels, inner;
  channel_split(x, "sum_channels", outer, channels, inner);
  require_shape(out, {channels}, "sum_channels", "out");
  do_sum_channels(alpha, x.data(), outer, channels, inner, beta, out.data());
}

void Backend::pool2d_forward(const Tensor& x, const Pool2dParams& params, Tensor& y) {
  require_on(*this, x, "pool2d_forward", "x");
  require_on(*this, y, "pool2d_forward", "y");
  const Pool2dShape s = pool_shape(x.shape(), params, "pool2d_forward");
  require_shape(y, {s.n, s.c, s.p, s.q}, "pool2d_forward", "y");
  do_pool2d_forward(x.data(), s, y.data());
}

void Backend::pool2d_backward(const Tensor& x, const Tensor& y, const Tensor& dy, const Pool2dParams& params,
                              Tensor& dx) {
  require_on(*this, x, "pool2d_backward", "x");
  require_on(*this, y, "pool2d_backward", "y");
  require_on(*this, dy, "pool2d_backward", "dy");
  require_on(*this, dx, "pool2d_backward", "dx");
  const Pool2dShape s = pool_shape(x.shape(), params, "pool2d_backward");
  require_shape(y, {s.n, s.c, s.p, s.q}, "pool2d_backward", "y");
  require_shape(dy, y.shape(), "pool2d_backward", "dy");
  require_shape(dx, x.shape(), "pool2d_backward", "dx");
  do_pool2d_backward(x.data(), y.data(), dy.data(), s, dx.data());
}

void Backend::dropout(const Tensor& x, float drop, uint64_t seed, uint64_t counter, Tensor& y) {
  require_on(*this, x, "dropout", "x");
  require_on(*this, y, "dropout", "y");
  require_same_size(x, y, "dropout", "x", "y");
  CUDL_REQUIRE(drop >= 0.0f && drop < 1.0f, "dropout: the drop probability must be in [0, 1), got " +
                                                std::to_string(drop));
  do_dropout(x.data(), x.size(), drop, seed, nullptr, counter, y.data());
}

void Backend::dropout(const Tensor& x, float drop, uint64_t seed, const Tensor& counter, uint64_t offset, Tensor& y) {
  require_on(*this, x, "dropout", "x");
  require_on(*this, y, "dropout", "y");
  require_counter(*this, counter, "dropout");
  require_same_size(x, y, "dropout", "x", "y");
  CUDL_REQUIRE(drop >= 0.0f && drop < 1.0f, "dropout: the drop probability must be in [0, 1), got " +
                                                std::to_string(drop));
  do_dropout(x.data(), x.size(), drop, seed, counter_bits(counter), offset, y.data());
}

namespace {

using Named = std::initializer_list<std::pair<const Tensor*, const char*>>;

void require_all_on(const Backend& backend, const char* op, Named tensors) {
  for (const auto& [t, name] : tensors) require_on(backend, *t, op, name);
}

// (outer, channels, inner) of x, after checking the per-channel vectors against its channels.
void batch_norm_split(const Tensor& x, const char* op, int64_t& outer, int64_t& channels, int64_t& inner,
                      Named per_channel) {
  channel_split(x, op, outer, channels, inner);
  for (const auto& [t, name] : per_channel) require_shape(*t, {channels}, op, name);
}

}  // namespace

void Backend::batch_norm_train(const Tensor& x, const Tensor& gamma, const Tensor& beta, const BatchNormArgs& args,
                               Tensor& running_mean, Tensor& running_var, Tensor& saved, Tensor& y) {
  const char* op = "batch_norm_train";
  require_all_on(*this, op, {{&x, "x"}, {&gamma, "gamma"}, {&beta, "beta"}, {&running_mean, "running_mean"},
                             {&running_var, "running_var"}, {&saved, "saved"}, {&y, "y"}});
  int64_t outer, channels, inner;
  batch_norm_split(x, op, outer, channels, inner,
                   {{&gamma, "gamma"}, {&beta, "beta"}, {&running_mean, "running_mean"}, {&running_var, "running_var"}});
  require_shape(saved, {2, channels}, op, "saved");
  require_shape(y, x.shape(), op, "y");
  CUDL_REQUIRE(outer * inner > 1, std::string(op) + ": needs more than one value per channel to estimate a variance, "
                                      "found input " + to_string(x.shape()));
  CUDL_REQUIRE(args.epsilon > 0.0f && args.momentum >= 0.0f && args.momentum <= 1.0f,
               std::string(op) + ": epsilon must be positive and momentum in [0, 1], got " +
                   std::to_string(args.epsilon) + " and " + std::to_string(args.momentum));
  do_batch_norm_train(x.data(), gamma.data(), beta.data(), outer, channels, inner, args, running_mean.data(),
                      running_var.data(), saved.data(), y.data());
}

void Backend::batch_norm_infer(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                               const Tensor& running_var, float epsilon, Tensor& y) {
  const char* op = "batch_norm_infer";
  require_all_on(*this, op, {{&x, "x"}, {&gamma, "gamma"}, {&beta, "beta"}, {&running_mean, "running_mean"},
                             {&running_var, "running_var"}, {&y, "y"}});
  int64_t outer, channels, inner;
  batch_norm_split(x, op, outer, channels, inner,
                   {{&gamma, "gamma"}, {&beta, "beta"}, {&running_mean, "running_mean"}, {&running_var, "running_var"}});
  require_shape(y, x.shape(), op, "y");
  CUDL_REQUIRE(epsilon > 0.0f, std::string(op) + ": epsilon must be positive, got " + std::to_string(epsilon));
  do_batch_norm_infer(x.data(), gamma.data(), beta.data(), running_mean.data(), running_var.data(), outer, channels,
                      inner, epsilon, y.data());
}

void Backend::batch_norm_backward(const Tensor& x, const Tensor& dy, const Tensor& gamma, const Tensor& saved,
                                  Tensor& dx, Tensor& dgamma, Tensor& dbeta) {
  const char* op = "batch_norm_backward";
  require_all_on(*this, op, {{&x, "x"}, {&dy, "dy"}, {&gamma, "gamma"}, {&saved, "saved"}, {&dx, "dx"},
                             {&dgamma, "dgamma"}, {&dbeta, "dbeta"}});
  int64_t outer, channels, inner;
  batch_norm_split(x, op, outer, channels, inner, {{&gamma, "gamma"}, {&dgamma, "dgamma"}, {&dbeta, "dbeta"}});
  require_shape(saved, {2, channels}, op, "saved");
  require_shape(dy, x.shape(), op, "dy");
  require_shape(dx, x.shape(), op, "dx");
  do_batch_norm_backward(x.data(), dy.data(), gamma.data(), saved.data(), outer, channels, inner, dx.data(),
                         dgamma.data(), dbeta.data());
}

}  // namespace cudl

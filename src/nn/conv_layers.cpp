#include "cudl/conv_layers.hpp"

#include <cstdio>

#include "cudl/error.hpp"
#include "nn/data_parallel.hpp"

namespace cudl {
namespace {

std::string pair(int64_t a, int64_t b) { return std::to_string(a) + "×" + std::to_string(b); }

// "stride 2, padding 1" for the parts that differ from the defaults (square values shown once).
std::string geometry(int64_t stride_h, int64_t stride_w, int64_t pad_h, int64_t pad_w, int64_t dil_h = 1,
                     int64_t dil_w = 1) {
  auto value = [](int64_t a, int64_t b) { return a == b ? std::to_string(a) : pair(a, b); };
  std::string s = ", stride " + value(stride_h, stride_w);
  if (pad_h != 0 || pad_w != 0) s += ", padding " + value(pad_h, pad_w);
  if (dil_h != 1 || dil_w != 1) s += ", dilation " + value(dil_h, dil_w);
  return s;
}

void require_image(const Layer& layer, const Shape& input) {
  CUDL_REQUIRE(input.size() == 3, layer.describe() + ": expected a per-sample input of shape [C, H, W], found " +
                                      to_string(input));
}

}  // namespace

// ---- Conv2d ----

Conv2d::Conv2d(int64_t out_channels, int64_t kernel_h, int64_t kernel_w, Conv2dParams params, Activation act,
               Bias bias)
    : out_channels_(out_channels), kernel_h_(kernel_h), kernel_w_(kernel_w), params_(params), act_(act), bias_(bias) {
  CUDL_REQUIRE(out_channels > 0 && kernel_h > 0 && kernel_w > 0,
               "Conv2d: output channels and kernel sizes must be positive, got " + std::to_string(out_channels) +
                   " channels of " + pair(kernel_h, kernel_w));
  CUDL_REQUIRE(params.stride_h > 0 && params.stride_w > 0 && params.dilation_h > 0 && params.dilation_w > 0 &&
                   params.pad_h >= 0 && params.pad_w >= 0,
               describe() + ": strides and dilations must be positive and padding non-negative");
}

std::string Conv2d::describe() const {
  return "Conv2d(" + std::to_string(out_channels_) + ", " + pair(kernel_h_, kernel_w_) +
         geometry(params_.stride_h, params_.stride_w, params_.pad_h, params_.pad_w, params_.dilation_h,
                  params_.dilation_w) +
         (act_ == Activation::kIdentity ? "" : std::string(", ") + to_string(act_)) +
         (bias_ == Bias::kNo ? ", no bias" : "") + ")";
}

Shape Conv2d::output_shape(const Shape& input) const {
  require_image(*this, input);
  const int64_t p = window_output_size(input[1], kernel_h_, params_.stride_h, params_.pad_h, params_.dilation_h);
  const int64_t q = window_output_size(input[2], kernel_w_, params_.stride_w, params_.pad_w, params_.dilation_w);
  CUDL_REQUIRE(p > 0 && q > 0, describe() + ": the kernel does not fit the input " + to_string(input));
  return {out_channels_, p, q};
}

std::vector<ParamSpec> Conv2d::param_specs(const Shape& input) const {
  output_shape(input);  // validates the input shape
  std::vector<ParamSpec> specs = {{"weight", {out_channels_, input[0], kernel_h_, kernel_w_}, Decay::kYes}};
  if (bias_ == Bias::kYes) specs.push_back({"bias", {out_channels_}, Decay::kNo});
  return specs;
}

void Conv2d::bind(std::vector<Tensor> params, std::vector<Tensor> grads) {
  const size_t count = bias_ == Bias::kYes ? 2 : 1;
  CUDL_REQUIRE(params.size() == count && grads.size() == count,
               describe() + ": expected " + std::to_string(count) + " parameters to bind");
  w_ = std::move(params[0]);
  gw_ = std::move(grads[0]);
  if (bias_ == Bias::kYes) {
    b_ = std::move(params[1]);
    gb_ = std::move(grads[1]);
  }
}

void Conv2d::forward(Backend& backend, const Tensor& x, Tensor& y, Mode) {
  CUDL_REQUIRE(!w_.empty(), describe() + ": forward before the network bound its parameters");
  CUDL_REQUIRE(x.rank() == 4 && x.dim(1) == w_.dim(1),
               describe() + ": expected input [N, " + std::to_string(w_.dim(1)) + ", H, W], found " +
                   to_string(x.shape()));
  backend.conv2d_forward(x, w_, params_, y);  // y = x ⋆ W
  if (bias_ == Bias::kYes) {
    backend.channel_bias_activation(y, b_, act_);  // y = act(y + b)
  } else {
    backend.activation(y, act_);  // y = act(y)
  }
}

void Conv2d::backward(Backend& backend, const Tensor& x, const Tensor& y, Tensor& dy, Tensor* dx) {
  backend.activation_backward(dy, y, act_);              // dz = dy ⊙ act'(z)
  if (bias_ == Bias::kYes) backend.sum_channels(1.0f, dy, 0.0f, gb_);  // gb(K) = Σ_{n,p,q} dz
  backend.conv2d_backward_filter(x, dy, params_, gw_);   // gW = ∂L/∂W
  if (dx != nullptr) backend.conv2d_backward_data(dy, w_, params_, *dx);
}

// ---- Pool2d ----

Pool2d::Pool2d(Pool2dParams params) : params_(params) {
  CUDL_REQUIRE(params.window_h > 0 && params.window_w > 0 && params.stride_h > 0 && params.stride_w > 0,
               "Pool2d: window and stride must be positive, got window " + pair(params.window_h, params.window_w) +
                   ", stride " + pair(params.stride_h, params.stride_w));
  // pad ≤ window / 2, written without 2·pad, which overflows for a pad near INT64_MAX (found by the
  // checkpoint fuzzer: a saved architecture is untrusted input).
  CUDL_REQUIRE(params.pad_h >= 0 && params.pad_w >= 0 && params.pad_h <= params.window_h / 2 &&
                   params.pad_w <= params.window_w / 2,
               describe() + ": padding must be between 0 and half the window");
}

std::string Pool2d::describe() const {
  return std::string(params_.mode == PoolMode::kMax ? "MaxPool2d(" : "AvgPool2d(") +
         pair(params_.window_h, params_.window_w) +
         geometry(params_.stride_h, params_.stride_w, params_.pad_h, params_.pad_w) + ")";
}

Shape Pool2d::output_shape(const Shape& input) const {
  require_image(*this, input);
  const int64_t p = window_output_size(input[1], params_.window_h, params_.stride_h, params_.pad_h, 1);
  const int64_t q = window_output_size(input[2], params_.window_w, params_.stride_w, params_.pad_w, 1);
  CUDL_REQUIRE(p > 0 && q > 0, describe() + ": the window does not fit the input " + to_string(input));
  return {input[0], p, q};
}

void Pool2d::forward(Backend& backend, const Tensor& x, Tensor& y, Mode) { backend.pool2d_forward(x, params_, y); }

void Pool2d::backward(Backend& backend, const Tensor& x, const Tensor& y, Tensor& dy, Tensor* dx) {
  if (dx != nullptr) backend.pool2d_backward(x, y, dy, params_, *dx);
}

// ---- Flatten ----

Shape Flatten::output_shape(const Shape& input) const {
  CUDL_REQUIRE(!input.empty(), "Flatten: empty input shape");
  return {numel(input)};
}

void Flatten::forward(Backend&, const Tensor& x, Tensor& y, Mode) { y.copy_from(x.reshaped(y.shape())); }

void Flatten::backward(Backend&, const Tensor&, const Tensor&, Tensor& dy, Tensor* dx) {
  if (dx != nullptr) dx->copy_from(dy.reshaped(dx->shape()));
}

// ---- Dropout ----

Dropout::Dropout(float drop, uint64_t seed) : drop_(drop), seed_(seed) {
  CUDL_REQUIRE(drop >= 0.0f && drop < 1.0f, "Dropout: the drop probability must be in [0, 1), got " +
                                                std::to_string(drop));
}

std::string Dropout::describe() const {
  std::string p = std::to_string(drop_);
  p.erase(p.find_last_not_of('0') + 1);
  if (p.back() == '.') p.pop_back();
  return "Dropout(" + p + ")";
}

void Dropout::forward(Backend& backend, const Tensor& x, Tensor& y, Mode mode) {
  last_train_ = mode == Mode::kTrain && drop_ > 0.0f;
  if (!last_train_) {
    y.copy_from(x);
    return;
  }
  if (device_counter_.empty() || &device_counter_.backend() != &backend) {
    device_counter_ = make_counter(backend, counter_);
  } else if (counter_ != synced_) {  // written through counters() (a loaded checkpoint)
    backend.set_counter(device_counter_, counter_);
  }
  // The mask is drawn from the counter's value when the work runs (rank r: its share of the global
  // batch's mask, r masks of this size in); then the counter advances past every rank's masks, on
  // the device, and on the host's copy (which a captured replay leaves behind: counters() reads).
  last_size_ = x.size();
  const uint64_t n = static_cast<uint64_t>(last_size_);
  backend.dropout(x, drop_, seed_, device_counter_, static_cast<uint64_t>(rank_) * n, y);
  backend.add_to_counter(device_counter_, static_cast<uint64_t>(ranks_) * n);
  counter_ += static_cast<uint64_t>(ranks_) * n;
  synced_ = counter_;
}

void Dropout::set_shares(int rank, int ranks) {
  detail::require_rank("Dropout", rank, ranks);
  rank_ = rank;
  ranks_ = ranks;
}

std::vector<std::pair<std::string, uint64_t*>> Dropout::counters() {
  if (!device_counter_.empty()) counter_ = synced_ = read_counter(device_counter_);
  return {{"counter", &counter_}};
}

void Dropout::backward(Backend& backend, const Tensor&, const Tensor&, Tensor& dy, Tensor* dx) {
  if (dx == nullptr) return;
  if (!last_train_) {
    dx->copy_from(dy);
    return;
  }
  // The same mask and scale: the counter has advanced by every rank's mask since the forward
  // (unsigned arithmetic: the offset wraps around to rank·n − ranks·n).
  const uint64_t n = static_cast<uint64_t>(last_size_);
  const uint64_t back = static_cast<uint64_t>(rank_) * n - static_cast<uint64_t>(ranks_) * n;
  backend.dropout(dy, drop_, seed_, device_counter_, back, *dx);
}

// ---- BatchNorm2d ----

BatchNorm2d::BatchNorm2d(BatchNormArgs args) : args_(args) {
  CUDL_REQUIRE(args.epsilon > 0.0f && args.momentum >= 0.0f && args.momentum <= 1.0f,
               "BatchNorm2d: epsilon must be positive and momentum in [0, 1], got " + std::to_string(args.epsilon) +
                   " and " + std::to_string(args.momentum));
}

std::string BatchNorm2d::describe() const {
  char buf[64];
  std::snprintf(buf, sizeof buf, "BatchNorm2d(eps %g, momentum %g)", args_.epsilon, args_.momentum);
  return buf;
}

Shape BatchNorm2d::output_shape(const Shape& input) const {
  require_image(*this, input);
  return input;
}

std::vector<ParamSpec> BatchNorm2d::param_specs(const Shape& input) const {
  output_shape(input);  // validates the input shape
  return {{"gamma", {input[0]}, Decay::kNo, 1.0f}, {"beta", {input[0]}, Decay::kNo, 0.0f}};
}

void BatchNorm2d::bind(std::vector<Tensor> params, std::vector<Tensor> grads) {
  CUDL_REQUIRE(params.size() == 2 && grads.size() == 2, describe() + ": expected 2 parameters to bind");
  gamma_ = std::move(params[0]);
  beta_ = std::move(params[1]);
  ggamma_ = std::move(grads[0]);
  gbeta_ = std::move(grads[1]);
  Backend& backend = gamma_.backend();
  const int64_t channels = gamma_.size();
  running_mean_ = Tensor({channels}, backend);
  running_var_ = Tensor({channels}, backend);
  saved_ = Tensor({2, channels}, backend);
  backend.fill(running_mean_, 0.0f);
  backend.fill(running_var_, 1.0f);
}

void BatchNorm2d::forward(Backend& backend, const Tensor& x, Tensor& y, Mode mode) {
  CUDL_REQUIRE(!gamma_.empty(), describe() + ": forward before the network bound its parameters");
  CUDL_REQUIRE(x.rank() == 4 && x.dim(1) == gamma_.size(),
               describe() + ": expected input [N, " + std::to_string(gamma_.size()) + ", H, W], found " +
                   to_string(x.shape()));
  last_train_ = mode == Mode::kTrain;
  if (last_train_) {
    backend.batch_norm_train(x, gamma_, beta_, args_, running_mean_, running_var_, saved_, y);
  } else {
    backend.batch_norm_infer(x, gamma_, beta_, running_mean_, running_var_, args_.epsilon, y);
  }
}

void BatchNorm2d::backward(Backend& backend, const Tensor& x, const Tensor&, Tensor& dy, Tensor* dx) {
  CUDL_REQUIRE(last_train_, describe() + ": backward needs a training-mode forward first (the last forward was in "
                                         "inference mode, which uses the running statistics)");
  // The first layer gets no dx: the input gradient is computed into dy itself (scratch).
  backend.batch_norm_backward(x, dy, gamma_, saved_, dx != nullptr ? *dx : dy, ggamma_, gbeta_);
}

// ---- factories ----

std::unique_ptr<Layer> conv2d(int64_t out_channels, int64_t kernel, Activation act, int64_t stride, int64_t padding,
                              int64_t dilation) {
  Conv2dParams p;
  p.stride_h = p.stride_w = stride;
  p.pad_h = p.pad_w = padding;
  p.dilation_h = p.dilation_w = dilation;
  return std::make_unique<Conv2d>(out_channels, kernel, kernel, p, act);
}

std::unique_ptr<Layer> conv2d(int64_t out_channels, int64_t kernel_h, int64_t kernel_w, const Conv2dParams& params,
                              Activation act, Bias bias) {
  return std::make_unique<Conv2d>(out_channels, kernel_h, kernel_w, params, act, bias);
}

namespace {
std::unique_ptr<Layer> pool2d(PoolMode mode, int64_t window, int64_t stride, int64_t padding) {
  Pool2dParams p;
  p.mode = mode;
  p.window_h = p.window_w = window;
  p.stride_h = p.stride_w = stride == 0 ? window : stride;
  p.pad_h = p.pad_w = padding;
  return std::make_unique<Pool2d>(p);
}
}  // namespace

std::unique_ptr<Layer> max_pool2d(int64_t window, int64_t stride, int64_t padding) {
  return pool2d(PoolMode::kMax, window, stride, padding);
}
std::unique_ptr<Layer> avg_pool2d(int64_t window, int64_t stride, int64_t padding) {
  return pool2d(PoolMode::kAverage, window, stride, padding);
}
std::unique_ptr<Layer> flatten() { return std::make_unique<Flatten>(); }
std::unique_ptr<Layer> dropout(float drop, uint64_t seed) { return std::make_unique<Dropout>(drop, seed); }
std::unique_ptr<Layer> batch_norm2d(float epsilon, float momentum) {
  return std::make_unique<BatchNorm2d>(BatchNormArgs{epsilon, momentum});
}

}  // namespace cudl

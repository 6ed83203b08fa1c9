#pragma once
// Convolutional layers, written once against Backend like the dense ones (layers.hpp). Per-sample
// shapes are C×H×W (NCHW batches); see Conv2dParams in backend.hpp for the letters.
//
//   cudl::Network net(backend, {1, 28, 28});
//   net.add(cudl::conv2d(32, 5, cudl::Activation::kRelu, /*stride=*/1, /*padding=*/2))
//      .add(cudl::max_pool2d(2))
//      .add(cudl::flatten())
//      .add(cudl::dropout(0.5))
//      .add(cudl::dense(10));
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cudl/layers.hpp"

namespace cudl {

/// Whether a layer adds a learned bias (a convolution followed by BatchNorm2d needs none).
enum class Bias {
  kYes,  ///< A bias per output channel.
  kNo,   ///< No bias parameter.
};

/// y = act(x ⋆ W + b): W (K×C×R×S) decayed, b (K) not; the activation is fused as in Dense.
/// With Bias::kNo, y = act(x ⋆ W) and the layer has no b. Per sample C×H×W → K×P×Q. The CPU
/// backend computes it by im2col and GEMM; the CUDA backend through cuDNN.
class Conv2d final : public Layer {
 public:
  /// K = `out_channels` filters of kernel_h × kernel_w over the input's channels. Throws Error when
  /// a size, stride or dilation is not positive or a padding is negative.
  Conv2d(int64_t out_channels, int64_t kernel_h, int64_t kernel_w, Conv2dParams params = {},
         Activation act = Activation::kIdentity, Bias bias = Bias::kYes);
  std::string describe() const override;  ///< e.g. "Conv2d(32, 5×5, stride 1, padding 2, relu)".
  Shape output_shape(const Shape& input) const override;
  std::vector<ParamSpec> param_specs(const Shape& input) const override;
  void bind(std::vector<Tensor> params, std::vector<Tensor> grads) override;
  void forward(Backend& backend, const Tensor& x, Tensor& y, Mode mode) override;
  void backward(Backend& backend, const Tensor& x, const Tensor& y, Tensor& dy, Tensor* dx) override;

  /// "conv2d": out_channels, kernel_h, kernel_w, stride_h/w, pad_h/w, dilation_h/w, activation, bias.
  LayerConfig config() const override;

  /// W (K×C×R×S), a view into the network's parameters (empty until the network is built).
  Tensor& weight() { return w_; }
  /// b (K), a view into the network's parameters; empty until built, and always with Bias::kNo.
  Tensor& bias() { return b_; }
  /// true: on the CUDA backend a convolution's cuDNN plan is chosen (and timed) on its first call,
  /// which a training run makes eagerly (its first step is not captured); later calls of the
  /// same shape only launch the plan.
  bool capturable() const override { return true; }

 private:
  int64_t out_channels_, kernel_h_, kernel_w_;
  Conv2dParams params_;
  Activation act_;
  Bias bias_;
  Tensor w_, b_, gw_, gb_;
};

/// Max or average pooling over windows of each channel.
class Pool2d final : public Layer {
 public:
  /// Pooling with the mode, window, stride and padding of `params`. Throws Error when a window or
  /// stride is not positive, or a padding is negative or more than half the window.
  explicit Pool2d(Pool2dParams params);
  std::string describe() const override;  ///< e.g. "MaxPool2d(2×2, stride 2)".
  Shape output_shape(const Shape& input) const override;
  void forward(Backend& backend, const Tensor& x, Tensor& y, Mode mode) override;
  void backward(Backend& backend, const Tensor& x, const Tensor& y, Tensor& dy, Tensor* dx) override;
  LayerConfig config() const override;  ///< "pool2d": mode, window_h/w, stride_h/w, pad_h/w.

 private:
  Pool2dParams params_;
};

/// C×H×W → C·H·W (a copy in the same row-major order).
class Flatten final : public Layer {
 public:
  std::string describe() const override { return "Flatten"; }
  LayerConfig config() const override { return {"flatten", {}}; }
  Shape output_shape(const Shape& input) const override;
  void forward(Backend& backend, const Tensor& x, Tensor& y, Mode mode) override;
  void backward(Backend& backend, const Tensor& x, const Tensor& y, Tensor& dy, Tensor* dx) override;
};

/// Inverted dropout: in training, each element is zeroed with probability `drop` and the rest
/// scaled by 1/(1 − drop); in inference the layer is the identity. Masks are counter-based draws
/// (Backend::dropout) from `seed` and a counter that advances with every training forward, so
/// the backward pass regenerates the mask instead of storing it, and CPU and GPU drop the same
/// elements.
class Dropout final : public Layer {
 public:
  /// Drops with probability `drop`, drawing masks from `seed`. Throws Error when drop is outside
  /// [0, 1).
  explicit Dropout(float drop, uint64_t seed = 0x5eed);
  std::string describe() const override;  ///< e.g. "Dropout(0.5)".
  Shape output_shape(const Shape& input) const override { return input; }
  void forward(Backend& backend, const Tensor& x, Tensor& y, Mode mode) override;
  void backward(Backend& backend, const Tensor& x, const Tensor& y, Tensor& dy, Tensor* dx) override;
  /// true: the mask's counter lives in the backend's memory (a counter tensor, created by the
  /// first training forward) and advances there, so a captured step draws fresh masks at each
  /// replay.
  bool capturable() const override { return true; }
  LayerConfig config() const override;  ///< "dropout": drop, seed.
  /// "counter": the first draw of the next training forward (read from the backend, which waits
  /// for its queued work). A value written through the pointer takes effect at the next forward
  /// that runs on the host, so not in the replays of a step captured before it was written.
  std::vector<std::pair<std::string, uint64_t*>> counters() override;
  /// Rank r of `ranks` draws its rows' share of the masks of the global batch: the same counter
  /// on every rank ("counter" counts the global batch's draws), offset by r times its own mask.
  /// Throws Error when rank is outside [0, ranks).
  void set_shares(int rank, int ranks) override;

 private:
  float drop_;
  uint64_t seed_;
  int rank_ = 0, ranks_ = 1;  // set_shares
  uint64_t counter_ = 0;     // first draw of the next training forward by all ranks (the host's copy)
  uint64_t synced_ = 0;      // device_counter_'s value when counter_ was last equal to it
  Tensor device_counter_;    // the counter the masks are drawn from (make_counter), on first use
  int64_t last_size_ = 0;    // elements of the last training forward's mask
  bool last_train_ = false;  // whether the last forward dropped anything
};

/// Batch normalisation per channel (dimension 1) of N×C×... inputs: in training, each channel is
/// normalised with its batch statistics, then scaled by γ and shifted by β (learned, not decayed,
/// starting at 1 and 0), and running averages of the statistics are kept; in inference the
/// running averages are used instead. The running statistics belong to the layer (they are not
/// parameters: the optimizer never sees them).
class BatchNorm2d final : public Layer {
 public:
  /// epsilon and momentum from `args`. Throws Error when epsilon is not positive or momentum is
  /// outside [0, 1].
  explicit BatchNorm2d(BatchNormArgs args = {});
  std::string describe() const override;  ///< e.g. "BatchNorm2d(eps 1e-05, momentum 0.1)".
  Shape output_shape(const Shape& input) const override;
  std::vector<ParamSpec> param_specs(const Shape& input) const override;
  void bind(std::vector<Tensor> params, std::vector<Tensor> grads) override;
  void forward(Backend& backend, const Tensor& x, Tensor& y, Mode mode) override;
  void backward(Backend& backend, const Tensor& x, const Tensor& y, Tensor& dy, Tensor* dx) override;

  LayerConfig config() const override;  ///< "batch_norm2d": epsilon, momentum.
  /// "running_mean", "running_var" (channels each).
  std::vector<std::pair<std::string, Tensor*>> state() override;

  const Tensor& running_mean() const { return running_mean_; }  ///< Per channel (C); used in inference.
  const Tensor& running_var() const { return running_var_; }    ///< Per channel (C); used in inference.

 private:
  BatchNormArgs args_;
  Tensor gamma_, beta_, ggamma_, gbeta_;
  Tensor running_mean_, running_var_, saved_;
  bool last_train_ = false;
};

/// A Conv2d with a square kernel, the same stride, padding and dilation in both directions, and a
/// bias: conv2d(32, 5, Activation::kRelu, 1, 2) is 32 filters of 5×5, stride 1, padding 2.
std::unique_ptr<Layer> conv2d(int64_t out_channels, int64_t kernel, Activation act = Activation::kIdentity,
                              int64_t stride = 1, int64_t padding = 0, int64_t dilation = 1);
/// A Conv2d with every setting given, as its constructor takes them.
std::unique_ptr<Layer> conv2d(int64_t out_channels, int64_t kernel_h, int64_t kernel_w, const Conv2dParams& params,
                              Activation act = Activation::kIdentity, Bias bias = Bias::kYes);
/// Max pooling over square windows; stride 0 means stride = window (non-overlapping).
std::unique_ptr<Layer> max_pool2d(int64_t window, int64_t stride = 0, int64_t padding = 0);
/// Average pooling over square windows; stride 0 means stride = window (non-overlapping).
std::unique_ptr<Layer> avg_pool2d(int64_t window, int64_t stride = 0, int64_t padding = 0);
/// A Flatten layer: C×H×W → C·H·W.
std::unique_ptr<Layer> flatten();
/// A Dropout layer dropping with probability `drop`, its masks drawn from `seed`.
std::unique_ptr<Layer> dropout(float drop, uint64_t seed = 0x5eed);
/// A BatchNorm2d with these epsilon (added to the variance) and momentum (of the running averages).
std::unique_ptr<Layer> batch_norm2d(float epsilon = 1e-5f, float momentum = 0.1f);

}  // namespace cudl

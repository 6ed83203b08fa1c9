#pragma once
// Layers, written once against Backend. A layer maps a batch x (N × in...) to y (N × out...);
// shapes below are per sample (without N). The Network owns the parameter and gradient
// storage and binds views of it to each layer, so all parameters of a network live in one
// flat buffer and one optimizer launch updates them all.
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cudl/backend.hpp"
#include "cudl/tensor.hpp"

namespace cudl {

enum class Mode { kTrain, kInfer };
enum class Decay { kYes, kNo };  // whether L2 weight decay applies to a parameter

struct ParamSpec {
  std::string name;  // "weight", "bias"
  Shape shape;
  Decay decay;
  // Network::initialize draws decayed weights from N(0, σ²); the other parameters start at this
  // value (0 for biases, 1 for a batch-norm scale).
  float initial = 0.0f;
};

// A layer's type and settings, enough to build it again (checkpoints store one per layer): e.g.
// {"dense", {{"units", "800"}, {"activation", "relu"}}}. Values are text: integers in decimal,
// floats with enough digits to read back the same float. An empty type marks a layer that
// cannot be rebuilt from a file (a user's own layer that does not override Layer::config); its
// parameters still save and load into a network built by hand.
struct LayerConfig {
  std::string type;
  std::vector<std::pair<std::string, std::string>> settings;
  // The value of `key`; throws naming the layer type and the key when it is missing.
  const std::string& at(const std::string& key) const;
  bool operator==(const LayerConfig& o) const { return type == o.type && settings == o.settings; }
  bool operator!=(const LayerConfig& o) const { return !(*this == o); }
};

class Layer {
 public:
  virtual ~Layer() = default;
  // e.g. "Dense(800, relu)".
  virtual std::string describe() const = 0;
  // The per-sample output shape for a per-sample input shape; throws naming the layer and the
  // expected and found shapes when the input does not fit.
  virtual Shape output_shape(const Shape& input) const = 0;
  // Parameters this layer needs for that input shape (empty for parameter-free layers).
  virtual std::vector<ParamSpec> param_specs(const Shape& input) const;
  // Receives views of its parameters and gradients, in param_specs order.
  virtual void bind(std::vector<Tensor> params, std::vector<Tensor> grads);
  // y ← f(x). y is allocated by the caller with the output shape.
  virtual void forward(Backend& backend, const Tensor& x, Tensor& y, Mode mode) = 0;
  // Given x, the forward output y and dy = ∂L/∂y (scratch: the layer may overwrite it), writes
  // the parameter gradients (overwriting them) and, when dx is not null, dx = ∂L/∂x.
  virtual void backward(Backend& backend, const Tensor& x, const Tensor& y, Tensor& dy, Tensor* dx) = 0;
  // Whether forward and backward may be captured once and replayed (Backend::begin_capture):
  // no host-side state that changes from call to call, no allocation, no synchronisation.
  virtual bool capturable() const { return true; }
  // What builds this layer again (see LayerConfig); the default: not rebuildable.
  virtual LayerConfig config() const { return {}; }
  // State that is not a parameter but must be saved with it (BatchNorm2d's running statistics),
  // by name; valid once the network has bound the layer's parameters.
  virtual std::vector<std::pair<std::string, Tensor*>> state() { return {}; }
  // Host-side integer state (Dropout's mask counter), by name.
  virtual std::vector<std::pair<std::string, uint64_t*>> counters() { return {}; }
};

// Fully connected: y = act(x·W + b), W (D×H), b (H). The activation is fused into the layer
// (one pass over y instead of two); use Activation::kIdentity for a plain affine map.
class Dense final : public Layer {
 public:
  explicit Dense(int64_t units, Activation act = Activation::kIdentity);
  std::string describe() const override;
  Shape output_shape(const Shape& input) const override;
  std::vector<ParamSpec> param_specs(const Shape& input) const override;
  void bind(std::vector<Tensor> params, std::vector<Tensor> grads) override;
  void forward(Backend& backend, const Tensor& x, Tensor& y, Mode mode) override;
  void backward(Backend& backend, const Tensor& x, const Tensor& y, Tensor& dy, Tensor* dx) override;
  LayerConfig config() const override;  // "dense": units, activation

  int64_t units() const { return units_; }
  Activation activation() const { return act_; }
  // Views into the network's flat parameter buffer (empty until the network is built).
  Tensor& weight() { return w_; }
  Tensor& bias() { return b_; }
  const Tensor& weight() const { return w_; }
  const Tensor& bias() const { return b_; }

 private:
  int64_t units_;
  Activation act_;
  Tensor w_, b_, gw_, gb_;
};

// A standalone elementwise activation layer (ReLU, Sigmoid); any per-sample shape.
class ActivationLayer final : public Layer {
 public:
  explicit ActivationLayer(Activation act);
  std::string describe() const override;
  Shape output_shape(const Shape& input) const override { return input; }
  void forward(Backend& backend, const Tensor& x, Tensor& y, Mode mode) override;
  void backward(Backend& backend, const Tensor& x, const Tensor& y, Tensor& dy, Tensor* dx) override;
  LayerConfig config() const override;  // "activation": activation

 private:
  Activation act_;
};

// Factories for the usual spellings: network.add(dense(800, Activation::kRelu)).add(relu()).
std::unique_ptr<Layer> dense(int64_t units, Activation act = Activation::kIdentity);
std::unique_ptr<Layer> relu();
std::unique_ptr<Layer> sigmoid();

}  // namespace cudl

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

/// Whether a forward pass is for training (dropout drops, batch norm uses and updates batch
/// statistics) or for inference.
enum class Mode {
  kTrain,  ///< Training: stochastic layers are active, statistics are updated.
  kInfer,  ///< Inference: deterministic; running statistics are used, not changed.
};
/// Whether L2 weight decay applies to a parameter.
enum class Decay {
  kYes,  ///< Decayed (weights); drawn from N(0, σ²) by Network::initialize.
  kNo,   ///< Not decayed (biases, batch-norm scale and shift); set to ParamSpec::initial.
};

/// One parameter tensor a layer asks the Network for.
struct ParamSpec {
  std::string name;  ///< Its name in checkpoints, e.g. "weight", "bias".
  Shape shape;       ///< Its shape, e.g. {D, H} for a Dense weight.
  Decay decay;       ///< Whether weight decay applies (and how it is initialised).
  /// Network::initialize draws decayed weights from N(0, σ²); the other parameters start at this
  /// value (0 for biases, 1 for a batch-norm scale).
  float initial = 0.0f;
};

/// A layer's type and settings, enough to build it again (checkpoints store one per layer).
///
/// For example {"dense", {{"units", "800"}, {"activation", "relu"}}}. Values are text: integers in decimal,
/// floats with enough digits to read back the same float. An empty type marks a layer that
/// cannot be rebuilt from a file (a user's own layer that does not override Layer::config); its
/// parameters still save and load into a network built by hand.
struct LayerConfig {
  std::string type;  ///< e.g. "dense", "conv2d"; empty for a layer that cannot be rebuilt.
  std::vector<std::pair<std::string, std::string>> settings;  ///< (name, value) pairs, in the layer's order.
  /// The value of `key`; throws Error naming the layer type and the key when it is missing.
  const std::string& at(const std::string& key) const;
  /// Same type and the same settings in the same order.
  bool operator==(const LayerConfig& o) const { return type == o.type && settings == o.settings; }
  /// Not operator==.
  bool operator!=(const LayerConfig& o) const { return !(*this == o); }
};

/// One step of a Network: a map from a batch x (N × input shape) to y (N × output shape) and its
/// backward pass, written once against Backend, so the same layer runs on the CPU and the GPU.
///
/// forward() and backward() queue work on the backend given (asynchronous on a GPU backend) and
/// read and write tensors that live on it. A layer is not thread-safe: one thread drives it (and
/// the Network that owns it). Shape and device mismatches, and the backend's failures, are thrown
/// as Error.
class Layer {
 public:
  virtual ~Layer() = default;
  /// One line naming the layer and its settings, e.g. "Dense(800, relu)".
  virtual std::string describe() const = 0;
  /// The per-sample output shape for a per-sample input shape; throws Error naming the layer and the
  /// expected and found shapes when the input does not fit.
  virtual Shape output_shape(const Shape& input) const = 0;
  /// Parameters this layer needs for that input shape (empty for parameter-free layers).
  virtual std::vector<ParamSpec> param_specs(const Shape& input) const;
  /// Receives views of its parameters and gradients, in param_specs order.
  virtual void bind(std::vector<Tensor> params, std::vector<Tensor> grads);
  /// y ← f(x) for a batch x (N × input shape). y is allocated by the caller with the output
  /// shape; `mode` selects training or inference behaviour.
  virtual void forward(Backend& backend, const Tensor& x, Tensor& y, Mode mode) = 0;
  /// Given x, the forward output y and dy = ∂L/∂y (scratch: the layer may overwrite it), writes
  /// the parameter gradients (overwriting them) and, when dx is not null, dx = ∂L/∂x.
  virtual void backward(Backend& backend, const Tensor& x, const Tensor& y, Tensor& dy, Tensor* dx) = 0;
  /// Whether forward and backward may be captured once and replayed (Backend::begin_capture):
  /// no host-side state that changes from call to call, no allocation, no synchronisation.
  virtual bool capturable() const { return true; }
  /// What builds this layer again (see LayerConfig); the default: not rebuildable.
  virtual LayerConfig config() const { return {}; }
  /// State that is not a parameter but must be saved with it (BatchNorm2d's running statistics),
  /// by name; valid once the network has bound the layer's parameters.
  virtual std::vector<std::pair<std::string, Tensor*>> state() { return {}; }
  /// Host-side integer state (Dropout's mask counter), by name.
  virtual std::vector<std::pair<std::string, uint64_t*>> counters() { return {}; }
  /// Data-parallel training (Network::set_shares): this process computes the rows
  /// [rank·N, (rank+1)·N) of every global batch of ranks·N rows. A layer that draws random
  /// numbers per element (Dropout) draws those rows' numbers of the global batch, so that the
  /// ranks together draw what one process of the whole batch would. The default ignores it.
  virtual void set_shares(int rank, int ranks) {
    (void)rank;
    (void)ranks;
  }
};

/// Fully connected: y = act(x·W + b), W (D×H), b (H). The activation is fused into the layer
/// (one pass over y instead of two); use Activation::kIdentity for a plain affine map.
class Dense final : public Layer {
 public:
  /// H = `units` outputs. Throws Error when units is not positive.
  explicit Dense(int64_t units, Activation act = Activation::kIdentity);
  /// "Dense(800, relu)", or "Dense(10)" for the identity.
  std::string describe() const override;
  Shape output_shape(const Shape& input) const override;
  std::vector<ParamSpec> param_specs(const Shape& input) const override;
  void bind(std::vector<Tensor> params, std::vector<Tensor> grads) override;
  void forward(Backend& backend, const Tensor& x, Tensor& y, Mode mode) override;
  void backward(Backend& backend, const Tensor& x, const Tensor& y, Tensor& dy, Tensor* dx) override;
  LayerConfig config() const override;  ///< "dense": units, activation

  int64_t units() const { return units_; }              ///< H, the outputs per sample.
  Activation activation() const { return act_; }        ///< The fused activation.
  /// W (D×H), a view into the network's flat parameter buffer (empty until the network is built).
  Tensor& weight() { return w_; }
  /// b (H), a view into the network's flat parameter buffer (empty until the network is built).
  Tensor& bias() { return b_; }
  /// W (D×H), read-only; empty until the network is built.
  const Tensor& weight() const { return w_; }
  /// b (H), read-only; empty until the network is built.
  const Tensor& bias() const { return b_; }

 private:
  friend class Network;
  // backward as Network runs it between two Dense layers: when dy_is_dz, dy already holds dz (the
  // layer above applied this layer's activation derivative); dx leaves multiplied by below'(x),
  // x being the output of the layer below with activation `below`, through
  // Backend::gemm_activation_backward (which skips the units a ReLU below silences).
  void backward_fused(Backend& backend, const Tensor& x, const Tensor& y, Tensor& dy, Tensor* dx, bool dy_is_dz,
                      Activation below);

  int64_t units_;
  Activation act_;
  Tensor w_, b_, gw_, gb_;
};

/// A standalone elementwise activation layer (ReLU, Sigmoid); any per-sample shape.
class ActivationLayer final : public Layer {
 public:
  /// Applies `act` to every value.
  explicit ActivationLayer(Activation act);
  /// "ReLU", "Sigmoid" or "Identity".
  std::string describe() const override;
  Shape output_shape(const Shape& input) const override { return input; }
  void forward(Backend& backend, const Tensor& x, Tensor& y, Mode mode) override;
  void backward(Backend& backend, const Tensor& x, const Tensor& y, Tensor& dy, Tensor* dx) override;
  LayerConfig config() const override;  ///< "activation": activation

 private:
  Activation act_;
};

/// A Dense layer, for the usual spelling: network.add(dense(800, Activation::kRelu)).
std::unique_ptr<Layer> dense(int64_t units, Activation act = Activation::kIdentity);
/// An ActivationLayer of ReLU, max(0, x).
std::unique_ptr<Layer> relu();
/// An ActivationLayer of the logistic sigmoid, 1 / (1 + e^−x).
std::unique_ptr<Layer> sigmoid();

}  // namespace cudl

#pragma once
// Network: a sequence of layers on one backend. It owns all parameters and their gradients in
// two flat tensors (weights with L2 decay first, then the rest), the per-batch activations,
// and nothing else: losses and optimizers are separate.
//
//   cudl::CpuBackend cpu;
//   cudl::Network net(cpu, {784});
//   net.add(cudl::dense(800, cudl::Activation::kRelu)).add(cudl::dense(10));
//   net.initialize(/*seed=*/2014, /*weight_stddev=*/0.05f);
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cudl/backend.hpp"
#include "cudl/layers.hpp"
#include "cudl/optimizer.hpp"  // ParamSet

namespace cudl {

/// One layer's share of the passes timed by Network::set_layer_timing.
struct LayerTime {
  std::string layer;         ///< Layer::describe()
  double forward_ms = 0.0;   ///< summed over `forwards` forward passes
  double backward_ms = 0.0;  ///< summed over `backwards` backward passes
  int64_t forwards = 0;       ///< forward passes timed
  int64_t backwards = 0;      ///< backward passes timed
};

/// A sequence of layers on one backend, owning their parameters, gradients and activations.
///
/// Parameters are laid out on the first call that needs them (initialize, forward, params(), ...);
/// after that no layer may be added. Every tensor lives on the network's backend, so the same
/// code trains on the CPU and the GPU; forward and backward queue work there (asynchronously on a
/// GPU backend). Not thread-safe: one thread drives a Network.
class Network {
 public:
  /// input_shape is per sample, e.g. {784}. Throws Error when it is empty or holds no values.
  Network(Backend& backend, Shape input_shape);
  Network(const Network&) = delete;
  Network& operator=(const Network&) = delete;
  ~Network();

  /// Appends a layer and returns *this, for chaining; throws Error naming the layer if it does not
  /// fit the previous output shape, if it is null, or once the parameters are laid out.
  Network& add(std::unique_ptr<Layer> layer);

  /// Weights (parameters with Decay::kYes) ← N(0, weight_stddev²) drawn from `seed`; the others
  /// ← their ParamSpec::initial value (0 for biases). Draws are counter-based: the CPU and CUDA
  /// backends give the same initial weights up to the last bit of logf and cosf.
  void initialize(uint64_t seed, float weight_stddev);

  /// Runs the layers on x (N × input_shape, or N flat rows of numel(input_shape)); returns the
  /// last layer's output, owned by the network and valid until the next forward with a batch of
  /// the same size (activations are kept per batch size). Throws Error when x has another shape.
  const Tensor& forward(const Tensor& x, Mode mode);
  /// After forward(x): back-propagates dout = ∂L/∂output (overwritten as scratch) and writes
  /// every parameter gradient into grads(). Throws Error when dout's shape is not the output's.
  void backward(const Tensor& x, Tensor& dout);

  /// Allocates the activations for batches of `batch` rows now (forward would on first use), so
  /// that a step can be captured (Backend::begin_capture) without allocating. Throws Error when
  /// batch is not positive.
  void reserve(int64_t batch);
  /// Whether every layer can be captured and replayed (Layer::capturable).
  bool capturable() const;
  /// Data-parallel training: this process computes the rows [rank·N, (rank+1)·N) of every global
  /// batch of ranks·N rows (Layer::set_shares; layers added later get it too). fit() and
  /// Trainer::set_communicator set it from the communicator; (0, 1) is one process. Throws Error
  /// when rank is outside [0, ranks).
  void set_shares(int rank, int ranks);

  Backend& backend() const { return backend_; }                ///< Where every tensor lives.
  const Shape& input_shape() const { return input_shape_; }   ///< Per sample, as constructed.
  const Shape& output_shape() const { return shapes_.back(); }  ///< Per sample, of the last layer.
  int64_t num_layers() const { return static_cast<int64_t>(layers_.size()); }  ///< Layers added.
  /// Layer i, in the order added. Throws Error for i outside [0, num_layers()).
  Layer& layer(int64_t i);
  /// All parameters as one flat tensor (P): decayed weights first, then the rest. Lays them out
  /// on first use (throws Error when no layer was added).
  Tensor& params();
  /// The gradients (P), in the layout of params().
  Tensor& grads();
  /// How many of the P leading entries of params() are decayed weights.
  int64_t decayed_params();
  /// The three together, for an optimizer: {&params(), &grads(), decayed_params()}.
  ParamSet param_set();
  /// Layer i's parameters, by name in param_specs order, as views into params() (Dense:
  /// {"weight", [in, out]}, {"bias", [out]}); empty for a layer without parameters. Throws Error
  /// for i outside [0, num_layers()).
  std::vector<std::pair<std::string, Tensor>> layer_params(int64_t i);
  /// A multi-line listing: one line per layer with its output shape and parameter count.
  std::string summary();

  /// Per-layer timing, for profiles (bench_vgg --layers). While on, every forward and backward
  /// marks the backend's compute queue before and after each layer (Backend::mark: on a GPU, its
  /// own time, whatever the host does meanwhile) and adds each layer's time to its total. A pass
  /// reads the previous pass's marks of its kind first, so it waits for that pass to finish (a
  /// small perturbation of the loop timed). Between Dense layers the upper one computes the lower
  /// one's activation derivative (see backward): its backward time includes that. While on, the
  /// network is not capturable(), so fit() runs its steps eagerly. Turning it on sets every total
  /// to zero; turning it off keeps them.
  void set_layer_timing(bool on);
  /// The totals, one per layer in order, after the passes queued so far (waits for them).
  std::vector<LayerTime> layer_times();

 private:
  struct Activations {
    std::vector<Tensor> out;   // out[i]: output of layer i, N × shapes_[i + 1]
    std::vector<Tensor> grad;  // grad[i]: ∂L/∂out[i-1] for layer i ≥ 1 (scratch)
  };
  void build();
  Activations& activations(int64_t batch);
  Tensor as_input(const Tensor& x) const;

  Backend& backend_;
  Shape input_shape_;
  std::vector<Shape> shapes_;  // shapes_[0] input, shapes_[i + 1] output of layer i
  std::vector<std::unique_ptr<Layer>> layers_;
  int rank_ = 0, ranks_ = 1;  // set_shares
  bool built_ = false;
  Tensor params_, grads_;
  int64_t decayed_ = 0;
  std::vector<std::pair<int64_t, ParamSpec>> layout_;  // every parameter's offset in params_
  std::vector<std::vector<std::pair<int64_t, ParamSpec>>> layer_layout_;  // the same, by layer
  std::map<int64_t, Activations> acts_;  // by batch size
  struct LayerTiming;                     // set_layer_timing's marks and totals (network.cpp)
  std::unique_ptr<LayerTiming> timing_;
  LayerTiming* timing();                  // timing_ when on (marks made for every layer), else null
  void add_times(LayerTiming& t, bool backward);
};

}  // namespace cudl

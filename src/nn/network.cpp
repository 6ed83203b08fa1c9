#include "cudl/network.hpp"

#include "cudl/error.hpp"
#include "nn/data_parallel.hpp"

namespace cudl {

Network::Network(Backend& backend, Shape input_shape) : backend_(backend), input_shape_(std::move(input_shape)) {
  CUDL_REQUIRE(!input_shape_.empty() && numel(input_shape_) > 0,
               "Network: input shape must be non-empty, found " + to_string(input_shape_));
  shapes_.push_back(input_shape_);
}

Network::~Network() = default;

// forward[i]: before layer i (i < L), after layer L − 1 (i = L); backward[i]: after layer i's
// backward (i < L), before the first one, layer L − 1's (i = L).
struct Network::LayerTiming {
  bool on = false;
  std::vector<std::unique_ptr<Backend::TimeMark>> forward, backward;
  bool forward_pending = false, backward_pending = false;  // marks set and not yet read
  std::vector<LayerTime> totals;
};

void Network::set_layer_timing(bool on) {
  if (!timing_) timing_ = std::make_unique<LayerTiming>();
  LayerTiming& t = *timing_;
  if (on && !t.on) {
    t.totals.clear();
    t.forward_pending = t.backward_pending = false;
  }
  t.on = on;
}

Network::LayerTiming* Network::timing() {
  if (!timing_ || !timing_->on) return nullptr;
  LayerTiming& t = *timing_;
  const size_t marks = layers_.size() + 1;
  for (auto* list : {&t.forward, &t.backward})
    while (list->size() < marks) list->push_back(backend_.create_time_mark());
  if (t.totals.size() != layers_.size()) {
    t.totals.assign(layers_.size(), LayerTime{});
    for (size_t i = 0; i < layers_.size(); ++i) t.totals[i].layer = layers_[i]->describe();
  }
  return &t;
}

void Network::add_times(LayerTiming& t, bool backward) {
  bool& pending = backward ? t.backward_pending : t.forward_pending;
  if (!pending) return;
  // Every layer's time read first, so that a failing read adds nothing and the counts stay equal.
  std::vector<double> ms(layers_.size());
  for (size_t i = 0; i < layers_.size(); ++i)
    ms[i] = backward ? backend_.elapsed_ms(*t.backward[i + 1], *t.backward[i])
                     : backend_.elapsed_ms(*t.forward[i], *t.forward[i + 1]);
  pending = false;
  for (size_t i = 0; i < layers_.size(); ++i) {
    LayerTime& total = t.totals[i];
    (backward ? total.backward_ms : total.forward_ms) += ms[i];
    ++(backward ? total.backwards : total.forwards);
  }
}

std::vector<LayerTime> Network::layer_times() {
  if (!timing_) return {};
  if (timing_->on) timing();  // the totals sized for the layers
  add_times(*timing_, false);
  add_times(*timing_, true);
  return timing_->totals;
}

Network& Network::add(std::unique_ptr<Layer> layer) {
  CUDL_REQUIRE(layer != nullptr, "Network::add: null layer");
  CUDL_REQUIRE(!built_, "Network::add: cannot add " + layer->describe() + " after the network was built");
  shapes_.push_back(layer->output_shape(shapes_.back()));
  if (ranks_ > 1) layer->set_shares(rank_, ranks_);
  layers_.push_back(std::move(layer));
  return *this;
}

void Network::set_shares(int rank, int ranks) {
  detail::require_rank("Network::set_shares", rank, ranks);
  rank_ = rank;
  ranks_ = ranks;
  for (auto& layer : layers_) layer->set_shares(rank, ranks);
}

// Lays out every parameter in one flat buffer: all decayed weights first (so one optimizer
// launch can apply L2 to a prefix), then the rest, each layer's in its own order.
void Network::build() {
  if (built_) return;
  CUDL_REQUIRE(!layers_.empty(), "Network: no layers were added");
  std::vector<std::vector<ParamSpec>> specs;
  std::vector<std::vector<int64_t>> offsets;
  int64_t total = 0;
  for (size_t i = 0; i < layers_.size(); ++i) {
    specs.push_back(layers_[i]->param_specs(shapes_[i]));
    offsets.emplace_back(specs.back().size(), 0);
  }
  for (Decay pass : {Decay::kYes, Decay::kNo}) {
    for (size_t i = 0; i < specs.size(); ++i) {
      for (size_t j = 0; j < specs[i].size(); ++j) {
        if (specs[i][j].decay != pass) continue;
        offsets[i][j] = total;
        layout_.emplace_back(total, specs[i][j]);
        CUDL_REQUIRE(!__builtin_add_overflow(total, numel(specs[i][j].shape), &total),
                     "Network: " + layers_[i]->describe() + " brings the parameter count past 2^63");
      }
    }
    if (pass == Decay::kYes) decayed_ = total;
  }
  params_ = Tensor({total}, backend_);
  grads_ = Tensor({total}, backend_);
  backend_.fill(params_, 0.0f);
  backend_.fill(grads_, 0.0f);
  layer_layout_.assign(layers_.size(), {});
  for (size_t i = 0; i < layers_.size(); ++i) {
    std::vector<Tensor> p, g;
    for (size_t j = 0; j < specs[i].size(); ++j) {
      layer_layout_[i].emplace_back(offsets[i][j], specs[i][j]);
      p.push_back(params_.slice(offsets[i][j], specs[i][j].shape));
      g.push_back(grads_.slice(offsets[i][j], specs[i][j].shape));
    }
    layers_[i]->bind(std::move(p), std::move(g));
  }
  built_ = true;
}

void Network::initialize(uint64_t seed, float weight_stddev) {
  build();
  backend_.fill(params_, 0.0f);
  if (decayed_ > 0) {
    Tensor weights = params_.slice(0, {decayed_});
    backend_.fill_normal(weights, seed, 0.0f, weight_stddev);
  }
  for (const auto& [offset, spec] : layout_) {
    if (spec.decay == Decay::kYes || spec.initial == 0.0f) continue;
    Tensor p = params_.slice(offset, {numel(spec.shape)});
    backend_.fill(p, spec.initial);
  }
}

Tensor& Network::params() {
  build();
  return params_;
}

Tensor& Network::grads() {
  build();
  return grads_;
}

int64_t Network::decayed_params() {
  build();
  return decayed_;
}

ParamSet Network::param_set() {
  build();
  return ParamSet{&params_, &grads_, decayed_};
}

Layer& Network::layer(int64_t i) {
  CUDL_REQUIRE(i >= 0 && i < num_layers(),
               "Network::layer: no layer " + std::to_string(i) + " in a network of " + std::to_string(num_layers()));
  return *layers_[static_cast<size_t>(i)];
}

std::vector<std::pair<std::string, Tensor>> Network::layer_params(int64_t i) {
  build();
  CUDL_REQUIRE(i >= 0 && i < num_layers(), "Network::layer_params: no layer " + std::to_string(i) + " in a network of " +
                                               std::to_string(num_layers()));
  std::vector<std::pair<std::string, Tensor>> out;
  for (const auto& [offset, spec] : layer_layout_[static_cast<size_t>(i)])
    out.emplace_back(spec.name, params_.slice(offset, spec.shape));
  return out;
}

Network::Activations& Network::activations(int64_t batch) {
  auto it = acts_.find(batch);
  if (it != acts_.end()) return it->second;
  Activations a;
  for (size_t i = 0; i < layers_.size(); ++i) {
    Shape s = shapes_[i + 1];
    s.insert(s.begin(), batch);
    a.out.emplace_back(s, backend_);
    Shape in = shapes_[i];
    in.insert(in.begin(), batch);
    a.grad.push_back(i == 0 ? Tensor() : Tensor(in, backend_));
  }
  return acts_.emplace(batch, std::move(a)).first->second;
}

void Network::reserve(int64_t batch) {
  build();
  CUDL_REQUIRE(batch > 0, "Network::reserve: batch must be positive, got " + std::to_string(batch));
  activations(batch);
}

bool Network::capturable() const {
  if (timing_ && timing_->on) return false;  // time marks cannot be captured
  for (const auto& layer : layers_) {
    if (!layer->capturable()) return false;
  }
  return true;
}

// x as N × input_shape: a batch of flat rows (N × numel(input_shape)) is viewed in that shape.
Tensor Network::as_input(const Tensor& x) const {
  Shape expected = input_shape_;
  expected.insert(expected.begin(), x.rank() > 0 ? x.dim(0) : 0);
  if (x.shape() == expected) return x.reshaped(expected);
  CUDL_REQUIRE(x.rank() == 2 && x.dim(1) == numel(input_shape_),
               "Network::forward: expected input " + to_string(expected) + " (N × " + to_string(input_shape_) +
                   ", or N × " + std::to_string(numel(input_shape_)) + " flat rows), found " + to_string(x.shape()));
  return x.reshaped(expected);
}

const Tensor& Network::forward(const Tensor& x, Mode mode) {
  build();
  const Tensor in = as_input(x);
  Activations& a = activations(in.dim(0));
  LayerTiming* t = timing();
  if (t != nullptr) {
    add_times(*t, false);
    backend_.mark(*t->forward[0]);
  }
  for (size_t i = 0; i < layers_.size(); ++i) {
    layers_[i]->forward(backend_, i == 0 ? in : a.out[i - 1], a.out[i], mode);
    if (t != nullptr) backend_.mark(*t->forward[i + 1]);
  }
  if (t != nullptr) t->forward_pending = true;
  return a.out.back();
}

void Network::backward(const Tensor& x, Tensor& dout) {
  build();
  const Tensor in = as_input(x);
  Activations& a = activations(in.dim(0));
  CUDL_REQUIRE(dout.shape() == a.out.back().shape(), "Network::backward: expected output gradient " +
                                                         to_string(a.out.back().shape()) + ", found " +
                                                         to_string(dout.shape()));
  // Between two Dense layers the upper one applies the lower one's activation derivative as it
  // computes dx (Backend::gemm_activation_backward: on the CPU, only the units a ReLU keeps), and
  // the lower one then takes dy as its dz. The same gradients, bit for bit, as layer by layer.
  Tensor* dy = &dout;
  bool dy_is_dz = false;
  LayerTiming* t = timing();
  if (t != nullptr) {
    add_times(*t, true);
    backend_.mark(*t->backward[layers_.size()]);
  }
  for (size_t i = layers_.size(); i-- > 0;) {
    Tensor* dx = i == 0 ? nullptr : &a.grad[i];
    const Tensor& below_out = i == 0 ? in : a.out[i - 1];
    auto* dense = dynamic_cast<Dense*>(layers_[i].get());
    const auto* below = i == 0 ? nullptr : dynamic_cast<const Dense*>(layers_[i - 1].get());
    if (dense != nullptr) {
      dense->backward_fused(backend_, below_out, a.out[i], *dy, dx, dy_is_dz,
                            below != nullptr ? below->activation() : Activation::kIdentity);
    } else {
      layers_[i]->backward(backend_, below_out, a.out[i], *dy, dx);
    }
    dy_is_dz = dense != nullptr && below != nullptr;
    dy = dx;
    if (t != nullptr) backend_.mark(*t->backward[i]);
  }
  if (t != nullptr) t->backward_pending = true;
}

std::string Network::summary() {
  build();
  std::string s = "input " + to_string(input_shape_) + "\n";
  int64_t total = 0;
  for (size_t i = 0; i < layers_.size(); ++i) {
    int64_t count = 0;
    for (const auto& spec : layers_[i]->param_specs(shapes_[i])) count += numel(spec.shape);
    s += "  " + layers_[i]->describe() + " -> " + to_string(shapes_[i + 1]) + ", " + std::to_string(count) +
         " parameters\n";
    total += count;
  }
  s += "total " + std::to_string(total) + " parameters";
  return s;
}

}  // namespace cudl

#include "cudl/layers.hpp"

#include "cudl/error.hpp"

namespace cudl {

std::vector<ParamSpec> Layer::param_specs(const Shape&) const { return {}; }
void Layer::bind(std::vector<Tensor>, std::vector<Tensor>) {}

// ---- Dense ----

Dense::Dense(int64_t units, Activation act) : units_(units), act_(act) {
  CUDL_REQUIRE(units > 0, "Dense: units must be positive, got " + std::to_string(units));
}

std::string Dense::describe() const {
  return "Dense(" + std::to_string(units_) + (act_ == Activation::kIdentity ? "" : std::string(", ") + to_string(act_)) +
         ")";
}

Shape Dense::output_shape(const Shape& input) const {
  CUDL_REQUIRE(input.size() == 1, describe() + ": expected a flat input of shape [features], found " +
                                      to_string(input) + " (add a Flatten layer first)");
  return {units_};
}

std::vector<ParamSpec> Dense::param_specs(const Shape& input) const {
  output_shape(input);  // validates the input shape
  return {{"weight", {input[0], units_}, Decay::kYes}, {"bias", {units_}, Decay::kNo}};
}

void Dense::bind(std::vector<Tensor> params, std::vector<Tensor> grads) {
  CUDL_REQUIRE(params.size() == 2 && grads.size() == 2, describe() + ": expected 2 parameters to bind");
  w_ = std::move(params[0]);
  b_ = std::move(params[1]);
  gw_ = std::move(grads[0]);
  gb_ = std::move(grads[1]);
}

void Dense::forward(Backend& backend, const Tensor& x, Tensor& y, Mode) {
  CUDL_REQUIRE(!w_.empty(), describe() + ": forward before the network bound its parameters");
  CUDL_REQUIRE(x.rank() == 2 && x.dim(1) == w_.dim(0), describe() + ": expected input [N, " +
                                                           std::to_string(w_.dim(0)) + "], found " + to_string(x.shape()));
  // y(N×H) = act(x(N×D)·W(D×H) + b(H)): one call, so that a backend can fuse the three.
  backend.gemm_bias_activation(1.0f, x, Trans::kNo, w_, Trans::kNo, b_, act_, y);
}

void Dense::backward(Backend& backend, const Tensor& x, const Tensor& y, Tensor& dy, Tensor* dx) {
  backward_fused(backend, x, y, dy, dx, /*dy_is_dz=*/false, Activation::kIdentity);
}

void Dense::backward_fused(Backend& backend, const Tensor& x, const Tensor& y, Tensor& dy, Tensor* dx, bool dy_is_dz,
                           Activation below) {
  if (!dy_is_dz) backend.activation_backward(dy, y, act_);      // dz = dy ⊙ act'(z)
  backend.gemm_sum_rows(1.0f, x, Trans::kYes, dy, 0.0f, gw_, 1.0f, 0.0f, gb_);  // gW(D×H) = xᵀ·dz, gb(H) = Σ_n dz
  if (dx == nullptr) return;
  if (below == Activation::kIdentity) {
    backend.gemm(1.0f, dy, Trans::kNo, w_, Trans::kYes, 0.0f, *dx);  // dx(N×D) = dz·Wᵀ
  } else {
    backend.gemm_activation_backward(1.0f, dy, Trans::kNo, w_, Trans::kYes, *dx, x, below);  // (dz·Wᵀ) ⊙ below'
  }
}

// ---- ActivationLayer ----

ActivationLayer::ActivationLayer(Activation act) : act_(act) {}

std::string ActivationLayer::describe() const {
  switch (act_) {
    case Activation::kRelu: return "ReLU";
    case Activation::kSigmoid: return "Sigmoid";
    case Activation::kIdentity: return "Identity";
  }
  return "Activation";
}

void ActivationLayer::forward(Backend& backend, const Tensor& x, Tensor& y, Mode) {
  y.copy_from(x);
  backend.activation(y, act_);
}

void ActivationLayer::backward(Backend& backend, const Tensor&, const Tensor& y, Tensor& dy, Tensor* dx) {
  if (dx == nullptr) return;
  dx->copy_from(dy);
  backend.activation_backward(*dx, y, act_);
}

std::unique_ptr<Layer> dense(int64_t units, Activation act) { return std::make_unique<Dense>(units, act); }
std::unique_ptr<Layer> relu() { return std::make_unique<ActivationLayer>(Activation::kRelu); }
std::unique_ptr<Layer> sigmoid() { return std::make_unique<ActivationLayer>(Activation::kSigmoid); }

}  // namespace cudl

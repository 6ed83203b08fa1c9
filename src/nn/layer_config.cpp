// Layers as data: each layer's config() (its type and settings as text) and the factory that
// builds a layer from one (make_layer), side by side so that each is the other's inverse; and
// the layers' non-parameter state lists. Checkpoints (src/io/checkpoint.cpp) store the configs.
#include <cstdio>

#include "cudl/conv_layers.hpp"
#include "cudl/error.hpp"
#include "cudl/layers.hpp"
#include "nn/layer_factory.hpp"
#include "parse_number.hpp"

namespace cudl {
namespace {

std::string text(int64_t v) { return std::to_string(v); }
std::string text(uint64_t v) { return std::to_string(v); }
// Nine significant digits read back as the same float.
std::string text(float v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(v));
  return buf;
}

// The setting `key` of config c as a number, or an Error naming the layer type, key and value.
int64_t integer(const LayerConfig& c, const std::string& key) {
  return detail::parse_i64(c.at(key), c.type + ": setting " + key);
}
uint64_t unsigned_integer(const LayerConfig& c, const std::string& key) {
  return detail::parse_u64(c.at(key), c.type + ": setting " + key);
}
float real(const LayerConfig& c, const std::string& key) { return detail::parse_f32(c.at(key), c.type + ": setting " + key); }

Activation activation(const LayerConfig& c, const std::string& key = "activation") {
  const std::string& v = c.at(key);
  for (Activation a : {Activation::kIdentity, Activation::kRelu, Activation::kSigmoid})
    if (v == to_string(a)) return a;
  throw Error(c.type + ": unknown activation '" + v + "' (identity, relu, sigmoid)");
}

}  // namespace

const std::string& LayerConfig::at(const std::string& key) const {
  for (const auto& [k, v] : settings)
    if (k == key) return v;
  throw Error("layer '" + type + "': missing setting '" + key + "'");
}

LayerConfig Dense::config() const { return {"dense", {{"units", text(units_)}, {"activation", to_string(act_)}}}; }

LayerConfig ActivationLayer::config() const { return {"activation", {{"activation", to_string(act_)}}}; }

LayerConfig Conv2d::config() const {
  return {"conv2d",
          {{"out_channels", text(out_channels_)},
           {"kernel_h", text(kernel_h_)},
           {"kernel_w", text(kernel_w_)},
           {"stride_h", text(params_.stride_h)},
           {"stride_w", text(params_.stride_w)},
           {"pad_h", text(params_.pad_h)},
           {"pad_w", text(params_.pad_w)},
           {"dilation_h", text(params_.dilation_h)},
           {"dilation_w", text(params_.dilation_w)},
           {"activation", to_string(act_)},
           {"bias", bias_ == Bias::kYes ? "yes" : "no"}}};
}

LayerConfig Pool2d::config() const {
  return {"pool2d",
          {{"mode", to_string(params_.mode)},
           {"window_h", text(params_.window_h)},
           {"window_w", text(params_.window_w)},
           {"stride_h", text(params_.stride_h)},
           {"stride_w", text(params_.stride_w)},
           {"pad_h", text(params_.pad_h)},
           {"pad_w", text(params_.pad_w)}}};
}

LayerConfig Dropout::config() const { return {"dropout", {{"drop", text(drop_)}, {"seed", text(seed_)}}}; }

LayerConfig BatchNorm2d::config() const {
  return {"batch_norm2d", {{"epsilon", text(args_.epsilon)}, {"momentum", text(args_.momentum)}}};
}

std::vector<std::pair<std::string, Tensor*>> BatchNorm2d::state() {
  return {{"running_mean", &running_mean_}, {"running_var", &running_var_}};
}

namespace detail {

std::unique_ptr<Layer> make_layer(const LayerConfig& c) {
  if (c.type == "dense") return std::make_unique<Dense>(integer(c, "units"), activation(c));
  if (c.type == "activation") return std::make_unique<ActivationLayer>(activation(c));
  if (c.type == "conv2d") {
    Conv2dParams p;
    p.stride_h = integer(c, "stride_h");
    p.stride_w = integer(c, "stride_w");
    p.pad_h = integer(c, "pad_h");
    p.pad_w = integer(c, "pad_w");
    p.dilation_h = integer(c, "dilation_h");
    p.dilation_w = integer(c, "dilation_w");
    const std::string& bias = c.at("bias");
    CUDL_REQUIRE(bias == "yes" || bias == "no", "conv2d: setting bias must be yes or no, found '" + bias + "'");
    return std::make_unique<Conv2d>(integer(c, "out_channels"), integer(c, "kernel_h"), integer(c, "kernel_w"), p,
                                    activation(c), bias == "yes" ? Bias::kYes : Bias::kNo);
  }
  if (c.type == "pool2d") {
    Pool2dParams p;
    const std::string& mode = c.at("mode");
    CUDL_REQUIRE(mode == to_string(PoolMode::kMax) || mode == to_string(PoolMode::kAverage),
                 "pool2d: unknown mode '" + mode + "' (max, average)");
    p.mode = mode == to_string(PoolMode::kMax) ? PoolMode::kMax : PoolMode::kAverage;
    p.window_h = integer(c, "window_h");
    p.window_w = integer(c, "window_w");
    p.stride_h = integer(c, "stride_h");
    p.stride_w = integer(c, "stride_w");
    p.pad_h = integer(c, "pad_h");
    p.pad_w = integer(c, "pad_w");
    return std::make_unique<Pool2d>(p);
  }
  if (c.type == "flatten") return std::make_unique<Flatten>();
  if (c.type == "dropout") return std::make_unique<Dropout>(real(c, "drop"), unsigned_integer(c, "seed"));
  if (c.type == "batch_norm2d") return std::make_unique<BatchNorm2d>(BatchNormArgs{real(c, "epsilon"), real(c, "momentum")});
  if (c.type.empty()) throw Error("a layer of a type of its own (no LayerConfig) cannot be built from a file");
  throw Error("unknown layer type '" + c.type +
              "' (dense, activation, conv2d, pool2d, flatten, dropout, batch_norm2d): saved by a newer cudl?");
}

}  // namespace detail
}  // namespace cudl

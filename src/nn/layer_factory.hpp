#pragma once
// Builds a layer from its LayerConfig (the inverse of Layer::config(); src/nn/layer_config.cpp).
#include <memory>

#include "cudl/layers.hpp"

namespace cudl::detail {

// Throws an Error naming the type or setting when the config does not describe a valid layer
// (the layer's own constructor checks the values, as when a user builds it).
std::unique_ptr<Layer> make_layer(const LayerConfig& config);

}  // namespace cudl::detail

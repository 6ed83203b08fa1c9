#pragma once
// VGG16 (Simonyan & Zisserman 2014, configuration D) built from cudl's layers, and the
// arithmetic of one training step. benchmarks/peers/vgg_torch.py builds the same network.
#include <cstdint>
#include <vector>

#include "cudl/network.hpp"

namespace bench {

// The convolutional part of configuration D: output channels of each 3×3 convolution (pad 1,
// ReLU), 0 for a 2×2 max pooling (stride 2).
const std::vector<int64_t>& vgg16_features();

// Appends VGG16 to a network whose input is {3, S, S} (S a multiple of 32): the features, then
// Flatten, Dense 4096 ReLU, Dropout 0.5, Dense 4096 ReLU, Dropout 0.5, Dense `classes`.
void add_vgg16(cudl::Network& net, int64_t classes, uint64_t dropout_seed);

// He initialisation (normal, fan-in): every convolution and dense weight ~ N(0, 2/fan_in), the
// last layer's N(0, 1/fan_in); biases 0. (One stddev for all 16 weight layers, as
// Network::initialize draws, would make the activations vanish or explode.)
void initialize_he(cudl::Network& net, uint64_t seed);

// FLOP (2 per multiply-add) of the convolution and dense products of one training step on
// `batch` images of S×S: forward, the weight gradients, and the input gradients of every layer
// but the first (whose input needs none). Pooling, activations, the loss and the update are
// not counted.
double vgg16_step_flop(int64_t size, int64_t batch, int64_t classes);

}  // namespace bench

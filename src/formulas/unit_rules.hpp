#pragma once
// The per-element rules of units, written once for the CPU loops (src/cpu/) and the CUDA kernels
// (cuda/): activations and their gradients, stochastic units, dropout and the normal
// initialisation, the draw of a minibatch row. Each backend keeps its own loops and launch shapes and calls these per element,
// so the two compute the same operations in the same order (the compilers may still contract a
// multiply and an add into an FMA differently, so the backends agree to a few ulps).
//
// expf, sqrtf and the rng draws are the C functions on the host and CUDA's on the device, except
// in the stochastic units, which use repro_math.hpp's functions so that every CPU kind and the
// GPU draw the same states bit for bit.
#include <math.h>

#include <cstdint>

#include "cudl/backend.hpp"
#include "cudl/rng.hpp"  // CUDL_HD: __host__ __device__ under nvcc, inline otherwise
#include "formulas/repro_math.hpp"

namespace cudl::formulas {

// ---- activations ----

// ReLU as (z < 0 ? 0 : z): NaN stays NaN (as in PyTorch), so bad values reach the loss check.
CUDL_HD float relu(float z) { return z < 0.0f ? 0.0f : z; }
CUDL_HD float sigmoid(float z) { return 1.0f / (1.0f + expf(-z)); }

CUDL_HD float activate(Activation act, float z) {
  return act == Activation::kRelu ? relu(z) : act == Activation::kSigmoid ? sigmoid(z) : z;
}

// ∂L/∂z from ∂L/∂y and the forward output y = act(z).
CUDL_HD float relu_grad(float dy, float y) { return y > 0.0f ? dy : 0.0f; }
CUDL_HD float sigmoid_grad(float dy, float y) { return dy * (y * (1.0f - y)); }

CUDL_HD float activation_grad(Activation act, float dy, float y) {
  return act == Activation::kRelu ? relu_grad(dy, y) : act == Activation::kSigmoid ? sigmoid_grad(dy, y) : dy;
}

// ---- stochastic units (RBM sampling) ----

// One unit's state drawn from its mean with the Philox words of its counter: Bernoulli (on with
// probability mean), Gaussian (unit variance around mean), or noisy rectified (Nair & Hinton
// 2010: max(0, h + N(0, sigmoid(h))) with h = max(0, mean); a NaN mean is its own state). The
// normal draws and the noisy unit's sigmoid are repro_math.hpp's, not rng::normal and sigmoid
// above: the same bits on every CPU kind (the vector passes of cpu/elementwise.cpp compute the
// same functions 8 or 16 at a time) and on the GPU.
CUDL_HD float sample_unit(Units units, float mean, const rng::Philox4& r) {
  if (units == Units::kBernoulli) return repro::bernoulli_state(mean, r.v[0]);
  if (units == Units::kGaussian) return repro::gaussian_state(mean, r.v[0], r.v[1]);
  return repro::noisy_relu_state(mean, r.v[0], r.v[1]);
}

// Element i's state: the draw of counter + i in the units' stream.
CUDL_HD float sample_unit_at(Units units, float mean, uint64_t seed, uint64_t counter, int64_t i) {
  return sample_unit(units, mean, rng::bits(seed, rng::kStreamUnits, counter + static_cast<uint64_t>(i)));
}

// ---- minibatches drawn with replacement (Backend::sample_rows) ----

// The data row of draw number `draw`: uniform over [0, rows) from the sampling stream.
CUDL_HD int64_t drawn_row(uint64_t seed, uint64_t draw, int64_t rows) {
  return rng::below(rng::bits(seed, rng::kStreamSample, draw).v[0], static_cast<uint32_t>(rows));
}

// ---- minibatches from each epoch's permutation (Backend::shuffled_rows) ----

// Row b of the batch whose first position is t in the run of epochs' permutations of `rows` rows:
// position t mod R + b of epoch t / R's permutation, or −1 past that epoch's end.
CUDL_HD int64_t shuffled_row(uint64_t seed, uint64_t t, int64_t b, int64_t rows) {
  const uint64_t n = static_cast<uint64_t>(rows), p = t % n + static_cast<uint64_t>(b);
  if (p >= n) return -1;
  return static_cast<int64_t>(rng::permuted(seed, t / n, static_cast<uint32_t>(p), static_cast<uint32_t>(n)));
}

// ---- dropout and initialisation ----

// Inverted dropout of element i: kept (and scaled by 1/(1 − drop)) when its draw exceeds drop.
CUDL_HD float dropout_at(float x, float drop, float scale, uint64_t seed, uint64_t counter, int64_t i) {
  const rng::Philox4 r = rng::bits(seed, rng::kStreamDropout, counter + static_cast<uint64_t>(i));
  return rng::uniform(r.v[0]) > drop ? x * scale : 0.0f;
}

// Element i of a N(mean, stddev²) initialisation drawn from seed (rng::normal, libm's logf and
// cosf: kept so that initial weights stay as they were; they match the GPU's to a few ulps).
CUDL_HD float normal_init_at(uint64_t seed, int64_t i, float mean, float stddev) {
  const rng::Philox4 r = rng::bits(seed, rng::kStreamInit, static_cast<uint64_t>(i));
  return mean + stddev * rng::normal(r.v[0], r.v[1]);
}

}  // namespace cudl::formulas

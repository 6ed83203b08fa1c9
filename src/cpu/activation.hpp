#pragma once
// Scalar activations shared by the CPU primitives.
#include <cmath>

#include "cudl/backend.hpp"

namespace cudl::cpu {

inline float sigmoid(float z) { return 1.0f / (1.0f + std::exp(-z)); }
// ReLU as (z < 0 ? 0 : z): NaN stays NaN (as in PyTorch), so bad values reach the loss check.
inline float relu(float z) { return z < 0.0f ? 0.0f : z; }

// y[i] ← act(y[i] + b) over n contiguous values (one channel's plane, or one row).
inline void add_activate(float* __restrict y, int64_t n, float b, Activation act) {
  switch (act) {
    case Activation::kIdentity:
      for (int64_t i = 0; i < n; ++i) y[i] += b;
      break;
    case Activation::kRelu:
      for (int64_t i = 0; i < n; ++i) y[i] = relu(y[i] + b);
      break;
    case Activation::kSigmoid:
      for (int64_t i = 0; i < n; ++i) y[i] = sigmoid(y[i] + b);
      break;
  }
}

}  // namespace cudl::cpu

#pragma once
// The CPU's activation loop over one contiguous run (the per-element rules are
// formulas/unit_rules.hpp, shared with the GPU).
#include "cudl/backend.hpp"
#include "formulas/unit_rules.hpp"

namespace cudl::cpu {

using formulas::relu;
using formulas::sigmoid;

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

#pragma once
// Per-step learning-rate formulas, written once for the CPU and the GPU (CosineSchedule).
#include <cmath>
#include <cstdint>

#include "cudl/backend.hpp"
#include "cudl/rng.hpp"  // CUDL_HD

namespace cudl::formulas {

// base·f(t): linear warm-up over W steps, then a half cosine down to base·m at step T, then base·m.
CUDL_HD float cosine_learning_rate(const CosineArgs& a, uint64_t t) {
  const double step = static_cast<double>(t);
  if (static_cast<int64_t>(t) < a.warmup_steps)
    return static_cast<float>(a.base * (step + 1.0) / static_cast<double>(a.warmup_steps));
  const double span = a.total_steps > a.warmup_steps ? static_cast<double>(a.total_steps - a.warmup_steps) : 1.0;
  double progress = (step - static_cast<double>(a.warmup_steps)) / span;
  if (progress > 1.0) progress = 1.0;
  const double m = a.min_factor;
  return static_cast<float>(a.base * (m + (1.0 - m) * 0.5 * (1.0 + cos(3.14159265358979323846 * progress))));
}

}  // namespace cudl::formulas

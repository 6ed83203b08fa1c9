#pragma once
// The losses' formulas, written once for the CPU loops (src/cpu/cpu_backend.cpp,
// src/cpu/elementwise_losses.cpp) and the CUDA kernels (cuda/loss.cu, cuda/elementwise_losses.cu).
//
// Softmax cross-entropy (Backend::softmax_cross_entropy): each backend calls softmax_xent_row per
// row, sums the row losses in double and adds them with add_elementwise_stats (one "element" per
// row); only the order of that double sum differs.
//
// The elementwise losses (Backend::mean_squared_error, binary_cross_entropy_with_logits): Each backend computes one coefficient per launch, calls the
// element rule per element (summing the loss terms in double, counting mismatches exactly) and
// then add_elementwise_stats once, so the two differ only in the order of a double sum and in
// their expf/log1pf (a few float ulps).
#include <math.h>

#include <cmath>
#include <cstdint>

#include "cudl/backend.hpp"
#include "cudl/rng.hpp"  // CUDL_HD: __host__ __device__ under nvcc, inline otherwise

namespace cudl::formulas {

// One element's loss term (before the mean over D) and its gradient (already scaled).
struct ElementLoss {
  float loss;
  float grad;
};

// ---- softmax cross-entropy ----

// The class index a label stands for, or −1 when it is not an integer in [0, classes). The range
// is checked on the float before it is converted (converting NaN or 1e30 to an integer is
// undefined); NaN fails the comparisons.
CUDL_HD int64_t class_index(float label, int64_t classes) {
  if (!(label >= 0.0f && label < static_cast<float>(classes))) return -1;
  const int64_t k = static_cast<int64_t>(label);
  return k < classes && static_cast<float>(k) == label ? k : -1;
}

// The index of the first maximum of z[0, n) (0 when n = 0; NaN entries never win).
CUDL_HD int64_t argmax(const float* z, int64_t n) {
  int64_t best = 0;
  for (int64_t k = 1; k < n; ++k)
    if (z[k] > z[best]) best = k;
  return best;
}

struct RowCrossEntropy {
  double loss;   // −log softmax(z)[label]; NaN when label is −1
  bool error;    // the first maximum is not the label
};

// One row of logits z (`classes` wide) with its class index (or −1): the loss, whether it is
// misclassified, and d = grad_scale·(softmax(z) − onehot(label)), which may alias z (each z[k] is
// read before d[k] is written). The softmax is formed in double from the shifted logits.
CUDL_HD RowCrossEntropy softmax_xent_row(const float* z, float* d, int64_t classes, int64_t label, float grad_scale) {
  const int64_t best = argmax(z, classes);
  const float zmax = z[best];
  double denom = 0.0;
  for (int64_t k = 0; k < classes; ++k) denom += exp(static_cast<double>(z[k] - zmax));
  const double log_denom = log(denom);
  const double loss = label >= 0 ? log_denom - static_cast<double>(z[label] - zmax) : static_cast<double>(NAN);
  for (int64_t k = 0; k < classes; ++k) {
    const float p = static_cast<float>(exp(static_cast<double>(z[k] - zmax) - log_denom));
    d[k] = grad_scale * (p - (k == label ? 1.0f : 0.0f));
  }
  return {loss, best != label};
}

// ---- mean squared error ----
// The gradient coefficient 2·grad_scale/D, so that dp = grad_scale·2(p − t)/D.
CUDL_HD float squared_error_coef(float grad_scale, int64_t cols) {
  return 2.0f * grad_scale / static_cast<float>(cols);
}

// (p − t)² and coef·(p − t). A NaN in p or t gives a NaN loss (and gradient).
CUDL_HD ElementLoss squared_error(float p, float t, float coef) {
  const float e = p - t;
  return {e * e, coef * e};
}

// ---- binary cross-entropy on logits ----
// The gradient coefficient grad_scale/D, so that dx = grad_scale·(σ(x) − t)/D.
CUDL_HD float logistic_coef(float grad_scale, int64_t cols) { return grad_scale / static_cast<float>(cols); }

// −t·log σ(x) − (1 − t)·log(1 − σ(x)) in the form that neither overflows nor loses the small
// terms, max(x, 0) − x·t + log1p(exp(−|x|)) (PyTorch's BCEWithLogitsLoss), and coef·(σ(x) − t)
// with σ(x) formed from the same e = exp(−|x|) ∈ (0, 1]. A NaN in x or t gives a NaN loss.
CUDL_HD ElementLoss logistic_loss(float x, float t, float coef) {
  const float e = expf(-fabsf(x));
  const float positive = x > 0.0f ? x : 0.0f;
  const float sigma = x >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
  return {positive - x * t + log1pf(e), coef * (sigma - t)};
}

// Whether the thresholded prediction (x > 0) differs from the thresholded target (t > 0.5): an
// error of one element (a NaN logit predicts 0, a NaN target is 0).
CUDL_HD bool logistic_mismatch(float x, float t) { return (x > 0.0f) != (t > 0.5f); }

// ---- the batch's statistics ----
CUDL_HD bool finite(double v) {
#if defined(__CUDA_ARCH__)
  return isfinite(v);
#else
  return std::isfinite(v);
#endif
}

// Adds a batch of `rows` samples × `cols` elements to stats (LossStats layout): element_sum is
// the sum of its element loss terms, so its per-sample losses (each the mean over the row's
// elements) sum to element_sum/cols; `mismatches` elements add mismatches/cols errors (each
// sample's fraction of misclassified elements). When no step was recorded yet and the batch's
// mean per-sample loss is not finite or exceeds max_loss, records `step` and that mean.
CUDL_HD void add_elementwise_stats(float* stats, double element_sum, int64_t mismatches, int64_t rows, int64_t cols,
                                   float max_loss, int64_t step) {
  const double loss_sum = element_sum / static_cast<double>(cols);
  stats[LossStats::kLossSum] += static_cast<float>(loss_sum);
  stats[LossStats::kErrors] += static_cast<float>(static_cast<double>(mismatches) / static_cast<double>(cols));
  const double mean = rows > 0 ? loss_sum / static_cast<double>(rows) : 0.0;
  if (stats[LossStats::kBadStep] < 0.0f && (!finite(mean) || mean > static_cast<double>(max_loss))) {
    stats[LossStats::kBadStep] = static_cast<float>(step);
    stats[LossStats::kBadValue] = static_cast<float>(mean);
  }
}

}  // namespace cudl::formulas

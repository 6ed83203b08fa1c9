#include "cudl/loss.hpp"

#include <cmath>
#include <vector>

#include "cudl/error.hpp"

namespace cudl {

const char* to_string(Reduction reduction) { return reduction == Reduction::kMean ? "mean" : "sum"; }

Tensor Loss::make_stats(Backend& backend) {
  Tensor stats({LossStats::kSize}, backend);
  reset(stats);
  return stats;
}

void Loss::reset(Tensor& stats) {
  CUDL_REQUIRE(stats.size() == LossStats::kSize, "Loss::reset: not a statistics tensor (make_stats), found " +
                                                      std::to_string(stats.size()) + " values");
  stats.copy_from(std::vector<float>{0.0f, 0.0f, -1.0f, 0.0f});
}

LossTotals Loss::read(const Tensor& stats) {
  CUDL_REQUIRE(stats.size() == LossStats::kSize, "Loss::read: not a statistics tensor (make_stats), found " +
                                                      std::to_string(stats.size()) + " values");
  const std::vector<float> s = stats.to_vector();
  LossTotals t;
  t.loss_sum = s[LossStats::kLossSum];
  t.errors = s[LossStats::kErrors];
  t.bad_step = s[LossStats::kBadStep] >= 0.0f ? static_cast<int64_t>(s[LossStats::kBadStep]) : -1;
  t.bad_value = s[LossStats::kBadValue];
  return t;
}

SoftmaxCrossEntropy::SoftmaxCrossEntropy(Reduction reduction, float max_loss)
    : reduction_(reduction), max_loss_(max_loss) {
  CUDL_REQUIRE(!std::isnan(max_loss), "SoftmaxCrossEntropy: max_loss is NaN");
}

void SoftmaxCrossEntropy::forward_backward(const Tensor& logits, const Tensor& targets, const Tensor& step,
                                           Tensor& dlogits, Tensor& stats) const {
  CUDL_REQUIRE(logits.rank() == 2 && logits.dim(1) >= 2,
               "SoftmaxCrossEntropy: expected N × K class scores with K ≥ 2, found " + to_string(logits.shape()));
  logits.backend().softmax_cross_entropy(logits, targets, args(logits.dim(0), logits.dim(1)), step, dlogits, stats);
}

CrossEntropyArgs SoftmaxCrossEntropy::args(int64_t rows, int64_t classes) const {
  CrossEntropyArgs a;
  a.grad_scale = reduction_ == Reduction::kMean ? 1.0f / static_cast<float>(rows) : 1.0f;
  a.max_loss = max_loss_ > 0.0f ? max_loss_ : 100.0f * std::log(static_cast<float>(classes));
  return a;
}

namespace {

// The elementwise losses' arguments: s = 1/N or 1, and max_loss ≤ 0 replaced by the default.
ElementwiseLossArgs elementwise_args(const Tensor& pred, Reduction reduction, float max_loss, float default_max,
                                     const char* loss) {
  CUDL_REQUIRE(pred.rank() == 2, std::string(loss) + ": expected predictions N × D, found " + to_string(pred.shape()));
  ElementwiseLossArgs args;
  args.grad_scale = reduction == Reduction::kMean ? 1.0f / static_cast<float>(pred.dim(0)) : 1.0f;
  args.max_loss = max_loss > 0.0f ? max_loss : default_max;
  return args;
}

// The targets as the primitive takes them: (N) for predictions N × 1 viewed (in `view`) as N × 1;
// any other shape as it is, for the primitive's check.
const Tensor& as_rows(const Tensor& pred, const Tensor& targets, Tensor& view) {
  if (targets.rank() != 1 || pred.rank() != 2 || pred.dim(1) != 1 || targets.dim(0) != pred.dim(0)) return targets;
  view = targets.reshaped({pred.dim(0), 1});
  return view;
}

}  // namespace

MeanSquaredError::MeanSquaredError(Reduction reduction, float max_loss) : reduction_(reduction), max_loss_(max_loss) {
  CUDL_REQUIRE(!std::isnan(max_loss), "MeanSquaredError: max_loss is NaN");
}

void MeanSquaredError::forward_backward(const Tensor& pred, const Tensor& targets, const Tensor& step, Tensor& dpred,
                                        Tensor& stats) const {
  const ElementwiseLossArgs args = elementwise_args(pred, reduction_, max_loss_, 1e30f, "MeanSquaredError");
  Tensor view;
  pred.backend().mean_squared_error(pred, as_rows(pred, targets, view), args, step, dpred, stats);
}

BinaryCrossEntropyWithLogits::BinaryCrossEntropyWithLogits(Reduction reduction, float max_loss)
    : reduction_(reduction), max_loss_(max_loss) {
  CUDL_REQUIRE(!std::isnan(max_loss), "BinaryCrossEntropyWithLogits: max_loss is NaN");
}

void BinaryCrossEntropyWithLogits::forward_backward(const Tensor& logits, const Tensor& targets, const Tensor& step,
                                                    Tensor& dlogits, Tensor& stats) const {
  const ElementwiseLossArgs args =
      elementwise_args(logits, reduction_, max_loss_, 100.0f * std::log(2.0f), "BinaryCrossEntropyWithLogits");
  Tensor view;
  logits.backend().binary_cross_entropy_with_logits(logits, as_rows(logits, targets, view), args, step, dlogits,
                                                    stats);
}

}  // namespace cudl

// The elementwise losses on the CPU (Backend::mean_squared_error, binary_cross_entropy_with_logits):
// one pass over the batch's elements through the rules that the CUDA kernel also calls
// (formulas/loss_rules.hpp), the loss terms summed in double in element order, then the batch's
// statistics and divergence check. Serial: a loss pass is small beside the products around it,
// and its sum then does not depend on the number of threads.
#include "cudl/cpu_backend.hpp"
#include "formulas/loss_rules.hpp"

namespace cudl {
namespace {

// rows × cols elements; `rule(p, t, coef)` gives each element's loss term and gradient, and
// `count_mismatches` whether the element errors are counted (classification). d may alias p.
template <class Rule>
void elementwise_loss(const float* p, const float* t, int64_t rows, int64_t cols, float coef, float max_loss,
                      int64_t step, float* d, float* stats, Rule rule, bool count_mismatches) {
  const int64_t n = rows * cols;
  double sum = 0.0;
  int64_t mismatches = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float pi = p[i], ti = t[i];
    const formulas::ElementLoss e = rule(pi, ti, coef);
    sum += static_cast<double>(e.loss);
    if (count_mismatches) mismatches += formulas::logistic_mismatch(pi, ti) ? 1 : 0;
    d[i] = e.grad;
  }
  formulas::add_elementwise_stats(stats, sum, mismatches, rows, cols, max_loss, step);
}

}  // namespace

void CpuBackend::do_mean_squared_error(const float* pred, const float* target, int64_t rows, int64_t cols,
                                       const ElementwiseLossArgs& args, const uint64_t* step, float* dpred,
                                       float* stats) {
  elementwise_loss(pred, target, rows, cols, formulas::squared_error_coef(args.grad_scale, cols), args.max_loss,
                   static_cast<int64_t>(*step), dpred, stats, formulas::squared_error, false);
}

void CpuBackend::do_binary_cross_entropy_with_logits(const float* logits, const float* targets, int64_t rows,
                                                     int64_t cols, const ElementwiseLossArgs& args,
                                                     const uint64_t* step, float* dlogits, float* stats) {
  elementwise_loss(logits, targets, rows, cols, formulas::logistic_coef(args.grad_scale, cols), args.max_loss,
                   static_cast<int64_t>(*step), dlogits, stats, formulas::logistic_loss, true);
}

}  // namespace cudl

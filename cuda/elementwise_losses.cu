// The elementwise losses on the GPU (Backend::mean_squared_error, binary_cross_entropy_with_logits):
// one block strides over the batch's elements, calling per element the rules that the CPU loop
// also calls (formulas/loss_rules.hpp), then reduces the loss terms (in double) and the mismatch
// count (exactly), and one thread adds them to the statistics and checks divergence with the step
// counter read when the kernel runs; each kernel beside its CudaBackend member (no forwarder).
// One block keeps the statistics' update in the kernel, with no atomics and no second launch; a
// training batch is small enough for it.
#include "backend_impl.hpp"
#include "check.hpp"
#include "formulas/loss_rules.hpp"

namespace cudl {
namespace {

constexpr int kThreads = 512;  // a power of two (the tree reduction halves it)

enum class Rule { kSquaredError, kLogistic };

// rows × cols elements of p and t; d (may alias p) ← each element's gradient; stats (LossStats)
// += the batch's totals (formulas::add_elementwise_stats).
template <Rule kRule>
__global__ void elementwise_loss_kernel(const float* p, const float* t, int64_t rows, int64_t cols, float coef,
                                        float max_loss, const uint64_t* step, float* d, float* stats) {
  __shared__ double loss_part[kThreads];
  __shared__ unsigned long long mismatch_part[kThreads];
  const int64_t n = rows * cols;
  double sum = 0.0;
  unsigned long long mismatches = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const float pi = p[i], ti = t[i];
    formulas::ElementLoss e;
    if constexpr (kRule == Rule::kSquaredError) {
      e = formulas::squared_error(pi, ti, coef);
    } else {
      e = formulas::logistic_loss(pi, ti, coef);
      mismatches += formulas::logistic_mismatch(pi, ti) ? 1 : 0;
    }
    sum += static_cast<double>(e.loss);
    d[i] = e.grad;
  }
  loss_part[threadIdx.x] = sum;
  mismatch_part[threadIdx.x] = mismatches;
  __syncthreads();
  for (int half = blockDim.x / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) {
      loss_part[threadIdx.x] += loss_part[threadIdx.x + half];
      mismatch_part[threadIdx.x] += mismatch_part[threadIdx.x + half];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    formulas::add_elementwise_stats(stats, loss_part[0], static_cast<int64_t>(mismatch_part[0]), rows, cols,
                                    max_loss, static_cast<int64_t>(*step));
  }
}

}  // namespace

void CudaBackend::do_mean_squared_error(const float* pred, const float* target, int64_t rows, int64_t cols,
                                        const ElementwiseLossArgs& args, const uint64_t* step, float* dpred,
                                        float* stats) {
  elementwise_loss_kernel<Rule::kSquaredError><<<1, kThreads, 0, impl_->stream>>>(
      pred, target, rows, cols, formulas::squared_error_coef(args.grad_scale, cols), args.max_loss, step, dpred,
      stats);
  CUDL_CHECK_LAUNCH();
}

void CudaBackend::do_binary_cross_entropy_with_logits(const float* logits, const float* targets, int64_t rows,
                                                      int64_t cols, const ElementwiseLossArgs& args,
                                                      const uint64_t* step, float* dlogits, float* stats) {
  elementwise_loss_kernel<Rule::kLogistic><<<1, kThreads, 0, impl_->stream>>>(
      logits, targets, rows, cols, formulas::logistic_coef(args.grad_scale, cols), args.max_loss, step, dlogits,
      stats);
  CUDL_CHECK_LAUNCH();
}

}  // namespace cudl

// CudaBackend's loss, prediction and minibatch-sampling primitives: each kernel beside the member
// that launches it (no forwarder), calling per row the rules the CPU loops also call
// (formulas/loss_rules.hpp, formulas/unit_rules.hpp).
#include "backend_impl.hpp"
#include "check.hpp"
#include "cudl/rng.hpp"
#include "device_math.cuh"
#include "formulas/loss_rules.hpp"
#include "formulas/unit_rules.hpp"
#include "kernels.hpp"

namespace cudl {
namespace {

constexpr int kLossThreads = 256;

// One block. Each thread takes rows r ≡ threadIdx (mod blockDim): softmax, cross-entropy,
// error and gradient dlogits = grad_scale·(p − onehot) (may alias logits), by the CPU's row rule.
// The block then sums the losses (in double) and errors in a fixed-order tree, and thread 0 adds
// them to stats, recording the batch as diverged (LossStats) when its mean loss is non-finite or
// above max_loss and no earlier step was recorded. A label that is not a class index (NaN
// included) makes its row's loss NaN, so it is reported, not hidden (the CPU throws instead).
__global__ void softmax_xent_kernel(const float* logits, const float* labels, int64_t rows, int64_t classes,
                                    CrossEntropyArgs args, const uint64_t* step_counter, float* dlogits,
                                    float* stats) {
  __shared__ double loss_part[kLossThreads];
  __shared__ int64_t err_part[kLossThreads];
  double loss = 0.0;
  int64_t errors = 0;
  for (int64_t r = threadIdx.x; r < rows; r += blockDim.x) {
    const formulas::RowCrossEntropy row =
        formulas::softmax_xent_row(logits + r * classes, dlogits + r * classes, classes,
                                   formulas::class_index(labels[r], classes), args.grad_scale);
    loss += row.loss;
    errors += row.error;
  }
  loss_part[threadIdx.x] = loss;
  err_part[threadIdx.x] = errors;
  __syncthreads();
  for (int half = blockDim.x / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) {
      loss_part[threadIdx.x] += loss_part[threadIdx.x + half];
      err_part[threadIdx.x] += err_part[threadIdx.x + half];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    const int64_t step = step_counter != nullptr ? static_cast<int64_t>(*step_counter) : args.step;
    formulas::add_elementwise_stats(stats, loss_part[0], err_part[0], rows, 1, args.max_loss, step);
  }
}

// out(r) ← index of the first maximum of row r, as a float.
__global__ void argmax_kernel(const float* x, int64_t rows, int64_t cols, float* out) {
  CUDL_GRID_STRIDE(r, rows) out[r] = static_cast<float>(formulas::argmax(x + r * cols, cols));
}

// Batch row b copies data row drawn_row(seed, first_draw + b): the same draw as CpuBackend. One
// block per batch row (grid-stride over the batch), threads over columns (the row's features,
// then its target_cols targets).
__global__ void sample_rows_kernel(const float* x, const float* y, int64_t rows, int64_t cols, int64_t target_cols,
                                   uint64_t seed, uint64_t first_draw, const uint64_t* draw_counter, float* bx,
                                   float* by, int64_t batch) {
  if (draw_counter != nullptr) first_draw += *draw_counter;
  for (int64_t b = blockIdx.x; b < batch; b += gridDim.x) {
    const int64_t row = formulas::drawn_row(seed, first_draw + static_cast<uint64_t>(b), rows);
    const float* src = x + row * cols;
    float* dst = bx + b * cols;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) dst[c] = src[c];
    for (int64_t c = threadIdx.x; c < target_cols; c += blockDim.x)
      by[b * target_cols + c] = y[row * target_cols + c];
  }
}

__global__ void add_to_counter_kernel(uint64_t* counter, uint64_t delta) { *counter += delta; }

}  // namespace

void CudaBackend::do_softmax_cross_entropy(const float* logits, const float* labels, int64_t rows, int64_t classes,
                                           const CrossEntropyArgs& args, const uint64_t* step_counter,
                                           float* dlogits, float* stats) {
  softmax_xent_kernel<<<1, kLossThreads, 0, impl_->stream>>>(logits, labels, rows, classes, args, step_counter,
                                                              dlogits, stats);
  CUDL_CHECK_LAUNCH();
}

void CudaBackend::do_argmax_rows(const float* x, int64_t rows, int64_t cols, float* out) {
  if (rows == 0) return;
  argmax_kernel<<<cuda::grid_for(rows, 128), 128, 0, impl_->stream>>>(x, rows, cols, out);
  CUDL_CHECK_LAUNCH();
}

void CudaBackend::do_sample_rows(const float* x, const float* y, int64_t rows, int64_t cols, int64_t target_cols,
                                 uint64_t seed, uint64_t first_draw, const uint64_t* draw_counter, float* bx,
                                 float* by, int64_t batch) {
  if (batch == 0) return;
  const int blocks = static_cast<int>(batch < 4096 ? batch : 4096);
  sample_rows_kernel<<<blocks, 128, 0, impl_->stream>>>(x, y, rows, cols, target_cols, seed, first_draw,
                                                        draw_counter, bx, by, batch);
  CUDL_CHECK_LAUNCH();
}

void CudaBackend::do_add_to_counter(uint64_t* counter, uint64_t delta) {
  add_to_counter_kernel<<<1, 1, 0, impl_->stream>>>(counter, delta);
  CUDL_CHECK_LAUNCH();
}

}  // namespace cudl

// Loss, prediction and minibatch-sampling kernels of CudaBackend.
#include <cmath>

#include "check.hpp"
#include "cudl/rng.hpp"
#include "kernels.hpp"

namespace cudl::cuda {
namespace {

constexpr int kLossThreads = 256;

// One block. Each thread takes rows r ≡ threadIdx (mod blockDim): softmax, cross-entropy,
// error, gradient dlogits = grad_scale·(p − onehot) (may alias logits). The block then sums
// the loss and errors, and thread 0 adds them to stats and records the batch as diverged
// (LossStats) when its mean loss is non-finite or above max_loss and no earlier step was
// recorded. A label outside [0, K) (NaN included: the range is checked on the float before it is
// converted) makes its row's loss NaN, so it is reported, not hidden; its gradient is p·grad_scale.
__global__ void softmax_xent_kernel(const float* logits, const float* labels, int64_t rows, int64_t classes,
                                    CrossEntropyArgs args, const uint64_t* step_counter, float* dlogits,
                                    float* stats) {
  __shared__ float loss_part[kLossThreads];
  __shared__ float err_part[kLossThreads];
  float loss = 0.0f, errors = 0.0f;
  for (int64_t r = threadIdx.x; r < rows; r += blockDim.x) {
    const float* z = logits + r * classes;
    float* d = dlogits + r * classes;
    const float label_f = labels[r];
    const bool in_range = label_f >= 0.0f && label_f < static_cast<float>(classes);
    const int64_t label = in_range ? static_cast<int64_t>(label_f) : -1;
    const bool valid = in_range && label < classes && static_cast<float>(label) == label_f;
    int64_t best = 0;
    for (int64_t k = 1; k < classes; ++k)
      if (z[k] > z[best]) best = k;
    const float zmax = z[best];
    float denom = 0.0f;
    for (int64_t k = 0; k < classes; ++k) denom += expf(z[k] - zmax);
    const float log_denom = logf(denom);
    loss += valid ? log_denom - (z[label] - zmax) : nanf("");
    errors += best != label ? 1.0f : 0.0f;
    for (int64_t k = 0; k < classes; ++k) {  // read z[k] before writing d[k]: they may alias
      const float p = expf(z[k] - zmax - log_denom);
      d[k] = args.grad_scale * (p - (k == label ? 1.0f : 0.0f));
    }
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
    const float sum = loss_part[0];
    stats[LossStats::kLossSum] += sum;
    stats[LossStats::kErrors] += err_part[0];
    const float mean = rows > 0 ? sum / static_cast<float>(rows) : 0.0f;
    if (stats[LossStats::kBadStep] < 0.0f && (!isfinite(mean) || mean > args.max_loss)) {
      const int64_t step = step_counter != nullptr ? static_cast<int64_t>(*step_counter) : args.step;
      stats[LossStats::kBadStep] = static_cast<float>(step);
      stats[LossStats::kBadValue] = mean;
    }
  }
}

// out(r) ← index of the first maximum of row r, as a float.
__global__ void argmax_kernel(const float* x, int64_t rows, int64_t cols, float* out) {
  for (int64_t r = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; r < rows;
       r += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    const float* z = x + r * cols;
    int64_t best = 0;
    for (int64_t k = 1; k < cols; ++k)
      if (z[k] > z[best]) best = k;
    out[r] = static_cast<float>(best);
  }
}

// Batch row b copies data row below(bits(seed, kStreamSample, first_draw + b)[0], rows): the same
// draw as CpuBackend. One block per batch row (grid-stride over the batch), threads over columns
// (the row's features, then its target_cols targets).
__global__ void sample_rows_kernel(const float* x, const float* y, int64_t rows, int64_t cols, int64_t target_cols,
                                   uint64_t seed, uint64_t first_draw, const uint64_t* draw_counter, float* bx,
                                   float* by, int64_t batch) {
  if (draw_counter != nullptr) first_draw += *draw_counter;
  for (int64_t b = blockIdx.x; b < batch; b += gridDim.x) {
    const rng::Philox4 r = rng::bits(seed, rng::kStreamSample, first_draw + static_cast<uint64_t>(b));
    const int64_t row = rng::below(r.v[0], static_cast<uint32_t>(rows));
    const float* src = x + row * cols;
    float* dst = bx + b * cols;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) dst[c] = src[c];
    for (int64_t c = threadIdx.x; c < target_cols; c += blockDim.x)
      by[b * target_cols + c] = y[row * target_cols + c];
  }
}

}  // namespace

void softmax_cross_entropy(cudaStream_t s, const float* logits, const float* labels, int64_t rows, int64_t classes,
                           const CrossEntropyArgs& args, const uint64_t* step_counter, float* dlogits, float* stats) {
  softmax_xent_kernel<<<1, kLossThreads, 0, s>>>(logits, labels, rows, classes, args, step_counter, dlogits, stats);
  CUDL_CHECK_LAUNCH();
}

void argmax_rows(cudaStream_t s, const float* x, int64_t rows, int64_t cols, float* out) {
  if (rows == 0) return;
  argmax_kernel<<<grid_for(rows, 128), 128, 0, s>>>(x, rows, cols, out);
  CUDL_CHECK_LAUNCH();
}

void sample_rows(cudaStream_t s, const float* x, const float* y, int64_t rows, int64_t cols, int64_t target_cols,
                 uint64_t seed, uint64_t first_draw, const uint64_t* draw_counter, float* bx, float* by,
                 int64_t batch) {
  if (batch == 0) return;
  const int blocks = static_cast<int>(batch < 4096 ? batch : 4096);
  sample_rows_kernel<<<blocks, 128, 0, s>>>(x, y, rows, cols, target_cols, seed, first_draw, draw_counter, bx, by,
                                            batch);
  CUDL_CHECK_LAUNCH();
}

namespace {
__global__ void add_to_counter_kernel(uint64_t* counter, uint64_t delta) { *counter += delta; }
}  // namespace

void add_to_counter(cudaStream_t s, uint64_t* counter, uint64_t delta) {
  add_to_counter_kernel<<<1, 1, 0, s>>>(counter, delta);
  CUDL_CHECK_LAUNCH();
}

}  // namespace cudl::cuda

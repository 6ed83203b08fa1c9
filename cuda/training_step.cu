// The training loop's small primitives: minibatches without replacement (Backend::shuffled_rows)
// and the per-step learning rate (Backend::cosine_learning_rate), each kernel beside its
// CudaBackend member (no forwarder).
#include "backend_impl.hpp"
#include "check.hpp"
#include "formulas/schedule_rules.hpp"
#include "formulas/unit_rules.hpp"
#include "kernels.hpp"

namespace cudl {
namespace {

constexpr int kThreads = 256;

// One thread per (batch row b, column c) of the row's cols features followed by its target_cols
// targets: with t = *position, row b is the epoch's permuted row at position t mod R + b.
// Positions past the epoch (a caller's error the host cannot see here) give NaN rows, so the
// loss reports them.
__global__ void shuffled_rows_kernel(const float* x, const float* y, int64_t rows, int64_t cols, int64_t target_cols,
                                     uint64_t seed, const uint64_t* position, float* bx, float* by, int64_t batch) {
  const uint64_t t = *position;
  const int64_t width = cols + target_cols;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < batch * width;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t b = i / width, c = i % width;
    float* dst = c < cols ? bx + b * cols + c : by + b * target_cols + (c - cols);
    const int64_t row = formulas::shuffled_row(seed, t, b, rows);
    if (row < 0) {  // past the epoch's end
      *dst = nanf("");
      continue;
    }
    *dst = c < cols ? x[row * cols + c] : y[row * target_cols + (c - cols)];
  }
}

__global__ void cosine_learning_rate_kernel(CosineArgs args, const uint64_t* step, float* lr) {
  *lr = formulas::cosine_learning_rate(args, *step);
}

}  // namespace

void CudaBackend::do_cosine_learning_rate(const CosineArgs& args, const uint64_t* step, float* lr) {
  cosine_learning_rate_kernel<<<1, 1, 0, impl_->stream>>>(args, step, lr);
  CUDL_CHECK_LAUNCH();
}

void CudaBackend::do_shuffled_rows(const float* x, const float* y, int64_t rows, int64_t cols, int64_t target_cols,
                                   uint64_t seed, const uint64_t* position, float* bx, float* by, int64_t batch) {
  if (batch == 0) return;
  shuffled_rows_kernel<<<cuda::grid_for(batch * (cols + target_cols), kThreads), kThreads, 0, impl_->stream>>>(
      x, y, rows, cols, target_cols, seed, position, bx, by, batch);
  CUDL_CHECK_LAUNCH();
}

}  // namespace cudl

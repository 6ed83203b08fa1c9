#include "cudl/cpu_backend.hpp"

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <vector>

#include "cpu/elementwise.hpp"
#include "cpu/gemm.hpp"
#include "cpu/thread_pool.hpp"
#include "cudl/error.hpp"
#include "formulas/loss_rules.hpp"
#include "formulas/schedule_rules.hpp"
#include "formulas/unit_rules.hpp"

namespace cudl {
namespace {

using RowMatrix = Eigen::Array<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Elementwise work is split into chunks of at least this many elements per thread: a batch of 64
// rows of 800 units (bias and activation, their gradients, the RBM's sampling) is shared by 2
// threads or more; a chunk costs a few microseconds, a hand-over to a polling thread about one.
constexpr int64_t kGrain = 1 << 13;

}  // namespace

CpuBackend::CpuBackend(int threads, Precision precision)
    : pool_(std::make_unique<cpu::ThreadPool>(threads > 0 ? threads : hardware_threads())),
      precision_(precision == Precision::kBf16 ? Precision::kBf16 : Precision::kFp32) {}

CpuBackend::~CpuBackend() = default;

int CpuBackend::threads() const { return pool_->threads(); }

std::string CpuBackend::describe() const {
  return "cpu: " + cpu_model_name() + ", " + std::to_string(threads()) + " thread" + (threads() == 1 ? "" : "s") +
         ", gemm " + cpu::sgemm_kernel_name() + ", elementwise " + cpu::to_string(cpu::elementwise_kernel()) +
         (precision_ == Precision::kBf16 ? ", bf16 products (emulated by rounding)" : "") +
         (threads() > 1 ? ", threads poll " + std::to_string(pool_->spin().count()) + " us" : "");
}

void* CpuBackend::allocate(std::size_t bytes) {
  const std::size_t rounded = (std::max<std::size_t>(bytes, 1) + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, rounded);
  CUDL_REQUIRE(p != nullptr, "out of host memory allocating " + std::to_string(bytes) + " bytes");
  return p;
}

void CpuBackend::deallocate(void* ptr) noexcept { std::free(ptr); }

void CpuBackend::copy_to_host(const void* src, void* host_dst, std::size_t bytes) { std::memcpy(host_dst, src, bytes); }
void CpuBackend::copy_from_host(const void* host_src, void* dst, std::size_t bytes) { std::memcpy(dst, host_src, bytes); }
void CpuBackend::copy(const void* src, void* dst, std::size_t bytes) { std::memmove(dst, src, bytes); }

void CpuBackend::do_fill(float* x, int64_t n, float value) {
  pool_->parallel_for(n, kGrain, [&](int64_t b, int64_t e) { std::fill(x + b, x + e, value); });
}

void CpuBackend::do_fill_normal(float* x, int64_t n, uint64_t seed, float mean, float stddev) {
  pool_->parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) x[i] = formulas::normal_init_at(seed, i, mean, stddev);
  });
}

void CpuBackend::do_gemm(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                         int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (precision_ == Precision::kBf16) {
    gemm_bf16(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  cpu::sgemm(*pool_, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

// A column of dx whose ReLU output y is 0 (or NaN) in every row has a zero gradient whatever the
// product, so the product is computed for the other columns only: their rows of B, read in place
// by the packed kernels (sgemm_rows), into a scratch (m × kept), then spread into C and passed
// through the ReLU derivative. Each element has the bits of the unfused gemm +
// activation_backward: the packed kernels give every element the same products in the same order
// whichever columns are computed beside it, and beta is 0. kBf16, other activations, op(B) not transposed and the Eigen kernel (whose
// blocking depends on n) take the two calls.
void CpuBackend::do_gemm_activation_backward(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, float alpha,
                                             const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
                                             const float* y, Activation act) {
  const cpu::GemmKernel kernel = cpu::gemm_kernel();
  if (act != Activation::kRelu || tb != Trans::kYes || kernel == cpu::GemmKernel::kEigen || m <= 0 || n <= 0 ||
      precision_ == Precision::kBf16) {
    Backend::do_gemm_activation_backward(ta, tb, m, n, k, alpha, a, lda, b, ldb, c, y, act);
    return;
  }
  kept_.assign(static_cast<size_t>(n), 0);  // first as flags: some row of column j has y > 0
  for (int64_t i = 0; i < m; ++i) {
    const float* yi = y + i * n;
    for (int64_t j = 0; j < n; ++j) kept_[j] |= static_cast<int32_t>(yi[j] > 0.0f);
  }
  int64_t kept = 0;
  for (int64_t j = 0; j < n; ++j) {
    if (kept_[j] != 0) kept_[kept++] = static_cast<int32_t>(j);
  }
  if (kept == n) {
    Backend::do_gemm_activation_backward(ta, tb, m, n, k, alpha, a, lda, b, ldb, c, y, act);
    return;
  }
  kept_product_.resize(static_cast<size_t>(std::max<int64_t>(m * kept, 1)));
  float* t = kept_product_.data();
  if (kept > 0) cpu::sgemm_rows(kernel, *pool_, ta, tb, m, kept, k, alpha, a, lda, b, ldb, kept_.data(), 0.0f, t, kept);
  // Spread (zeros in the silent columns), then the vectorised ReLU derivative on whole rows: a
  // select per kept element would branch on y's sign and mispredict half the time.
  const int32_t* cols = kept_.data();
  const cpu::ElementwiseOps& ops = cpu::elementwise_ops();
  pool_->parallel_for(m, std::max<int64_t>(1, kGrain / n), [&](int64_t r0, int64_t r1) {
    for (int64_t i = r0; i < r1; ++i) {
      float* ci = c + i * n;
      const float* ti = t + i * kept;
      std::fill(ci, ci + n, 0.0f);
      for (int64_t q = 0; q < kept; ++q) ci[cols[q]] = ti[q];
    }
    ops.activation_backward(c + r0 * n, y + r0 * n, (r1 - r0) * n, act);
  });
}

void CpuBackend::do_bias_activation(float* y, const float* bias, int64_t rows, int64_t cols, Activation act) {
  const cpu::ElementwiseOps& ops = cpu::elementwise_ops();
  pool_->parallel_for(rows, std::max<int64_t>(1, kGrain / std::max<int64_t>(cols, 1)), [&](int64_t b, int64_t e) {
    ops.bias_activation(y + b * cols, bias, e - b, cols, act);
  });
}

void CpuBackend::do_activation(float* y, int64_t n, Activation act) {
  if (act == Activation::kIdentity) return;
  const cpu::ElementwiseOps& ops = cpu::elementwise_ops();
  pool_->parallel_for(n, kGrain, [&](int64_t b, int64_t e) { ops.activation(y + b, e - b, act); });
}

void CpuBackend::do_activation_backward(float* dy, const float* y, int64_t n, Activation act) {
  if (act == Activation::kIdentity) return;
  const cpu::ElementwiseOps& ops = cpu::elementwise_ops();
  pool_->parallel_for(n, kGrain, [&](int64_t b, int64_t e) { ops.activation_backward(dy + b, y + b, e - b, act); });
}

// Fixed chunks of 2^15 elements, each summed in order by four interleaved accumulators, then the
// chunks' sums in order: the same bits whatever the thread count.
void CpuBackend::do_squared_distance(const float* a, const float* b, int64_t n, double* out) {
  constexpr int64_t kChunk = int64_t{1} << 15;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> sums(static_cast<size_t>(chunks));
  pool_->parallel_for(chunks, 1, [&](int64_t cb, int64_t ce) {
    for (int64_t c = cb; c < ce; ++c) {
      const int64_t begin = c * kChunk, end = std::min(n, begin + kChunk);
      double s[4] = {0.0, 0.0, 0.0, 0.0};
      int64_t i = begin;
      for (; i + 4 <= end; i += 4)
        for (int k = 0; k < 4; ++k) {
          const double d = static_cast<double>(a[i + k]) - static_cast<double>(b[i + k]);
          s[k] += d * d;
        }
      for (; i < end; ++i) {
        const double d = static_cast<double>(a[i]) - static_cast<double>(b[i]);
        s[0] += d * d;
      }
      sums[static_cast<size_t>(c)] = (s[0] + s[1]) + (s[2] + s[3]);
    }
  });
  double total = 0.0;
  for (double s : sums) total += s;
  *out = total;
}

void CpuBackend::do_sum_rows(float alpha, const float* x, int64_t rows, int64_t cols, float beta, float* out) {
  // Columns are split across threads; each sums its columns over all rows.
  pool_->parallel_for(cols, std::max<int64_t>(16, kGrain / std::max<int64_t>(rows, 1)), [&](int64_t b, int64_t e) {
    const Eigen::Map<const RowMatrix, 0, Eigen::OuterStride<>> xm(x + b, rows, e - b, Eigen::OuterStride<>(cols));
    Eigen::Map<Eigen::Array<float, 1, Eigen::Dynamic>> o(out + b, e - b);
    if (beta == 0.0f) {
      o = alpha * xm.colwise().sum();
    } else {
      o = alpha * xm.colwise().sum() + beta * o;
    }
  });
}

void CpuBackend::do_softmax_cross_entropy(const float* logits, const float* labels, int64_t rows, int64_t classes,
                                          const CrossEntropyArgs& args, const uint64_t* step_counter, float* dlogits,
                                          float* stats) {
  double loss_sum = 0.0;
  int64_t errors = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t label = formulas::class_index(labels[r], classes);
    CUDL_REQUIRE(label >= 0, "softmax_cross_entropy: label " + std::to_string(labels[r]) + " of row " +
                                 std::to_string(r) + " is not a class index in [0, " + std::to_string(classes) + ")");
    const formulas::RowCrossEntropy row =
        formulas::softmax_xent_row(logits + r * classes, dlogits + r * classes, classes, label, args.grad_scale);
    loss_sum += row.loss;
    errors += row.error;
  }
  const int64_t step = step_counter != nullptr ? static_cast<int64_t>(*step_counter) : args.step;
  formulas::add_elementwise_stats(stats, loss_sum, errors, rows, 1, args.max_loss, step);
}

void CpuBackend::do_argmax_rows(const float* x, int64_t rows, int64_t cols, float* out) {
  for (int64_t r = 0; r < rows; ++r) out[r] = static_cast<float>(formulas::argmax(x + r * cols, cols));
}

void CpuBackend::do_add_to_counter(uint64_t* counter, uint64_t delta) { *counter += delta; }

void CpuBackend::do_sample_rows(const float* x, const float* y, int64_t rows, int64_t cols, int64_t target_cols,
                                uint64_t seed, uint64_t first_draw, const uint64_t* draw_counter, float* bx, float* by,
                                int64_t batch) {
  if (draw_counter != nullptr) first_draw += *draw_counter;
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t row = formulas::drawn_row(seed, first_draw + static_cast<uint64_t>(b), rows);
    std::memcpy(bx + b * cols, x + row * cols, static_cast<size_t>(cols) * sizeof(float));
    for (int64_t c = 0; c < target_cols; ++c) by[b * target_cols + c] = y[row * target_cols + c];
  }
}

void CpuBackend::do_cosine_learning_rate(const CosineArgs& args, const uint64_t* step, float* lr) {
  *lr = formulas::cosine_learning_rate(args, *step);
}

void CpuBackend::do_shuffled_rows(const float* x, const float* y, int64_t rows, int64_t cols, int64_t target_cols,
                                  uint64_t seed, const uint64_t* position, float* bx, float* by, int64_t batch) {
  const uint64_t t = *position, n = static_cast<uint64_t>(rows), first = t % n;
  CUDL_REQUIRE(first + static_cast<uint64_t>(batch) <= n,
               "shuffled_rows: positions " + std::to_string(first) + ".." + std::to_string(first + batch - 1) +
                   " run past the epoch's " + std::to_string(rows) + " rows");
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t row = formulas::shuffled_row(seed, t, b, rows);
    std::memcpy(bx + b * cols, x + row * cols, static_cast<size_t>(cols) * sizeof(float));
    for (int64_t c = 0; c < target_cols; ++c) by[b * target_cols + c] = y[row * target_cols + c];
  }
}

// The sampling passes are the elementwise kind's (cpu/elementwise.hpp): each chunk of rows or
// elements starts its counters at counter + its first element's index, so the split does not
// change the draws.
void CpuBackend::do_bias_activation_sample(float* y, const float* bias, int64_t rows, int64_t cols, Activation act,
                                           Units units, uint64_t seed, const uint64_t* counter_ptr, uint64_t offset,
                                           float* states) {
  const uint64_t counter = (counter_ptr != nullptr ? *counter_ptr : 0) + offset;
  const cpu::ElementwiseOps& ops = cpu::elementwise_ops();
  pool_->parallel_for(rows, std::max<int64_t>(1, kGrain / std::max<int64_t>(cols, 1)), [=, &ops](int64_t b, int64_t e) {
    ops.bias_activation_sample(y + b * cols, bias, e - b, cols, act, units, seed,
                               counter + static_cast<uint64_t>(b * cols), states + b * cols);
  });
}

void CpuBackend::do_sample_units(const float* means, int64_t n, Units units, uint64_t seed, uint64_t counter,
                                 float* out) {
  const cpu::ElementwiseOps& ops = cpu::elementwise_ops();
  pool_->parallel_for(n, kGrain, [=, &ops](int64_t b, int64_t e) {
    ops.sample_units(means + b, e - b, units, seed, counter + static_cast<uint64_t>(b), out + b);
  });
}

void CpuBackend::do_axpy(float alpha, const float* x, float* y, int64_t n) {
  const cpu::ElementwiseOps& ops = cpu::elementwise_ops();
  pool_->parallel_for(n, kGrain, [=, &ops](int64_t b, int64_t e) { ops.axpy(alpha, x + b, y + b, e - b); });
}

}  // namespace cudl

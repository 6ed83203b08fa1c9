#pragma once
// cudl's own fp32 product for few rows (issue 17): C (m×n) from op(A) (m×k) and op(B) (k×n) where
// m ≤ kMaxRows (a small batch's forward and input-gradient products, where cuBLAS runs a split-K
// kernel and a separate reduction kernel: two graph nodes, ~10 + 4 µs for 64×800×784 on the H200,
// and the bias, activation or activation gradient takes a third), or where the whole product is
// little work, m·n·k ≤ kMaxWork (a small batch's weight gradients: k is the batch).
//
// One kernel: blocks of kTileRows × kTileCols outputs over one slice of k each (split-K, so that
// a batch of 64 rows still fills the GPU); each block writes its partial sums, and the last block
// of a tile to finish (a ticket counter per tile) adds the slices' sums in slice order (the same
// bits whichever block finishes last) and applies the epilogue. Within a slice each output is one
// fmaf chain over k in order, zero-padded to whole chunks.
//
// This header is plain C++ (no CUDA): the split, the index maps of the kernel's loads, and
// `emulate`, which computes the kernel's arithmetic in the kernel's order on the host, so a GPU
// test can require the kernel's bits exactly (except a bias + sigmoid: the GPU's expf is not the
// host's) and a host test can check the maps and the order.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "cudl/backend.hpp"
#include "formulas/unit_rules.hpp"
#include "formulas/update_rules.hpp"

namespace cudl::cuda::rows_gemm {

constexpr int kTileRows = 64;     // rows of C per block
constexpr int kTileCols = 32;     // columns of C per block
constexpr int kChunk = 16;        // k per shared-memory stage
constexpr int kThreads = 256;     // per block: 16 × 16 threads, each 4 rows × 2 columns
constexpr int kThreadRows = 4;
constexpr int kThreadCols = 2;
constexpr int64_t kMaxRows = 256;  // larger m only for little work:
constexpr int64_t kMaxWork = int64_t{1} << 27;  // m·n·k (784×800×64 is 40 M)
constexpr int64_t kMaxSplits = 32;
constexpr int64_t kMinSplitK = 64;  // k per slice at least (a block's work must outweigh its partial's write)
constexpr int64_t kMaxTiles = 65535;  // tickets the backend keeps (and the grid's y limit)
constexpr int64_t kMaxOneSliceK = 4096;  // summing B's rows keeps k in one slice: not too long a one

static_assert(kThreads == (kTileRows / kThreadRows) * (kTileCols / kThreadCols), "one output group per thread");
static_assert((kTileRows * kChunk) % kThreads == 0 && (kTileCols * kChunk) % kThreads == 0, "whole loads");

// What follows the sum: the product's kinds of Backend call.
enum class Epilogue {
  kPlain,        // C ← alpha·Σ + beta·C (beta = 0 does not read C): gemm
  kBiasAct,      // C ← act(alpha·Σ + bias[j]): gemm_bias_activation
  kActBackward,  // C ← activation_grad(act, alpha·Σ, y[i][j]): gemm_activation_backward
  kUpdate,       // alpha·Σ is the gradient of C's element: gdbn's Nesterov step of C and V (mlp_step)
};

// The scalars of gdbn's Nesterov step (formulas::gdbn_nesterov_update) for Epilogue::kUpdate.
struct Nesterov {
  float rate = 0.0f, momentum = 0.0f, grad_scale = 1.0f;
  float l2 = 0.0f;  // for C's elements (weights); the row sums' (biases) take 0
};

struct Split {
  int64_t row_tiles = 0, col_tiles = 0;
  int64_t splits = 0;   // slices of k (blocks per tile)
  int64_t split_k = 0;  // k per slice, a multiple of kChunk; the last slice may be shorter
  CUDL_HD int64_t blocks() const { return row_tiles * col_tiles * splits; }
  CUDL_HD int64_t tiles() const { return row_tiles * col_tiles; }
};

// Whether the kernel serves this shape (m, n, k ≥ 1; everything else the library runs), with B's
// rows summed too where `one_slice`.
inline bool serves(int64_t m, int64_t n, int64_t k, bool one_slice = false) {
  if (m < 1 || n < 1 || k < 1 || k > (one_slice ? kMaxOneSliceK : int64_t{1} << 40)) return false;
  const int64_t row_tiles = (m + kTileRows - 1) / kTileRows, col_tiles = (n + kTileCols - 1) / kTileCols;
  if (row_tiles > kMaxTiles || col_tiles > kMaxTiles / row_tiles) return false;
  return m <= kMaxRows || (n <= kMaxWork / m && k <= kMaxWork / (m * n));
}

// The slices for a GPU of `sms` multiprocessors: about two blocks per multiprocessor, no slice
// shorter than kMinSplitK (unless k is), at most kMaxSplits; one slice where B's rows are also
// summed (`one_slice`: each column's sum is then one block's).
inline Split split_for(int64_t m, int64_t n, int64_t k, int sms, bool one_slice = false) {
  Split s;
  s.row_tiles = (m + kTileRows - 1) / kTileRows;
  s.col_tiles = (n + kTileCols - 1) / kTileCols;
  const int64_t want = one_slice ? 1 : std::max<int64_t>(1, (2 * int64_t{sms} + s.tiles() - 1) / s.tiles());
  const int64_t by_k = std::max<int64_t>(1, k / kMinSplitK);
  const int64_t splits = std::min({want, by_k, kMaxSplits});
  const int64_t per = (k + splits - 1) / splits;
  s.split_k = (per + kChunk - 1) / kChunk * kChunk;
  s.splits = (k + s.split_k - 1) / s.split_k;
  return s;
}

// The kernel's load maps: element e (0 ≤ e < kTileRows·kChunk) of a stage of A, and element e
// (0 ≤ e < kTileCols·kChunk) of a stage of B, as (row or column within the tile, k within the
// stage). Consecutive threads take consecutive addresses of the stored matrix (coalesced).
struct Cell {
  int outer, kk;
};
CUDL_HD Cell a_cell(bool a_transposed, int e) {
  // op(A) = A: A is m×k, row-major, k contiguous; op(A) = Aᵀ: A is k×m, m contiguous.
  return a_transposed ? Cell{e % kTileRows, e / kTileRows} : Cell{e / kChunk, e % kChunk};
}
CUDL_HD Cell b_cell(bool b_transposed, int e) {
  // op(B) = B: B is k×n, n contiguous; op(B) = Bᵀ: B is n×k, k contiguous.
  return b_transposed ? Cell{e / kChunk, e % kChunk} : Cell{e % kTileCols, e / kTileCols};
}

// Element (i, kk) of op(A) and (kk, j) of op(B), with row strides lda and ldb.
CUDL_HD int64_t a_index(bool ta, int64_t i, int64_t kk, int64_t lda) { return ta ? kk * lda + i : i * lda + kk; }
CUDL_HD int64_t b_index(bool tb, int64_t kk, int64_t j, int64_t ldb) { return tb ? j * ldb + kk : kk * ldb + j; }

// The epilogue of one output, given its sum s over k. v = alpha·s is rounded before the add that
// follows (no FMA contraction on either side: the host emulation gives the kernel's bits).
struct Outputs {
  Epilogue epilogue = Epilogue::kPlain;
  float alpha = 1.0f, beta = 0.0f;
  float* c = nullptr;
  int64_t ldc = 0;
  const float* bias = nullptr;  // kBiasAct: n values
  const float* y = nullptr;     // kActBackward: m×n, row stride n
  Activation act = Activation::kIdentity;
  // Where not null (one slice only): sums[j] ← sum_alpha·Σ_k op(B)[k][j] + sum_beta·sums[j]
  // (sum_beta = 0 does not read sums), the sum in k's order from +0; a_sums[i] the same over
  // op(A)[i][k].
  float* sums = nullptr;
  float* a_sums = nullptr;
  float sum_alpha = 1.0f, sum_beta = 0.0f;
  // kUpdate: the velocities of C's elements (row stride ldc). Where sums_v is not null, the sums
  // are the gradients of sums' elements (sum_alpha·Σ), stepped the same way with sums_v, l2 = 0.
  float* v = nullptr;
  float* sums_v = nullptr;
  Nesterov update;
  // kUpdate, where not null: the gradients themselves too, stored before the step (g in C's
  // layout; sums_g beside sums): the persistent step's last step of a launch writes them.
  float* g = nullptr;
  float* sums_g = nullptr;
};

// The kernel's arguments: op(A), op(B), the split, the scratch, the outputs.
struct KernelArgs {
  bool ta, tb;
  int64_t m, n, k;
  const float* a;
  int64_t lda;
  const float* b;
  int64_t ldb;
  int64_t split_k, splits;
  float* partials;  // splits × m × n, when splits > 1
  int* tickets;     // one per tile, zero on entry and on exit
  Outputs out;
};

#if defined(__CUDA_ARCH__)
CUDL_HD float mul_rn(float a, float b) { return __fmul_rn(a, b); }
CUDL_HD float add_rn(float a, float b) { return __fadd_rn(a, b); }
#else
// volatile keeps the host compiler from contracting the rounded product into a later add.
inline float mul_rn(float a, float b) {
  volatile float p = a * b;
  return p;
}
inline float add_rn(float a, float b) {
  volatile float s = a + b;
  return s;
}
#endif

CUDL_HD void store(const Outputs& o, int64_t i, int64_t j, float s) {
  const float v = mul_rn(o.alpha, s);
  float* c = o.c + i * o.ldc + j;
  switch (o.epilogue) {
    case Epilogue::kPlain: *c = o.beta == 0.0f ? v : fmaf(o.beta, *c, v); break;
    case Epilogue::kBiasAct: *c = formulas::activate(o.act, add_rn(v, o.bias[j])); break;
    case Epilogue::kActBackward: *c = formulas::activation_grad(o.act, v, o.y[i * o.ldc + j]); break;
    case Epilogue::kUpdate: {
      const Nesterov& u = o.update;
      if (o.g != nullptr) o.g[i * o.ldc + j] = v;
      formulas::gdbn_nesterov_update(*c, o.v[i * o.ldc + j], v, u.rate, u.momentum, u.grad_scale, u.l2);
      break;
    }
  }
}

// sums[j] from its sum s; `velocity` (Outputs::sums_v for sums, null for a_sums) makes it a step.
CUDL_HD void store_sum(const Outputs& o, float* sums, float* velocity, int64_t j, float s) {
  const float v = mul_rn(o.sum_alpha, s);
  if (velocity != nullptr) {
    const Nesterov& u = o.update;
    if (o.sums_g != nullptr) o.sums_g[j] = v;
    formulas::gdbn_nesterov_update(sums[j], velocity[j], v, u.rate, u.momentum, u.grad_scale, 0.0f);
    return;
  }
  sums[j] = o.sum_beta == 0.0f ? v : fmaf(o.sum_beta, sums[j], v);
}

// The kernel's result on the host, in the kernel's order: per slice, each output's fmaf chain over
// the slice's k from +0, zero-padded to whole chunks; then the slices' sums in slice order, then
// the epilogue. For tests.
inline void emulate(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
                    int64_t ldb, const Split& split, const Outputs& out) {
  std::vector<float> part(static_cast<size_t>(split.splits));
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      for (int64_t q = 0; q < split.splits; ++q) {
        const int64_t begin = q * split.split_k, end = std::min(k, begin + split.split_k);
        float acc = 0.0f;
        for (int64_t k0 = begin; k0 < end; k0 += kChunk) {
          for (int64_t kk = k0; kk < k0 + kChunk; ++kk) {
            const bool in = kk < end;
            acc = std::fma(in ? a[a_index(ta, i, kk, lda)] : 0.0f, in ? b[b_index(tb, kk, j, ldb)] : 0.0f, acc);
          }
        }
        part[static_cast<size_t>(q)] = acc;
      }
      float s = part[0];
      for (int64_t q = 1; q < split.splits; ++q) s = add_rn(s, part[static_cast<size_t>(q)]);
      store(out, i, j, s);
    }
  }
  for (int64_t j = 0; out.sums != nullptr && j < n; ++j) {
    float s = 0.0f;
    for (int64_t k0 = 0; k0 < k; k0 += kChunk)
      for (int64_t kk = k0; kk < k0 + kChunk; ++kk) s = add_rn(s, kk < k ? b[b_index(tb, kk, j, ldb)] : 0.0f);
    store_sum(out, out.sums, out.sums_v, j, s);
  }
  for (int64_t i = 0; out.a_sums != nullptr && i < m; ++i) {
    float s = 0.0f;
    for (int64_t k0 = 0; k0 < k; k0 += kChunk)
      for (int64_t kk = k0; kk < k0 + kChunk; ++kk) s = add_rn(s, kk < k ? a[a_index(ta, i, kk, lda)] : 0.0f);
    store_sum(out, out.a_sums, nullptr, i, s);
  }
}

}  // namespace cudl::cuda::rows_gemm

#pragma once
// The kernel of cudl's own product for few rows (rows_gemm_plan.hpp says what it computes and in
// which order; rows_gemm.cu launches it). Kept apart so that a host test can compile this very
// source with stand-ins for CUDA's built-ins and run it block by block on CPU threads
// (tests/test_rows_gemm_kernel_on_host.cpp). Include after the CUDA headers (or the stand-ins) and
// rows_gemm_plan.hpp.

namespace cudl::cuda::rows_gemm {

constexpr int kPad = 4;  // keeps the float4 and float2 reads aligned and the transposing stores spread over banks

// A block's shared memory.
struct Smem {
  __align__(16) float as[kChunk][kTileRows + kPad];  // as[kk][i]: op(A)'s stage, transposed
  __align__(16) float bs[kChunk][kTileCols + kPad];  // bs[kk][j]: op(B)'s stage
  bool last;
};

// One block's work: tile (row_tile, col_tile) of C over slice `slice` of k, the tiles numbered
// row_tile·col_tiles + col_tile (their tickets). kThreads threads, thread t computing rows
// r0 + [0, 4) and columns c0 + [0, 2) of the tile, r0 = 4·(t / 16), c0 = 2·(t % 16). The
// persistent training step (mlp_step_kernel.cuh) calls it for its products' tiles too.
__device__ inline void product_block(const KernelArgs& p, Smem& sm, int64_t col_tile, int64_t row_tile, int64_t slice,
                                     int64_t col_tiles) {
  auto& as = sm.as;
  auto& bs = sm.bs;
  bool& last = sm.last;
  const int t = static_cast<int>(threadIdx.x);
  const int64_t row0 = row_tile * kTileRows;
  const int64_t col0 = col_tile * kTileCols;
  const int64_t begin = slice * p.split_k;
  const int64_t end = begin + p.split_k < p.k ? begin + p.split_k : p.k;
  const int r0 = kThreadRows * (t / (kTileCols / kThreadCols));
  const int c0 = kThreadCols * (t % (kTileCols / kThreadCols));

  float acc[kThreadRows][kThreadCols] = {};
  // The first row of threads of the first row tile also sums B's rows (Outputs::sums), and the
  // first column of threads of the first column tile A's (Outputs::a_sums); one slice.
  const bool sums = p.out.sums != nullptr && row_tile == 0 && r0 == 0;
  const bool a_sums = p.out.a_sums != nullptr && col_tile == 0 && c0 == 0;
  float col_sum[kThreadCols] = {}, row_sum[kThreadRows] = {};
  // Each stage's operands are loaded into registers one stage ahead, so that the loads of the next
  // stage are in flight while this one is multiplied; the shared arrays are written only between
  // the two barriers.
  constexpr int kALoads = kTileRows * kChunk / kThreads, kBLoads = kTileCols * kChunk / kThreads;
  float a_next[kALoads], b_next[kBLoads];
  auto load_stage = [&](int64_t k0) {
#pragma unroll
    for (int l = 0; l < kALoads; ++l) {
      const Cell cell = a_cell(p.ta, t + l * kThreads);
      const int64_t i = row0 + cell.outer, kk = k0 + cell.kk;
      a_next[l] = i < p.m && kk < end ? p.a[a_index(p.ta, i, kk, p.lda)] : 0.0f;
    }
#pragma unroll
    for (int l = 0; l < kBLoads; ++l) {
      const Cell cell = b_cell(p.tb, t + l * kThreads);
      const int64_t j = col0 + cell.outer, kk = k0 + cell.kk;
      b_next[l] = j < p.n && kk < end ? p.b[b_index(p.tb, kk, j, p.ldb)] : 0.0f;
    }
  };
  if (begin < end) load_stage(begin);
  for (int64_t k0 = begin; k0 < end; k0 += kChunk) {
#pragma unroll
    for (int l = 0; l < kALoads; ++l) {
      const Cell cell = a_cell(p.ta, t + l * kThreads);
      as[cell.kk][cell.outer] = a_next[l];
    }
#pragma unroll
    for (int l = 0; l < kBLoads; ++l) {
      const Cell cell = b_cell(p.tb, t + l * kThreads);
      bs[cell.kk][cell.outer] = b_next[l];
    }
    __syncthreads();
    if (k0 + kChunk < end) load_stage(k0 + kChunk);
#pragma unroll
    for (int kk = 0; kk < kChunk; ++kk) {
      const float4 a4 = *reinterpret_cast<const float4*>(&as[kk][r0]);
      const float2 b2 = *reinterpret_cast<const float2*>(&bs[kk][c0]);
      const float av[kThreadRows] = {a4.x, a4.y, a4.z, a4.w};
      const float bv[kThreadCols] = {b2.x, b2.y};
#pragma unroll
      for (int r = 0; r < kThreadRows; ++r)
#pragma unroll
        for (int c = 0; c < kThreadCols; ++c) acc[r][c] = fmaf(av[r], bv[c], acc[r][c]);
      if (sums) {
#pragma unroll
        for (int c = 0; c < kThreadCols; ++c) col_sum[c] = __fadd_rn(col_sum[c], bv[c]);
      }
      if (a_sums) {
#pragma unroll
        for (int r = 0; r < kThreadRows; ++r) row_sum[r] = __fadd_rn(row_sum[r], av[r]);
      }
    }
    __syncthreads();
  }
  if (sums) {
#pragma unroll
    for (int c = 0; c < kThreadCols; ++c)
      if (col0 + c0 + c < p.n) store_sum(p.out, p.out.sums, p.out.sums_v, col0 + c0 + c, col_sum[c]);
  }
  if (a_sums) {
#pragma unroll
    for (int r = 0; r < kThreadRows; ++r)
      if (row0 + r0 + r < p.m) store_sum(p.out, p.out.a_sums, nullptr, row0 + r0 + r, row_sum[r]);
  }

  if (p.splits == 1) {
#pragma unroll
    for (int r = 0; r < kThreadRows; ++r)
#pragma unroll
      for (int c = 0; c < kThreadCols; ++c) {
        const int64_t i = row0 + r0 + r, j = col0 + c0 + c;
        if (i < p.m && j < p.n) store(p.out, i, j, acc[r][c]);
      }
    return;
  }
  // This slice's sums, then a ticket: the tile's last block adds all slices in slice order.
  const int64_t plane = p.m * p.n;
#pragma unroll
  for (int r = 0; r < kThreadRows; ++r)
#pragma unroll
    for (int c = 0; c < kThreadCols; ++c) {
      const int64_t i = row0 + r0 + r, j = col0 + c0 + c;
      if (i < p.m && j < p.n) p.partials[slice * plane + i * p.n + j] = acc[r][c];
    }
  // The block's partials, then its ticket (release); the block that takes the last ticket reads
  // every slice's partials after it (acquire): the fence-barrier-fence order of cooperative
  // groups' grid barrier.
  __threadfence();
  __syncthreads();
  int* ticket = p.tickets + row_tile * col_tiles + col_tile;
  if (t == 0) {
    __threadfence();
    last = atomicAdd(ticket, 1) == static_cast<int>(p.splits) - 1;
    if (last) __threadfence();
  }
  __syncthreads();
  if (!last) return;
  // Each output's slices added in slice order; the slice loop outside, so that a slice's eight
  // loads are in flight together (L2: other blocks wrote them).
  float sum[kThreadRows][kThreadCols];
  int64_t at[kThreadRows][kThreadCols];  // the output's offset in a slice's plane, or -1 outside C
#pragma unroll
  for (int r = 0; r < kThreadRows; ++r)
#pragma unroll
    for (int c = 0; c < kThreadCols; ++c) {
      const int64_t i = row0 + r0 + r, j = col0 + c0 + c;
      at[r][c] = i < p.m && j < p.n ? i * p.n + j : -1;
      sum[r][c] = at[r][c] >= 0 ? __ldcg(p.partials + at[r][c]) : 0.0f;
    }
  for (int64_t z = 1; z < p.splits; ++z) {
    float v[kThreadRows][kThreadCols];
#pragma unroll
    for (int r = 0; r < kThreadRows; ++r)
#pragma unroll
      for (int c = 0; c < kThreadCols; ++c)
        v[r][c] = at[r][c] >= 0 ? __ldcg(p.partials + z * plane + at[r][c]) : 0.0f;
#pragma unroll
    for (int r = 0; r < kThreadRows; ++r)
#pragma unroll
      for (int c = 0; c < kThreadCols; ++c) sum[r][c] = __fadd_rn(sum[r][c], v[r][c]);
  }
#pragma unroll
  for (int r = 0; r < kThreadRows; ++r)
#pragma unroll
    for (int c = 0; c < kThreadCols; ++c)
      if (at[r][c] >= 0) store(p.out, row0 + r0 + r, col0 + c0 + c, sum[r][c]);
  if (t == 0) *ticket = 0;  // ready for the next launch (stream order), or the next phase
}

// Grid (column tiles, row tiles, slices). Left out where only product_block is wanted
// (mlp_step.cu defines CUDL_ROWS_GEMM_BLOCK_ONLY: one definition of the kernel in the library).
#ifndef CUDL_ROWS_GEMM_BLOCK_ONLY
__global__ void __launch_bounds__(kThreads) rows_gemm_kernel(KernelArgs p) {
  __shared__ Smem sm;
  product_block(p, sm, blockIdx.x, blockIdx.y, blockIdx.z, gridDim.x);
}
#endif

}  // namespace cudl::cuda::rows_gemm

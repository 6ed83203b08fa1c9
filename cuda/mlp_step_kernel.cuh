#pragma once
// The persistent training step's kernel (mlp_step_plan.hpp says what it computes and in which
// order; mlp_step.cu launches it, cooperatively, so that every block is resident). Kept apart, as
// rows_gemm_kernel.cuh, so that a host test can compile this very source with stand-ins for CUDA's
// built-ins and run a whole grid on CPU threads (tests/test_mlp_step_on_host.cpp). Include after
// the CUDA headers (or the stand-ins), mlp_step_plan.hpp and rows_gemm_kernel.cuh.

#include <new>  // placement new: the phase's products in shared memory

// How a block's first thread waits for the grid barrier's generation to move on from `old`, and
// reads the GPU's nanosecond clock (profiles only).
#ifndef CUDL_GRID_SPIN_WAIT
#define CUDL_GRID_SPIN_WAIT(p, old) \
  while (*reinterpret_cast<volatile unsigned*>(p) == (old)) __nanosleep(32)
#endif
#ifndef CUDL_GLOBAL_NS
#define CUDL_GLOBAL_NS() cudl::cuda::mlp_step::global_ns()
#endif

namespace cudl::cuda::mlp_step {

__device__ inline unsigned long long global_ns() {
#ifdef __CUDA_ARCH__
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
#else
  return 0;  // the host has its own (CUDL_GLOBAL_NS)
#endif
}

// A block's shared memory: the products' stages, or the loss phase's sums.
// The phase's products live here, written by the block's first thread (one copy per block, not
// one per thread in local memory); raw storage, since a __shared__ variable takes no initialiser.
struct Smem {
  rows_gemm::Smem tile;
  double loss[kLossThreads];
  int64_t errors[kLossThreads];
  alignas(Product) unsigned char products[2 * sizeof(Product)];
  int count;  // of products
  __device__ Product* phase() { return reinterpret_cast<Product*>(products); }
};

// Every block of the grid arrives before any leaves; what each wrote before is visible to all
// after (fence, barrier, fence: cooperative groups' grid barrier). bar[0] counts arrivals and is
// reset by the last to arrive, which then moves bar[1], the generation, on.
__device__ inline void grid_barrier(unsigned* bar, unsigned blocks) {
  __syncthreads();
  if (threadIdx.x == 0) {
    const unsigned generation = *reinterpret_cast<volatile unsigned*>(bar + 1);
    __threadfence();
    if (atomicAdd(bar, 1u) == blocks - 1) {
      bar[0] = 0;
      __threadfence();
      atomicAdd(bar + 1, 1u);
    } else {
      CUDL_GRID_SPIN_WAIT(bar + 1, generation);
    }
    __threadfence();
  }
  __syncthreads();
}

// The work items of up to two products, numbered through both (each product's as rows_gemm's
// grid: column tile fastest, then row tile, then slice); block `block` of `blocks` takes items
// block, block + blocks, ...
__device__ inline void run_products(const Product* p, int count, rows_gemm::Smem& sm, int64_t block, int64_t blocks) {
  int64_t total = 0;
  for (int q = 0; q < count; ++q) total += p[q].split.blocks();
  for (int64_t item = block; item < total; item += blocks) {
    int q = 0;
    int64_t w = item;
    while (w >= p[q].split.blocks()) w -= p[q++].split.blocks();
    const rows_gemm::Split& s = p[q].split;
    rows_gemm::product_block(p[q].args, sm, w % s.col_tiles, (w / s.col_tiles) % s.row_tiles, w / s.tiles(),
                             s.col_tiles);
  }
}

// The loss phase, on one block: each thread's rows (r ≡ t mod kLossThreads), then a fixed-order
// tree over the threads; thread 0 adds the batch's figures to the stats.
__device__ inline void loss_phase(const Args& a, Smem& sm, int64_t step) {
  const int t = static_cast<int>(threadIdx.x);
  const int64_t classes = a.layer[a.layers - 1].out;
  float* logits = a.layer[a.layers - 1].a;
  double loss = 0.0;
  int64_t errors = 0;
  for (int64_t r = t; r < a.batch; r += kLossThreads) {
    const formulas::RowCrossEntropy row =
        formulas::softmax_xent_row(logits + r * classes, logits + r * classes, classes,
                                   formulas::class_index(a.yb[r], classes), a.loss.grad_scale);
    loss += row.loss;
    errors += row.error;
  }
  sm.loss[t] = loss;
  sm.errors[t] = errors;
  __syncthreads();
  for (int half = kLossThreads / 2; half > 0; half /= 2) {
    if (t < half) {
      sm.loss[t] += sm.loss[t + half];
      sm.errors[t] += sm.errors[t + half];
    }
    __syncthreads();
  }
  if (t == 0) formulas::add_elementwise_stats(a.stats, sm.loss[0], sm.errors[0], a.batch, 1, a.loss.max_loss, step);
}

// Block `block` of a grid of `blocks` (all resident) through a.steps steps.
__device__ inline void run_steps(const Args& a, Smem& sm, int64_t block, int64_t blocks) {
  const float rate = *a.lr;
  const uint64_t draw0 = *a.draw, step0 = *a.step;  // read by every block before its first barrier
  const unsigned grid = static_cast<unsigned>(blocks);
  // Profiles: block 0's first thread times each phase, barrier end to barrier end.
  const bool timed = a.phase_ns != nullptr && block == 0 && threadIdx.x == 0;
  unsigned long long last_ns = timed ? CUDL_GLOBAL_NS() : 0;
  auto barrier = [&](int phase) {
    grid_barrier(a.barrier, grid);
    if (timed) {
      const unsigned long long now = CUDL_GLOBAL_NS();
      a.phase_ns[phase] += now - last_ns;
      last_ns = now;
    }
  };
  for (int64_t s = 0; s < a.steps; ++s) {
    for (int64_t b = block; b < a.batch; b += blocks) {
      const int64_t row = batch_row(a, draw0 + static_cast<uint64_t>(s * a.batch), b);
      copy_row(a, row, b, threadIdx.x, rows_gemm::kThreads);
      if (threadIdx.x == 0) a.yb[b] = row >= 0 ? a.y[row] : NAN;
    }
    barrier(0);
    for (int i = 0; i < a.layers; ++i) {
      if (threadIdx.x == 0) new (sm.phase()) Product(forward_product(a, i));
      __syncthreads();  // (the barrier that ends the phase keeps it until every thread is done)
      run_products(sm.phase(), 1, sm.tile, block, blocks);
      barrier(1 + i);
    }
    if (block == 0) loss_phase(a, sm, static_cast<int64_t>(step0) + s);
    barrier(1 + a.layers);
    for (int i = a.layers - 1; i >= 0; --i) {
      if (threadIdx.x == 0) {
        for (int q = 0; q < 2; ++q) new (sm.phase() + q) Product();
        sm.count = backward_phase(a, i, rate, s == a.steps - 1, sm.phase());
      }
      __syncthreads();
      run_products(sm.phase(), sm.count, sm.tile, block, blocks);
      barrier(2 + a.layers + (a.layers - 1 - i));  // the last: every layer stepped before the next forward
    }
  }
  if (block == 0 && threadIdx.x == 0) {  // every block has read the counters: all passed the barriers
    *a.draw = draw0 + static_cast<uint64_t>(a.steps * a.batch);
    *a.step = step0 + static_cast<uint64_t>(a.steps);
    if (a.updates != nullptr) *a.updates += static_cast<uint64_t>(a.steps);
  }
}

__global__ void __launch_bounds__(rows_gemm::kThreads, 2) mlp_step_kernel(Args a) {
  __shared__ Smem sm;
  run_steps(a, sm, blockIdx.x, gridDim.x);
}

// `rounds` grid barriers and nothing else, on the step's grid: what one barrier costs (profiles).
__global__ void __launch_bounds__(rows_gemm::kThreads, 2) barrier_kernel(unsigned* bar, int64_t rounds) {
  for (int64_t r = 0; r < rounds; ++r) grid_barrier(bar, gridDim.x);
}

}  // namespace cudl::cuda::mlp_step

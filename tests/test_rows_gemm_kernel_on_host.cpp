// The CUDA source of cudl's own product for few rows (cuda/rows_gemm_kernel.cuh), compiled here
// as C++ with stand-ins for CUDA's built-ins and run on the host: each block's 256 threads are CPU
// threads that meet at a real barrier for __syncthreads, the shared arrays are the block's, the
// blocks run one after another (so the last block of each tile is the one with the highest slice),
// and the tickets are real atomics. Its outputs must be the host emulation's bits
// (cuda/rows_gemm_plan.hpp), which the GPU test requires of the GPU. This checks the kernel's own
// index arithmetic, stage loads, barriers, epilogues, row sums, partials and tickets without a GPU;
// not the GPU's memory model or speed. Runs in every build.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "cudl/rng.hpp"
#include "test_support.hpp"
#include "rows_gemm_plan.hpp"

#include "host_cuda.hpp"
#include "rows_gemm_kernel.cuh"

namespace {

using namespace cudl::cuda::rows_gemm;
using cudl::Activation;

// Runs the kernel's grid: blocks one by one, each as kThreads CPU threads.
void launch_on_host(const KernelArgs& p, const Split& s) {
  host_cuda::gridDim = {static_cast<unsigned>(s.col_tiles), static_cast<unsigned>(s.row_tiles),
                        static_cast<unsigned>(s.splits)};
  for (unsigned z = 0; z < host_cuda::gridDim.z; ++z)
    for (unsigned y = 0; y < host_cuda::gridDim.y; ++y)
      for (unsigned x = 0; x < host_cuda::gridDim.x; ++x) {
        host_cuda::blockIdx = {x, y, z};
        host_cuda::Barrier barrier(kThreads);
        std::vector<std::thread> threads;
        threads.reserve(kThreads);
        for (unsigned t = 0; t < static_cast<unsigned>(kThreads); ++t)
          threads.emplace_back([t, &p, &barrier] {
            host_cuda::threadIdx = {t, 0, 0};
            host_cuda::block_barrier = &barrier;
            rows_gemm_kernel(p);
          });
        for (std::thread& th : threads) th.join();
      }
}

// n values in [-1, 1).
std::vector<float> uniform(uint64_t seed, int64_t n) { return cudl::testing::uniform_values(seed, n, -1.0f, 1.0f); }

bool same_bits(const std::vector<float>& a, const std::vector<float>& b, std::string* where) {
  for (size_t i = 0; i < a.size(); ++i)
    if (std::memcmp(&a[i], &b[i], sizeof(float)) != 0) {
      *where = "element " + std::to_string(i) + ": " + std::to_string(a[i]) + " vs " + std::to_string(b[i]);
      return false;
    }
  return true;
}

struct Case {
  int64_t m, n, k;
  bool ta, tb;
  Epilogue epilogue;
  Activation act;
  bool sums;
  int64_t pad;  // row strides past the columns (kPlain)
};

// The kernel's outputs (C, the row sums) and the emulation's, from the same inputs and split.
void expect_kernel_gives_the_emulation(const Case& c, int sms, uint64_t seed) {
  const int64_t lda = (c.ta ? c.m : c.k) + c.pad, ldb = (c.tb ? c.k : c.n) + c.pad, ldc = c.n + c.pad;
  const std::vector<float> a = uniform(seed, (c.ta ? c.k : c.m) * lda), b = uniform(seed + 1, (c.tb ? c.n : c.k) * ldb);
  const std::vector<float> bias = uniform(seed + 2, c.n), y = uniform(seed + 3, c.m * c.n);
  const std::vector<float> c0 = uniform(seed + 4, c.m * ldc), s0 = uniform(seed + 5, c.n);
  const Split split = split_for(c.m, c.n, c.k, sms, c.sums);
  Outputs o;
  o.epilogue = c.epilogue;
  o.alpha = -0.75f;
  o.beta = c.epilogue == Epilogue::kPlain ? 0.5f : 0.0f;
  o.ldc = ldc;
  o.bias = bias.data();
  o.y = y.data();
  o.act = c.act;
  o.sum_alpha = -1.0f;
  o.sum_beta = 0.25f;
  const std::vector<float> r0 = uniform(seed + 6, c.m);
  const bool a_sums = c.sums && c.ta;  // A's row sums: A stored K×M
  std::vector<float> kernel_c = c0, kernel_s = s0, emulated_c = c0, emulated_s = s0, kernel_r = r0, emulated_r = r0;
  std::vector<float> partials(static_cast<size_t>(split.splits * c.m * c.n), std::nanf(""));
  std::vector<int> tickets(static_cast<size_t>(split.tiles()), 0);
  o.c = kernel_c.data();
  o.sums = c.sums ? kernel_s.data() : nullptr;
  o.a_sums = a_sums ? kernel_r.data() : nullptr;
  const KernelArgs p{c.ta,     c.tb,           c.m,          c.n,   c.k,   a.data(), lda, b.data(), ldb,
                     split.split_k, split.splits, partials.data(), tickets.data(), o};
  launch_on_host(p, split);
  o.c = emulated_c.data();
  o.sums = c.sums ? emulated_s.data() : nullptr;
  o.a_sums = a_sums ? emulated_r.data() : nullptr;
  emulate(c.ta, c.tb, c.m, c.n, c.k, a.data(), lda, b.data(), ldb, split, o);
  const std::string sums_text = c.sums ? (a_sums ? " with A's and B's row sums" : " with B's row sums") : "";
  const std::string what = std::to_string(c.m) + "x" + std::to_string(c.n) + "x" + std::to_string(c.k) +
                           (c.ta ? " Aᵀ" : " A") + (c.tb ? " Bᵀ" : " B") + " epilogue " +
                           std::to_string(static_cast<int>(c.epilogue)) + " " + cudl::to_string(c.act) + sums_text +
                           ", " + std::to_string(split.splits) + " slices";
  std::string where;
  EXPECT_TRUE(same_bits(kernel_c, emulated_c, &where)) << what << ": C " << where;
  if (c.sums) {
    EXPECT_TRUE(same_bits(kernel_s, emulated_s, &where)) << what << ": sums " << where;
  }
  if (a_sums) {
    EXPECT_TRUE(same_bits(kernel_r, emulated_r, &where)) << what << ": A's sums " << where;
  }
  for (int ticket : tickets) EXPECT_EQ(ticket, 0) << what << ": a ticket was left set";
}

TEST(RowsGemmKernelOnHost, GivesTheEmulationsBits) {
  const Case cases[] = {
      // several slices (tickets, partials, the last block's sum), ragged tiles and chunks
      {64, 40, 300, false, false, Epilogue::kBiasAct, Activation::kRelu, false, 0},
      {70, 33, 200, true, true, Epilogue::kActBackward, Activation::kRelu, false, 0},
      {5, 70, 150, false, true, Epilogue::kActBackward, Activation::kSigmoid, false, 0},
      {130, 20, 400, true, false, Epilogue::kPlain, Activation::kIdentity, false, 3},
      // one slice: the direct store, and the row sums (of A too where A is stored K×M)
      {100, 50, 40, true, false, Epilogue::kPlain, Activation::kIdentity, true, 0},
      {70, 40, 33, false, false, Epilogue::kPlain, Activation::kIdentity, true, 0},
      {1, 1, 1, false, false, Epilogue::kPlain, Activation::kIdentity, true, 2},
      {3, 65, 17, false, false, Epilogue::kBiasAct, Activation::kIdentity, false, 0},
  };
  uint64_t seed = 10;
  for (const Case& c : cases) {
    expect_kernel_gives_the_emulation(c, /*sms=*/8, seed += 10);  // 8 SMs: few blocks, several slices
  }
}

}  // namespace

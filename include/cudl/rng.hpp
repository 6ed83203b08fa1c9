#pragma once
// Counter-based random numbers: a stateless function of (seed, counter), so the same draw can
// be made on the host and on the device, in any order, by any thread, and CPU and GPU results
// can be compared number for number. The generator is Philox-4x32-10 (Salmon et al., SC'11),
// checked against the Random123 known-answer vectors in tests/test_rng.cpp.
#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define CUDL_HD __host__ __device__ __forceinline__
#else
#define CUDL_HD inline
#endif

namespace cudl {
/// Counter-based random numbers (Philox-4x32-10): stateless functions of (seed, stream, counter),
/// compiled for the host and, under nvcc, for the device, so CPU and GPU draw the same bits
/// (normal() aside: the device's logf and cosf may differ in the last bit). Every function is
/// pure and may be called from any number of threads.
namespace rng {

// Streams: independent sequences under one seed, one per use, so draws never collide.
constexpr uint64_t kStreamSample = 0;   ///< Stream of minibatch row draws (Backend::sample_rows).
constexpr uint64_t kStreamShuffle = 1;  ///< Stream of the train/test split permutation.
constexpr uint64_t kStreamInit = 2;     ///< Stream of weight initialisation (Backend::fill_normal).
constexpr uint64_t kStreamUnits = 3;    ///< Stream of stochastic units (Backend::sample_units).
constexpr uint64_t kStreamDropout = 4;  ///< Stream of dropout masks (Backend::dropout).
constexpr uint64_t kStreamEpoch = 5;    ///< Stream of per-epoch row permutations (Backend::shuffled_rows).

/// Four 32-bit words: a Philox counter, or the block of random bits it yields.
struct Philox4 {
  uint32_t v[4];  ///< The words, v[0] first.
};

/// hi:lo ← the 64-bit product a·b (Philox's multiply step).
CUDL_HD void mulhilo32(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
  const uint64_t p = static_cast<uint64_t>(a) * b;
  hi = static_cast<uint32_t>(p >> 32);
  lo = static_cast<uint32_t>(p);
}

/// Philox-4x32 with 10 rounds of counter ctr under key (k0, k1).
CUDL_HD Philox4 philox4x32(Philox4 ctr, uint32_t k0, uint32_t k1) {
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, lo0, hi1, lo1;
    mulhilo32(0xD2511F53u, ctr.v[0], hi0, lo0);
    mulhilo32(0xCD9E8D57u, ctr.v[2], hi1, lo1);
    ctr = Philox4{{hi1 ^ ctr.v[1] ^ k0, lo1, hi0 ^ ctr.v[3] ^ k1, lo0}};
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return ctr;
}

/// Four independent 32-bit words for draw number `counter` of stream `stream` under `seed`.
CUDL_HD Philox4 bits(uint64_t seed, uint64_t stream, uint64_t counter) {
  const Philox4 ctr{{static_cast<uint32_t>(counter), static_cast<uint32_t>(counter >> 32),
                     static_cast<uint32_t>(stream), static_cast<uint32_t>(stream >> 32)}};
  return philox4x32(ctr, static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
}

/// A 32-bit word mapped to a float uniform in (0, 1]: never 0, so log() is safe.
CUDL_HD float uniform(uint32_t word) {
  return (static_cast<float>(word >> 8) + 1.0f) * (1.0f / 16777216.0f);
}

/// An integer uniform in [0, n) from a 32-bit word (Lemire's multiply-shift; bias < n / 2^32).
CUDL_HD uint32_t below(uint32_t word, uint32_t n) {
  return static_cast<uint32_t>((static_cast<uint64_t>(word) * n) >> 32);
}

/// Element p of a pseudo-random permutation of [0, n) chosen by (seed, epoch), for 0 ≤ p < n ≤
/// 2^32: a 4-round Feistel network on the smallest domain of 4^k ≥ n values (a bijection there),
/// cycle-walked into [0, n) (a bijection of [0, n), taking fewer than 4 rounds of walking on
/// average). Stateless, so each position is computed on its own, on the host or the device.
CUDL_HD uint32_t permuted(uint64_t seed, uint64_t epoch, uint32_t p, uint32_t n) {
  int half = 1;  // bits in each half of the Feistel domain
  while (half < 16 && (uint64_t{1} << (2 * half)) < n) ++half;
  const uint32_t mask = (uint32_t{1} << half) - 1u;
  uint32_t x = p;
  do {
    uint32_t left = x >> half, right = x & mask;
    for (uint32_t round = 0; round < 4; ++round) {
      const uint64_t counter = (epoch << 36) | (uint64_t{round} << 32) | right;
      const uint32_t f = bits(seed, kStreamEpoch, counter).v[0] & mask;
      const uint32_t next = left ^ f;
      left = right;
      right = next;
    }
    x = (left << half) | right;
  } while (x >= n);
  return x;
}

/// A standard normal from two words (Box-Muller, cosine branch), with the C library's logf and
/// cosf (CUDA's on the device, which may differ in the last bit): the draw of the weight
/// initialisation. The RBM's stochastic units draw theirs with src/formulas/repro_math.hpp's
/// normal instead, the same formula built from IEEE operations only, so that the CPU's scalar
/// and vector loops and the GPU agree bit for bit; this one is kept so that initial weights do not
/// change.
CUDL_HD float normal(uint32_t w0, uint32_t w1) {
  return sqrtf(-2.0f * logf(uniform(w0))) * cosf(6.28318530717958647692f * uniform(w1));
}

}  // namespace rng
}  // namespace cudl

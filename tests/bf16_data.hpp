#pragma once
// Test data for Precision::kBf16 (test_bf16.cpp on the CPU, test_cuda_parity_bf16.cpp against the
// GPU), drawn from Philox so every run and device sees the same values.
#include <cstdint>
#include <cstring>
#include <vector>

#include "cudl/rng.hpp"

namespace cudl::testing {

// A float's bits, and the float of some bits.
inline uint32_t bits_of(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}
inline float from_bits(uint32_t u) {
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}

// Integers that a bf16 mostly holds (−8..8), and now and then one it does not (it has 8
// significant bits): 257 and 514 are ties that go to the even neighbour (256, 512), 259 and 518
// ties that go up (260, 520), 261 → 260, −263 → −264, −515 → −516, 1027 → 1028 (truncation would
// give 258 for 259, 262 for −263, 1026 for 1027). Products of such values are exact in fp32, and
// so are sums whose magnitudes stay below 2^24 (each test checks its bound).
inline std::vector<float> bf16_integers(uint64_t seed, int64_t n) {
  static const float kSpecial[] = {257, 259, 261, -263, 514, 518, -515, 1027};
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const rng::Philox4 b = rng::bits(seed, 3, static_cast<uint64_t>(i));
    v[i] = b.v[0] % 8 == 0 ? kSpecial[b.v[1] % 8] : static_cast<float>(static_cast<int>(b.v[2] % 17) - 8);
  }
  return v;
}

// N(0, 1) values.
inline std::vector<float> normal_values(uint64_t seed, int64_t n) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const rng::Philox4 b = rng::bits(seed, 4, static_cast<uint64_t>(i));
    v[i] = rng::normal(b.v[0], b.v[1]);
  }
  return v;
}

}  // namespace cudl::testing

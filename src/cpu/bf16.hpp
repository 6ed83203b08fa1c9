#pragma once
// Precision::kBf16 on the CPU: values rounded to bfloat16 and kept in floats. bfloat16 is the top
// half of an IEEE float (sign, 8 exponent bits, 7 mantissa bits), so rounding is integer
// arithmetic on the bits: add 0x7FFF plus the lowest kept bit (ties to even), drop the low 16.
// That is __float2bfloat16_rn's rounding, subnormals included (bf16 keeps them; a carry out of
// the largest finite values gives infinity), and NaN stays NaN (quiet). The products of CpuBackend
// round their operands and results with these (cpu_backend_bf16.cpp).
#include <cstdint>
#include <cstring>

namespace cudl::cpu {

class ThreadPool;

// x rounded to the nearest bfloat16, ties to even, as a float.
inline float round_bf16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) {
    u |= 0x00400000u;  // NaN: keep it a (quiet) NaN whatever its payload's low bits
  } else {
    u += 0x7FFFu + ((u >> 16) & 1u);
  }
  u &= 0xFFFF0000u;
  float r;
  std::memcpy(&r, &u, sizeof r);
  return r;
}

// out (rows × cols, packed: leading dimension cols) ← the rounded rows × cols of a (leading
// dimension ld). Spread over the pool.
void round_bf16(ThreadPool& pool, const float* a, int64_t rows, int64_t cols, int64_t ld, float* out);
// The rows × cols of a (leading dimension ld) rounded in place.
void round_bf16_in_place(ThreadPool& pool, float* a, int64_t rows, int64_t cols, int64_t ld);

}  // namespace cudl::cpu

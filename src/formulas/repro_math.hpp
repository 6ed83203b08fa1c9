#pragma once
// Reproducible float math for the RBM's stochastic units: ln u, cos 2πu and e^x written with
// +, −, ×, /, √, integer and bit operations and int → float conversions only, each correctly
// rounded by IEEE 754, in one fixed order. The same source (repro_math.inc) is compiled for one
// float here — on the host, and on the device through __fadd_rn and friends, which nvcc never
// contracts into an FMA — and for 8 and 16 floats in the CPU's AVX2 and AVX-512 sampling passes
// (cpu/elementwise.cpp, whose lanes are cpu/lanes_avx2.inc and cpu/lanes_avx512.inc). So the
// scalar CPU loop, the vector CPU loops and the CUDA kernels draw the same states bit for bit.
// libm's logf, cosf and expf cannot give that: glibc's and CUDA's differ in the last bit, and
// neither can be vectorised with the same bits.
//
// Why two normals: rng::normal (libm's logf and cosf) stays the draw of the weight
// initialisation (formulas::normal_init_at), so initial weights, and every pinned training value
// that involves no unit sampling, are unchanged; repro::normal is the draw of the Gaussian and
// noisy-ReLU units (formulas::sample_unit). Likewise formulas::sigmoid (libm's expf) stays the
// activation, and repro::sigmoid is only the variance of a noisy-ReLU unit.
//
// Accuracy, measured against double-precision libm by tests/test_sampling.cpp, which prints the
// figures and checks the bounds:
//   log_unit(u), for every u = k / 2^24, k = 1 .. 2^24 (all that rng::uniform gives): 0.83 ulp
//     at most (bound 1).
//   cos_2pi(u), for the same 2^24 values (reference: the double cos or sin of 2π times the
//     exactly reduced fraction of a turn, so the zeros at u = ¼ and ¾ are exact): 1.72 ulp at most
//     (bound 2), the worst just below ½ on the sine branch, where the rounding of 2π and of the
//     polynomial's leading sum each cost half an ulp or so.
//   exp(x), for every 37th float in [−103.9, 88.72] (subnormal results in units of 2^-149): 0.96
//     ulp at most (bound 1); 0 below −103.97 and +∞ above 88.73, as libm.

// Files that compile these functions must not contract a·b + c into an FMA on the host:
// cpu/elementwise.cpp, which runs every CPU sampling pass, and the tests that compute the scalar
// reference are built with -ffp-contract=off (src/CMakeLists.txt, tests/CMakeLists.txt).
#include <cmath>
#include <cstdint>
#include <cstring>

#include "cudl/rng.hpp"  // CUDL_HD

namespace cudl::repro {

// ---- one lane: the operations repro_math.inc is written in ----

using Float = float;
using Int = uint32_t;  // 32 bits of two's complement; sra_i and to_float read it as signed
using Mask = bool;

CUDL_HD float add_f(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}
CUDL_HD float sub_f(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fsub_rn(a, b);
#else
  return a - b;
#endif
}
CUDL_HD float mul_f(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
CUDL_HD float div_f(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fdiv_rn(a, b);
#else
  return a / b;
#endif
}
CUDL_HD float sqrt_f(float a) {
#if defined(__CUDA_ARCH__)
  return __fsqrt_rn(a);
#else
  return std::sqrt(a);  // correctly rounded, as IEEE 754 requires
#endif
}
CUDL_HD uint32_t bits_of(float a) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(a);
#else
  uint32_t u;
  std::memcpy(&u, &a, sizeof u);
  return u;
#endif
}
CUDL_HD float float_of_bits(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float a;
  std::memcpy(&a, &u, sizeof a);
  return a;
#endif
}
// −a by flipping the sign bit: exact, NaN included (the device's neg.f32 leaves a NaN's bits open).
CUDL_HD float neg_f(float a) { return float_of_bits(bits_of(a) ^ 0x80000000u); }
CUDL_HD float set_f(float a) { return a; }
CUDL_HD uint32_t set_i(uint32_t a) { return a; }
CUDL_HD float to_float(uint32_t a) { return static_cast<float>(static_cast<int32_t>(a)); }  // exact here
CUDL_HD uint32_t add_i(uint32_t a, uint32_t b) { return a + b; }
CUDL_HD uint32_t sub_i(uint32_t a, uint32_t b) { return a - b; }
CUDL_HD uint32_t and_i(uint32_t a, uint32_t b) { return a & b; }
CUDL_HD uint32_t srl_i(uint32_t a, int n) { return a >> n; }
CUDL_HD uint32_t sll_i(uint32_t a, int n) { return a << n; }
CUDL_HD uint32_t sra_i(uint32_t a, int n) { return static_cast<uint32_t>(static_cast<int32_t>(a) >> n); }
// Comparisons are false when either side is NaN, as the vector lanes' ordered compares.
CUDL_HD bool lt_f(float a, float b) { return a < b; }
CUDL_HD bool le_f(float a, float b) { return a <= b; }
CUDL_HD bool gt_f(float a, float b) { return a > b; }
CUDL_HD bool nan_f(float a) { return a != a; }
CUDL_HD float select_f(bool m, float a, float b) { return m ? a : b; }

// ---- the functions, for one float ----

#define CUDL_REPRO_FN CUDL_HD
#include "formulas/repro_math.inc"
#undef CUDL_REPRO_FN

}  // namespace cudl::repro

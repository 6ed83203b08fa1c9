// The CPU's elementwise passes, compiled once per instruction set (see elementwise.hpp): the
// bodies are elementwise_ops.inc, included three times under three targets, and for AVX2 and
// AVX-512 the sampling passes of sample_ops.inc on those targets' lanes. Compiled with
// -ffp-contract=off (src/CMakeLists.txt), so no kind fuses a multiply and an add the others do
// not (the scalar formula, formulas/repro_math.hpp, relies on it too).
#include "cpu/elementwise.hpp"

#include <immintrin.h>

#include <cstdlib>

#include "cudl/error.hpp"
#include "cudl/rng.hpp"
#include "formulas/unit_rules.hpp"

namespace cudl::cpu {
namespace {

namespace baseline {
#include "cpu/elementwise_ops.inc"

// The scalar formula: the reference the vector kinds reproduce bit for bit.
void sample_units(const float* means, int64_t n, Units units, uint64_t seed, uint64_t counter, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = formulas::sample_unit_at(units, means[i], seed, counter, i);
}

void dropout(const float* x, int64_t n, float drop, float scale, uint64_t seed, uint64_t counter, float* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = formulas::dropout_at(x[i], drop, scale, seed, counter, i);
}

void bias_activation_sample(float* y, const float* bias, int64_t rows, int64_t cols, Activation act, Units units,
                            uint64_t seed, uint64_t counter, float* states) {
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      const int64_t i = r * cols + c;
      const float mean = formulas::activate(act, y[i] + bias[c]);
      y[i] = mean;
      states[i] = formulas::sample_unit_at(units, mean, seed, counter, i);
    }
  }
}
}  // namespace baseline

// The lane functions of repro_math.inc in the vector namespaces below: inlined into the passes.
#define CUDL_REPRO_FN inline __attribute__((always_inline))

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif
namespace avx2 {
#include "cpu/elementwise_ops.inc"
namespace simd {
#include "cpu/lanes_avx2.inc"
#include "formulas/repro_math.inc"
#include "cpu/sample_ops.inc"
}  // namespace simd
using simd::bias_activation_sample;
using simd::dropout;
using simd::sample_units;
}  // namespace avx2
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512vl,avx512bw,avx512dq"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512vl,avx512bw,avx512dq,prefer-vector-width=512")
#endif
namespace avx512 {
#include "cpu/elementwise_ops.inc"
namespace simd {
#include "cpu/lanes_avx512.inc"
#include "formulas/repro_math.inc"
#include "cpu/sample_ops.inc"
}  // namespace simd
using simd::bias_activation_sample;
using simd::dropout;
using simd::sample_units;
}  // namespace avx512
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#undef CUDL_REPRO_FN

#define CUDL_ELEMENTWISE_OPS(ns)                                                                        \
  ElementwiseOps {                                                                                      \
    ns::bias_activation, ns::add_activate, ns::activation, ns::activation_backward, ns::axpy, ns::nesterov, \
        ns::rbm_momentum, ns::sgd, ns::adam, ns::sample_units, ns::bias_activation_sample, ns::dropout  \
  }
const ElementwiseOps kBaselineOps = CUDL_ELEMENTWISE_OPS(baseline);
const ElementwiseOps kAvx2Ops = CUDL_ELEMENTWISE_OPS(avx2);
const ElementwiseOps kAvx512Ops = CUDL_ELEMENTWISE_OPS(avx512);
#undef CUDL_ELEMENTWISE_OPS

constexpr ElementwiseKernel kAll[] = {ElementwiseKernel::kBaseline, ElementwiseKernel::kAvx2,
                                      ElementwiseKernel::kAvx512};

// libgcc's and compiler-rt's cpuid checks include the OS's support for the YMM and ZMM state.
bool cpu_has(ElementwiseKernel kernel) {
  __builtin_cpu_init();
  switch (kernel) {
    case ElementwiseKernel::kBaseline:
      return true;
    case ElementwiseKernel::kAvx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case ElementwiseKernel::kAvx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
  }
  return false;
}

}  // namespace

ElementwiseKernel choose_elementwise_kernel(const char* env) {
  ElementwiseKernel best = ElementwiseKernel::kBaseline;
  for (ElementwiseKernel k : kAll) {
    if (cpu_has(k)) best = k;
  }
  if (env == nullptr || *env == '\0') return best;
  const std::string asked = env;
  for (ElementwiseKernel k : kAll) {
    if (asked != to_string(k)) continue;
    std::string why;
    CUDL_REQUIRE(elementwise_kernel_supported(k, &why), "CUDL_ELEMENTWISE_KERNEL=" + asked + ": " + why);
    return k;
  }
  throw Error("CUDL_ELEMENTWISE_KERNEL=" + asked + ": expected baseline, avx2 or avx512");
}

const char* to_string(ElementwiseKernel kernel) {
  switch (kernel) {
    case ElementwiseKernel::kAvx2:
      return "avx2";
    case ElementwiseKernel::kAvx512:
      return "avx512";
    case ElementwiseKernel::kBaseline:
      break;
  }
  return "baseline";
}

bool elementwise_kernel_supported(ElementwiseKernel kernel, std::string* why) {
  if (cpu_has(kernel)) return true;
  if (why != nullptr) {
    *why = kernel == ElementwiseKernel::kAvx2
               ? "this CPU (or its operating system) does not support AVX2 and FMA"
               : "this CPU (or its operating system) does not support AVX-512 F, VL, BW and DQ";
  }
  return false;
}

ElementwiseKernel elementwise_kernel() {
  static const ElementwiseKernel chosen = choose_elementwise_kernel(std::getenv("CUDL_ELEMENTWISE_KERNEL"));
  return chosen;
}

const ElementwiseOps& elementwise_ops(ElementwiseKernel kernel) {
  std::string why;
  CUDL_REQUIRE(elementwise_kernel_supported(kernel, &why),
               std::string("elementwise kernel ") + to_string(kernel) + ": " + why);
  return kernel == ElementwiseKernel::kAvx512 ? kAvx512Ops : kernel == ElementwiseKernel::kAvx2 ? kAvx2Ops : kBaselineOps;
}

const ElementwiseOps& elementwise_ops() {
  static const ElementwiseOps& chosen = elementwise_ops(elementwise_kernel());
  return chosen;
}

}  // namespace cudl::cpu

#pragma once
// The CPU backend's elementwise passes (bias + activation, activations and their gradients, axpy,
// the optimizers' fused updates, the RBM's unit sampling, dropout's mask), compiled three times into the same
// library — for x86-64's baseline (SSE2), for AVX2 and for AVX-512 (F, VL, BW, DQ) — and chosen at
// run time from cpuid, as the GEMM is (gemm.hpp). Every kind runs the same per-element rules
// (src/formulas) in the same order, and elementwise.cpp is compiled without FMA contraction, so
// the three give bit-identical results: the wider kinds only do more elements per instruction.
// The sampling passes are written with intrinsics (sample_ops.inc): Philox and
// formulas/repro_math.hpp's functions on 8 or 16 counters at once, the baseline being the scalar
// formulas::sample_unit_at.
// $CUDL_ELEMENTWISE_KERNEL (baseline, avx2, avx512) overrides the choice; one the CPU lacks is an
// error.
#include <cstdint>
#include <string>

#include "cudl/backend.hpp"
#include "formulas/update_rules.hpp"

namespace cudl::cpu {

enum class ElementwiseKernel { kBaseline, kAvx2, kAvx512 };
const char* to_string(ElementwiseKernel kernel);  // "baseline", "avx2", "avx512"
// Whether this CPU can run `kernel`; if not, *why (when given) says what it lacks.
bool elementwise_kernel_supported(ElementwiseKernel kernel, std::string* why = nullptr);
// The kind the backend uses: the widest this CPU supports, or $CUDL_ELEMENTWISE_KERNEL's (decided
// once; throws cudl::Error for an unknown or unsupported name).
ElementwiseKernel elementwise_kernel();
// The choice itself, for `env` the variable's value (null or empty: unset).
ElementwiseKernel choose_elementwise_kernel(const char* env);

// One contiguous range per call; the backend splits the work across its threads. Pointers do not
// alias (each argument is its own array).
struct ElementwiseOps {
  // y[r, c] ← act(y[r, c] + bias[c]) over a row-major rows×cols block.
  void (*bias_activation)(float* y, const float* bias, int64_t rows, int64_t cols, Activation act);
  // y[i] ← act(y[i] + b) over n values (one channel's plane).
  void (*add_activate)(float* y, int64_t n, float b, Activation act);
  void (*activation)(float* y, int64_t n, Activation act);
  // dy[i] ← ∂L/∂z from dy[i] and the forward output y[i].
  void (*activation_backward)(float* dy, const float* y, int64_t n, Activation act);
  void (*axpy)(float alpha, const float* x, float* y, int64_t n);  // y ← y + alpha·x
  // formulas::gdbn_nesterov_update and rbm_momentum_update over n parameters.
  void (*nesterov)(float* w, float* v, const float* g, int64_t n, float lr, float momentum, float grad_scale,
                   float l2);
  void (*rbm_momentum)(float* w, float* v, const float* g, int64_t n, float lr, float momentum, float grad_scale,
                       float l2);
  // formulas::sgd_update; buf is null when momentum = 0 (the rule then never touches it).
  void (*sgd)(float* w, float* buf, const float* g, int64_t n, float lr, const SgdArgs& a, float weight_decay,
              bool first);
  // formulas::adam_update; vmax is null unless amsgrad.
  void (*adam)(float* w, float* m, float* v, float* vmax, const float* g, int64_t n, const AdamArgs& a,
               const formulas::AdamScalars& s, bool decay);
  // out[i] ← formulas::sample_unit_at(units, means[i], seed, counter, i): pass the counter of the
  // range's first element (counter + its index). means may be out (sampled in place).
  void (*sample_units)(const float* means, int64_t n, Units units, uint64_t seed, uint64_t counter, float* out);
  // Backend::bias_activation_sample over a rows×cols block whose first element draws `counter`:
  // y ← act(y + bias) as bias_activation, then states ← sample_units(y) (element (r, c) draws
  // counter + r·cols + c).
  void (*bias_activation_sample)(float* y, const float* bias, int64_t rows, int64_t cols, Activation act,
                                 Units units, uint64_t seed, uint64_t counter, float* states);
  // y[i] ← formulas::dropout_at(x[i], drop, scale, seed, counter, i): pass the counter of the
  // range's first element. x may be y.
  void (*dropout)(const float* x, int64_t n, float drop, float scale, uint64_t seed, uint64_t counter, float* y);
};

// The ops of `kernel`; throws cudl::Error when this CPU cannot run it.
const ElementwiseOps& elementwise_ops(ElementwiseKernel kernel);
// The ops of elementwise_kernel().
const ElementwiseOps& elementwise_ops();

}  // namespace cudl::cpu

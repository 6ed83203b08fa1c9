#pragma once
/// @file
/// Precision: the arithmetic of a backend's products (BackendOptions::precision,
/// Backend::precision()).

namespace cudl {

/// Arithmetic of the products (gemm and the convolutions; everything else is fp32 in every mode):
///
/// - kFp32: strict IEEE fp32 (the default); the GPU's results agree with the CPU's up to the
///   order of the fp32 sums.
/// - kTf32: the GPU's tensor cores with tf32 inputs (10-bit mantissas) and fp32 accumulation. The
///   CPU has no tf32 and computes kFp32 instead (its precision() says so).
/// - kBf16: mixed precision as PyTorch's autocast: each product's two operands are rounded to
///   bfloat16 (8-bit significand, round to nearest even), the products accumulate in fp32, and
///   the result is rounded to bfloat16 once, before beta·C is added in fp32. Tensors stay fp32
///   (master weights, optimizer state, biases, activations, pooling, batch norm and the loss are
///   fp32). The GPU runs bf16 tensor cores; the CPU rounds the same values the same way, so the
///   two agree up to the order of the fp32 sums and the bf16 rounding that order may tip.
enum class Precision {
  kFp32,  ///< fp32 throughout
  kTf32,  ///< tf32 tensor cores for the GPU's products (fp32 on the CPU)
  kBf16   ///< bf16 operands and results, fp32 accumulation (both devices)
};
/// "fp32", "tf32" or "bf16".
const char* to_string(Precision precision);

}  // namespace cudl

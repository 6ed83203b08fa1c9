#pragma once
// Single-precision GEMM for the CPU backend, row-major:
//   C(m×n) = alpha · op(A)(m×k) · op(B)(k×n) + beta · C,
// lda/ldb/ldc are row strides of A, B, C as stored. beta == 0 never reads C.
// Two kernels in every build, chosen at run time (no -march=native needed):
//   avx2-fma  a packed, cache-blocked GEMM on a 6×16 register kernel that skips the all-zero
//             steps of A, split across the pool's threads by blocks of C; where cpuid reports
//             AVX2 and FMA (and the OS saves YMM state);
//   eigen     Eigen's product, single-threaded, at the build's baseline instruction set.
// $CUDL_GEMM_KERNEL (eigen, avx2-fma) overrides the choice; one the CPU lacks is an error.
#include <cstdint>
#include <string>

#include "cudl/backend.hpp"

namespace cudl::cpu {

class ThreadPool;

enum class GemmKernel { kEigen, kAvx2Fma };
const char* to_string(GemmKernel kernel);  // "eigen", "avx2-fma"
// Whether this CPU can run `kernel`; if not, *why (when given) says what it lacks.
bool gemm_kernel_supported(GemmKernel kernel, std::string* why = nullptr);
// The kernel sgemm uses: the fastest this CPU supports, or $CUDL_GEMM_KERNEL's (decided once;
// throws cudl::Error for an unknown or unsupported name).
GemmKernel gemm_kernel();
// Its name as describe() shows it ("avx2-fma 6x16" or "eigen").
const char* sgemm_kernel_name();

void sgemm(ThreadPool& pool, Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);
// The same with a given kernel (the tests run each one this CPU supports); throws cudl::Error
// when the CPU cannot run it.
void sgemm_with(GemmKernel kernel, ThreadPool& pool, Trans ta, Trans tb, int64_t m, int64_t n, int64_t k,
                float alpha, const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                int64_t ldc);

// The eigen kernel itself (gemm_eigen.cpp); sgemm_with calls it.
void sgemm_eigen(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                 const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

}  // namespace cudl::cpu

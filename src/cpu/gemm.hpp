#pragma once
// Single-precision GEMM for the CPU backend, row-major:
//   C(m×n) = alpha · op(A)(m×k) · op(B)(k×n) + beta · C,
// lda/ldb/ldc are row strides of A, B, C as stored. beta == 0 never reads C.
// Three kernels in every build, chosen at run time (no -march=native needed):
//   avx512    the packed, cache-blocked GEMM (gemm_packed.inc) on a 6×32 zmm register kernel
//             (gemm_avx512.cpp), where cpuid reports AVX-512 F (and the OS saves ZMM state);
//   avx2-fma  the same on a 6×16 ymm kernel (gemm_avx2.cpp), where cpuid reports AVX2 and FMA.
//             Both skip the all-zero steps of A and split C across the pool's threads; they give
//             the same bits (see gemm_packed.inc);
//   eigen     Eigen's product, single-threaded, at the build's baseline instruction set.
// $CUDL_GEMM_KERNEL (eigen, avx2-fma, avx512) overrides the choice; one the CPU lacks is an error.
#include <cstdint>
#include <string>

#include "cudl/backend.hpp"

namespace cudl::cpu {

class ThreadPool;

enum class GemmKernel { kEigen, kAvx2Fma, kAvx512 };
const char* to_string(GemmKernel kernel);  // "eigen", "avx2-fma", "avx512"
// Whether this CPU can run `kernel`; if not, *why (when given) says what it lacks.
bool gemm_kernel_supported(GemmKernel kernel, std::string* why = nullptr);
// The kernel sgemm uses: the fastest this CPU supports, or $CUDL_GEMM_KERNEL's (decided once;
// throws cudl::Error for an unknown or unsupported name).
GemmKernel gemm_kernel();
// The choice itself, for `env` the variable's value (null or empty: unset).
GemmKernel choose_gemm_kernel(const char* env);
// Its name as describe() shows it ("avx512 6x32", "avx2-fma 6x16" or "eigen").
const char* sgemm_kernel_name();

void sgemm(ThreadPool& pool, Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);
// The same with a given kernel (the tests run each one this CPU supports); throws cudl::Error
// when the CPU cannot run it.
void sgemm_with(GemmKernel kernel, ThreadPool& pool, Trans ta, Trans tb, int64_t m, int64_t n, int64_t k,
                float alpha, const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                int64_t ldc);

// The product against chosen rows of B, read in place: B's stored row r (r < k for tb = kNo, r < n
// for kYes) is b + b_rows[r]·ldb. With tb = kYes that is C against the columns b_rows of op(B)
// (Dense's dx for the units a ReLU below keeps). The packed kernels read the rows while packing
// and give each element the same bits as sgemm_with on the rows gathered first; the Eigen kernel
// gathers them into a scratch copy.
void sgemm_rows(GemmKernel kernel, ThreadPool& pool, Trans ta, Trans tb, int64_t m, int64_t n, int64_t k,
                float alpha, const float* a, int64_t lda, const float* b, int64_t ldb, const int32_t* b_rows,
                float beta, float* c, int64_t ldc);

// Reading an untransposed B in place (gemm_packed.inc's b_in_place): where one block of A's rows
// meets B, the packed kernels may read B's whole panels from its own rows instead of packing them,
// with the same bits. Allowed unless $CUDL_GEMM_B_IN_PLACE=0 (read once); tests switch it to compare
// the two ways, and count the slabs read in place (all threads, since the process started).
// gemm_b_in_place_from_env: the variable's value (null or empty: unset) read; anything but 0 or 1
// throws cudl::Error naming it.
bool gemm_b_in_place_from_env(const char* env);
bool gemm_b_in_place_allowed();
void set_gemm_b_in_place_allowed(bool allowed);
int64_t gemm_b_in_place_slabs();
void count_gemm_b_in_place_slab();
// Whether `rows` rows of `row_bytes` bytes each, the first at address `base` and each `stride` bytes
// after the one before, fall into a 64-set cache of 64-byte lines as evenly as rows*row_bytes
// contiguous bytes would (one line per set more at most): a stride that is a multiple of 1 KiB,
// for one, puts them all in a few sets.
bool rows_spread_like_packed(uintptr_t base, int64_t stride, int64_t rows, int64_t row_bytes);

// The kernels themselves; sgemm_with calls them (the packed ones only where the CPU has them).
// b_rows as for sgemm_rows, or null for B's rows in order.
void sgemm_avx512(ThreadPool& pool, Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                  int64_t lda, const float* b, int64_t ldb, const int32_t* b_rows, float beta, float* c,
                  int64_t ldc);
void sgemm_avx2(ThreadPool& pool, Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                int64_t lda, const float* b, int64_t ldb, const int32_t* b_rows, float beta, float* c, int64_t ldc);
void sgemm_eigen(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                 const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

}  // namespace cudl::cpu

#include "cpu/gemm.hpp"

#include <immintrin.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "cpu/thread_pool.hpp"
#include "cudl/error.hpp"

namespace cudl::cpu {
namespace {

// The packed AVX2+FMA kernel is compiled for that instruction set whatever the build's flags
// (no -march=native needed) and used only where cpuid says the CPU and OS support it. Everything
// between push and pop is compiled for AVX2+FMA: only functions defined here, which are all in
// this file's unnamed namespace, so no AVX2 code can be shared with (and picked by the linker for)
// a function of another file. The standard library's templates used here keep the build's
// baseline: a template takes its target from where it is defined, in the headers above.
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif
namespace avx2 {

// Blocking (Goto/BLIS loop order): for each KC-deep slab of K, pack a KC×NC block of op(B)
// (into L2/L3), then for each MC-row block pack op(A) (into L2) and sweep the 6×16 register
// kernel over it, streaming a 16-wide B micro-panel (KC·16·4 = 16 KiB, L1) per column block.
constexpr int64_t kMr = 6, kNr = 16;
constexpr int64_t kKc = 256, kMc = 72, kNc = 1024;

// op(X)(i, j) for a row-major X with row stride ld: trans swaps the roles of i and j.
struct Operand {
  const float* p;
  int64_t ld;
  Trans t;
  float at(int64_t i, int64_t j) const { return t == Trans::kNo ? p[i * ld + j] : p[j * ld + i]; }
};

// In-register transpose of an 8×8 block of floats: r[i][j] ← r[j][i].
inline void transpose8(__m256 r[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
  r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
  r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
  r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
  r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

// Packs op(A) rows [i0, i0+mc) × cols [p0, p0+kc) as ceil(mc/6) panels of kc×6 (zero-padded).
void pack_a(const Operand& a, int64_t i0, int64_t mc, int64_t p0, int64_t kc, float* dst) {
  for (int64_t ir = 0; ir < mc; ir += kMr) {
    const int64_t rows = std::min(kMr, mc - ir);
    if (a.t == Trans::kYes && rows == kMr) {
      // op(A)(i, p) = A(p, i): the 6 values for one p are contiguous in A.
      for (int64_t p = 0; p < kc; ++p) {
        const float* src = a.p + (p0 + p) * a.ld + i0 + ir;
        std::memcpy(dst + p * kMr, src, kMr * sizeof(float));
      }
    } else if (a.t == Trans::kNo && rows == kMr) {
      // Six rows read along p, eight p at a time, transposed in registers. Each store writes
      // 8 floats at dst + p·6, of which the last 2 are overwritten by the next p (or land in
      // the spare space at the end of the buffer).
      const float* src = a.p + (i0 + ir) * a.ld + p0;
      int64_t p = 0;
      for (; p + 8 <= kc; p += 8) {
        __m256 r[8];
        for (int64_t j = 0; j < kMr; ++j) r[j] = _mm256_loadu_ps(src + j * a.ld + p);
        r[6] = r[7] = _mm256_setzero_ps();
        transpose8(r);
        for (int64_t j = 0; j < 8; ++j) _mm256_storeu_ps(dst + (p + j) * kMr, r[j]);
      }
      for (; p < kc; ++p)
        for (int64_t j = 0; j < kMr; ++j) dst[p * kMr + j] = src[j * a.ld + p];
    } else {
      for (int64_t r = 0; r < kMr; ++r) {
        if (r < rows) {
          for (int64_t p = 0; p < kc; ++p) dst[p * kMr + r] = a.at(i0 + ir + r, p0 + p);
        } else {
          for (int64_t p = 0; p < kc; ++p) dst[p * kMr + r] = 0.0f;
        }
      }
    }
    dst += kc * kMr;
  }
}

// Drops the steps p at which all 6 rows of a packed A panel are zero (ReLU outputs and image
// backgrounds make them common), keeping the order of the rest: count[ir] kept steps, with
// their original indices in idx (kc per panel). A skipped step would only add exact zeros,
// so the result is the same as the dense product whenever B is finite.
void compact_a(float* pa, int64_t mc, int64_t kc, int64_t* count, int32_t* idx) {
  for (int64_t ir = 0, panel = 0; ir < mc; ir += kMr, ++panel) {
    float* src = pa + panel * kc * kMr;
    int32_t* ix = idx + panel * kc;
    int64_t q = 0;
    const __m256 zero = _mm256_setzero_ps();
    for (int64_t p = 0; p < kc; ++p) {
      const float* v = src + p * kMr;
      // 8 lanes from v (the buffer has a spare panel at its end), of which the first 6 count;
      // NaN compares unequal, so it is kept and propagates as in the dense product.
      const int nonzero = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(v), zero, _CMP_NEQ_UQ)) & 0x3F;
      if (nonzero != 0) {
        if (q != p) std::memcpy(src + q * kMr, v, kMr * sizeof(float));
        ix[q++] = static_cast<int32_t>(p);
      }
    }
    count[panel] = q;
  }
}

// Packs op(B) rows [p0, p0+kc) × cols [j0, j0+nc) as ceil(nc/16) panels of kc×16 (zero-padded).
void pack_b(const Operand& b, int64_t p0, int64_t kc, int64_t j0, int64_t nc, float* dst) {
  for (int64_t jr = 0; jr < nc; jr += kNr) {
    const int64_t cols = std::min(kNr, nc - jr);
    if (b.t == Trans::kNo && cols == kNr) {
      for (int64_t p = 0; p < kc; ++p) {
        const float* src = b.p + (p0 + p) * b.ld + j0 + jr;
        _mm256_store_ps(dst + p * kNr, _mm256_loadu_ps(src));
        _mm256_store_ps(dst + p * kNr + 8, _mm256_loadu_ps(src + 8));
      }
    } else if (b.t == Trans::kYes && cols == kNr) {
      // op(B)(p, j) = B(j, p): 8 source rows × 8 p at a time, transposed in registers.
      const float* src = b.p + (j0 + jr) * b.ld + p0;
      int64_t p = 0;
      for (; p + 8 <= kc; p += 8) {
        for (int64_t half = 0; half < 2; ++half) {
          __m256 r[8];
          for (int64_t j = 0; j < 8; ++j) r[j] = _mm256_loadu_ps(src + (half * 8 + j) * b.ld + p);
          transpose8(r);
          for (int64_t i = 0; i < 8; ++i) _mm256_store_ps(dst + (p + i) * kNr + half * 8, r[i]);
        }
      }
      for (; p < kc; ++p)
        for (int64_t j = 0; j < kNr; ++j) dst[p * kNr + j] = src[j * b.ld + p];
    } else if (b.t == Trans::kYes) {
      // op(B)(p, j) = B(j, p): read each of the 16 source rows contiguously along p.
      for (int64_t j = 0; j < kNr; ++j) {
        const float* src = b.p + (j0 + jr + j) * b.ld + p0;
        if (j < cols) {
          for (int64_t p = 0; p < kc; ++p) dst[p * kNr + j] = src[p];
        } else {
          for (int64_t p = 0; p < kc; ++p) dst[p * kNr + j] = 0.0f;
        }
      }
    } else {
      for (int64_t p = 0; p < kc; ++p) {
        for (int64_t j = 0; j < kNr; ++j) dst[p * kNr + j] = j < cols ? b.at(p0 + p, j0 + jr + j) : 0.0f;
      }
    }
    dst += kc * kNr;
  }
}

// Writes one row of a tile: C[0..16) = alpha·(x0, x1) + beta·C (C not read when beta == 0).
inline void store_row(float* cr, __m256 x0, __m256 x1, __m256 va, __m256 vb, bool read_c) {
  x0 = _mm256_mul_ps(va, x0);
  x1 = _mm256_mul_ps(va, x1);
  if (read_c) {
    x0 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cr), x0);
    x1 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cr + 8), x1);
  }
  _mm256_storeu_ps(cr, x0);
  _mm256_storeu_ps(cr + 8, x1);
}

// The register kernel: acc(R×16) = Σ_p a[p][0..R) ⊗ b[p][0..16) for R ≤ 6 valid rows of a
// 6-row packed A panel (rows ≥ R are skipped, not computed), then C = alpha·acc + beta·C on
// the valid rows × cols. Full-width tiles are written from registers.
// With idx, step q uses B row idx[q] (A was compacted by compact_a); without, B row q.
template <int R>
void kernel(int64_t kc, const float* a, const float* b, const int32_t* idx, float* c, int64_t ldc, int64_t cols,
            float alpha, float beta) {
  static_assert(R >= 1 && R <= kMr, "rows per tile");
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
  __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  auto step = [&](const float* bp) {
    const __m256 b0 = _mm256_load_ps(bp), b1 = _mm256_load_ps(bp + 8);
    __m256 av = _mm256_broadcast_ss(a + 0);
    c00 = _mm256_fmadd_ps(av, b0, c00);
    c01 = _mm256_fmadd_ps(av, b1, c01);
    if constexpr (R > 1) {
      av = _mm256_broadcast_ss(a + 1);
      c10 = _mm256_fmadd_ps(av, b0, c10);
      c11 = _mm256_fmadd_ps(av, b1, c11);
    }
    if constexpr (R > 2) {
      av = _mm256_broadcast_ss(a + 2);
      c20 = _mm256_fmadd_ps(av, b0, c20);
      c21 = _mm256_fmadd_ps(av, b1, c21);
    }
    if constexpr (R > 3) {
      av = _mm256_broadcast_ss(a + 3);
      c30 = _mm256_fmadd_ps(av, b0, c30);
      c31 = _mm256_fmadd_ps(av, b1, c31);
    }
    if constexpr (R > 4) {
      av = _mm256_broadcast_ss(a + 4);
      c40 = _mm256_fmadd_ps(av, b0, c40);
      c41 = _mm256_fmadd_ps(av, b1, c41);
    }
    if constexpr (R > 5) {
      av = _mm256_broadcast_ss(a + 5);
      c50 = _mm256_fmadd_ps(av, b0, c50);
      c51 = _mm256_fmadd_ps(av, b1, c51);
    }
    a += kMr;
  };
  if (idx != nullptr) {
    for (int64_t p = 0; p < kc; ++p) step(b + static_cast<int64_t>(idx[p]) * kNr);
  } else {
    for (int64_t p = 0; p < kc; ++p) step(b + p * kNr);
  }
  const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
  const bool read_c = beta != 0.0f;
  if (cols == kNr) {
    store_row(c, c00, c01, va, vb, read_c);
    if constexpr (R > 1) store_row(c + ldc, c10, c11, va, vb, read_c);
    if constexpr (R > 2) store_row(c + 2 * ldc, c20, c21, va, vb, read_c);
    if constexpr (R > 3) store_row(c + 3 * ldc, c30, c31, va, vb, read_c);
    if constexpr (R > 4) store_row(c + 4 * ldc, c40, c41, va, vb, read_c);
    if constexpr (R > 5) store_row(c + 5 * ldc, c50, c51, va, vb, read_c);
    return;
  }
  alignas(32) float acc[kMr][kNr];
  _mm256_store_ps(acc[0], c00), _mm256_store_ps(acc[0] + 8, c01);
  _mm256_store_ps(acc[1], c10), _mm256_store_ps(acc[1] + 8, c11);
  _mm256_store_ps(acc[2], c20), _mm256_store_ps(acc[2] + 8, c21);
  _mm256_store_ps(acc[3], c30), _mm256_store_ps(acc[3] + 8, c31);
  _mm256_store_ps(acc[4], c40), _mm256_store_ps(acc[4] + 8, c41);
  _mm256_store_ps(acc[5], c50), _mm256_store_ps(acc[5] + 8, c51);
  for (int r = 0; r < R; ++r) {
    for (int64_t j = 0; j < cols; ++j) {
      float& cv = c[r * ldc + j];
      cv = read_c ? alpha * acc[r][j] + beta * cv : alpha * acc[r][j];
    }
  }
}

// One tile of rows ≤ 6 valid rows and cols ≤ 16 valid columns.
void tile(int64_t rows, int64_t kc, const float* a, const float* b, const int32_t* idx, float* c, int64_t ldc,
          int64_t cols, float alpha, float beta) {
  switch (rows) {
    case 6: return kernel<6>(kc, a, b, idx, c, ldc, cols, alpha, beta);
    case 5: return kernel<5>(kc, a, b, idx, c, ldc, cols, alpha, beta);
    case 4: return kernel<4>(kc, a, b, idx, c, ldc, cols, alpha, beta);
    case 3: return kernel<3>(kc, a, b, idx, c, ldc, cols, alpha, beta);
    case 2: return kernel<2>(kc, a, b, idx, c, ldc, cols, alpha, beta);
    default: return kernel<1>(kc, a, b, idx, c, ldc, cols, alpha, beta);
  }
}

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};

// Per-thread packing buffers, grown on demand and reused across calls.
template <typename T>
T* scratch(std::unique_ptr<T, FreeDeleter>& buf, size_t& cap, size_t count) {
  if (count > cap) {
    const size_t bytes = (count * sizeof(T) + 63) / 64 * 64;
    buf.reset(static_cast<T*>(std::aligned_alloc(64, bytes)));
    CUDL_REQUIRE(buf, "out of host memory allocating a " + std::to_string(bytes) + "-byte GEMM packing buffer");
    cap = count;
  }
  return buf.get();
}

// The single-threaded packed GEMM on the block C[i0:i1, j0:j1].
void gemm_block(const Operand& a, const Operand& b, int64_t i0, int64_t i1, int64_t j0, int64_t j1, int64_t k,
                float alpha, float beta, float* c, int64_t ldc) {
  thread_local std::unique_ptr<float, FreeDeleter> abuf, bbuf;
  thread_local size_t acap = 0, bcap = 0;
  float* pa = scratch(abuf, acap, static_cast<size_t>(kMc + kMr) * kKc);
  float* pb = scratch(bbuf, bcap, static_cast<size_t>(kNc + kNr) * kKc);
  constexpr int64_t kPanels = (kMc + kMr - 1) / kMr;
  int64_t count[kPanels];
  thread_local std::unique_ptr<int32_t, FreeDeleter> ibuf;
  thread_local size_t icap = 0;
  int32_t* idx = scratch(ibuf, icap, static_cast<size_t>(kPanels * kKc));
  for (int64_t jc = j0; jc < j1; jc += kNc) {
    const int64_t nc = std::min(kNc, j1 - jc);
    // K is cut into equal slabs of at most kKc (784 → 3 × 262, not 256+256+256+16).
    const int64_t slabs = (k + kKc - 1) / kKc, kslab = (k + slabs - 1) / slabs;
    for (int64_t pc = 0; pc < k; pc += kslab) {
      const int64_t kc = std::min(kslab, k - pc);
      const float beta_eff = pc == 0 ? beta : 1.0f;
      pack_b(b, pc, kc, jc, nc, pb);
      for (int64_t ic = i0; ic < i1; ic += kMc) {
        const int64_t mc = std::min(kMc, i1 - ic);
        pack_a(a, ic, mc, pc, kc, pa);
        compact_a(pa, mc, kc, count, idx);
        for (int64_t jr = 0; jr < nc; jr += kNr) {
          for (int64_t ir = 0, panel = 0; ir < mc; ir += kMr, ++panel) {
            const int64_t kept = count[panel];
            tile(std::min(kMr, mc - ir), kept, pa + ir * kc, pb + jr * kc, kept == kc ? nullptr : idx + panel * kc,
                 c + (ic + ir) * ldc + jc + jr, ldc, std::min(kNr, nc - jr), alpha, beta_eff);
          }
        }
      }
    }
  }
}

void sgemm(ThreadPool& pool, Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0 || alpha == 0.0f) {  // C = beta·C
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
    return;
  }
  const Operand oa{a, lda, ta}, ob{b, ldb, tb};
  // Split C into blocks along whichever of m (in 6-row units) and n (in 16-column units) has
  // more of them, so each thread packs only its own share of the larger operand.
  const int64_t threads = pool.threads();
  const double flops = 2.0 * m * n * k;
  const int64_t mblocks = (m + kMr - 1) / kMr, nblocks = (n + kNr - 1) / kNr;
  int64_t parts = flops < 2e5 ? 1 : std::min<int64_t>(threads, std::max(mblocks, nblocks));
  if (parts <= 1) {
    gemm_block(oa, ob, 0, m, 0, n, k, alpha, beta, c, ldc);
    return;
  }
  if (nblocks >= mblocks) {
    pool.run(parts, [&](int64_t t) {
      const int64_t jb0 = nblocks * t / parts, jb1 = nblocks * (t + 1) / parts;
      gemm_block(oa, ob, 0, m, jb0 * kNr, std::min(n, jb1 * kNr), k, alpha, beta, c, ldc);
    });
  } else {
    pool.run(parts, [&](int64_t t) {
      const int64_t ib0 = mblocks * t / parts, ib1 = mblocks * (t + 1) / parts;
      gemm_block(oa, ob, ib0 * kMr, std::min(m, ib1 * kMr), 0, n, k, alpha, beta, c, ldc);
    });
  }
}

}  // namespace avx2
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif


bool cpu_has_avx2_fma() {
  __builtin_cpu_init();
  // libgcc's and compiler-rt's cpuid checks include the OS's support for the YMM state (XGETBV).
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

GemmKernel choose_gemm_kernel() {
  const GemmKernel best = cpu_has_avx2_fma() ? GemmKernel::kAvx2Fma : GemmKernel::kEigen;
  const char* env = std::getenv("CUDL_GEMM_KERNEL");
  if (env == nullptr || *env == '\0') return best;
  const std::string asked = env;
  for (GemmKernel g : {GemmKernel::kEigen, GemmKernel::kAvx2Fma}) {
    if (asked != to_string(g)) continue;
    std::string why;
    CUDL_REQUIRE(gemm_kernel_supported(g, &why), "CUDL_GEMM_KERNEL=" + asked + ": " + why);
    return g;
  }
  throw Error("CUDL_GEMM_KERNEL=" + asked + ": expected eigen or avx2-fma");
}

}  // namespace

const char* to_string(GemmKernel kernel) { return kernel == GemmKernel::kAvx2Fma ? "avx2-fma" : "eigen"; }

bool gemm_kernel_supported(GemmKernel kernel, std::string* why) {
  if (kernel == GemmKernel::kEigen || cpu_has_avx2_fma()) return true;
  if (why != nullptr) *why = "this CPU (or its operating system) does not support AVX2 and FMA";
  return false;
}

GemmKernel gemm_kernel() {
  static const GemmKernel chosen = choose_gemm_kernel();
  return chosen;
}

const char* sgemm_kernel_name() { return gemm_kernel() == GemmKernel::kAvx2Fma ? "avx2-fma 6x16" : "eigen"; }

void sgemm(ThreadPool& pool, Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  sgemm_with(gemm_kernel(), pool, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void sgemm_with(GemmKernel kernel, ThreadPool& pool, Trans ta, Trans tb, int64_t m, int64_t n, int64_t k,
                float alpha, const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                int64_t ldc) {
  std::string why;
  CUDL_REQUIRE(gemm_kernel_supported(kernel, &why), std::string("GEMM kernel ") + to_string(kernel) + ": " + why);
  if (kernel == GemmKernel::kAvx2Fma) {
    avx2::sgemm(pool, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  } else {
    sgemm_eigen(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  }
}

}  // namespace cudl::cpu

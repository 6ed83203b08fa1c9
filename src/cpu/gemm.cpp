#include "cpu/gemm.hpp"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "cpu/thread_pool.hpp"
#include "cudl/error.hpp"

namespace cudl::cpu {
namespace {

// libgcc's and compiler-rt's cpuid checks include the OS's support for the YMM and ZMM state (XGETBV).
bool cpu_has(GemmKernel kernel) {
  __builtin_cpu_init();
  switch (kernel) {
    case GemmKernel::kEigen:
      return true;
    case GemmKernel::kAvx2Fma:  // popcnt: order_rows (gemm_packed.inc); every AVX2 CPU has it
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("popcnt");
    case GemmKernel::kAvx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
             __builtin_cpu_supports("popcnt");
  }
  return false;
}

constexpr GemmKernel kAll[] = {GemmKernel::kEigen, GemmKernel::kAvx2Fma, GemmKernel::kAvx512};

std::atomic<bool>& b_in_place_setting() {
  static std::atomic<bool> allowed{gemm_b_in_place_from_env(std::getenv("CUDL_GEMM_B_IN_PLACE"))};
  return allowed;
}

std::atomic<int64_t> b_in_place_count{0};

}  // namespace

bool gemm_b_in_place_from_env(const char* env) {
  if (env == nullptr || *env == '\0' || std::string(env) == "1") return true;
  CUDL_REQUIRE(std::string(env) == "0",
               std::string("CUDL_GEMM_B_IN_PLACE=") + env + ": expected 0 (always pack B) or 1");
  return false;
}

bool gemm_b_in_place_allowed() { return b_in_place_setting().load(std::memory_order_relaxed); }
void set_gemm_b_in_place_allowed(bool allowed) { b_in_place_setting().store(allowed); }
int64_t gemm_b_in_place_slabs() { return b_in_place_count.load(); }
void count_gemm_b_in_place_slab() { b_in_place_count.fetch_add(1, std::memory_order_relaxed); }

bool rows_spread_like_packed(uintptr_t base, int64_t stride, int64_t rows, int64_t row_bytes) {
  constexpr int64_t kSets = 64, kLine = 64;
  // Moving base by whole lines only rotates the sets, so the answer depends on base % kLine alone;
  // a GEMM asks the same question for every block and slab: the last answer is kept.
  struct Asked {
    uintptr_t offset;
    int64_t stride, rows, row_bytes;
    bool operator==(const Asked& o) const {
      return offset == o.offset && stride == o.stride && rows == o.rows && row_bytes == o.row_bytes;
    }
  };
  thread_local Asked last{kLine, 0, 0, 0};  // an offset no question has
  thread_local bool answer = false;
  const Asked asked{base % kLine, stride, rows, row_bytes};
  if (asked == last) return answer;
  base %= kLine;
  int64_t lines[kSets] = {};
  for (int64_t r = 0; r < rows; ++r) {
    const uintptr_t start = base + static_cast<uintptr_t>(r * stride);
    for (uintptr_t l = start / kLine; l <= (start + static_cast<uintptr_t>(row_bytes) - 1) / kLine; ++l) {
      ++lines[l % kSets];
    }
  }
  const int64_t packed = (rows * row_bytes + kSets * kLine - 1) / (kSets * kLine);
  answer = *std::max_element(lines, lines + kSets) <= packed + 1;
  last = asked;
  return answer;
}

GemmKernel choose_gemm_kernel(const char* env) {
  GemmKernel best = GemmKernel::kEigen;
  for (GemmKernel g : kAll) {
    if (cpu_has(g)) best = g;
  }
  if (env == nullptr || *env == '\0') return best;
  const std::string asked = env;
  for (GemmKernel g : kAll) {
    if (asked != to_string(g)) continue;
    std::string why;
    CUDL_REQUIRE(gemm_kernel_supported(g, &why), "CUDL_GEMM_KERNEL=" + asked + ": " + why);
    return g;
  }
  throw Error("CUDL_GEMM_KERNEL=" + asked + ": expected eigen, avx2-fma or avx512");
}

const char* to_string(GemmKernel kernel) {
  switch (kernel) {
    case GemmKernel::kAvx2Fma:
      return "avx2-fma";
    case GemmKernel::kAvx512:
      return "avx512";
    case GemmKernel::kEigen:
      break;
  }
  return "eigen";
}

bool gemm_kernel_supported(GemmKernel kernel, std::string* why) {
  if (cpu_has(kernel)) return true;
  if (why != nullptr) {
    *why = kernel == GemmKernel::kAvx512
               ? "this CPU (or its operating system) does not support AVX-512 F (with AVX2, FMA and POPCNT)"
               : "this CPU (or its operating system) does not support AVX2, FMA and POPCNT";
  }
  return false;
}

GemmKernel gemm_kernel() {
  static const GemmKernel chosen = choose_gemm_kernel(std::getenv("CUDL_GEMM_KERNEL"));
  return chosen;
}

const char* sgemm_kernel_name() {
  switch (gemm_kernel()) {
    case GemmKernel::kAvx2Fma:
      return "avx2-fma 6x16";
    case GemmKernel::kAvx512:
      return "avx512 6x32";
    case GemmKernel::kEigen:
      break;
  }
  return "eigen";
}

void sgemm(ThreadPool& pool, Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  sgemm_with(gemm_kernel(), pool, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void sgemm_with(GemmKernel kernel, ThreadPool& pool, Trans ta, Trans tb, int64_t m, int64_t n, int64_t k,
                float alpha, const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                int64_t ldc) {
  sgemm_rows(kernel, pool, ta, tb, m, n, k, alpha, a, lda, b, ldb, nullptr, beta, c, ldc);
}

void sgemm_rows(GemmKernel kernel, ThreadPool& pool, Trans ta, Trans tb, int64_t m, int64_t n, int64_t k,
                float alpha, const float* a, int64_t lda, const float* b, int64_t ldb, const int32_t* b_rows,
                float beta, float* c, int64_t ldc) {
  std::string why;
  CUDL_REQUIRE(gemm_kernel_supported(kernel, &why), std::string("GEMM kernel ") + to_string(kernel) + ": " + why);
  if (kernel == GemmKernel::kAvx512) {
    sgemm_avx512(pool, ta, tb, m, n, k, alpha, a, lda, b, ldb, b_rows, beta, c, ldc);
  } else if (kernel == GemmKernel::kAvx2Fma) {
    sgemm_avx2(pool, ta, tb, m, n, k, alpha, a, lda, b, ldb, b_rows, beta, c, ldc);
  } else if (b_rows == nullptr) {
    sgemm_eigen(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  } else {
    // B's rows gathered (row r of the copy is B's row b_rows[r]), each `cols` long.
    const int64_t rows = tb == Trans::kNo ? k : n, cols = tb == Trans::kNo ? n : k;
    std::vector<float> g(static_cast<size_t>(std::max<int64_t>(rows * cols, 1)));
    for (int64_t r = 0; r < rows; ++r) std::copy_n(b + b_rows[r] * ldb, cols, g.data() + r * cols);
    sgemm_eigen(ta, tb, m, n, k, alpha, a, lda, g.data(), std::max<int64_t>(cols, 1), beta, c, ldc);
  }
}

}  // namespace cudl::cpu

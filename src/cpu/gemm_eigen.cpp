// The GEMM kernel for CPUs without AVX2+FMA: Eigen's own product, single-threaded, at the
// build's baseline instruction set (and the tests' second opinion on the packed kernel). In a file
// of its own, so that no Eigen code is compiled inside gemm.cpp's AVX2 region, and so that GCC 12's
// false -Wmaybe-uninitialized in avx512fintrin.h (Eigen built with -march=native on an AVX-512
// machine, CUDL_NATIVE=ON) can be silenced for this file alone (src/CMakeLists.txt).
#include <Eigen/Core>

#include "cpu/gemm.hpp"

namespace cudl::cpu {

void sgemm_eigen(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                 const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  using Mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using Map = Eigen::Map<const Mat, 0, Eigen::OuterStride<>>;
  Eigen::Map<Mat, 0, Eigen::OuterStride<>> C(c, m, n, Eigen::OuterStride<>(ldc));
  if (beta == 0.0f) C.setZero(); else if (beta != 1.0f) C *= beta;
  if (k <= 0 || alpha == 0.0f) return;
  const Map A(a, ta == Trans::kNo ? m : k, ta == Trans::kNo ? k : m, Eigen::OuterStride<>(lda));
  const Map B(b, tb == Trans::kNo ? k : n, tb == Trans::kNo ? n : k, Eigen::OuterStride<>(ldb));
  if (ta == Trans::kNo && tb == Trans::kNo) C.noalias() += alpha * A * B;
  else if (ta == Trans::kNo) C.noalias() += alpha * A * B.transpose();
  else if (tb == Trans::kNo) C.noalias() += alpha * A.transpose() * B;
  else C.noalias() += alpha * A.transpose() * B.transpose();
}

}  // namespace cudl::cpu

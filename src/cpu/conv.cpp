// Convolution on the CPU: im2col + the backend's GEMM (our packed AVX2 kernel, or Eigen's). In
// Precision::kBf16 the GEMMs take rounded operands and each output is rounded once, at the end.
//
// Layout. For a chunk of nb samples starting at n0, with L = nb·P·Q output positions and
// Kc = C·R·S filter taps:
//   col (Kc × L), row-major: row (c, r, s), column (n, p, q); col[(c,r,s)][(n,p,q)] is the input
//       x[n0 + n][c][p·stride_h − pad_h + r·dilation_h][q·stride_w − pad_w + s·dilation_w],
//       or 0 where that falls in the padding. Rows are written along q, so both the reads
//       (along a row of x) and the writes are contiguous for stride 1.
//   the filters w (K×C×R×S) are already a row-major (K × Kc) matrix;
//   the output in channel-major order Yk (K × L): row k, column (n, p, q).
// Then
//   forward          Yk = w · col                  (K×Kc · Kc×L), then Yk → y's NCHW layout;
//   backward filter  dw += dYk · colᵀ              (K×L · L×Kc), summed over the chunks;
//   backward data    dcol = wᵀ · dYk               (Kc×K · K×L), then col2im adds dcol into dx.
// One sample (nb = 1) is the NCHW layout itself (Yk = y[n0]), so no permutation is needed.
// Chunks keep col within kColBudget floats; the im2col, col2im and permutation loops are split
// across the backend's threads, each thread owning whole rows or whole planes (no atomics,
// deterministic sums), and the GEMM is the backend's multi-threaded one.
#include <algorithm>
#include <cstring>

#include "cpu/conv.hpp"
#include "cpu/scratch.hpp"
#include "cpu/thread_pool.hpp"
#include "cudl/cpu_backend.hpp"

namespace cudl {
namespace {

using cpu::grow;

constexpr int64_t kColBudget = cpu::kConvColumnBudget;

struct Dims {
  explicit Dims(const Conv2dShape& s) : kc(s.c * s.r * s.s), pq(s.p * s.q), image(s.c * s.h * s.w) {}
  int64_t kc, pq, image;
};

int64_t chunk_samples(const Conv2dShape& s) {
  const Dims d(s);
  return std::clamp<int64_t>(kColBudget / std::max<int64_t>(d.kc * d.pq, 1), 1, s.n);
}

// The output columns q whose input column q·stride − pad + offset falls inside [0, width):
// a contiguous range [lo, hi) (empty when lo ≥ hi), so the loops below need no bounds checks.
struct Span {
  Span(int64_t outputs, int64_t width, int64_t stride, int64_t pad, int64_t offset) {
    const int64_t first = pad - offset;  // q·stride ≥ first
    lo = std::clamp<int64_t>(first <= 0 ? 0 : (first + stride - 1) / stride, 0, outputs);
    const int64_t last = width - 1 + pad - offset;  // q·stride ≤ last
    hi = last < 0 ? 0 : std::clamp<int64_t>(last / stride + 1, lo, outputs);
  }
  int64_t lo, hi;
};

// col (Kc × nb·P·Q) ← the taps of samples [n0, n0 + nb) of x.
void im2col(cpu::ThreadPool& pool, const float* x, const Conv2dShape& s, int64_t n0, int64_t nb, float* col) {
  const Dims d(s);
  const int64_t cols = nb * d.pq;
  const Conv2dParams& g = s.params;
  pool.parallel_for(d.kc * nb, 1, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t row = t / nb, n = t % nb;
      const int64_t c = row / (s.r * s.s), r = row / s.s % s.r, k = row % s.s;
      const float* plane = x + (n0 + n) * d.image + c * s.h * s.w;
      float* out = col + row * cols + n * d.pq;
      const Span span(s.q, s.w, g.stride_w, g.pad_w, k * g.dilation_w);
      const int64_t shift = k * g.dilation_w - g.pad_w;  // input column of q is q·stride + shift
      for (int64_t p = 0; p < s.p; ++p, out += s.q) {
        const int64_t ih = p * g.stride_h - g.pad_h + r * g.dilation_h;
        if (ih < 0 || ih >= s.h) {
          std::fill(out, out + s.q, 0.0f);
          continue;
        }
        const int64_t base = ih * s.w + shift;  // input offset of q is base + q·stride (≥ 0 inside the span)
        std::fill(out, out + span.lo, 0.0f);
        if (g.stride_w == 1) {
          std::copy(plane + base + span.lo, plane + base + span.hi, out + span.lo);
        } else {
          for (int64_t q = span.lo; q < span.hi; ++q) out[q] = plane[base + q * g.stride_w];
        }
        std::fill(out + span.hi, out + s.q, 0.0f);
      }
    }
  });
}

// dx[n0 .. n0 + nb) ← the sum, at each input position, of the dcol entries that read it.
void col2im(cpu::ThreadPool& pool, const float* dcol, const Conv2dShape& s, int64_t n0, int64_t nb, float* dx) {
  const Dims d(s);
  const int64_t cols = nb * d.pq;
  const Conv2dParams& g = s.params;
  pool.parallel_for(nb * s.c, 1, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t n = t / s.c, c = t % s.c;
      float* plane = dx + (n0 + n) * d.image + c * s.h * s.w;
      std::fill(plane, plane + s.h * s.w, 0.0f);
      for (int64_t r = 0; r < s.r; ++r) {
        for (int64_t k = 0; k < s.s; ++k) {
          const float* in = dcol + ((c * s.r + r) * s.s + k) * cols + n * d.pq;
          const Span span(s.q, s.w, g.stride_w, g.pad_w, k * g.dilation_w);
          const int64_t shift = k * g.dilation_w - g.pad_w;
          for (int64_t p = 0; p < s.p; ++p, in += s.q) {
            const int64_t ih = p * g.stride_h - g.pad_h + r * g.dilation_h;
            if (ih < 0 || ih >= s.h) continue;
            const int64_t base = ih * s.w + shift;
            for (int64_t q = span.lo; q < span.hi; ++q) plane[base + q * g.stride_w] += in[q];
          }
        }
      }
    }
  });
}

enum class Direction { kToNchw, kToKMajor };

// Moves samples [n0, n0 + nb) between NCHW (the whole tensor) and channel-major (K × nb·P·Q),
// in whole planes of P·Q contiguous floats: kToNchw reads channel-major src into NCHW dst,
// kToKMajor reads NCHW src into channel-major dst.
void permute(cpu::ThreadPool& pool, Direction dir, const Conv2dShape& s, int64_t n0, int64_t nb, const float* src,
             float* dst) {
  const int64_t pq = s.p * s.q;
  pool.parallel_for(nb * s.k, 1, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t n = t / s.k, k = t % s.k;
      const int64_t nchw = ((n0 + n) * s.k + k) * pq, kmajor = (k * nb + n) * pq;
      if (dir == Direction::kToNchw) {
        std::memcpy(dst + nchw, src + kmajor, sizeof(float) * pq);
      } else {
        std::memcpy(dst + kmajor, src + nchw, sizeof(float) * pq);
      }
    }
  });
}

// Calls fn(n0, nb, cols) for each chunk of nb samples starting at n0 (cols = nb·P·Q), with the
// im2col buffer grown to a chunk's size.
template <typename F>
void for_chunks(const Conv2dShape& s, std::vector<float>& col, F&& fn) {
  const Dims d(s);
  const int64_t chunk = chunk_samples(s);
  grow(col, d.kc * chunk * d.pq);
  for (int64_t n0 = 0; n0 < s.n; n0 += chunk) {
    const int64_t nb = std::min(chunk, s.n - n0);
    fn(n0, nb, nb * d.pq);
  }
}

}  // namespace

// The chunk's dy in channel-major order: dy itself for one sample, else permuted into kmajor_.
const float* CpuBackend::conv_output_gradient(const float* dy, const Conv2dShape& s, int64_t n0, int64_t nb) {
  if (nb == 1) return dy + n0 * s.k * s.p * s.q;
  float* buffer = grow(kmajor_, s.k * nb * s.p * s.q);
  permute(*pool_, Direction::kToKMajor, s, n0, nb, dy, buffer);
  return buffer;
}

void CpuBackend::do_conv2d_forward(const float* x, const float* w, const Conv2dShape& s, float* y) {
  const Dims d(s);
  for_chunks(s, col_, [&](int64_t n0, int64_t nb, int64_t cols) {
    im2col(*pool_, x, s, n0, nb, col_.data());
    float* yk = nb == 1 ? y + n0 * s.k * d.pq : grow(kmajor_, s.k * cols);
    product(Trans::kNo, Trans::kNo, s.k, cols, d.kc, 1.0f, w, d.kc, col_.data(), cols, 0.0f, yk, cols);  // w·col
    round_result(yk, s.k, cols, cols);  // kBf16: each output's whole sum is in this chunk
    if (nb > 1) permute(*pool_, Direction::kToNchw, s, n0, nb, yk, y);
  });
}

void CpuBackend::do_conv2d_backward_filter(const float* x, const float* dy, const Conv2dShape& s, float* dw) {
  const Dims d(s);
  for_chunks(s, col_, [&](int64_t n0, int64_t nb, int64_t cols) {
    im2col(*pool_, x, s, n0, nb, col_.data());
    const float* dyk = conv_output_gradient(dy, s, n0, nb);
    // dw (K × Kc) (+)= dYk · colᵀ, accumulated over the chunks
    product(Trans::kNo, Trans::kYes, s.k, d.kc, cols, 1.0f, dyk, cols, col_.data(), cols, n0 == 0 ? 0.0f : 1.0f, dw,
            d.kc);
  });
  round_result(dw, s.k, d.kc, d.kc);  // kBf16: once, after the sum over every chunk
}

void CpuBackend::do_conv2d_backward_data(const float* dy, const float* w, const Conv2dShape& s, float* dx) {
  const Dims d(s);
  for_chunks(s, col_, [&](int64_t n0, int64_t nb, int64_t cols) {
    const float* dyk = conv_output_gradient(dy, s, n0, nb);
    product(Trans::kYes, Trans::kNo, d.kc, cols, s.k, 1.0f, w, d.kc, dyk, cols, 0.0f, col_.data(), cols);  // wᵀ·dYk
    col2im(*pool_, col_.data(), s, n0, nb, dx);
  });
  round_result(dx, s.n, s.c * s.h * s.w, s.c * s.h * s.w);  // kBf16: once, after col2im's sums
}

}  // namespace cudl

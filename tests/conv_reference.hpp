#pragma once
// Convolution cases and their definition as direct loops in double, for the tests of the
// convolution primitives (test_conv.cpp, and test_bf16.cpp in Precision::kBf16).
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "cudl/backend.hpp"

namespace cudl::testing {

inline Tensor make(Backend& backend, const std::vector<float>& v, Shape s) {
  return Tensor::from_host(v, std::move(s), backend);
}

inline Conv2dParams geometry(int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t dh = 1, int64_t dw = 1) {
  Conv2dParams p;
  p.stride_h = sh, p.stride_w = sw, p.pad_h = ph, p.pad_w = pw, p.dilation_h = dh, p.dilation_w = dw;
  return p;
}

// One convolution: x (N×C×H×W), w (K×C×R×S), with P×Q written out by hand.
struct ConvCase {
  int64_t n, c, h, w, k, r, s;
  Conv2dParams g;
  int64_t p, q;  // the expected output size, worked out by hand

  Shape x_shape() const { return {n, c, h, w}; }
  Shape w_shape() const { return {k, c, r, s}; }
  Shape y_shape() const { return {n, k, p, q}; }
  std::string name() const {
    return "x [" + std::to_string(n) + "," + std::to_string(c) + "," + std::to_string(h) + "," + std::to_string(w) +
           "] w [" + std::to_string(k) + "," + std::to_string(c) + "," + std::to_string(r) + "," +
           std::to_string(s) + "] stride " + std::to_string(g.stride_h) + "x" + std::to_string(g.stride_w) +
           " pad " + std::to_string(g.pad_h) + "x" + std::to_string(g.pad_w) + " dilation " +
           std::to_string(g.dilation_h) + "x" + std::to_string(g.dilation_w);
  }
};

// Odd sizes, non-square kernels and strides, padding, dilation, a 1×1 kernel with stride 2 (input
// positions no filter tap reads), a stride larger than the kernel, C > 1, K > 1, N > 1.
inline const ConvCase kCases[] = {
    {1, 1, 1, 1, 1, 1, 1, geometry(1, 1, 0, 0), 1, 1},
    {2, 3, 7, 9, 4, 3, 3, geometry(1, 1, 1, 1), 7, 9},
    {3, 3, 11, 8, 5, 3, 2, geometry(2, 1, 1, 0), 6, 7},
    {2, 2, 9, 10, 3, 3, 3, geometry(1, 1, 2, 2, 2, 2), 9, 10},
    {2, 2, 9, 10, 3, 2, 3, geometry(3, 2, 0, 1, 2, 1), 3, 5},
    {4, 3, 8, 7, 2, 1, 1, geometry(2, 2, 0, 0), 4, 4},
    {2, 3, 13, 12, 6, 5, 5, geometry(2, 2, 2, 2), 7, 6},
    {3, 1, 6, 5, 2, 2, 4, geometry(3, 1, 0, 2, 1, 1), 2, 6},
    {2, 4, 5, 5, 3, 5, 5, geometry(1, 1, 0, 0), 1, 1},
};

// ---- direct loops, in double ----


// x(n, c, ih, iw), or 0 in the padding.
struct Taps {
  const ConvCase& cc;
  int64_t ih(int64_t p, int64_t r) const { return p * cc.g.stride_h - cc.g.pad_h + r * cc.g.dilation_h; }
  int64_t iw(int64_t q, int64_t s) const { return q * cc.g.stride_w - cc.g.pad_w + s * cc.g.dilation_w; }
  bool inside(int64_t i, int64_t j) const { return i >= 0 && i < cc.h && j >= 0 && j < cc.w; }
  int64_t x_at(int64_t n, int64_t c, int64_t i, int64_t j) const { return ((n * cc.c + c) * cc.h + i) * cc.w + j; }
  int64_t w_at(int64_t k, int64_t c, int64_t r, int64_t s) const { return ((k * cc.c + c) * cc.r + r) * cc.s + s; }
  int64_t y_at(int64_t n, int64_t k, int64_t p, int64_t q) const { return ((n * cc.k + k) * cc.p + p) * cc.q + q; }

  // Calls f(x index, w index, y index) for every tap of every output that reads the input (the
  // output position innermost, so both x and y are walked along their rows).
  template <class F>
  void each(F&& f) const {
    for (int64_t n = 0; n < cc.n; ++n)
      for (int64_t k = 0; k < cc.k; ++k)
        for (int64_t c = 0; c < cc.c; ++c)
          for (int64_t r = 0; r < cc.r; ++r)
            for (int64_t s = 0; s < cc.s; ++s)
              for (int64_t p = 0; p < cc.p; ++p)
                for (int64_t q = 0; q < cc.q; ++q) {
                  const int64_t i = ih(p, r), j = iw(q, s);
                  if (inside(i, j)) f(x_at(n, c, i, j), w_at(k, c, r, s), y_at(n, k, p, q));
                }
  }
};

// y = Σ_{c,r,s} x·w
inline std::vector<double> forward_loop(const ConvCase& cc, const std::vector<float>& x, const std::vector<float>& w) {
  std::vector<double> y(static_cast<size_t>(numel(cc.y_shape())), 0.0);
  Taps{cc}.each([&](int64_t xi, int64_t wi, int64_t yi) { y[yi] += double{x[xi]} * w[wi]; });
  return y;
}
// dx = Σ over the outputs that read x of dy·w (the adjoint of forward in x)
inline std::vector<double> backward_data_loop(const ConvCase& cc, const std::vector<float>& dy, const std::vector<float>& w) {
  std::vector<double> dx(static_cast<size_t>(numel(cc.x_shape())), 0.0);
  Taps{cc}.each([&](int64_t xi, int64_t wi, int64_t yi) { dx[xi] += double{dy[yi]} * w[wi]; });
  return dx;
}
// dw = Σ_{n,p,q} x·dy (the adjoint of forward in w)
inline std::vector<double> backward_filter_loop(const ConvCase& cc, const std::vector<float>& x,
                                         const std::vector<float>& dy) {
  std::vector<double> dw(static_cast<size_t>(numel(cc.w_shape())), 0.0);
  Taps{cc}.each([&](int64_t xi, int64_t wi, int64_t yi) { dw[wi] += double{x[xi]} * dy[yi]; });
  return dw;
}

struct Outputs {
  std::vector<float> y, dx, dw;
};

// The three primitives on x, w, dy, each into an output poisoned with NaN (each must overwrite).
inline Outputs run_all(Backend& cpu, const ConvCase& cc, const std::vector<float>& xv, const std::vector<float>& wv,
                const std::vector<float>& dyv) {
  Tensor x = make(cpu, xv, cc.x_shape()), w = make(cpu, wv, cc.w_shape()), dy = make(cpu, dyv, cc.y_shape());
  Tensor y(cc.y_shape(), cpu), dx(cc.x_shape(), cpu), dw(cc.w_shape(), cpu);
  constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
  cpu.fill(y, kNaN);
  cpu.fill(dx, kNaN);
  cpu.fill(dw, kNaN);
  cpu.conv2d_forward(x, w, cc.g, y);
  cpu.conv2d_backward_data(dy, w, cc.g, dx);
  cpu.conv2d_backward_filter(x, dy, cc.g, dw);
  return {y.to_vector(), dx.to_vector(), dw.to_vector()};
}

}  // namespace cudl::testing

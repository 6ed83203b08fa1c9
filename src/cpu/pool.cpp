// Pooling, dropout and the per-channel primitives on the CPU. Every loop is split across the
// backend's threads by whole (sample, channel) planes or by whole channels, so each output is
// written by one thread and sums are deterministic.
#include <Eigen/Core>
#include <algorithm>
#include <limits>
#include <vector>

#include "cpu/elementwise.hpp"
#include "cpu/thread_pool.hpp"
#include "formulas/unit_rules.hpp"
#include "cudl/cpu_backend.hpp"
#include "cudl/rng.hpp"

namespace cudl {
namespace {

constexpr int64_t kGrain = 1 << 15;

// The windows' extents clipped to the input, per output row (rows [lo[p], hi[p])) or column.
struct Extents {
  Extents(int64_t outputs, int64_t size, int64_t window, int64_t stride, int64_t pad) : lo(outputs), hi(outputs) {
    for (int64_t o = 0; o < outputs; ++o) {
      const int64_t start = o * stride - pad;
      lo[o] = std::max<int64_t>(start, 0);
      hi[o] = std::min(start + window, size);
    }
  }
  std::vector<int64_t> lo, hi;
};

struct Windows {
  explicit Windows(const Pool2dShape& s)
      : rows(s.p, s.h, s.params.window_h, s.params.stride_h, s.params.pad_h),
        cols(s.q, s.w, s.params.window_w, s.params.stride_w, s.params.pad_w) {}
  Extents rows, cols;
};

// Offset in the plane of the window's first maximum, scanning rows then columns (a later value
// wins only if strictly greater, so ties go to the first and a NaN never replaces a number).
inline int64_t argmax(const float* plane, int64_t width, int64_t h0, int64_t h1, int64_t w0, int64_t w1) {
  int64_t best = h0 * width + w0;
  float best_value = plane[best];
  for (int64_t i = h0; i < h1; ++i) {
    for (int64_t j = w0; j < w1; ++j) {
      if (plane[i * width + j] > best_value) {
        best = i * width + j;
        best_value = plane[best];
      }
    }
  }
  return best;
}

// Max pooling's commonest case, 2×2 windows at stride 2 without padding (LeNet's, VGG16's): the
// first maximum of (a, b; c, d) in argmax's order, without branches (each compare a select, so
// random data costs no mispredictions): a later value wins only if strictly greater, so ties go to
// the first and a NaN never replaces a number. `at` is the winner's index in a, b, c, d.
inline float max4(float a, float b, float c, float d, int& at) {
  float m = a;
  at = 0;
  at = b > m ? 1 : at;
  m = b > m ? b : m;
  at = c > m ? 2 : at;
  m = c > m ? c : m;
  at = d > m ? 3 : at;
  m = d > m ? d : m;
  return m;
}

bool max_2x2(const Pool2dShape& s) {
  const Pool2dParams& g = s.params;
  return g.mode == PoolMode::kMax && g.window_h == 2 && g.window_w == 2 && g.stride_h == 2 && g.stride_w == 2 &&
         g.pad_h == 0 && g.pad_w == 0;
}

// Calls fn(p, q, h0, h1, w0, w1) for every output of a plane.
template <typename F>
void for_windows(const Pool2dShape& s, const Windows& win, F&& fn) {
  for (int64_t p = 0; p < s.p; ++p) {
    const int64_t h0 = win.rows.lo[p], h1 = win.rows.hi[p];
    for (int64_t q = 0; q < s.q; ++q) fn(p, q, h0, h1, win.cols.lo[q], win.cols.hi[q]);
  }
}

}  // namespace

void CpuBackend::do_pool2d_forward(const float* x, const Pool2dShape& s, float* y) {
  const float area = static_cast<float>(s.params.window_h * s.params.window_w);
  const Windows win(s);
  pool_->parallel_for(s.n * s.c, 1, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const float* plane = x + t * s.h * s.w;
      float* out = y + t * s.p * s.q;
      if (max_2x2(s)) {
        for (int64_t p = 0; p < s.p; ++p) {
          const float* r0 = plane + 2 * p * s.w;
          const float* r1 = r0 + s.w;
          int at = 0;
          for (int64_t q = 0; q < s.q; ++q)
            out[p * s.q + q] = max4(r0[2 * q], r0[2 * q + 1], r1[2 * q], r1[2 * q + 1], at);
        }
      } else if (s.params.mode == PoolMode::kMax) {
        for_windows(s, win, [&](int64_t p, int64_t q, int64_t h0, int64_t h1, int64_t w0, int64_t w1) {
          out[p * s.q + q] = plane[argmax(plane, s.w, h0, h1, w0, w1)];
        });
      } else {
        for_windows(s, win, [&](int64_t p, int64_t q, int64_t h0, int64_t h1, int64_t w0, int64_t w1) {
          float sum = 0.0f;
          for (int64_t i = h0; i < h1; ++i) {
            for (int64_t j = w0; j < w1; ++j) sum += plane[i * s.w + j];
          }
          out[p * s.q + q] = sum / area;
        });
      }
    }
  });
}

void CpuBackend::do_pool2d_backward(const float* x, const float*, const float* dy, const Pool2dShape& s,
                                    float* dx) {
  const float area = static_cast<float>(s.params.window_h * s.params.window_w);
  const Windows win(s);
  pool_->parallel_for(s.n * s.c, 1, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const float* plane = x + t * s.h * s.w;
      const float* grad = dy + t * s.p * s.q;
      float* out = dx + t * s.h * s.w;
      if (max_2x2(s)) {  // the windows do not overlap: each cell is written once, 0 + its gradient or 0
        for (int64_t p = 0; p < s.p; ++p) {
          const float* r0 = plane + 2 * p * s.w;
          const float* r1 = r0 + s.w;
          float* o0 = out + 2 * p * s.w;
          float* o1 = o0 + s.w;
          for (int64_t q = 0; q < s.q; ++q) {
            int at = 0;
            max4(r0[2 * q], r0[2 * q + 1], r1[2 * q], r1[2 * q + 1], at);
            const float g = 0.0f + grad[p * s.q + q];
            o0[2 * q] = at == 0 ? g : 0.0f;
            o0[2 * q + 1] = at == 1 ? g : 0.0f;
            o1[2 * q] = at == 2 ? g : 0.0f;
            o1[2 * q + 1] = at == 3 ? g : 0.0f;
          }
          if (s.w > 2 * s.q) o0[s.w - 1] = o1[s.w - 1] = 0.0f;  // an odd width's last column: no window
        }
        if (s.h > 2 * s.p) std::fill(out + (s.h - 1) * s.w, out + s.h * s.w, 0.0f);  // an odd height's last row
        continue;
      }
      std::fill(out, out + s.h * s.w, 0.0f);
      if (s.params.mode == PoolMode::kMax) {
        for_windows(s, win, [&](int64_t p, int64_t q, int64_t h0, int64_t h1, int64_t w0, int64_t w1) {
          out[argmax(plane, s.w, h0, h1, w0, w1)] += grad[p * s.q + q];
        });
      } else {
        for_windows(s, win, [&](int64_t p, int64_t q, int64_t h0, int64_t h1, int64_t w0, int64_t w1) {
          const float g = grad[p * s.q + q];
          for (int64_t i = h0; i < h1; ++i) {
            for (int64_t j = w0; j < w1; ++j) out[i * s.w + j] += g / area;
          }
        });
      }
    }
  });
}

void CpuBackend::do_dropout(const float* x, int64_t n, float drop, uint64_t seed, const uint64_t* counter_ptr,
                            uint64_t offset, float* y) {
  const float scale = 1.0f / (1.0f - drop);
  const uint64_t counter = (counter_ptr != nullptr ? *counter_ptr : 0) + offset;
  const cpu::ElementwiseOps& ops = cpu::elementwise_ops();  // Philox on 8 or 16 counters at once
  pool_->parallel_for(n, kGrain, [=, &ops](int64_t begin, int64_t end) {
    ops.dropout(x + begin, end - begin, drop, scale, seed, counter + static_cast<uint64_t>(begin), y + begin);
  });
}

void CpuBackend::do_channel_bias_activation(float* y, const float* bias, int64_t outer, int64_t channels,
                                            int64_t inner, Activation act) {
  const int64_t grain = std::max<int64_t>(1, kGrain / std::max<int64_t>(inner, 1));
  const cpu::ElementwiseOps& ops = cpu::elementwise_ops();
  pool_->parallel_for(outer * channels, grain, [=, &ops](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) ops.add_activate(y + t * inner, inner, bias[t % channels], act);
  });
}

void CpuBackend::do_sum_channels(float alpha, const float* x, int64_t outer, int64_t channels, int64_t inner,
                                 float beta, float* out) {
  const int64_t grain = std::max<int64_t>(1, kGrain / std::max<int64_t>(outer * inner, 1));
  pool_->parallel_for(channels, grain, [=](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      double sum = 0.0;  // planes summed in float (vectorised), planes accumulated in double
      for (int64_t n = 0; n < outer; ++n) {
        sum += Eigen::Map<const Eigen::ArrayXf>(x + (n * channels + c) * inner, inner).sum();
      }
      out[c] = alpha * static_cast<float>(sum) + (beta == 0.0f ? 0.0f : beta * out[c]);
    }
  });
}

}  // namespace cudl

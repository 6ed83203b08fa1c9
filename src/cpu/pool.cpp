// Pooling, dropout and the per-channel primitives on the CPU. Every loop is split across the
// backend's threads by whole (sample, channel) planes or by whole channels, so each output is
// written by one thread and sums are deterministic.
#include <Eigen/Core>
#include <algorithm>
#include <limits>

#include "cpu/activation.hpp"
#include "cpu/thread_pool.hpp"
#include "cudl/cpu_backend.hpp"
#include "cudl/rng.hpp"

namespace cudl {
namespace {

constexpr int64_t kGrain = 1 << 15;

// The window of output (p, q), clipped to the input: rows [h0, h1), columns [w0, w1).
struct Window {
  Window(const Pool2dShape& s, int64_t p, int64_t q) {
    const Pool2dParams& g = s.params;
    const int64_t top = p * g.stride_h - g.pad_h, left = q * g.stride_w - g.pad_w;
    h0 = std::max<int64_t>(top, 0);
    h1 = std::min(top + g.window_h, s.h);
    w0 = std::max<int64_t>(left, 0);
    w1 = std::min(left + g.window_w, s.w);
  }
  int64_t h0, h1, w0, w1;
};

// Offset in the plane of the window's first maximum, scanning rows then columns.
int64_t argmax(const float* plane, int64_t width, const Window& win) {
  int64_t best = win.h0 * width + win.w0;
  for (int64_t i = win.h0; i < win.h1; ++i) {
    for (int64_t j = win.w0; j < win.w1; ++j) {
      if (plane[i * width + j] > plane[best]) best = i * width + j;
    }
  }
  return best;
}

}  // namespace

void CpuBackend::do_pool2d_forward(const float* x, const Pool2dShape& s, float* y) {
  const float area = static_cast<float>(s.params.window_h * s.params.window_w);
  pool_->parallel_for(s.n * s.c, 1, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const float* plane = x + t * s.h * s.w;
      float* out = y + t * s.p * s.q;
      for (int64_t p = 0; p < s.p; ++p) {
        for (int64_t q = 0; q < s.q; ++q) {
          const Window win(s, p, q);
          if (s.params.mode == PoolMode::kMax) {
            out[p * s.q + q] = plane[argmax(plane, s.w, win)];
            continue;
          }
          float sum = 0.0f;
          for (int64_t i = win.h0; i < win.h1; ++i) {
            for (int64_t j = win.w0; j < win.w1; ++j) sum += plane[i * s.w + j];
          }
          out[p * s.q + q] = sum / area;
        }
      }
    }
  });
}

void CpuBackend::do_pool2d_backward(const float* x, const float*, const float* dy, const Pool2dShape& s,
                                    float* dx) {
  const float area = static_cast<float>(s.params.window_h * s.params.window_w);
  pool_->parallel_for(s.n * s.c, 1, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const float* plane = x + t * s.h * s.w;
      const float* grad = dy + t * s.p * s.q;
      float* out = dx + t * s.h * s.w;
      std::fill(out, out + s.h * s.w, 0.0f);
      for (int64_t p = 0; p < s.p; ++p) {
        for (int64_t q = 0; q < s.q; ++q) {
          const Window win(s, p, q);
          const float g = grad[p * s.q + q];
          if (s.params.mode == PoolMode::kMax) {
            out[argmax(plane, s.w, win)] += g;
            continue;
          }
          for (int64_t i = win.h0; i < win.h1; ++i) {
            for (int64_t j = win.w0; j < win.w1; ++j) out[i * s.w + j] += g / area;
          }
        }
      }
    }
  });
}

void CpuBackend::do_dropout(const float* x, int64_t n, float drop, uint64_t seed, uint64_t counter, float* y) {
  const float scale = 1.0f / (1.0f - drop);
  pool_->parallel_for(n, kGrain, [=](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const rng::Philox4 r = rng::bits(seed, rng::kStreamDropout, counter + static_cast<uint64_t>(i));
      y[i] = rng::uniform(r.v[0]) > drop ? x[i] * scale : 0.0f;
    }
  });
}

void CpuBackend::do_channel_bias_activation(float* y, const float* bias, int64_t outer, int64_t channels,
                                            int64_t inner, Activation act) {
  const int64_t grain = std::max<int64_t>(1, kGrain / std::max<int64_t>(inner, 1));
  pool_->parallel_for(outer * channels, grain, [=](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) cpu::add_activate(y + t * inner, inner, bias[t % channels], act);
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

// CudaBackend's primitives of the convolutional layers other than the convolutions themselves
// (cuDNN, cudnn_conv.cpp) and batch normalisation (batch_norm.cu): per-channel bias + activation,
// per-channel sums (the bias gradient), max/average pooling and its gradient, and dropout, each
// kernel beside the member that launches it. Each mirrors its CpuBackend counterpart
// (src/cpu/pool.cpp) operation for operation, including summation order where it matters, and
// none uses atomics, so results are deterministic.
#include <algorithm>

#include "backend_impl.hpp"
#include "check.hpp"
#include "cudl/rng.hpp"
#include "device_math.cuh"
#include "formulas/unit_rules.hpp"
#include "kernels.hpp"

namespace cudl {
namespace {

constexpr int kThreads = 256;
using cuda::grid_for;

// y(outer × channels × inner) ← act(y + bias[c]).
__global__ void channel_bias_activation_kernel(float* y, const float* bias, int64_t channels, int64_t inner,
                                               int64_t n, Activation act) {
  CUDL_GRID_STRIDE(i, n) y[i] = formulas::activate(act, y[i] + bias[(i / inner) % channels]);
}

// partial[c · splits + b] ← Σ of part b of channel c's outer·inner values (a fixed-order
// shared-memory tree, so the sum is the same on every run).
__global__ void sum_channels_partial_kernel(const float* x, int64_t outer, int64_t channels, int64_t inner,
                                            int splits, float* partial) {
  __shared__ float shared[kThreads];
  const int64_t c = blockIdx.y, part = blockIdx.x, m = outer * inner;
  const int64_t begin = m * part / splits, end = m * (part + 1) / splits;
  float acc = 0.0f;
  // idx = n · inner + j, advanced without dividing for every element (a 64-bit division costs
  // more than the load); the same values in the same order as dividing each time.
  int64_t idx = begin + threadIdx.x, n = 0, j = 0;
  if (idx < end) {  // then inner > 0 (an empty trailing dimension gives no element to sum)
    n = idx / inner;
    j = idx - n * inner;
  }
  for (; idx < end; idx += blockDim.x) {
    acc += x[(n * channels + c) * inner + j];
    j += blockDim.x;
    if (j >= inner) {
      const int64_t wraps = j / inner;
      n += wraps;
      j -= wraps * inner;
    }
  }
  shared[threadIdx.x] = acc;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (static_cast<int>(threadIdx.x) < stride) shared[threadIdx.x] += shared[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) partial[c * splits + part] = shared[0];
}

// out(c) ← alpha · Σ_b partial[c · splits + b] + beta · out(c), parts summed in order.
__global__ void sum_channels_final_kernel(const float* partial, int64_t channels, int splits, float alpha,
                                          float beta, float* out) {
  CUDL_GRID_STRIDE(c, channels) {
    float acc = 0.0f;
    for (int b = 0; b < splits; ++b) acc += partial[c * splits + b];
    out[c] = beta == 0.0f ? alpha * acc : alpha * acc + beta * out[c];
  }
}

// Pooling's index arithmetic runs in I: int where every index of the call fits in 31 bits (all
// of VGG16's and LeNet's), int64_t otherwise; the GPU divides 32-bit integers several times
// faster than 64-bit ones, and these kernels divide for every element.
template <typename I>
struct PoolGeometry {
  I h, w, p, q, window_h, window_w, stride_h, stride_w, pad_h, pad_w;
  bool max;
};

template <typename I>
PoolGeometry<I> geometry(const Pool2dShape& s) {
  const Pool2dParams& g = s.params;
  return {static_cast<I>(s.h),        static_cast<I>(s.w),        static_cast<I>(s.p),
          static_cast<I>(s.q),        static_cast<I>(g.window_h), static_cast<I>(g.window_w),
          static_cast<I>(g.stride_h), static_cast<I>(g.stride_w), static_cast<I>(g.pad_h),
          static_cast<I>(g.pad_w),    g.mode == PoolMode::kMax};
}

// The window of output (op, oq), clipped to the input: rows [h0, h1), columns [w0, w1).
template <typename I>
struct Window {
  I h0, h1, w0, w1;
};

template <typename I>
__device__ __forceinline__ Window<I> window_at(const PoolGeometry<I>& g, I op, I oq) {
  const I top = op * g.stride_h - g.pad_h, left = oq * g.stride_w - g.pad_w;
  return {max(top, I{0}), min(top + g.window_h, g.h), max(left, I{0}), min(left + g.window_w, g.w)};
}

// Offset in the plane of the window's first maximum, scanning rows then columns (as the CPU).
template <typename I>
__device__ __forceinline__ I window_argmax(const float* plane, I width, const Window<I>& win) {
  I best = win.h0 * width + win.w0;
  for (I i = win.h0; i < win.h1; ++i) {
    for (I j = win.w0; j < win.w1; ++j) {
      if (plane[i * width + j] > plane[best]) best = i * width + j;
    }
  }
  return best;
}

template <typename I>
__device__ __forceinline__ I grid_start() {
  return static_cast<I>(blockIdx.x) * static_cast<I>(blockDim.x) + static_cast<I>(threadIdx.x);
}
template <typename I>
__device__ __forceinline__ I grid_step() {
  return static_cast<I>(blockDim.x) * static_cast<I>(gridDim.x);
}

// Output element i (of all planes): its plane's offset in the input, and its window.
template <typename I>
struct OutputAt {
  int64_t plane_offset;
  Window<I> win;
};
template <typename I>
__device__ __forceinline__ OutputAt<I> output_at(const PoolGeometry<I>& g, I i) {
  const I plane_index = i / (g.p * g.q), rest = i - plane_index * g.p * g.q;
  const I op = rest / g.q, oq = rest - op * g.q;
  return {static_cast<int64_t>(plane_index) * g.h * g.w, window_at(g, op, oq)};
}

// One thread per output element.
template <typename I>
__global__ void pool_forward_kernel(const float* x, PoolGeometry<I> g, I total, float* y) {
  const float area = static_cast<float>(g.window_h * g.window_w);
  for (I i = grid_start<I>(); i < total; i += grid_step<I>()) {
    const OutputAt<I> at = output_at(g, i);
    const float* plane = x + at.plane_offset;
    const Window<I>& win = at.win;
    if (g.max) {
      y[i] = plane[window_argmax(plane, g.w, win)];
    } else {
      float sum = 0.0f;
      for (I r = win.h0; r < win.h1; ++r) {
        for (I c = win.w0; c < win.w1; ++c) sum += plane[r * g.w + c];
      }
      y[i] = sum / area;
    }
  }
}

// One thread per input element: gathers the gradient of every window that covers it, in the
// CPU's (row-major window) order, instead of scattering with atomics.
template <typename I>
__global__ void pool_backward_kernel(const float* x, const float* dy, PoolGeometry<I> g, I total, float* dx) {
  const float area = static_cast<float>(g.window_h * g.window_w);
  for (I i = grid_start<I>(); i < total; i += grid_step<I>()) {
    const I plane_index = i / (g.h * g.w), offset = i - plane_index * g.h * g.w;
    const I ih = offset / g.w, iw = offset - ih * g.w;
    const float* plane = x + static_cast<int64_t>(plane_index) * g.h * g.w;
    const float* grad = dy + static_cast<int64_t>(plane_index) * g.p * g.q;
    // Windows op with op·stride − pad ≤ ih < op·stride − pad + window.
    const I ph = ih + g.pad_h, pw = iw + g.pad_w;
    const I op0 = ph < g.window_h ? 0 : (ph - g.window_h) / g.stride_h + 1;
    const I op1 = min(ph / g.stride_h, g.p - 1);
    const I oq0 = pw < g.window_w ? 0 : (pw - g.window_w) / g.stride_w + 1;
    const I oq1 = min(pw / g.stride_w, g.q - 1);
    float acc = 0.0f;
    for (I op = op0; op <= op1; ++op) {
      for (I oq = oq0; oq <= oq1; ++oq) {
        const float gv = grad[op * g.q + oq];
        if (g.max) {
          if (window_argmax(plane, g.w, window_at(g, op, oq)) == offset) acc += gv;
        } else {
          acc += gv / area;
        }
      }
    }
    dx[i] = acc;
  }
}

// Windows that tile the input exactly (stride = window, no padding, the input a whole number of
// windows: VGG16's and LeNet's 2×2 pools): every input element lies in exactly one window, so one
// thread per window finds its maximum once and writes the window's gradients, instead of each
// input element recomputing its window's maximum. Writes what pool_backward_kernel writes, bit
// for bit: 0 + the one gradient (0 + −0 is +0, as there).
template <typename I>
__global__ void pool_backward_tiled_kernel(const float* x, const float* dy, PoolGeometry<I> g, I total, float* dx) {
  const float area = static_cast<float>(g.window_h * g.window_w);
  for (I i = grid_start<I>(); i < total; i += grid_step<I>()) {
    const OutputAt<I> at = output_at(g, i);
    const float* plane = x + at.plane_offset;
    float* out = dx + at.plane_offset;
    const Window<I>& win = at.win;
    const float gv = dy[i];
    if (g.max) {
      const I best = window_argmax(plane, g.w, win);
      for (I r = win.h0; r < win.h1; ++r)
        for (I c = win.w0; c < win.w1; ++c) out[r * g.w + c] = r * g.w + c == best ? 0.0f + gv : 0.0f;
    } else {
      const float share = 0.0f + gv / area;
      for (I r = win.h0; r < win.h1; ++r)
        for (I c = win.w0; c < win.w1; ++c) out[r * g.w + c] = share;
    }
  }
}

// The first draw is *counter_ptr + offset (modulo 2^64), or offset alone when counter_ptr is null.
__global__ void dropout_kernel(const float* x, int64_t n, float drop, float scale, uint64_t seed,
                               const uint64_t* counter_ptr, uint64_t offset, float* y) {
  const uint64_t counter = (counter_ptr != nullptr ? *counter_ptr : 0) + offset;
  CUDL_GRID_STRIDE(i, n) y[i] = formulas::dropout_at(x[i], drop, scale, seed, counter, i);
}

}  // namespace

void CudaBackend::do_channel_bias_activation(float* y, const float* bias, int64_t outer, int64_t channels,
                                             int64_t inner, Activation act) {
  const int64_t n = outer * channels * inner;
  if (n == 0) return;
  channel_bias_activation_kernel<<<grid_for(n, kThreads), kThreads, 0, impl_->stream>>>(y, bias, channels, inner, n,
                                                                                        act);
  CUDL_CHECK_LAUNCH();
}

namespace {

// How many partial sums per channel do_sum_channels uses.
int sum_channels_splits(int64_t outer, int64_t channels, int64_t inner) {
  // Enough blocks in all to fill a large GPU (~1024), each summing at least ~4096 values.
  const int64_t by_blocks = std::max<int64_t>(1, 1024 / std::max<int64_t>(channels, 1));
  const int64_t by_work = std::max<int64_t>(1, outer * inner / 4096);
  return static_cast<int>(std::min(by_blocks, by_work));
}

}  // namespace

void CudaBackend::do_sum_channels(float alpha, const float* x, int64_t outer, int64_t channels, int64_t inner,
                                  float beta, float* out) {
  if (channels == 0) return;
  CUDL_REQUIRE(channels <= 65535, "sum_channels: at most 65535 channels on the GPU, got " + std::to_string(channels));
  const int splits = sum_channels_splits(outer, channels, inner);
  auto* partial = static_cast<float*>(impl_->scratch(sizeof(float) * static_cast<size_t>(channels) * splits));
  sum_channels_partial_kernel<<<dim3(splits, static_cast<unsigned>(channels)), kThreads, 0, impl_->stream>>>(
      x, outer, channels, inner, splits, partial);
  CUDL_CHECK_LAUNCH();
  sum_channels_final_kernel<<<grid_for(channels, kThreads), kThreads, 0, impl_->stream>>>(partial, channels, splits,
                                                                                          alpha, beta, out);
  CUDL_CHECK_LAUNCH();
}

namespace {

// Whether every index of a pooling call (input and output elements alike) fits in a 32-bit int.
bool pool_fits_int(const Pool2dShape& s) {
  const int64_t most = std::max(s.n * s.c * s.h * s.w, s.n * s.c * s.p * s.q);
  return most < (int64_t{1} << 31) - (int64_t{1} << 20);  // a margin: i + the grid's stride (≤ 2^20) fits
}

// Whether the windows tile the input exactly: pool_backward_tiled_kernel's case.
bool pool_tiles_input(const Pool2dShape& s) {
  const Pool2dParams& g = s.params;
  return g.stride_h == g.window_h && g.stride_w == g.window_w && g.pad_h == 0 && g.pad_w == 0 &&
         s.p * g.window_h == s.h && s.q * g.window_w == s.w;
}

template <typename I>
void launch_pool_forward(cudaStream_t stream, const float* x, const Pool2dShape& shape, float* y) {
  const int64_t total = shape.n * shape.c * shape.p * shape.q;
  pool_forward_kernel<I><<<grid_for(total, kThreads), kThreads, 0, stream>>>(x, geometry<I>(shape),
                                                                             static_cast<I>(total), y);
}

template <typename I>
void launch_pool_backward(cudaStream_t stream, const float* x, const float* dy, const Pool2dShape& shape, float* dx) {
  if (pool_tiles_input(shape)) {
    const int64_t total = shape.n * shape.c * shape.p * shape.q;  // one thread per window
    pool_backward_tiled_kernel<I><<<grid_for(total, kThreads), kThreads, 0, stream>>>(x, dy, geometry<I>(shape),
                                                                                      static_cast<I>(total), dx);
  } else {
    const int64_t total = shape.n * shape.c * shape.h * shape.w;  // one thread per input element
    pool_backward_kernel<I><<<grid_for(total, kThreads), kThreads, 0, stream>>>(x, dy, geometry<I>(shape),
                                                                                static_cast<I>(total), dx);
  }
}

}  // namespace

void CudaBackend::do_pool2d_forward(const float* x, const Pool2dShape& shape, float* y) {
  if (shape.n * shape.c * shape.p * shape.q == 0) return;
  if (pool_fits_int(shape)) {
    launch_pool_forward<int>(impl_->stream, x, shape, y);
  } else {
    launch_pool_forward<int64_t>(impl_->stream, x, shape, y);
  }
  CUDL_CHECK_LAUNCH();
}

// The CPU uses the forward output y to find each window's maximum; the GPU recomputes it from x.
void CudaBackend::do_pool2d_backward(const float* x, const float*, const float* dy, const Pool2dShape& shape,
                                     float* dx) {
  if (shape.n * shape.c * shape.h * shape.w == 0) return;
  if (pool_fits_int(shape)) {
    launch_pool_backward<int>(impl_->stream, x, dy, shape, dx);
  } else {
    launch_pool_backward<int64_t>(impl_->stream, x, dy, shape, dx);
  }
  CUDL_CHECK_LAUNCH();
}

void CudaBackend::do_dropout(const float* x, int64_t n, float drop, uint64_t seed, const uint64_t* counter_ptr,
                             uint64_t offset, float* y) {
  if (n == 0) return;
  dropout_kernel<<<grid_for(n, kThreads), kThreads, 0, impl_->stream>>>(x, n, drop, 1.0f / (1.0f - drop), seed,
                                                                        counter_ptr, offset, y);
  CUDL_CHECK_LAUNCH();
}

}  // namespace cudl

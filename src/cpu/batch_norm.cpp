// Batch normalisation on the CPU, one channel per task (each channel's M = outer·inner values are
// strided: `outer` runs of `inner` contiguous floats). Statistics are summed in double, two-pass
// (mean first, then squared deviations), so they are the reference the GPU is checked against.
#include <cmath>

#include "cpu/thread_pool.hpp"
#include "cudl/cpu_backend.hpp"

namespace cudl {
namespace {

// Calls fn(run) for each of channel c's `outer` runs of `inner` values.
template <typename F>
void for_runs(int64_t outer, int64_t channels, int64_t inner, int64_t c, F&& fn) {
  for (int64_t n = 0; n < outer; ++n) fn((n * channels + c) * inner);
}

}  // namespace

void CpuBackend::do_batch_norm_train(const float* x, const float* gamma, const float* beta, int64_t outer,
                                     int64_t channels, int64_t inner, const BatchNormArgs& args,
                                     float* running_mean, float* running_var, float* saved, float* y) {
  const double m = static_cast<double>(outer * inner);
  pool_->parallel_for(channels, 1, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      double sum = 0.0;
      for_runs(outer, channels, inner, c, [&](int64_t at) {
        for (int64_t j = 0; j < inner; ++j) sum += x[at + j];
      });
      const double mean = sum / m;
      double squares = 0.0;
      for_runs(outer, channels, inner, c, [&](int64_t at) {
        for (int64_t j = 0; j < inner; ++j) squares += (x[at + j] - mean) * (x[at + j] - mean);
      });
      const double var = squares / m;
      const float inv_std = static_cast<float>(1.0 / std::sqrt(var + args.epsilon));
      const float scale = gamma[c] * inv_std, shift = beta[c] - static_cast<float>(mean) * scale;
      for_runs(outer, channels, inner, c, [&](int64_t at) {
        for (int64_t j = 0; j < inner; ++j) y[at + j] = x[at + j] * scale + shift;
      });
      saved[c] = static_cast<float>(mean);
      saved[channels + c] = inv_std;
      running_mean[c] = (1.0f - args.momentum) * running_mean[c] + args.momentum * static_cast<float>(mean);
      running_var[c] =
          (1.0f - args.momentum) * running_var[c] + args.momentum * static_cast<float>(squares / (m - 1.0));
    }
  });
}

void CpuBackend::do_batch_norm_infer(const float* x, const float* gamma, const float* beta, const float* running_mean,
                                     const float* running_var, int64_t outer, int64_t channels, int64_t inner,
                                     float epsilon, float* y) {
  pool_->parallel_for(outer * channels, 1, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t c = t % channels;
      const float scale = gamma[c] / std::sqrt(running_var[c] + epsilon);
      const float shift = beta[c] - running_mean[c] * scale;
      const float* in = x + t * inner;
      float* out = y + t * inner;
      for (int64_t j = 0; j < inner; ++j) out[j] = in[j] * scale + shift;
    }
  });
}

void CpuBackend::do_batch_norm_backward(const float* x, const float* dy, const float* gamma, const float* saved,
                                        int64_t outer, int64_t channels, int64_t inner, float* dx, float* dgamma,
                                        float* dbeta) {
  const double m = static_cast<double>(outer * inner);
  pool_->parallel_for(channels, 1, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      const float mean = saved[c], inv_std = saved[channels + c];
      double sum_dy = 0.0, sum_dy_xhat = 0.0;
      for_runs(outer, channels, inner, c, [&](int64_t at) {
        for (int64_t j = 0; j < inner; ++j) {
          sum_dy += dy[at + j];
          sum_dy_xhat += dy[at + j] * ((x[at + j] - mean) * inv_std);
        }
      });
      // dx = γ·s/M·(M·dy − Σdy − x̂·Σdy·x̂) = k·dy − a − b·x̂
      const float k = gamma[c] * inv_std;
      const float a = static_cast<float>(k * sum_dy / m), b = static_cast<float>(k * sum_dy_xhat / m);
      for_runs(outer, channels, inner, c, [&](int64_t at) {
        for (int64_t j = 0; j < inner; ++j) dx[at + j] = k * dy[at + j] - a - b * ((x[at + j] - mean) * inv_std);
      });
      dgamma[c] = static_cast<float>(sum_dy_xhat);
      dbeta[c] = static_cast<float>(sum_dy);
    }
  });
}

}  // namespace cudl

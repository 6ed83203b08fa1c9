#pragma once
// Launchers of cudl's own kernels (each kernel lives next to its launcher, file-private, in
// elementwise.cu or loss.cu). All are queued on `stream`, never synchronise, and check the launch.
#include <cuda_runtime.h>

#include <cstdint>

#include "cudl/backend.hpp"

namespace cudl::cuda {

// Grid size for a grid-stride loop over n elements: enough blocks to fill the GPU, no more.
int grid_for(int64_t n, int threads_per_block);

void fill(cudaStream_t s, float* x, int64_t n, float value);
void fill_normal(cudaStream_t s, float* x, int64_t n, uint64_t seed, float mean, float stddev);
void bias_activation(cudaStream_t s, float* y, const float* bias, int64_t rows, int64_t cols, Activation act);
void activation(cudaStream_t s, float* y, int64_t n, Activation act);
void activation_backward(cudaStream_t s, float* dy, const float* y, int64_t n, Activation act);
// sums[0] += Σ (a[i] − ref[i])², sums[1] += Σ ref[i]² over n elements, in double (the caller
// zeroes sums first). For checking one cuDNN engine's output against another's.
void normwise_difference(cudaStream_t s, const float* a, const float* ref, int64_t n, double* sums);
void sum_rows(cudaStream_t s, float alpha, const float* x, int64_t rows, int64_t cols, float beta, float* out);
// C(m×n, row-major, leading dimension ldc ≥ n) ← beta·C, writing 0 where beta = 0 (C is then
// not read, so NaN there is overwritten): a GEMM with k = 0, as CpuBackend computes it.
void scale_matrix(cudaStream_t s, float* c, int64_t m, int64_t n, int64_t ldc, float beta);
void axpy(cudaStream_t s, float alpha, const float* x, float* y, int64_t n);
void bias_activation_sample(cudaStream_t s, float* y, const float* bias, int64_t rows, int64_t cols, Activation act,
                            Units units, uint64_t seed, uint64_t counter, float* states);
void sample_units(cudaStream_t s, const float* means, int64_t n, Units units, uint64_t seed, uint64_t counter,
                  float* out);

// step_counter / draw_counter: device counters read when the kernel runs, or null (see Backend).
void softmax_cross_entropy(cudaStream_t s, const float* logits, const float* labels, int64_t rows, int64_t classes,
                           const CrossEntropyArgs& args, const uint64_t* step_counter, float* dlogits, float* stats);
void argmax_rows(cudaStream_t s, const float* x, int64_t rows, int64_t cols, float* out);
// y and by hold target_cols values per row.
void sample_rows(cudaStream_t s, const float* x, const float* y, int64_t rows, int64_t cols, int64_t target_cols,
                 uint64_t seed, uint64_t first_draw, const uint64_t* draw_counter, float* bx, float* by,
                 int64_t batch);
void add_to_counter(cudaStream_t s, uint64_t* counter, uint64_t delta);


// conv_kernels.cu: the convolutional layers' kernels (the convolutions are cuDNN's, cudnn_conv.cpp).
void channel_bias_activation(cudaStream_t s, float* y, const float* bias, int64_t outer, int64_t channels,
                             int64_t inner, Activation act);
// How many partial sums per channel sum_channels uses: `partial` must hold channels × this.
int sum_channels_splits(int64_t outer, int64_t channels, int64_t inner);
void sum_channels(cudaStream_t s, float alpha, const float* x, int64_t outer, int64_t channels, int64_t inner,
                  float beta, float* out, float* partial);
void pool2d_forward(cudaStream_t s, const float* x, const Pool2dShape& shape, float* y);
void pool2d_backward(cudaStream_t s, const float* x, const float* dy, const Pool2dShape& shape, float* dx);
void dropout(cudaStream_t s, const float* x, int64_t n, float drop, uint64_t seed, uint64_t counter, float* y);
// Batch normalisation: one block per channel for the statistics (channels ≤ 2³¹ − 1).
void batch_norm_train(cudaStream_t s, const float* x, const float* gamma, const float* beta, int64_t outer,
                      int64_t channels, int64_t inner, const BatchNormArgs& args, float* running_mean,
                      float* running_var, float* saved, float* y);
void batch_norm_infer(cudaStream_t s, const float* x, const float* gamma, const float* beta, const float* running_mean,
                      const float* running_var, int64_t outer, int64_t channels, int64_t inner, float epsilon,
                      float* y);
void batch_norm_backward(cudaStream_t s, const float* x, const float* dy, const float* gamma, const float* saved,
                         int64_t outer, int64_t channels, int64_t inner, float* dx, float* dgamma, float* dbeta);

}  // namespace cudl::cuda

#pragma once
// The persistent training step (mlp_step_plan.hpp says what it computes) on a stream: one
// cooperative launch of as many blocks as the GPU holds at once runs `Args::steps` steps of an
// MLP's training, each phase separated by a grid-wide barrier. Owns the kernel's scratch (the
// partial sums, tickets and barrier words) and, for callers that want it, the batch's buffers.
// CudaBackend::fused_mlp_steps runs it for fit(); tests and benchmarks use it directly.
#include <cuda_runtime.h>

#include <cstdint>

#include "mlp_step_plan.hpp"

namespace cudl::cuda {

class MlpStep {
 public:
  // For the current device, queued on `stream`. Throws Error when the device cannot launch
  // cooperative kernels.
  explicit MlpStep(cudaStream_t stream);
  ~MlpStep();
  MlpStep(const MlpStep&) = delete;
  MlpStep& operator=(const MlpStep&) = delete;

  // The grid: blocks resident at once (per multiprocessor, by occupancy, × multiprocessors),
  // halved by run() for as long as the GPU refuses a cooperative launch that large.
  int blocks() const { return blocks_; }
  int blocks_per_sm() const { return per_sm_; }

  // Plans `a` for the grid (its splits; the scratch fields are this object's) and queues one
  // launch of a.steps steps. Throws Error naming what the kernel cannot run (mlp_step::refusal),
  // and when the stream is being captured (the scratch may have to grow).
  void run(mlp_step::Args a);
  // `rounds` grid barriers on the step's grid and nothing else, queued (what one costs: profiles).
  void run_barriers(int64_t rounds);
  // A device buffer of at least `floats` floats for the steps' batch, activations and gradients
  // (grown on demand, after the stream's earlier work; valid until the next call).
  float* batch_buffers(int64_t floats);

 private:
  void reserve(int64_t partial_floats, int64_t tiles);

  cudaStream_t stream_;
  int blocks_ = 0, per_sm_ = 0;
  float* partials_ = nullptr;
  int64_t partial_capacity_ = 0;
  int* tickets_ = nullptr;  // zero between launches
  int64_t ticket_capacity_ = 0;
  unsigned* barrier_ = nullptr;  // arrivals (zero between launches) and generation
  float* batch_ = nullptr;
  int64_t batch_capacity_ = 0;
};

}  // namespace cudl::cuda

// The persistent training step's launcher (mlp_step.hpp); the kernel is mlp_step_kernel.cuh.
#include "mlp_step.hpp"

#include <string>

#include "check.hpp"
#include "cudl/error.hpp"
#define CUDL_ROWS_GEMM_BLOCK_ONLY  // product_block only: rows_gemm.cu defines the kernel
#include "rows_gemm_kernel.cuh"
#include "mlp_step_kernel.cuh"

namespace cudl::cuda {

MlpStep::MlpStep(cudaStream_t stream) : stream_(stream) {
  int device = 0, cooperative = 0, sms = 0;
  CUDL_CUDA_CHECK(cudaGetDevice(&device));
  CUDL_CUDA_CHECK(cudaDeviceGetAttribute(&cooperative, cudaDevAttrCooperativeLaunch, device));
  CUDL_REQUIRE(cooperative != 0, "the persistent training step needs cooperative launches, which device " +
                                     std::to_string(device) + " does not support");
  CUDL_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  CUDL_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm_, mlp_step::mlp_step_kernel,
                                                                rows_gemm::kThreads, 0));
  CUDL_REQUIRE(per_sm_ >= 1, "the persistent training step's kernel does not fit a multiprocessor");
  blocks_ = per_sm_ * sms;
  CUDL_CUDA_CHECK(cudaMalloc(&barrier_, 2 * sizeof(unsigned)));
  const cudaError_t zeroed = cudaMemsetAsync(barrier_, 0, 2 * sizeof(unsigned), stream_);
  if (zeroed != cudaSuccess) {  // no destructor runs for a constructor that throws
    cudaFree(barrier_);
    CUDL_CUDA_CHECK(zeroed);
  }
}

MlpStep::~MlpStep() {
  // Statuses ignored (a destructor does not throw); the owner synchronised the stream first.
  cudaFree(partials_);
  cudaFree(tickets_);
  cudaFree(barrier_);
  cudaFree(batch_);
}

namespace {

// `buffer` with room for at least `want` elements (`capacity` of them now): where it has less, a
// new one, allocated once the stream's earlier launches (which may still use the old one) are
// done, zeroed in stream order where `zeroed`.
template <typename T>
void grow(cudaStream_t stream, T*& buffer, int64_t& capacity, int64_t want, bool zeroed) {
  if (want <= capacity) return;
  CUDL_CUDA_CHECK(cudaStreamSynchronize(stream));
  CUDL_CUDA_CHECK(cudaFree(buffer));
  buffer = nullptr;
  capacity = 0;
  CUDL_CUDA_CHECK(cudaMalloc(&buffer, sizeof(T) * static_cast<size_t>(want)));
  if (zeroed) CUDL_CUDA_CHECK(cudaMemsetAsync(buffer, 0, sizeof(T) * static_cast<size_t>(want), stream));
  capacity = want;
}

}  // namespace

float* MlpStep::batch_buffers(int64_t floats) {
  grow(stream_, batch_, batch_capacity_, floats, false);
  return batch_;
}

void MlpStep::reserve(int64_t partial_floats, int64_t tiles) {
  grow(stream_, partials_, partial_capacity_, partial_floats, false);
  grow(stream_, tickets_, ticket_capacity_, tiles, true);  // tickets are zero between launches
}

void MlpStep::run_barriers(int64_t rounds) {
  CUDL_REQUIRE(!capturing(stream_), "the grid barrier's probe is launched eagerly, not captured");
  void* params[] = {&barrier_, &rounds};
  CUDL_CUDA_CHECK(cudaLaunchCooperativeKernel(reinterpret_cast<const void*>(mlp_step::barrier_kernel),
                                              dim3(static_cast<unsigned>(blocks_)), dim3(rows_gemm::kThreads),
                                              params, 0, stream_));
}

void MlpStep::run(mlp_step::Args a) {
  const std::string why = mlp_step::refusal(a);
  CUDL_REQUIRE(why.empty(), "the persistent training step cannot run this network: " + why);
  CUDL_REQUIRE(!capturing(stream_), "the persistent training step is launched eagerly, not captured");
  CUDL_REQUIRE(a.steps >= 1, "the persistent training step runs at least one step, not " + std::to_string(a.steps));
  for (;;) {
    mlp_step::plan(a, blocks_);
    reserve(mlp_step::partial_floats(a), mlp_step::max_tiles(a));
    a.partials = partials_;
    a.tickets = tickets_;
    a.barrier = barrier_;
    void* params[] = {&a};
    const cudaError_t status = cudaLaunchCooperativeKernel(reinterpret_cast<const void*>(mlp_step::mlp_step_kernel),
                                                           dim3(static_cast<unsigned>(blocks_)),
                                                           dim3(rows_gemm::kThreads), params, 0, stream_);
    // Fewer SMs than the occupancy query saw (MPS, a green context): the kernel runs on any grid
    // (its work is handed out round-robin), so halve it and try again. The error is not sticky.
    if (status != cudaErrorCooperativeLaunchTooLarge || blocks_ == 1) {
      CUDL_CUDA_CHECK(status);
      return;
    }
    cudaGetLastError();  // clear it
    blocks_ /= 2;
  }
}

}  // namespace cudl::cuda

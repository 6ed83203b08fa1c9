#pragma once
// Device-side helpers shared by the kernel files: activations (mirroring src/cpu/activation.hpp)
// and the 64-bit grid-stride loop.
#include <cstdint>

#include "cudl/backend.hpp"

namespace cudl::cuda {

__device__ __forceinline__ float relu(float z) { return z < 0.0f ? 0.0f : z; }  // NaN stays NaN
__device__ __forceinline__ float sigmoid(float z) { return 1.0f / (1.0f + expf(-z)); }

__device__ __forceinline__ float apply(Activation act, float z) {
  return act == Activation::kRelu ? relu(z) : act == Activation::kSigmoid ? sigmoid(z) : z;
}

}  // namespace cudl::cuda

#define CUDL_GRID_STRIDE(i, n) \
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < (n); i += static_cast<int64_t>(blockDim.x) * gridDim.x)

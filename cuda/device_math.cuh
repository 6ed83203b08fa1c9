#pragma once
// The 64-bit grid-stride loop of the kernel files. (The per-element formulas they call are in
// src/formulas/, shared with the CPU.)
#include <cstdint>

#define CUDL_GRID_STRIDE(i, n) \
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < (n); i += static_cast<int64_t>(blockDim.x) * gridDim.x)

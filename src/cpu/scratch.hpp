#pragma once
// CpuBackend's scratch buffers (member vectors reused from call to call), grown on demand.
#include <cstdint>
#include <vector>

namespace cudl::cpu {

// buffer's data, after growing it to at least `size` floats (it never shrinks).
inline float* grow(std::vector<float>& buffer, int64_t size) {
  if (static_cast<int64_t>(buffer.size()) < size) buffer.resize(static_cast<size_t>(size));
  return buffer.data();
}

}  // namespace cudl::cpu

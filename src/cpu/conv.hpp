#pragma once
// Internals of the CPU convolution (conv.cpp) that its tests depend on.
#include <cstdint>

namespace cudl::cpu {

// Floats of im2col matrix per chunk of samples (4 MiB: the first layers' matrices of a whole
// VGG batch would overflow the 32 MiB L3 of the machines we measure on; measured 2–5% faster
// than 64 MiB chunks on VGG16). A sample whose matrix is larger is processed alone.
constexpr int64_t kConvColumnBudget = int64_t{1} << 20;

}  // namespace cudl::cpu

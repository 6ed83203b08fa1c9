#pragma once
// Checks of data handed to the training entry points (fit, DeepBeliefNet::pretrain): NaN or an
// infinity would surface as "divergence" a step later, with advice to lower the learning rate;
// it is a data error, found once before training by one pass over the values.
#include <string>

#include "cudl/tensor.hpp"

namespace cudl::detail {

// Throws Error "WHO: WHAT holds NaN (or an infinity) at row R, column C (of SHAPE)" at the first
// non-finite value. A host tensor is scanned in place; of a device tensor only its column sums
// are read back, and the tensor itself only when one of them is not finite.
void require_finite(const Tensor& t, const std::string& who, const std::string& what);

}  // namespace cudl::detail

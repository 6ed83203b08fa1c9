// Shape helpers (include/cudl/tensor.hpp), apart from Tensor so that code without a backend (the
// data loaders and their fuzz harnesses) can use them.
#include <string>

#include "cudl/error.hpp"
#include "cudl/tensor.hpp"

namespace cudl {

std::string to_string(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

int64_t numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    CUDL_REQUIRE(d >= 0, "negative dimension in shape " + to_string(shape));
    CUDL_REQUIRE(!__builtin_mul_overflow(n, d, &n),
                 "shape " + to_string(shape) + " has more elements than a 64-bit count holds");
  }
  return n;
}

}  // namespace cudl

#include "nn/data_checks.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "cudl/backend.hpp"
#include "cudl/error.hpp"

namespace cudl::detail {

void require_finite(const Tensor& t, const std::string& who, const std::string& what) {
  std::vector<float> copy;
  if (t.device() != Device::kCpu) copy = t.to_vector();
  const float* v = copy.empty() ? t.data() : copy.data();
  const int64_t n = t.size(), cols = std::max<int64_t>(t.cols(), 1);
  for (int64_t i = 0; i < n; ++i) {
    if (std::isfinite(v[i])) continue;
    throw Error(who + ": " + what + " holds " + (std::isnan(v[i]) ? "NaN" : "an infinity") + " at row " +
                std::to_string(i / cols) + ", column " + std::to_string(i % cols) + " (of " + to_string(t.shape()) +
                ")");
  }
}

}  // namespace cudl::detail

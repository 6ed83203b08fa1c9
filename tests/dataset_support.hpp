#pragma once
// Small datasets shared by the Dataset tests (test_user_dataset.cpp, test_to_device.cpp).
#include <cstdint>
#include <string>

#include "cudl/data.hpp"
#include "cudl/dataset.hpp"

namespace cudl::testing {

// Rows 0..n-1 of f features; x(r, c) = r·100 + c, label r % classes.
inline InMemoryDataset counting(int64_t n, int64_t f = 3, int64_t classes = 4) {
  InMemoryDataset d;
  d.name = "counting";
  d.rows = n;
  d.features = f;
  d.classes = classes;
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t c = 0; c < f; ++c) d.x.push_back(static_cast<float>(r * 100 + c));
    d.y.push_back(static_cast<float>(r % classes));
  }
  return d;
}

// A dataset that holds nothing: each example is computed from its index (2 channels of 2×2).
class Generated : public Dataset {
 public:
  explicit Generated(int64_t n) : n_(n) {}
  int64_t size() const override { return n_; }
  Shape example_shape() const override { return {2, 2, 2}; }
  Shape target_shape() const override { return {}; }
  int64_t num_classes() const override { return 2; }
  void fill(const int64_t* idx, int64_t n, float* x, float* y) const override {
    check_indices(idx, n, "Generated::fill");
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t k = 0; k < 8; ++k) x[i * 8 + k] = static_cast<float>(k < 4 ? idx[i] % 7 : 10 + 2 * (idx[i] % 3));
      y[i] = static_cast<float>(idx[i] % 2);
    }
  }
  std::string describe() const override { return "generated: " + std::to_string(n_) + " rows"; }

 private:
  int64_t n_;
};

}  // namespace cudl::testing

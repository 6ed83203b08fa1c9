#pragma once
// Finite-difference gradient checks shared by the gradient tests (test_gradients.cpp,
// test_conv_layers.cpp).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "cudl/backend.hpp"
#include "cudl/tensor.hpp"

namespace cudl::testing {

// Central difference (loss(t[i] + eps) − loss(t[i] − eps)) / 2eps; t[i] is restored afterwards.
inline double central_difference(Tensor& t, int64_t i, float eps, const std::function<double()>& loss) {
  std::vector<float> v = t.to_vector();
  const float original = v[static_cast<size_t>(i)];
  v[static_cast<size_t>(i)] = original + eps;
  t.copy_from(v);
  const double plus = loss();
  v[static_cast<size_t>(i)] = original - eps;
  t.copy_from(v);
  const double minus = loss();
  v[static_cast<size_t>(i)] = original;
  t.copy_from(v);
  return (plus - minus) / (2.0 * static_cast<double>(eps));
}

// Numerical gradient of loss with respect to every entry of t.
inline std::vector<double> numerical_gradient(Tensor& t, float eps, const std::function<double()>& loss) {
  std::vector<double> g(static_cast<size_t>(t.size()));
  for (int64_t i = 0; i < t.size(); ++i) g[static_cast<size_t>(i)] = central_difference(t, i, eps, loss);
  return g;
}

struct Tolerance {
  double abs;   // per entry: |analytic − numeric| ≤ abs + rel·|numeric|
  double rel;
  double norm;  // whole vector: ‖analytic − numeric‖ ≤ norm·‖numeric‖
};

// Compares an analytic gradient with a numerical one, entry by entry and as a whole. The numeric
// gradient must not be negligible, or the comparison would prove nothing.
inline void expect_gradient_matches(const std::vector<float>& analytic, const std::vector<double>& numeric,
                                    const Tolerance& tol, const std::string& what) {
  ASSERT_EQ(analytic.size(), numeric.size()) << what;
  double diff2 = 0.0, norm2 = 0.0;
  for (size_t i = 0; i < numeric.size(); ++i) {
    const double a = analytic[i], n = numeric[i];
    EXPECT_NEAR(a, n, tol.abs + tol.rel * std::abs(n)) << what << " entry " << i;
    diff2 += (a - n) * (a - n);
    norm2 += n * n;
  }
  ASSERT_GT(std::sqrt(norm2), 1e-2) << what << ": the numerical gradient is ~0, the check is vacuous";
  EXPECT_LE(std::sqrt(diff2), tol.norm * std::sqrt(norm2)) << what << ": relative error of the whole gradient";
}

inline double dot(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0.0;
  for (size_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

// Two views of a and b, for Layer::bind (which takes vectors of move-only tensors).
inline std::vector<Tensor> views(const Tensor& a, const Tensor& b) {
  std::vector<Tensor> v;
  v.push_back(a.reshaped(a.shape()));
  v.push_back(b.reshaped(b.shape()));
  return v;
}

// For tests parameterised by activation: every activation, named in the test names.
inline auto every_activation() {
  return ::testing::Values(Activation::kIdentity, Activation::kRelu, Activation::kSigmoid);
}
inline std::string activation_name(const ::testing::TestParamInfo<Activation>& info) {
  return cudl::to_string(info.param);
}

}  // namespace cudl::testing

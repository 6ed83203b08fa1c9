#pragma once
// The one tolerance rule of the test suite: |actual − expected| ≤ abs + rel·|expected|.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

namespace cudl::testing {

inline bool close(double actual, double expected, double abs, double rel) {
  return std::fabs(actual - expected) <= abs + rel * std::fabs(expected);
}

// Checks every element; reports the first few mismatches with their index.
inline void expect_all_close(const std::vector<float>& actual, const std::vector<double>& expected, double abs,
                             double rel, const std::string& what = "") {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  int reported = 0;
  for (size_t i = 0; i < actual.size(); ++i) {
    if (!close(actual[i], expected[i], abs, rel) && reported++ < 5) {
      ADD_FAILURE() << what << " element " << i << ": actual " << actual[i] << ", expected " << expected[i]
                    << " (abs " << abs << ", rel " << rel << ")";
    }
  }
}

inline void expect_all_close(const std::vector<float>& actual, const std::vector<float>& expected, double abs,
                             double rel, const std::string& what = "") {
  expect_all_close(actual, std::vector<double>(expected.begin(), expected.end()), abs, rel, what);
}

}  // namespace cudl::testing

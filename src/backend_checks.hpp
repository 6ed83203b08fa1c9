#pragma once
// The argument checks shared by the Backend's public members (backend.cpp, backend_conv.cpp).
#include <cstdio>
#include <string>

#include "cudl/backend.hpp"
#include "cudl/error.hpp"

namespace cudl::detail {

inline void require_on(const Backend& backend, const Tensor& t, const char* op, const char* name) {
  CUDL_REQUIRE(!t.empty(), std::string(op) + ": tensor " + name + " is empty");
  if (&t.backend() != &backend) {
    char where[64];
    std::snprintf(where, sizeof where, "%p", static_cast<const void*>(&t.backend()));
    detail::fail(__FILE__, __LINE__,
                 std::string(op) + ": tensor " + name + " lives on another backend instance (" +
                     t.backend().describe() + " at " + where + "), not on this one (" + backend.describe() +
                     "); move it with Tensor::to()");
  }
}

inline void require_rank(const Tensor& t, int rank, const char* op, const char* name) {
  CUDL_REQUIRE(t.rank() == rank, std::string(op) + ": " + name + " must have rank " + std::to_string(rank) +
                                     ", found shape " + to_string(t.shape()));
}

inline void require_shape(const Tensor& t, const Shape& expected, const char* op, const char* name) {
  CUDL_REQUIRE(t.shape() == expected, std::string(op) + ": " + name + " expected shape " + to_string(expected) +
                                          ", found " + to_string(t.shape()));
}

// A counter tensor (make_counter) on `backend`, and its bits.
inline void require_counter(const Backend& backend, const Tensor& counter, const char* op) {
  require_on(backend, counter, op, "counter");
  require_shape(counter, {2}, op, "counter (a tensor from make_counter)");
}
inline const uint64_t* counter_bits(const Tensor& counter) {
  return reinterpret_cast<const uint64_t*>(counter.data());
}

inline void require_same_size(const Tensor& a, const Tensor& b, const char* op, const char* an, const char* bn) {
  CUDL_REQUIRE(a.size() == b.size(), std::string(op) + ": " + an + " " + to_string(a.shape()) + " and " + bn + " " +
                                         to_string(b.shape()) + " differ in size");
}

// The checks shared by the parameter updates: w, v, g of one size P on this backend, and a
// decayed prefix inside [0, P].
inline void require_update(const Backend& backend, const Tensor& w, const Tensor& v, const Tensor& g,
                           int64_t decayed, const char* op, const char* v_name = "v") {
  require_on(backend, w, op, "w");
  require_on(backend, v, op, v_name);
  require_on(backend, g, op, "g");
  require_same_size(w, v, op, "w", v_name);
  require_same_size(w, g, op, "w", "g");
  CUDL_REQUIRE(decayed >= 0 && decayed <= w.size(), std::string(op) + ": decayed count " + std::to_string(decayed) +
                                                        " outside [0, " + std::to_string(w.size()) + "]");
}


}  // namespace cudl::detail

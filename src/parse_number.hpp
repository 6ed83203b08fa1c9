#pragma once
// Whole-string number parsing for text read from files (checkpoint metadata, layer settings):
// the entire text must be the number, in range; otherwise an Error "WHAT: not an integer: 'TEXT'"
// (or "not an unsigned integer", "not a finite number").
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "cudl/error.hpp"

namespace cudl::detail {

inline int64_t parse_i64(const std::string& text, const std::string& what) {
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  CUDL_REQUIRE(!text.empty() && end == text.c_str() + text.size() && errno == 0,
               what + ": not an integer: '" + text + "'");
  return v;
}

// Decimal digits only: strtoull would accept "-1" as 2^64 − 1.
inline uint64_t parse_u64(const std::string& text, const std::string& what) {
  errno = 0;
  char* end = nullptr;
  const unsigned long long v = std::strtoull(text.c_str(), &end, 10);
  CUDL_REQUIRE(!text.empty() && text[0] >= '0' && text[0] <= '9' && end == text.c_str() + text.size() && errno == 0,
               what + ": not an unsigned integer: '" + text + "'");
  return v;
}

inline float parse_f32(const std::string& text, const std::string& what) {
  errno = 0;
  char* end = nullptr;
  const float v = std::strtof(text.c_str(), &end);
  CUDL_REQUIRE(!text.empty() && end == text.c_str() + text.size() && errno == 0 && std::isfinite(v),
               what + ": not a finite number: '" + text + "'");
  return v;
}

}  // namespace cudl::detail

#pragma once
// The one error type of cudl. Every failure (bad input, bad shape, a failed CUDA/cuBLAS/cuDNN
// call, divergence) is reported by throwing cudl::Error; the library never exits or aborts.
#include <stdexcept>
#include <string>

namespace cudl {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

namespace detail {
// Throws Error("<file>:<line>: <message>"). Used by CUDL_REQUIRE.
[[noreturn]] void fail(const char* file, int line, const std::string& message);
}  // namespace detail

}  // namespace cudl

// CUDL_REQUIRE(cond, msg): throws cudl::Error naming file:line and msg when cond is false.
// msg is any expression convertible to std::string and is evaluated only on failure.
#define CUDL_REQUIRE(cond, msg)                                       \
  do {                                                                \
    if (!(cond)) ::cudl::detail::fail(__FILE__, __LINE__, (msg));     \
  } while (0)

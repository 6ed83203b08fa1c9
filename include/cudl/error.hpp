#pragma once
/// @file
/// The one error type of cudl. Every failure (bad input, bad shape, a failed CUDA/cuBLAS/cuDNN
/// call, divergence) is reported by throwing cudl::Error (divergence as its subclass Diverged,
/// which says where); the library never exits or aborts.
#include <cstdint>
#include <stdexcept>
#include <string>

namespace cudl {

/// What every failure of cudl throws. what() says what was expected and what was found; checks
/// inside the library start it with the file and line that failed, and a failed CUDA, cuBLAS or
/// cuDNN call adds that library's own status text.
class Error : public std::runtime_error {
 public:
  /// An error whose what() is `what`.
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

/// Training stopped because a loss became non-finite or too large: fit() / train() (the mean loss
/// of a minibatch) or DeepBeliefNet::pretrain (an RBM's reconstruction error over an epoch). The
/// message names where and the learning rate, and suggests a lower one.
class Diverged : public Error {
 public:
  /// Training: epoch and minibatch (both 1-based) and that minibatch's mean loss.
  Diverged(int epoch, int64_t minibatch, double value, float learn_rate);
  /// Pretraining: RBM `layer` (1-based) at `epoch`, with its reconstruction error.
  static Diverged pretraining(int64_t layer, int epoch, double value, float learn_rate);

  int64_t layer = 0;      ///< the RBM (1-based) when pretraining diverged, 0 in training
  int epoch = 0;          ///< 1-based
  int64_t minibatch = 0;  ///< 1-based within the epoch; 0 for pretraining (checked once per epoch)
  double value = 0.0;     ///< the mean loss or reconstruction error

 private:
  Diverged(const std::string& what, int64_t layer, int epoch, int64_t minibatch, double value);
};

namespace detail {
// Throws Error("<file>:<line>: <message>"). Used by CUDL_REQUIRE.
[[noreturn]] void fail(const char* file, int line, const std::string& message);
}  // namespace detail

}  // namespace cudl

/// Throws cudl::Error naming file:line and `msg` when `cond` is false. `msg` is any expression
/// convertible to std::string and is evaluated only on failure.
#define CUDL_REQUIRE(cond, msg)                                       \
  do {                                                                \
    if (!(cond)) ::cudl::detail::fail(__FILE__, __LINE__, (msg));     \
  } while (0)

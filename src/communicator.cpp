#include "cudl/communicator.hpp"

#include <cstdio>
#include <cstdlib>

#include "cudl/error.hpp"

namespace cudl {

const char* to_string(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum: return "sum";
    case ReduceOp::kMin: return "min";
    case ReduceOp::kMax: return "max";
  }
  return "?";
}

namespace {

void require_root(int root) {
  CUDL_REQUIRE(root == 0, "broadcast: root " + std::to_string(root) + " is not a rank of a 1-rank communicator");
}

}  // namespace

void LocalCommunicator::all_reduce(Tensor&, ReduceOp) {}
void LocalCommunicator::all_reduce_mean(Tensor&) {}
void LocalCommunicator::all_reduce(double*, int64_t n, ReduceOp) {
  CUDL_REQUIRE(n >= 0, "all_reduce: a negative count " + std::to_string(n));
}
void LocalCommunicator::broadcast(Tensor&, int root) { require_root(root); }
void LocalCommunicator::broadcast(double*, int64_t n, int root) {
  CUDL_REQUIRE(n >= 0, "broadcast: a negative count " + std::to_string(n));
  require_root(root);
}

void LocalCommunicator::abort(int code, const std::string& why) {
  std::fprintf(stderr, "cudl: rank 0: %s\n", why.c_str());
  std::fflush(stderr);
  std::_Exit(code == 0 ? 1 : code);
}

}  // namespace cudl

#pragma once
// The MPI world of the test programs that ctest runs as `mpirun -np 2` (mpi_main.cpp starts MPI,
// runs every test on every rank, and passes only if every rank passed). Every test makes the
// same collective calls on every rank, and checks only after them: an ASSERT that returned early
// on one rank would leave the other waiting.
#include <algorithm>
#include <cmath>
#include <vector>

#include "cudl/communicator.hpp"

namespace cudl::testing {

// The communicator of every rank the launcher started (valid while the tests run).
Communicator& world();

// The largest |a[i] − b[i]| (infinite when the sizes differ): how far one rank's parameters are
// from the one-process reference it trained itself.
inline double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double d = a.size() == b.size() ? 0.0 : INFINITY;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) d = std::max(d, std::fabs(double(a[i]) - b[i]));
  return d;
}

}  // namespace cudl::testing

// main() of the test programs ctest runs under mpirun (mpi_world.hpp).
#include <gtest/gtest.h>

#include <memory>

#include "cudl/mpi.hpp"
#include "mpi/mpi_world.hpp"

namespace {
cudl::Communicator* g_world = nullptr;
}  // namespace

cudl::Communicator& cudl::testing::world() { return *g_world; }

int main(int argc, char** argv) {
  int status = 0;
  {
    cudl::mpi::Session session(&argc, &argv);
    std::unique_ptr<cudl::Communicator> world = session.world();
    g_world = world.get();
    ::testing::InitGoogleTest(&argc, argv);
    status = RUN_ALL_TESTS();
    // The job passes only if every rank's tests passed.
    double failed = status != 0 ? 1.0 : 0.0;
    world->all_reduce(&failed, 1, cudl::ReduceOp::kMax);
    status = failed != 0.0 ? 1 : 0;
    g_world = nullptr;
  }
  return status;
}

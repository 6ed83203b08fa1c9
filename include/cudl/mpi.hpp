#pragma once
/// @file
/// MPI for data-parallel training: libcudl_mpi (CMake target cudl::mpi), built where the
/// configure step finds an MPI (Debian: libopenmpi-dev). It holds every MPI call of cudl, so
/// libcudl itself needs no MPI library at load time. No MPI type appears here.
///
///     int main(int argc, char** argv) {
///       cudl::mpi::Session mpi(&argc, &argv);       // MPI_Init_thread … MPI_Finalize
///       std::unique_ptr<cudl::Communicator> world = mpi.world();
///       ...  fit_options.communicator = world.get();  // run as: mpirun -np 4 ./train
///     }
///
/// Tensors on the CPU are reduced in place. Tensors on a GPU are staged through host memory (the
/// backend's page-locked staging buffer, Backend::host_staging, reused from call to call: copied
/// to the host, reduced there, copied back, so the step cannot be captured as a CUDA graph and
/// fit() runs it eagerly); describe() says so. For GPU tensors, NCCL is the fast path.
#include <memory>
#include <string>

#include "cudl/communicator.hpp"

/// @namespace cudl::mpi
/// MPI for data-parallel training (libcudl_mpi): the Session that initialises MPI and its
/// communicator over every rank.
namespace cudl::mpi {

/// Whether this process was started by an MPI launcher (mpirun, mpiexec, srun): a rank count in
/// the environment (OMPI_COMM_WORLD_SIZE, PMI_SIZE, PMIX_RANK, SLURM_NTASKS with SLURM_PROCID).
/// Reads the environment only, so it can be asked before MPI is initialised.
bool launched_by_mpi();

/// MPI for the life of the object: initialises MPI (thread level FUNNELED: only the thread that
/// made the Session calls MPI; cudl's CPU worker threads never do) unless the program already
/// did, and finalises it on destruction if it initialised it. One Session per process.
class Session {
 public:
  /// Initialises MPI with the program's arguments (MPI_Init_thread, which may consume its own
  /// arguments from them), unless it already is. Throws Error when MPI fails or cannot give
  /// MPI_THREAD_FUNNELED.
  Session(int* argc, char*** argv);
  /// Finalises MPI if this Session initialised it.
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  /// A communicator over every rank of the job (a duplicate of MPI_COMM_WORLD, its errors
  /// returned as cudl::Error naming the call, the rank and MPI's message). It must be destroyed
  /// before the Session.
  std::unique_ptr<Communicator> world();
  /// "Open MPI v4.1.4, …" (MPI_Get_library_version's first line).
  static std::string library_version();

 private:
  bool finalize_ = false;
};

}  // namespace cudl::mpi

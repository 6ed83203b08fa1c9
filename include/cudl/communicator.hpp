#pragma once
/// @file
/// Communicator: the collective operations data-parallel training needs (docs/design/
/// data-parallel.md), with no MPI or NCCL type in sight. fit() and Trainer use one through
/// FitOptions::communicator; the engines live in their own libraries so that libcudl needs neither
/// at load time: cudl::mpi::Session::world() (libcudl_mpi, cudl/mpi.hpp) gives an MPI one.
///
///     cudl::mpi::Session mpi(&argc, &argv);
///     std::unique_ptr<cudl::Communicator> world = mpi.world();
///     cudl::FitOptions o;  o.batch = 32;  o.communicator = world.get();   // 32 rows per rank
///
/// Every collective is called by every rank of the communicator in the same order (as in MPI);
/// a rank that skips one makes the others wait. Errors are cudl::Error naming the call, the rank
/// and the engine's own message.
#include <cstdint>
#include <memory>
#include <string>

#include "cudl/tensor.hpp"  // Tensor, and Backend declared

namespace cudl {

/// How all_reduce combines the ranks' values, element by element.
enum class ReduceOp { kSum, kMin, kMax };
/// "sum", "min" or "max".
const char* to_string(ReduceOp op);

/// The collective operations of data-parallel training, over the ranks (processes) of one job.
///
/// Every collective is called by every rank in the same order (as in MPI); a rank that skips one
/// makes the others wait. Errors are cudl::Error naming the call, the rank and the engine's own
/// message. Each rank calls its communicator from one thread at a time.
class Communicator {
 public:
  virtual ~Communicator() = default;

  /// This process's number: 0 .. size() − 1.
  virtual int rank() const = 0;
  /// Number of ranks in the job.
  virtual int size() const = 0;
  /// This rank's number among the ranks on its machine (0 .. ranks there − 1): the GPU to use
  /// when each machine runs one rank per GPU.
  virtual int local_rank() const = 0;

  /// In place: every element of t (a tensor on any backend) ← op over the ranks' t, which must
  /// have the same number of elements on every rank. Synchronises with t's backend unless the
  /// engine queues the reduction on the backend's stream (capturable()).
  virtual void all_reduce(Tensor& t, ReduceOp op = ReduceOp::kSum) = 0;
  /// t ← (Σ over ranks of t) / size(): the data-parallel gradient (as PyTorch's DDP averages).
  virtual void all_reduce_mean(Tensor& t) = 0;
  /// In place on host values (n of them on every rank).
  virtual void all_reduce(double* values, int64_t n, ReduceOp op) = 0;
  /// t on every rank ← t on `root` (same number of elements on every rank).
  virtual void broadcast(Tensor& t, int root) = 0;
  /// values[0, n) on every rank ← those on `root` (host memory).
  virtual void broadcast(double* values, int64_t n, int root) = 0;
  /// Returns once every rank has called it.
  virtual void barrier() = 0;
  /// Ends the whole job: prints "cudl: rank R: " and `why` on stderr and makes every rank exit with a
  /// non-zero status (MPI_Abort), so that no rank waits forever for one that failed. Never returns.
  [[noreturn]] virtual void abort(int code, const std::string& why) = 0;

  /// Whether all_reduce and all_reduce_mean on tensors of `backend` are queued on its stream
  /// without a host synchronisation, so that a training step holding them can be captured and
  /// replayed (StepLaunch::kAuto). When not, fit() queues the steps eagerly.
  virtual bool capturable(const Backend& backend) const = 0;
  /// One line for reports: the engine, the size and how device tensors travel, e.g.
  /// "mpi: Open MPI v4.1.4, 2 ranks on 1 host, GPU tensors staged through the backend's page-locked
  /// host buffer (this MPI is not CUDA-aware)".
  virtual std::string describe() const = 0;
};

/// One process alone (size 1): every collective leaves its arguments as they are. What fit()
/// behaves as without a communicator; useful for tests and for code written for many ranks.
class LocalCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  int local_rank() const override { return 0; }
  void all_reduce(Tensor& t, ReduceOp op = ReduceOp::kSum) override;
  void all_reduce_mean(Tensor& t) override;
  void all_reduce(double* values, int64_t n, ReduceOp op) override;
  void broadcast(Tensor& t, int root) override;
  void broadcast(double* values, int64_t n, int root) override;
  void barrier() override {}
  /// Prints "cudl: rank 0: " and `why` on stderr and exits the process with `code` (1 when `code` is 0).
  [[noreturn]] void abort(int code, const std::string& why) override;
  bool capturable(const Backend&) const override { return true; }
  std::string describe() const override { return "local: 1 rank"; }
};

/// NCCL, for tensors on a GPU backend (make_backend(Device::kCuda)): a communicator over the ranks
/// of `bootstrap` (same ranks, same numbers; typically cudl::mpi's world), whose tensor collectives
/// are queued on the backend's stream, so that the gradient all-reduce sits inside the captured
/// training step. Rank 0 makes NCCL's unique id and bootstrap broadcasts it; host values, the
/// barrier and abort go through bootstrap. Every rank calls this together; both arguments must
/// outlive the result. NCCL lives in its own plugin, libcudl_nccl.so, loaded now (beside
/// libcudl.so, or $CUDL_NCCL_PLUGIN), so that nothing else needs NCCL. Throws cudl::Error when the
/// plugin cannot be loaded, gpu is not a GPU backend, or NCCL fails (naming the call, the rank and
/// NCCL's message; e.g. NCCL refuses two ranks on one GPU). A captured step that holds its
/// all-reduce must go first: NCCL (2.26 and later) waits, when the communicator is destroyed or
/// aborted, until every CUDA graph that captured its collectives is destroyed. fit() does this
/// itself; a Trainer of one's own is destroyed, or given set_communicator(nullptr), before it.
///
///     cudl::mpi::Session mpi(&argc, &argv);
///     auto world = mpi.world();
///     cudl::BackendOptions bo;  bo.gpu = world->local_rank();   // one GPU per rank
///     auto gpu = cudl::make_backend(cudl::Device::kCuda, bo);
///     auto nccl = cudl::make_nccl_communicator(*gpu, *world);
///     fit_options.communicator = nccl.get();
std::unique_ptr<Communicator> make_nccl_communicator(Backend& gpu, Communicator& bootstrap);

}  // namespace cudl

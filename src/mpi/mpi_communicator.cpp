// libcudl_mpi: the MPI communicator (include/cudl/mpi.hpp). Every MPI status is checked; an
// error names the call, the rank and MPI's own message.
#include <mpi.h>
#if __has_include(<mpi-ext.h>)
#include <mpi-ext.h>  // Open MPI's MPIX_Query_cuda_support
#endif

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "cudl/backend.hpp"
#include "cudl/error.hpp"
#include "cudl/mpi.hpp"

namespace cudl::mpi {
namespace {

int world_rank() {
  int initialized = 0, finalized = 0, rank = -1;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

void check(int status, const char* call) {
  if (status == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  if (MPI_Error_string(status, text, &length) != MPI_SUCCESS) std::snprintf(text, sizeof text, "error %d", status);
  throw Error(std::string(call) + " failed on rank " + std::to_string(world_rank()) + ": " + text);
}

MPI_Op mpi_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum: return MPI_SUM;
    case ReduceOp::kMin: return MPI_MIN;
    case ReduceOp::kMax: return MPI_MAX;
  }
  throw Error("all_reduce: unknown ReduceOp");
}

// MPI counts are ints: longer buffers go in pieces of at most 2^30 elements.
constexpr int64_t kPiece = int64_t{1} << 30;

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator() {
    check(MPI_Comm_dup(MPI_COMM_WORLD, &comm_), "MPI_Comm_dup");
    check(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
    check(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
    check(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
    MPI_Comm local = MPI_COMM_NULL;
    check(MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local), "MPI_Comm_split_type");
    check(MPI_Comm_rank(local, &local_rank_), "MPI_Comm_rank");
    check(MPI_Comm_free(&local), "MPI_Comm_free");
    int first_here = local_rank_ == 0 ? 1 : 0;
    check(MPI_Allreduce(&first_here, &hosts_, 1, MPI_INT, MPI_SUM, comm_), "MPI_Allreduce");
#if defined(MPIX_CUDA_AWARE_SUPPORT) && MPIX_CUDA_AWARE_SUPPORT
    cuda_aware_ = MPIX_Query_cuda_support() == 1;
#endif
  }
  ~MpiCommunicator() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Comm_free(&comm_);  // a failure here cannot be reported from a destructor
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_rank() const override { return local_rank_; }

  void all_reduce(Tensor& t, ReduceOp op) override {
    on_host(t, [&](float* v, int64_t n) { reduce(v, n, MPI_FLOAT, mpi_op(op)); });
  }
  void all_reduce_mean(Tensor& t) override {
    const float inverse = 1.0f / static_cast<float>(size_);
    on_host(t, [&](float* v, int64_t n) {
      reduce(v, n, MPI_FLOAT, MPI_SUM);
      for (int64_t i = 0; i < n; ++i) v[i] *= inverse;
    });
  }
  void all_reduce(double* values, int64_t n, ReduceOp op) override {
    CUDL_REQUIRE(n >= 0 && (n == 0 || values != nullptr), "all_reduce: " + std::to_string(n) + " values");
    reduce(values, n, MPI_DOUBLE, mpi_op(op));
  }
  void broadcast(Tensor& t, int root) override {
    require_root(root);
    on_host(t, [&](float* v, int64_t n) { bcast(v, n, MPI_FLOAT, root); });
  }
  void broadcast(double* values, int64_t n, int root) override {
    CUDL_REQUIRE(n >= 0 && (n == 0 || values != nullptr), "broadcast: " + std::to_string(n) + " values");
    require_root(root);
    bcast(values, n, MPI_DOUBLE, root);
  }
  void barrier() override { check(MPI_Barrier(comm_), "MPI_Barrier"); }

  [[noreturn]] void abort(int code, const std::string& why) override {
    std::fprintf(stderr, "cudl: rank %d of %d: %s\n", rank_, size_, why.c_str());
    std::fflush(stderr);
    MPI_Abort(comm_, code == 0 ? 1 : code);
    std::_Exit(code == 0 ? 1 : code);  // MPI_Abort returned (it should not): end this rank anyway
  }

  bool capturable(const Backend& backend) const override { return backend.device() == Device::kCpu; }

  std::string describe() const override {
    return "mpi: " + Session::library_version() + ", " + std::to_string(size_) + " rank" + (size_ == 1 ? "" : "s") +
           " on " + std::to_string(hosts_) + " host" + (hosts_ == 1 ? "" : "s") +
           ", GPU tensors staged through the backend's page-locked host buffer (this MPI is " +
           (cuda_aware_ ? "" : "not ") + "CUDA-aware)";
  }

 private:
  void require_root(int root) const {
    CUDL_REQUIRE(root >= 0 && root < size_,
                 "broadcast: root " + std::to_string(root) + " is not a rank of " + std::to_string(size_));
  }
  // f(host pointer, count) on t's values: in place on the CPU (after its queued work), else on a
  // copy in the backend's host staging buffer (page-locked on a CUDA backend, reused from call to
  // call) that is written back.
  template <typename F>
  void on_host(Tensor& t, F&& f) {
    if (t.empty()) return;
    Backend& backend = t.backend();
    if (t.device() == Device::kCpu) {
      backend.synchronize();
      f(t.data(), t.size());
      return;
    }
    const std::size_t bytes = static_cast<std::size_t>(t.size()) * sizeof(float);
    auto* host = static_cast<float*>(backend.host_staging(bytes));
    backend.copy_to_host(t.data(), host, bytes);
    f(host, t.size());
    backend.copy_from_host(host, t.data(), bytes);
  }
  void reduce(void* values, int64_t n, MPI_Datatype type, MPI_Op op) {
    int bytes = 0;
    check(MPI_Type_size(type, &bytes), "MPI_Type_size");
    for (int64_t first = 0; first < n; first += kPiece) {
      const int count = static_cast<int>(std::min(kPiece, n - first));
      check(MPI_Allreduce(MPI_IN_PLACE, static_cast<char*>(values) + first * bytes, count, type, op, comm_),
            "MPI_Allreduce");
    }
  }
  void bcast(void* values, int64_t n, MPI_Datatype type, int root) {
    int bytes = 0;
    check(MPI_Type_size(type, &bytes), "MPI_Type_size");
    for (int64_t first = 0; first < n; first += kPiece) {
      const int count = static_cast<int>(std::min(kPiece, n - first));
      check(MPI_Bcast(static_cast<char*>(values) + first * bytes, count, type, root, comm_), "MPI_Bcast");
    }
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1, local_rank_ = 0, hosts_ = 1;
  bool cuda_aware_ = false;
};

}  // namespace

bool launched_by_mpi() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS"})
    if (std::getenv(name) != nullptr) return true;
  return std::getenv("SLURM_NTASKS") != nullptr && std::getenv("SLURM_PROCID") != nullptr &&
         std::getenv("SLURM_STEP_ID") != nullptr;  // inside srun, not merely inside an allocation
}

Session::Session(int* argc, char*** argv) {
  int initialized = 0;
  check(MPI_Initialized(&initialized), "MPI_Initialized");
  if (initialized) return;  // the program's own MPI_Init: it finalises too
  int provided = 0;
  check(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
  finalize_ = true;
  if (provided < MPI_THREAD_FUNNELED) {
    MPI_Finalize();
    finalize_ = false;
    throw Error("MPI_Init_thread: this MPI gives thread level " + std::to_string(provided) +
                ", cudl needs MPI_THREAD_FUNNELED (" + std::to_string(MPI_THREAD_FUNNELED) + ")");
  }
}

Session::~Session() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalize_ && !finalized) MPI_Finalize();
}

std::unique_ptr<Communicator> Session::world() { return std::make_unique<MpiCommunicator>(); }

std::string Session::library_version() {
  char text[MPI_MAX_LIBRARY_VERSION_STRING] = {};
  int length = 0;
  if (MPI_Get_library_version(text, &length) != MPI_SUCCESS) return "MPI (version unknown)";
  std::string s(text, static_cast<size_t>(std::max(0, length)));
  const auto cut = s.find_first_of(",\n");
  return cut == std::string::npos ? s : s.substr(0, cut);
}

}  // namespace cudl::mpi

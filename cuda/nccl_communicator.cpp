// libcudl_nccl.so: the NCCL communicator, a plugin that libcudl loads for make_nccl_communicator
// (include/cudl/communicator.hpp; src/plugin/nccl_plugin_abi.hpp). Tensor collectives are queued on
// the CudaBackend's stream, so they can be captured in a CUDA graph with the rest of the step;
// host values go through the bootstrap communicator. Every CUDA and NCCL status is checked.
#include <cuda_runtime.h>
#include <nccl.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "cudl/cuda_backend.hpp"
#include "cudl/error.hpp"
#include "cudl/version.hpp"
#include "plugin/nccl_plugin_abi.hpp"

namespace cudl::nccl {
namespace {

// The NCCL library's version, e.g. "2.28.9" (NCCL ≥ 2.9 codes it as major·10000 + minor·100 + patch).
std::string version() {
  int v = 0;
  if (ncclGetVersion(&v) != ncclSuccess) return "(version unknown)";
  return std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) + "." + std::to_string(v % 100);
}

void check_cuda(cudaError_t status, const char* call, int rank) {
  if (status != cudaSuccess)
    throw Error(std::string(call) + " failed on rank " + std::to_string(rank) + ": " + cudaGetErrorName(status) +
                ": " + cudaGetErrorString(status));
}

void check(ncclResult_t status, const char* call, int rank, ncclComm_t comm = nullptr) {
  if (status == ncclSuccess) return;
  std::string text = ncclGetErrorString(status);
  const char* last = ncclGetLastError(comm);  // the detail (e.g. "Duplicate GPU detected"), when NCCL kept one
  if (last != nullptr && last[0] != '\0') text += " (" + std::string(last) + ")";
  throw Error(std::string(call) + " failed on rank " + std::to_string(rank) + ": " + text);
}

ncclRedOp_t nccl_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum: return ncclSum;
    case ReduceOp::kMin: return ncclMin;
    case ReduceOp::kMax: return ncclMax;
  }
  throw Error("all_reduce: unknown ReduceOp");
}

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(CudaBackend& gpu, Communicator& bootstrap)
      : gpu_(gpu), bootstrap_(bootstrap), rank_(bootstrap.rank()), size_(bootstrap.size()) {
    stream_ = static_cast<cudaStream_t>(gpu.stream());
    check_cuda(cudaStreamGetDevice(stream_, &device_), "cudaStreamGetDevice", rank_);
    check_cuda(cudaSetDevice(device_), "cudaSetDevice", rank_);
    // Rank 0's unique id, to every rank through the bootstrap: its 128 bytes as 32 exact 32-bit
    // integers in doubles, so that any engine's broadcast of doubles carries them unchanged.
    ncclUniqueId id;
    std::memset(&id, 0, sizeof id);
    if (rank_ == 0) check(ncclGetUniqueId(&id), "ncclGetUniqueId", rank_);
    constexpr int kWords = sizeof(ncclUniqueId) / 4;
    double words[kWords];
    for (int i = 0; i < kWords; ++i) {
      uint32_t w = 0;
      std::memcpy(&w, id.internal + 4 * i, 4);
      words[i] = static_cast<double>(w);
    }
    bootstrap_.broadcast(words, kWords, 0);
    for (int i = 0; i < kWords; ++i) {
      const auto w = static_cast<uint32_t>(words[i]);
      std::memcpy(id.internal + 4 * i, &w, 4);
    }
    check(ncclCommInitRank(&comm_, size_, id, rank_), "ncclCommInitRank", rank_);
  }
  ~NcclCommunicator() override {
    if (comm_ != nullptr) ncclCommDestroy(comm_);  // a failure cannot be reported from a destructor
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_rank() const override { return bootstrap_.local_rank(); }

  void all_reduce(Tensor& t, ReduceOp op) override {
    require_on_gpu(t, "all_reduce");
    check(ncclAllReduce(t.data(), t.data(), static_cast<size_t>(t.size()), ncclFloat, nccl_op(op), comm_, stream_),
          "ncclAllReduce", rank_, comm_);
  }
  void all_reduce_mean(Tensor& t) override {
    require_on_gpu(t, "all_reduce_mean");
    check(ncclAllReduce(t.data(), t.data(), static_cast<size_t>(t.size()), ncclFloat, ncclAvg, comm_, stream_),
          "ncclAllReduce", rank_, comm_);
  }
  void all_reduce(double* values, int64_t n, ReduceOp op) override { bootstrap_.all_reduce(values, n, op); }
  void broadcast(Tensor& t, int root) override {
    require_on_gpu(t, "broadcast");
    CUDL_REQUIRE(root >= 0 && root < size_,
                 "broadcast: root " + std::to_string(root) + " is not a rank of " + std::to_string(size_));
    check(ncclBroadcast(t.data(), t.data(), static_cast<size_t>(t.size()), ncclFloat, root, comm_, stream_),
          "ncclBroadcast", rank_, comm_);
  }
  void broadcast(double* values, int64_t n, int root) override { bootstrap_.broadcast(values, n, root); }
  void barrier() override {
    check_cuda(cudaStreamSynchronize(stream_), "cudaStreamSynchronize", rank_);
    bootstrap_.barrier();
  }
  [[noreturn]] void abort(int code, const std::string& why) override {
    ncclCommAbort(comm_);  // frees this rank's NCCL operations, so that the bootstrap's abort is not stuck
    comm_ = nullptr;
    bootstrap_.abort(code, why);
    std::abort();  // not reached: Communicator::abort does not return
  }
  bool capturable(const Backend& backend) const override { return &backend == &gpu_; }
  std::string describe() const override {
    return "nccl " + version() + ": " + std::to_string(size_) + " rank" + (size_ == 1 ? "" : "s") + " (GPU " +
           std::to_string(device_) + " here), all-reduces queued on the backend's stream; bootstrap " +
           bootstrap_.describe();
  }

 private:
  void require_on_gpu(const Tensor& t, const char* what) const {
    CUDL_REQUIRE(&t.backend() == &gpu_, std::string(what) +
                                            ": the NCCL communicator reduces tensors of the CudaBackend it was made "
                                            "for; this one lives on " + t.backend().describe());
  }

  CudaBackend& gpu_;
  Communicator& bootstrap_;
  int rank_, size_;
  int device_ = 0;
  cudaStream_t stream_ = nullptr;
  ncclComm_t comm_ = nullptr;
};

std::unique_ptr<Communicator> make(Backend& gpu, Communicator& bootstrap) {
  auto* cuda = dynamic_cast<CudaBackend*>(&gpu);
  CUDL_REQUIRE(cuda != nullptr, "make_nccl_communicator: NCCL needs a GPU backend, got " + gpu.describe());
  return std::make_unique<NcclCommunicator>(*cuda, bootstrap);
}

const detail::NcclPluginApi kApi{detail::kNcclPluginAbi, CUDL_VERSION_STRING, &make};

}  // namespace
}  // namespace cudl::nccl

// The name is cudl::detail::kNcclPluginEntry; extern "C", so dlsym finds it unmangled.
extern "C" __attribute__((visibility("default"))) const cudl::detail::NcclPluginApi* cudl_nccl_plugin_v1() {
  return &cudl::nccl::kApi;
}

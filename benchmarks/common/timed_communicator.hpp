#pragma once
// A Communicator that forwards to another and times the gradient all-reduces (all_reduce_mean on
// the host clock), so a data-parallel benchmark can split each step into compute and all-reduce.
// The time is the all-reduce's only where it runs synchronously (MPI: on the CPU, or staged from
// a GPU); an engine that queues it on a stream (capturable for that backend) returns at once,
// and `measured()` is then false.
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "cudl/backend.hpp"
#include "cudl/communicator.hpp"

namespace bench {

class TimedCommunicator final : public cudl::Communicator {
 public:
  TimedCommunicator(cudl::Communicator& inner, const cudl::Backend& backend)
      : inner_(inner), measured_(!(backend.device() != cudl::Device::kCpu && inner.capturable(backend))) {}

  int rank() const override { return inner_.rank(); }
  int size() const override { return inner_.size(); }
  int local_rank() const override { return inner_.local_rank(); }
  void all_reduce(cudl::Tensor& t, cudl::ReduceOp op) override { inner_.all_reduce(t, op); }
  void all_reduce_mean(cudl::Tensor& t) override {
    const auto t0 = std::chrono::steady_clock::now();
    inner_.all_reduce_mean(t);
    seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ++calls_;
  }
  void all_reduce(double* values, int64_t n, cudl::ReduceOp op) override { inner_.all_reduce(values, n, op); }
  void broadcast(cudl::Tensor& t, int root) override { inner_.broadcast(t, root); }
  void broadcast(double* values, int64_t n, int root) override { inner_.broadcast(values, n, root); }
  void barrier() override { inner_.barrier(); }
  [[noreturn]] void abort(int code, const std::string& why) override {
    inner_.abort(code, why);
    std::abort();  // not reached: Communicator::abort does not return
  }
  bool capturable(const cudl::Backend& backend) const override { return inner_.capturable(backend); }
  std::string describe() const override { return inner_.describe(); }

  double seconds() const { return seconds_; }  // in all_reduce_mean, summed
  int64_t calls() const { return calls_; }
  bool measured() const { return measured_; }

 private:
  cudl::Communicator& inner_;
  bool measured_;
  double seconds_ = 0.0;
  int64_t calls_ = 0;
};

}  // namespace bench

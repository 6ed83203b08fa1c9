#pragma once
// A small fixed-size thread pool for the CPU backend. Between jobs a worker polls for the next one
// for a bounded time (spin(), default kDefaultSpin, CUDL_SPIN_US overrides), then sleeps on a
// condition variable, so an idle pool costs nothing; run()'s caller waits for the workers the same
// way. run() executes fn(0..tasks-1) across the pool and the calling thread,
// and returns when all tasks are done. An exception thrown by a task (on any thread) stops the
// tasks not yet started and is rethrown by run() once every started task has returned; the
// first one wins. Not reentrant: one run() at a time per pool.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace cudl::cpu {

// How long a worker polls before sleeping. Waking a sleeping thread costs tens of microseconds on
// a virtual machine (an inter-processor interrupt and a host reschedule): measured on a 2-vCPU
// KVM guest (AMD EPYC, Zen 3), bench_dbn's 10-column products took 160 µs with a 7 µs spin and
// 78 µs with 110 µs (benchmarks/results/cpu-zen3-2026-12-06.md). OpenMP runtimes spin longer
// still (libgomp ~300,000 polls, Intel's 200 ms).
constexpr std::chrono::microseconds kDefaultSpin{200};

// The spin given by CUDL_SPIN_US (`env`; null or empty: kDefaultSpin): a whole number of
// microseconds from 0 (sleep at once) to 1,000,000; anything else is an error naming the value.
std::chrono::microseconds spin_from_env(const char* env);

class ThreadPool {
 public:
  // threads ≥ 1 (including the caller); spin: see kDefaultSpin. A pool with more threads than the
  // CPUs this process may run on polls for at most 1/16 of `spin`: its threads take turns.
  explicit ThreadPool(int threads, std::chrono::microseconds spin = spin_from_env(std::getenv("CUDL_SPIN_US")));
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int threads() const { return static_cast<int>(workers_.size()) + 1; }
  std::chrono::microseconds spin() const { return std::chrono::duration_cast<std::chrono::microseconds>(spin_); }
  void run(int64_t tasks, const std::function<void(int64_t)>& fn);

  // Splits [0, n) into at most threads() contiguous chunks of at least `grain` elements and
  // runs fn(begin, end) on each.
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

 private:
  void worker_loop();
  void drain(const std::function<void(int64_t)>& fn, int64_t tasks);

  std::chrono::nanoseconds spin_;
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  const std::function<void(int64_t)>* job_ = nullptr;
  int64_t tasks_ = 0;
  std::atomic<int64_t> next_{0};
  std::atomic<int64_t> finished_{0};
  std::atomic<int> active_{0};  // workers inside drain(); changed under mutex_
  std::atomic<uint64_t> generation_{0};
  bool stop_ = false;
  std::atomic<bool> failed_{false};  // a task of this job threw: skip the rest
  std::exception_ptr error_;         // the first exception, set under mutex_
};

}  // namespace cudl::cpu

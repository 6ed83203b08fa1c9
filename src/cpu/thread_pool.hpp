#pragma once
// A small fixed-size thread pool for the CPU backend. Workers sleep on a condition variable
// between jobs (after a short bounded spin), so they cost nothing while the machine's cores are
// busy with other work. run() executes fn(0..tasks-1) across the pool and the calling thread,
// and returns when all tasks are done. An exception thrown by a task (on any thread) stops the
// tasks not yet started and is rethrown by run() once every started task has returned; the
// first one wins. Not reentrant: one run() at a time per pool.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace cudl::cpu {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);  // threads ≥ 1 (including the caller)
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int threads() const { return static_cast<int>(workers_.size()) + 1; }
  void run(int64_t tasks, const std::function<void(int64_t)>& fn);

  // Splits [0, n) into at most threads() contiguous chunks of at least `grain` elements and
  // runs fn(begin, end) on each.
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

 private:
  void worker_loop();
  void drain(const std::function<void(int64_t)>& fn, int64_t tasks);

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

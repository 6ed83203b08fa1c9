#include "cpu/thread_pool.hpp"

#include <algorithm>
#include <utility>

#include "cudl/error.hpp"

namespace cudl::cpu {
namespace {
// Spin this many polls (~256 pause instructions, a few microseconds) before sleeping: jobs that
// follow each other at once skip a futex wake-up, and an idle or oversubscribed pool sleeps.
// Measured on 2 cores (benchmarks/results/cpu-2core-2026-11-24.md): 4,000 polls was no faster
// alone and 10% slower with two other busy processes on the machine; 0 cost ~4% alone.
constexpr int kSpinPolls = 256;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}
}  // namespace

ThreadPool::ThreadPool(int threads) {
  CUDL_REQUIRE(threads >= 1, "thread count must be at least 1, got " + std::to_string(threads));
  workers_.reserve(threads - 1);
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
    generation_.fetch_add(1);
  }
  wake_.notify_all();
  for (auto& w : workers_) w.join();
}

// Every task is counted as finished, run or skipped, so that run() always completes; an
// exception must never escape a worker thread (std::terminate) nor leave run() before the
// workers are done with `fn` (which lives in run()'s caller).
void ThreadPool::drain(const std::function<void(int64_t)>& fn, int64_t tasks) {
  for (int64_t t = next_.fetch_add(1); t < tasks; t = next_.fetch_add(1)) {
    if (!failed_.load(std::memory_order_acquire)) {
      try {
        fn(t);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!error_) error_ = std::current_exception();
        failed_.store(true, std::memory_order_release);
      }
    }
    finished_.fetch_add(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::worker_loop() {
  uint64_t seen = 0;
  for (;;) {
    for (int i = 0; i < kSpinPolls && generation_.load(std::memory_order_acquire) == seen; ++i) cpu_relax();
    const std::function<void(int64_t)>* job = nullptr;
    int64_t tasks = 0;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return generation_.load() != seen; });
      seen = generation_.load();
      if (stop_) return;
      if (job_ == nullptr) continue;  // woke after that job was already finished
      job = job_;
      tasks = tasks_;
      active_.fetch_add(1);
    }
    drain(*job, tasks);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      active_.fetch_sub(1);
    }
    done_.notify_one();
  }
}

// Workers enter a job only under mutex_ while job_ is set, and run() clears job_ under mutex_
// once every task is finished and no worker is inside drain(): a late worker can never see a
// stale job, and the next run() cannot start while a worker still holds the previous one.
void ThreadPool::run(int64_t tasks, const std::function<void(int64_t)>& fn) {
  if (tasks <= 0) return;
  if (workers_.empty() || tasks == 1) {
    for (int64_t t = 0; t < tasks; ++t) fn(t);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    job_ = &fn;
    tasks_ = tasks;
    next_.store(0);
    finished_.store(0);
    failed_.store(false);
    error_ = nullptr;
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  drain(fn, tasks);
  auto all_done = [&] { return finished_.load(std::memory_order_acquire) >= tasks && active_.load() == 0; };
  for (int i = 0; i < kSpinPolls && !all_done(); ++i) cpu_relax();
  std::exception_ptr error;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, all_done);
    job_ = nullptr;
    error = std::exchange(error_, nullptr);
  }
  if (error) std::rethrow_exception(error);
}

void ThreadPool::parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(threads(), n / std::max<int64_t>(grain, 1)));
  run(chunks, [&](int64_t c) { fn(n * c / chunks, n * (c + 1) / chunks); });
}

}  // namespace cudl::cpu

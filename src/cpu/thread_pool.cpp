#include "cpu/thread_pool.hpp"

#include <algorithm>
#include <string>
#include <utility>

#include "cudl/cpu_backend.hpp"  // hardware_threads
#include "cudl/error.hpp"

namespace cudl::cpu {
namespace {
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// Polls done() until it holds or `budget` has passed; returns done(). The clock is read every 16
// polls: a pause lasts ~30 ns on Zen 3 and ~70 ns on recent Intel cores, so the budget is time,
// not a count of polls. (Polling with sched_yield() instead, to leave the core to other processes,
// was no better on a loaded machine: measured in the results file named at kDefaultSpin.)
template <typename Done>
bool spin_until(Done done, std::chrono::nanoseconds budget) {
  if (done()) return true;
  if (budget.count() <= 0) return false;
  const auto end = std::chrono::steady_clock::now() + budget;
  for (;;) {
    for (int i = 0; i < 16; ++i) {
      cpu_relax();
      if (done()) return true;
    }
    if (std::chrono::steady_clock::now() >= end) return done();
  }
}
}  // namespace

std::chrono::microseconds spin_from_env(const char* env) {
  if (env == nullptr || *env == '\0') return kDefaultSpin;
  const std::string text = env;
  const bool digits = text.size() <= 7 && text.find_first_not_of("0123456789") == std::string::npos;
  const long us = digits ? std::stol(text) : -1;
  CUDL_REQUIRE(us >= 0 && us <= 1000000,
               "CUDL_SPIN_US=" + text + ": expected a whole number of microseconds from 0 to 1000000");
  return std::chrono::microseconds(us);
}

ThreadPool::ThreadPool(int threads, std::chrono::microseconds spin) : spin_(spin) {
  CUDL_REQUIRE(threads >= 1, "thread count must be at least 1, got " + std::to_string(threads));
  CUDL_REQUIRE(spin.count() >= 0, "spin time must not be negative, got " + std::to_string(spin.count()) + " µs");
  if (threads > hardware_threads()) spin_ /= 16;
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
    spin_until([&] { return generation_.load(std::memory_order_acquire) != seen; }, spin_);
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
  spin_until(all_done, spin_);
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

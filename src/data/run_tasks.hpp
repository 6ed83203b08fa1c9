#pragma once
// A few threads working through numbered tasks, for the loaders' one-off passes over a whole data
// set (to_device, load_idx_dataset's conversion). Private to the library.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cudl/error.hpp"

namespace cudl::detail {

// Threads for a one-off pass: `asked` when positive, else one per hardware thread (at most
// 16), never more than there are tasks, at least 1. Throws Error naming `who` for asked < 0.
inline int task_threads(int asked, int64_t tasks, const char* who) {
  CUDL_REQUIRE(asked >= 0, std::string(who) + ": threads must be 0 (one per hardware thread) or more, got " +
                               std::to_string(asked));
  const int hw = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int want = asked > 0 ? asked : std::min(hw, 16);
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(want, tasks)));
}

// Runs task(i) for every i in [0, n) on `threads` threads, the calling thread being one of them;
// the tasks are handed out in order from a shared counter. The first exception stops the
// hand-out; it is rethrown here once every thread has finished its current task.
template <typename Task>
void run_tasks(int threads, int64_t n, const Task& task) {
  if (n <= 0) return;
  std::atomic<int64_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr first;
  std::mutex m;
  auto work = [&] {
    for (int64_t i = next++; i < n && !failed.load(std::memory_order_relaxed); i = next++) {
      try {
        task(i);
      } catch (...) {
        const std::lock_guard<std::mutex> lock(m);
        if (!first) first = std::current_exception();
        failed = true;
      }
    }
  };
  std::vector<std::thread> helpers;
  const int extra = static_cast<int>(std::min<int64_t>(std::max(threads, 1), n)) - 1;
  helpers.reserve(static_cast<size_t>(extra));
  try {
    for (int t = 0; t < extra; ++t) helpers.emplace_back(work);
  } catch (...) {  // no thread could be started: the ones that did and this one do the work
  }
  work();
  for (std::thread& h : helpers) h.join();
  if (first) std::rethrow_exception(first);
}

}  // namespace cudl::detail

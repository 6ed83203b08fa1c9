// The CPU backend's thread pool: every task runs once, errors reach run()'s caller, the poll
// before sleeping is bounded (CUDL_SPIN_US), and an idle pool sleeps.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <time.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "cpu/thread_pool.hpp"
#include "cudl/cpu_backend.hpp"
#include "cudl/error.hpp"

namespace {
using cudl::cpu::spin_from_env;
using cudl::cpu::ThreadPool;
using std::chrono::microseconds;
using ::testing::HasSubstr;

double process_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

TEST(ThreadPool, SpinFromEnvironmentIsWholeMicrosecondsUpToOneSecond) {
  EXPECT_EQ(spin_from_env(nullptr), cudl::cpu::kDefaultSpin);
  EXPECT_EQ(spin_from_env(""), cudl::cpu::kDefaultSpin);
  EXPECT_EQ(spin_from_env("0"), microseconds(0));
  EXPECT_EQ(spin_from_env("250"), microseconds(250));
  EXPECT_EQ(spin_from_env("1000000"), microseconds(1000000));
  for (const char* bad : {"abc", "-1", "1000001", "1.5", " 5", "5us", "99999999999"}) {
    try {
      spin_from_env(bad);
      ADD_FAILURE() << "accepted CUDL_SPIN_US=" << bad;
    } catch (const cudl::Error& e) {
      EXPECT_THAT(e.what(),
                  HasSubstr(std::string("CUDL_SPIN_US=") + bad + ": expected a whole number of microseconds"));
    }
  }
}

TEST(ThreadPool, MoreThreadsThanCpusPollASixteenthAsLong) {
  EXPECT_EQ(ThreadPool(1, microseconds(160)).spin(), microseconds(160));
  EXPECT_EQ(ThreadPool(cudl::hardware_threads() + 1, microseconds(160)).spin(), microseconds(10));
  EXPECT_THROW(ThreadPool(2, microseconds(-1)), cudl::Error);
  EXPECT_THROW(ThreadPool(0), cudl::Error);
}

// Many short jobs in a row (the workers catch most of them while polling, some after sleeping)
// and a few after a pause longer than the poll: each task runs exactly once, whatever the spin.
TEST(ThreadPool, EveryTaskRunsOnceWithAnySpin) {
  for (const microseconds spin : {microseconds(0), microseconds(5), microseconds(200), microseconds(20000)}) {
    for (const int threads : {2, 3, 5}) {
      ThreadPool pool(threads, spin);
      for (int job = 0; job < 300; ++job) {
        const int64_t tasks = 1 + job % 7;
        std::vector<std::atomic<int>> runs(static_cast<size_t>(tasks));
        pool.run(tasks, [&](int64_t t) { runs[static_cast<size_t>(t)].fetch_add(1); });
        for (int64_t t = 0; t < tasks; ++t) {
          ASSERT_EQ(runs[static_cast<size_t>(t)].load(), 1)
              << "spin " << spin.count() << " us, " << threads << " threads, job " << job << ", task " << t;
        }
        if (job % 100 == 99) std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
    }
  }
}

// An exception in a task (the GEMM's packing buffer failing to allocate, say) reaches the caller
// of run() instead of terminating the process from a worker thread, after every started task has
// returned; the pool is then as good as new.
TEST(ThreadPool, ATaskExceptionReachesTheCallerAndThePoolStaysUsable) {
  ThreadPool pool(2);
  std::atomic<int> ran{0};
  for (int round = 0; round < 50; ++round) {
    try {
      pool.run(64, [&](int64_t t) {
        ++ran;
        if (t % 8 == 3) throw cudl::Error("task " + std::to_string(t) + " failed");
      });
      FAIL() << "run() returned although tasks threw";
    } catch (const cudl::Error& e) {
      EXPECT_NE(std::string(e.what()).find("failed"), std::string::npos) << e.what();
    }
  }
  EXPECT_GT(ran.load(), 0);
  std::atomic<int64_t> sum{0};
  pool.run(100, [&](int64_t t) { sum += t; });
  EXPECT_EQ(sum.load(), 4950);
}

// A pool whose workers kept polling would burn a core for the whole pause; one that sleeps after
// its bounded poll uses almost none. (A worker that never woke would hang the last run.)
TEST(ThreadPool, AnIdlePoolSleepsAfterItsPoll) {
  ThreadPool pool(2, microseconds(1000));
  std::atomic<int> ran{0};
  pool.run(2, [&](int64_t) { ran.fetch_add(1); });
  const double before = process_cpu_seconds();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const double used = process_cpu_seconds() - before;
  EXPECT_LT(used, 0.1) << "CPU seconds used by an idle pool in 0.3 s";
  pool.run(2, [&](int64_t) { ran.fetch_add(1); });
  EXPECT_EQ(ran.load(), 4);
}

}  // namespace

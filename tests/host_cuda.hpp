#pragma once
// Stand-ins for the CUDA built-ins that cudl's own kernels use (cuda/rows_gemm_kernel.cuh,
// cuda/mlp_step_kernel.cuh), so that host tests can compile the kernels' very source as C++ and
// run it on CPU threads: each GPU thread is a CPU thread, __syncthreads a real barrier of its
// block's threads (each thread names its block's barrier), the atomics and fences the host's.
// Include before the kernel's source, in one test file each.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "rows_gemm_plan.hpp"  // add_rn

namespace host_cuda {

struct Dim3 {
  unsigned x = 0, y = 0, z = 0;
};
struct alignas(16) Float4 {
  float x, y, z, w;
};
struct alignas(8) Float2 {
  float x, y;
};

// A reusable barrier for a block's threads (C++17 has none).
class Barrier {
 public:
  explicit Barrier(int count) : count_(count) {}
  void wait() {
    std::unique_lock<std::mutex> lock(mutex_);
    const long generation = generation_;
    if (++arrived_ == count_) {
      arrived_ = 0;
      ++generation_;
      cv_.notify_all();
    } else {
      cv_.wait(lock, [&] { return generation != generation_; });
    }
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  int count_, arrived_ = 0;
  long generation_ = 0;
};

inline Dim3 blockIdx, gridDim;  // for kernels run one block at a time
inline thread_local Dim3 threadIdx;
inline thread_local Barrier* block_barrier = nullptr;  // the calling thread's block's

inline void syncthreads() { block_barrier->wait(); }
inline void threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
template <typename T>
T atomic_add(T* p, T v) {
  return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST);
}
inline float ldcg(const float* p) {  // other blocks' partial sums, read after the ticket's fences
  float v;
  __atomic_load(p, &v, __ATOMIC_RELAXED);
  return v;
}
inline float fadd_rn(float a, float b) { return cudl::cuda::rows_gemm::add_rn(a, b); }
inline void spin_wait(const unsigned* p, unsigned old) {
  while (__atomic_load_n(p, __ATOMIC_ACQUIRE) == old) std::this_thread::yield();
}
inline unsigned long long global_ns() {
  return static_cast<unsigned long long>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
}

}  // namespace host_cuda

// The built-ins the kernels use, as the stand-ins above.
#define __global__
#define __device__
#define __launch_bounds__(...)
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))
#define __syncthreads() host_cuda::syncthreads()
#define __threadfence() host_cuda::threadfence()
#define atomicAdd(p, v) host_cuda::atomic_add(p, v)
#define __ldcg(p) host_cuda::ldcg(p)
#define __fadd_rn(a, b) host_cuda::fadd_rn(a, b)
#define CUDL_GRID_SPIN_WAIT(p, old) host_cuda::spin_wait(p, old)
#define CUDL_GLOBAL_NS() host_cuda::global_ns()
using float4 = host_cuda::Float4;
using float2 = host_cuda::Float2;
using host_cuda::blockIdx;
using host_cuda::gridDim;
using host_cuda::threadIdx;

#pragma once
// The streamed path of docs/design/user-data.md, host half: the rows of each step's batch computed
// on the host with the device sampler's own counter-based functions (so a streamed epoch draws
// exactly the rows a resident one draws, on every rank and after a resume), and a loader that
// fills the next batches from any Dataset on background threads into a bounded ring of buffers.
// Private to the library (not installed); fit() on a Dataset is to use it for data that does not
// stay resident.
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "cudl/dataset.hpp"
#include "cudl/trainer.hpp"  // Sampling

namespace cudl::detail {

// The draw counter of the first row of step `step` (0-based) of epoch `epoch` (1-based) on rank
// `rank` of `ranks`, each drawing `batch` rows a step from `rows` rows, `steps` steps an epoch:
// where EpochLoop positions the backend's counter.
uint64_t step_counter(Sampling sampling, int64_t rows, int epoch, int64_t steps, int64_t step, int64_t batch, int rank,
                      int ranks);

// The `batch` row indices drawn from `counter` on: with replacement, formulas::drawn_row of each
// draw (Backend::sample_rows); shuffled, the positions counter % rows … of the permutation of
// epoch counter / rows (Backend::shuffled_rows).
void batch_rows(Sampling sampling, uint64_t seed, int64_t rows, uint64_t counter, int64_t batch, int64_t* out);

// `n` floats of host memory: from backend->allocate_host when a backend is given (page-locked on
// CUDA, so that uploads from it are asynchronous), else from the heap.
class HostFloats {
 public:
  HostFloats() = default;
  HostFloats(Backend* backend, size_t n);
  ~HostFloats();
  HostFloats(HostFloats&& o) noexcept;
  HostFloats& operator=(HostFloats&& o) noexcept;
  float* data() const { return p_; }
  size_t size() const { return n_; }

 private:
  Backend* backend_ = nullptr;
  float* p_ = nullptr;
  size_t n_ = 0;
};

class BatchLoader {
 public:
  // Batches of `batch` rows of `data` for this rank; `prefetch` ≥ 1 slots (the most batches held
  // beyond the dataset's own storage), `threads` ≥ 0 filling them (0: each batch is filled by
  // next() on the calling thread). With `host_memory`, the slots are that backend's host memory
  // (allocate_host), from which it uploads asynchronously.
  BatchLoader(const Dataset& data, Sampling sampling, uint64_t seed, int64_t batch, int rank, int ranks, int prefetch,
              int threads, Backend* host_memory = nullptr);
  ~BatchLoader();
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  // Begins steps [first_step, steps) of epoch `epoch`; the workers start filling at once. Any
  // batches of an unfinished earlier epoch are dropped.
  void start(int epoch, int64_t steps, int64_t first_step = 0);

  struct Batch {
    const float* x;  // batch × example_numel() floats
    const float* y;  // batch × target_numel() floats
    int64_t step;
  };
  // The next step's batch, once filled; valid until the next call of next() or start() (an
  // asynchronous upload from it must have completed by then). Rethrows
  // an exception of the dataset's fill (with the step it happened in). Error after the last step.
  Batch next();

  // Bytes of the ring's buffers: prefetch · batch · (example + target) floats.
  int64_t bytes_held() const;

 private:
  struct Slot {
    HostFloats x, y;
    std::vector<int64_t> idx;
    int64_t step = -1;  // the step it holds, once filled
    std::exception_ptr error;
  };
  void worker();
  void fill(Slot& slot, int64_t step, int epoch, int64_t steps);
  // Throws Error naming the dataset row and the value of the first NaN or infinity in v.
  void check_finite(const HostFloats& v, int64_t per_row, const std::vector<int64_t>& idx, const char* what) const;
  void stop_workers();

  const Dataset& data_;
  Sampling sampling_;
  uint64_t seed_;
  int64_t batch_, rows_;
  int rank_, ranks_;
  std::vector<Slot> slots_;
  std::vector<std::thread> workers_;

  std::mutex mutex_;
  std::condition_variable filled_, freed_;
  uint64_t generation_ = 0;  // start() calls so far: a worker's fill of an older epoch is dropped
  int epoch_ = 0;
  int64_t steps_ = 0;
  int64_t next_fill_ = 0;     // the next step a worker takes
  int64_t next_consume_ = 0;  // the step next() returns
  int64_t released_ = 0;      // steps before this one are no longer read: their slots may be refilled
  int busy_ = 0;              // workers filling now
  bool quit_ = false;
};

}  // namespace cudl::detail

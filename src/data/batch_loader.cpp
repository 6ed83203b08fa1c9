#include "data/batch_loader.hpp"

#include <cmath>
#include <new>
#include <string>
#include <utility>

#include "cudl/error.hpp"
#include "formulas/unit_rules.hpp"

namespace cudl::detail {

uint64_t step_counter(Sampling sampling, int64_t rows, int epoch, int64_t steps, int64_t step, int64_t batch, int rank,
                      int ranks) {
  const auto global_batch = static_cast<uint64_t>(batch) * static_cast<uint64_t>(ranks);
  const auto e0 = static_cast<uint64_t>(epoch - 1);
  const uint64_t epoch_start = sampling == Sampling::kWithReplacement ? e0 * static_cast<uint64_t>(steps) * global_batch
                                                                        : e0 * static_cast<uint64_t>(rows);
  return epoch_start + static_cast<uint64_t>(step) * global_batch + static_cast<uint64_t>(rank) * static_cast<uint64_t>(batch);
}

void batch_rows(Sampling sampling, uint64_t seed, int64_t rows, uint64_t counter, int64_t batch, int64_t* out) {
  if (sampling == Sampling::kWithReplacement) {
    for (int64_t b = 0; b < batch; ++b) out[b] = formulas::drawn_row(seed, counter + static_cast<uint64_t>(b), rows);
    return;
  }
  const auto n = static_cast<uint64_t>(rows);
  const uint64_t first = counter % n;
  CUDL_REQUIRE(first + static_cast<uint64_t>(batch) <= n, "batch_rows: positions " + std::to_string(first) + ".." +
                                                              std::to_string(first + batch - 1) + " run past the epoch's " +
                                                              std::to_string(rows) + " rows");
  for (int64_t b = 0; b < batch; ++b) out[b] = formulas::shuffled_row(seed, counter, b, rows);
}

HostFloats::HostFloats(Backend* backend, size_t n) : backend_(backend), n_(n) {
  if (n == 0) return;
  p_ = static_cast<float*>(backend != nullptr ? backend->allocate_host(n * sizeof(float)) : ::operator new(n * sizeof(float)));
}

HostFloats::~HostFloats() {
  if (p_ == nullptr) return;
  if (backend_ != nullptr) {
    backend_->deallocate_host(p_);
  } else {
    ::operator delete(p_);
  }
}

HostFloats::HostFloats(HostFloats&& o) noexcept
    : backend_(o.backend_), p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}

HostFloats& HostFloats::operator=(HostFloats&& o) noexcept {
  std::swap(backend_, o.backend_);
  std::swap(p_, o.p_);
  std::swap(n_, o.n_);
  return *this;
}

BatchLoader::BatchLoader(const Dataset& data, Sampling sampling, uint64_t seed, int64_t batch, int rank, int ranks,
                         int prefetch, int threads, Backend* host_memory)
    : data_(data), sampling_(sampling), seed_(seed), batch_(batch), rows_(data.size()), rank_(rank), ranks_(ranks) {
  CUDL_REQUIRE(batch >= 1 && prefetch >= 1 && threads >= 0 && ranks >= 1 && rank >= 0 && rank < ranks,
               "BatchLoader: batch " + std::to_string(batch) + ", prefetch " + std::to_string(prefetch) + ", threads " +
                   std::to_string(threads) + ", rank " + std::to_string(rank) + " of " + std::to_string(ranks));
  CUDL_REQUIRE(rows_ >= 1 && rows_ <= int64_t{UINT32_MAX},
               "BatchLoader: " + data.describe() + " has " + std::to_string(rows_) + " rows; between 1 and 2^32 - 1 are drawn from");
  slots_.resize(static_cast<size_t>(prefetch));
  for (Slot& s : slots_) {
    s.x = HostFloats(host_memory, static_cast<size_t>(batch * data.example_numel()));
    s.y = HostFloats(host_memory, static_cast<size_t>(batch * data.target_numel()));
    s.idx.resize(static_cast<size_t>(batch));
  }
  for (int t = 0; t < threads; ++t) workers_.emplace_back([this] { worker(); });
}

BatchLoader::~BatchLoader() { stop_workers(); }

void BatchLoader::stop_workers() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    quit_ = true;
  }
  freed_.notify_all();
  for (std::thread& t : workers_) t.join();
  workers_.clear();
}

int64_t BatchLoader::bytes_held() const {
  return static_cast<int64_t>(slots_.size()) * batch_ * (data_.example_numel() + data_.target_numel()) *
         static_cast<int64_t>(sizeof(float));
}

void BatchLoader::start(int epoch, int64_t steps, int64_t first_step) {
  CUDL_REQUIRE(epoch >= 1 && first_step >= 0 && first_step <= steps && steps * batch_ * ranks_ <= rows_,
               "BatchLoader: steps " + std::to_string(first_step) + ".." + std::to_string(steps) + " of epoch " +
                   std::to_string(epoch) + " (" + std::to_string(batch_ * ranks_) + " rows a step) do not fit " +
                   std::to_string(rows_) + " rows");
  std::unique_lock<std::mutex> lock(mutex_);
  ++generation_;
  next_fill_ = steps_;  // no new fill of the old epoch
  filled_.wait(lock, [this] { return busy_ == 0; });
  for (Slot& s : slots_) {
    s.step = -1;
    s.error = nullptr;
  }
  epoch_ = epoch;
  steps_ = steps;
  next_fill_ = next_consume_ = released_ = first_step;
  lock.unlock();
  freed_.notify_all();
}

void BatchLoader::check_finite(const HostFloats& v, int64_t per_row, const std::vector<int64_t>& idx,
                               const char* what) const {
  for (size_t i = 0; i < v.size(); ++i)
    if (!std::isfinite(v.data()[i]))
      throw Error("row " + std::to_string(idx[i / static_cast<size_t>(per_row)]) + " of " + data_.describe() + ": " + what +
                  " value " + std::to_string(static_cast<int64_t>(i) % per_row) + " is " + (std::isnan(v.data()[i]) ? "NaN" : "infinite"));
}

void BatchLoader::fill(Slot& slot, int64_t step, int epoch, int64_t steps) {
  try {
    batch_rows(sampling_, seed_, rows_, step_counter(sampling_, rows_, epoch, steps, step, batch_, rank_, ranks_), batch_,
               slot.idx.data());
    data_.fill(slot.idx.data(), batch_, slot.x.data(), slot.y.data());
    // A streamed dataset is never read whole, so its values are checked here, batch by batch.
    check_finite(slot.x, data_.example_numel(), slot.idx, "example");
    check_finite(slot.y, data_.target_numel(), slot.idx, "target");
    slot.error = nullptr;
  } catch (...) {
    slot.error = std::current_exception();
  }
}

void BatchLoader::worker() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    const auto k = static_cast<int64_t>(slots_.size());
    freed_.wait(lock, [&] { return quit_ || (next_fill_ < steps_ && next_fill_ < released_ + k); });
    if (quit_) return;
    const int64_t step = next_fill_++;
    const uint64_t generation = generation_;
    const int epoch = epoch_;
    const int64_t steps = steps_;
    Slot& slot = slots_[static_cast<size_t>(step % k)];
    ++busy_;
    lock.unlock();
    fill(slot, step, epoch, steps);  // the slot is this worker's: no other step maps to it until it is released
    lock.lock();
    --busy_;
    if (generation == generation_) slot.step = step;
    filled_.notify_all();
  }
}

BatchLoader::Batch BatchLoader::next() {
  std::unique_lock<std::mutex> lock(mutex_);
  CUDL_REQUIRE(next_consume_ < steps_, "BatchLoader: next() after the last step (" + std::to_string(steps_) + ")");
  const int64_t step = next_consume_;
  released_ = step;  // the batch returned before is no longer read: its slot may be refilled
  Slot& slot = slots_[static_cast<size_t>(step % static_cast<int64_t>(slots_.size()))];
  if (workers_.empty()) {
    fill(slot, step, epoch_, steps_);
    slot.step = step;
  } else {
    lock.unlock();
    freed_.notify_all();
    lock.lock();
    filled_.wait(lock, [&] { return slot.step == step; });
  }
  ++next_consume_;
  if (slot.error) {
    const std::exception_ptr error = slot.error;
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      throw Error("loading the batch of step " + std::to_string(step + 1) + ": " + e.what());
    }
  }
  return Batch{slot.x.data(), slot.y.data(), step};
}

}  // namespace cudl::detail

#include "nn/epoch_loop.hpp"

#include <algorithm>

#include "data/batch_loader.hpp"  // step_counter: the streamed loader positions its draws the same way

namespace cudl::detail {

EpochLoop::EpochLoop(Backend& backend, int64_t batch, int64_t features, Sampling sampling, uint64_t seed, int rank,
                     int ranks)
    : backend_(backend),
      batch_(batch),
      features_(features),
      sampling_(sampling),
      seed_(seed),
      rank_(rank),
      ranks_(ranks),
      xb_({batch, features}, backend),
      yb_({batch}, backend),
      draw_(make_counter(backend)) {
  CUDL_REQUIRE(ranks >= 1 && rank >= 0 && rank < ranks,
               "EpochLoop: rank " + std::to_string(rank) + " of " + std::to_string(ranks) + " ranks");
}

EpochLoop::~EpochLoop() = default;

EpochSource EpochSource::resident(const Tensor& x, const Tensor& y) {
  EpochSource s;
  s.x = &x;
  s.y = &y;
  s.rows = x.rank() >= 1 ? x.dim(0) : 0;
  s.features = x.rank() == 2 ? x.dim(1) : -1;
  if (y.rank() == 2) s.target_row = {y.dim(1)};
  return s;
}

bool EpochLoop::serves(int64_t batch, int64_t features, Sampling sampling, uint64_t seed, int rank, int ranks) const {
  return batch == batch_ && features == features_ && sampling == sampling_ && seed == seed_ && rank == rank_ &&
         ranks == ranks_;
}

int64_t EpochLoop::run(const EpochSource& source, int epoch, int64_t steps, bool capture,
                       const std::function<void(const Tensor&, const Tensor&)>& step,
                       const std::function<bool(int64_t)>& after, int64_t first_step) {
  const bool streamed = source.loader != nullptr;
  if (!streamed) {
    const Tensor& x = *source.x;
    const Tensor& y = *source.y;
    CUDL_REQUIRE(x.rank() == 2 && x.dim(1) == features_ && (y.rank() == 1 || y.rank() == 2) && y.dim(0) == x.dim(0),
                 "EpochLoop: expected x [R, " + std::to_string(features_) + "] and y [R] or [R, T], found " +
                     to_string(x.shape()) + " and " + to_string(y.shape()));
  } else {
    CUDL_REQUIRE(source.features == features_ && source.target_row.size() <= 1,
                 "EpochLoop: expected rows of " + std::to_string(features_) + " features, the data has " +
                     std::to_string(source.features));
  }
  Shape yb_shape{batch_};  // [B] (class indices) or [B, T] (target rows)
  for (int64_t d : source.target_row) yb_shape.push_back(d);
  if (yb_.shape() != yb_shape) {
    yb_ = Tensor(yb_shape, backend_);
    graph_.reset();  // the captured step reads yb_ by address
  }
  CUDL_REQUIRE(first_step >= 0 && first_step <= steps,
               "EpochLoop: cannot resume at step " + std::to_string(first_step) + " of " + std::to_string(steps));
  const int64_t global_batch = batch_ * ranks_;  // the rows of one step over all ranks
  CUDL_REQUIRE(epoch >= 1 && steps >= 0 && steps * global_batch <= source.rows,
               "EpochLoop: " + std::to_string(steps) + " steps of " + std::to_string(global_batch) +
                   " rows in epoch " + std::to_string(epoch) + " do not fit " + std::to_string(source.rows) + " rows");
  // A captured draw reads x and y by address (and their sizes as arguments); a captured step
  // alone reads only xb and yb.
  const bool same_data = !streamed && source.x->data() == x_data_ && source.y->data() == y_data_ &&
                         source.x->shape() == x_shape_ && source.y->shape() == y_shape_;
  if (streamed == graph_draws_ || (!streamed && !same_data)) graph_.reset();
  x_data_ = streamed ? nullptr : source.x->data();
  y_data_ = streamed ? nullptr : source.y->data();
  x_shape_ = streamed ? Shape{} : source.x->shape();
  y_shape_ = streamed ? Shape{} : source.y->shape();
  graph_draws_ = !streamed;
  std::function<void()> work;
  if (streamed) {
    source.loader->start(epoch, steps, first_step);
    work = [&] { step(xb_, yb_); };
  } else {
    backend_.set_counter(draw_, step_counter(sampling_, source.rows, epoch, steps, first_step, batch_, rank_, ranks_));
    work = [&] {
      if (sampling_ == Sampling::kWithReplacement) {
        backend_.sample_rows(*source.x, *source.y, seed_, draw_, xb_, yb_);
      } else {
        backend_.shuffled_rows(*source.x, *source.y, seed_, draw_, xb_, yb_);
      }
      step(xb_, yb_);
      backend_.add_to_counter(draw_, static_cast<uint64_t>(global_batch));
    };
  }
  // Whatever ends the loop, no upload may still read a loader slot (the loader refills its slots
  // when it is started again, and frees them when destroyed).
  struct Finish {
    EpochLoop& loop;
    ~Finish() { loop.finish_upload(); }
  } finish{*this};
  const bool staged = streamed && backend_.async_uploads();
  for (int64_t s = first_step; s < steps; ++s) {
    if (streamed) {  // the host's batch into the buffers the step reads (ordered after the last step)
      if (in_flight_ != nullptr) {
        backend_.host_wait(*in_flight_->uploaded);  // next() hands the slot of the last batch back
        in_flight_ = nullptr;
      }
      const BatchLoader::Batch b = source.loader->next();
      if (staged) {
        upload(b.x, b.y, s);
      } else {
        backend_.copy_from_host(b.x, xb_.data(), sizeof(float) * static_cast<size_t>(xb_.size()));
        backend_.copy_from_host(b.y, yb_.data(), sizeof(float) * static_cast<size_t>(yb_.size()));
      }
    }
    if (!capture || steps_run_ == 0) {
      work();  // the first step of a run is eager: libraries initialise outside a capture
    } else {
      if (!graph_) {
        backend_.begin_capture();
        try {
          work();
        } catch (...) {
          try {
            backend_.end_capture();  // leave the stream out of capture mode
          } catch (...) {
          }
          throw;  // the first error is the one reported
        }
        graph_ = backend_.end_capture();
      }
      graph_->replay();
    }
    ++steps_run_;
    if (after && !after(s)) return s + 1;
  }
  return steps;
}

int64_t EpochLoop::run_fused(const Tensor& x, const Tensor& y, int epoch, int64_t steps, FusedMlpArgs args,
                             int64_t report, int64_t poll, const std::function<bool(int64_t)>& after,
                             int64_t first_step) {
  CUDL_REQUIRE(ranks_ == 1, "EpochLoop: the fused step runs on one rank");
  CUDL_REQUIRE(x.rank() == 2 && x.dim(1) == features_ && y.rank() == 1 && y.dim(0) == x.dim(0),
               "EpochLoop: expected x [R, " + std::to_string(features_) + "] and y [R], found " +
                   to_string(x.shape()) + " and " + to_string(y.shape()));
  CUDL_REQUIRE(epoch >= 1 && first_step >= 0 && first_step <= steps && steps * batch_ <= x.dim(0),
               "EpochLoop: " + std::to_string(steps) + " steps of " + std::to_string(batch_) + " rows from step " +
                   std::to_string(first_step) + " in epoch " + std::to_string(epoch) + " do not fit " +
                   std::to_string(x.dim(0)) + " rows");
  backend_.set_counter(draw_, step_counter(sampling_, x.dim(0), epoch, steps, first_step, batch_, rank_, ranks_));
  args.x = x.data();
  args.y = y.data();
  args.rows = x.dim(0);
  args.seed = seed_;
  args.shuffled = sampling_ == Sampling::kShuffle;
  args.draw = reinterpret_cast<uint64_t*>(draw_.data());
  args.batch = batch_;
  for (int64_t s = first_step; s < steps;) {
    int64_t end = steps;
    if (report > 0) end = std::min(end, (s / report + 1) * report);
    if (poll > 0) end = std::min(end, s + poll);
    args.steps = end - s;
    backend_.fused_mlp_steps(args);
    s += args.steps;
    if (after && !after(s - 1)) return s;
  }
  return steps;
}

void EpochLoop::upload(const void* x, const void* y, int64_t step) {
  Stage& st = stages_[step % 2];
  if (st.x.shape() != xb_.shape() || st.y.shape() != yb_.shape()) {
    st = Stage{Tensor(xb_.shape(), backend_), Tensor(yb_.shape(), backend_), backend_.create_event(),
               backend_.create_event()};
    // The stage's memory is allocated in the compute queue's order (on a GPU, from a pool that may
    // hand out memory queued kernels still read): the copy queue waits for that point first.
    backend_.record(*st.consumed, Backend::Queue::kCompute);
  }
  const size_t x_bytes = sizeof(float) * static_cast<size_t>(xb_.size());
  const size_t y_bytes = sizeof(float) * static_cast<size_t>(yb_.size());
  backend_.wait(Backend::Queue::kCopy, *st.consumed);  // allocated, and its last batch copied out
  backend_.upload_async(x, st.x.data(), x_bytes);
  backend_.upload_async(y, st.y.data(), y_bytes);
  backend_.record(*st.uploaded, Backend::Queue::kCopy);
  in_flight_ = &st;
  backend_.wait(Backend::Queue::kCompute, *st.uploaded);
  backend_.copy(st.x.data(), xb_.data(), x_bytes);
  backend_.copy(st.y.data(), yb_.data(), y_bytes);
  backend_.record(*st.consumed, Backend::Queue::kCompute);
}

void EpochLoop::finish_upload() noexcept {
  if (in_flight_ == nullptr) return;
  try {
    backend_.host_wait(*in_flight_->uploaded);
  } catch (...) {  // a failing device: the error that ended the loop is the one reported
  }
  in_flight_ = nullptr;
}

}  // namespace cudl::detail

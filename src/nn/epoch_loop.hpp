#pragma once
// The one minibatch driver and epoch loop of cudl, shared by fit() (Trainer::run_epoch) and RBM
// pretraining (Rbm::train_epoch): fixed batch buffers, a draw counter on the backend, and a loop
// that draws B rows and runs a step on them, `steps` times, eagerly or by replaying one captured
// (draw + step) after the loop's first, eager, step.
#include <cstdint>
#include <functional>
#include <memory>

#include "cudl/backend.hpp"
#include "cudl/fused_mlp.hpp"
#include "cudl/trainer.hpp"

namespace cudl::detail {

class BatchLoader;  // src/data/batch_loader.hpp

// Where an epoch's batches come from. Resident: x (R × features) and y (R, or R × T) on the
// backend, each batch drawn there (and captured with the step). Streamed: `loader` fills each
// batch on the host from a Dataset of `rows` rows with the same draws; the loop copies it into
// its batch buffers before the step (the step alone is captured).
struct EpochSource {
  const Tensor* x = nullptr;
  const Tensor* y = nullptr;
  BatchLoader* loader = nullptr;
  int64_t rows = 0, features = 0;
  Shape target_row;  // {} for class indices, {T} for T target values per row

  static EpochSource resident(const Tensor& x, const Tensor& y);
};

class EpochLoop {
 public:
  // Batches of `batch` rows of `features` values (and one target each) drawn from the rows of
  // the x, y later given to run(), as `sampling` says, under `seed`. Data-parallel (ranks > 1):
  // each step of the run is one of `ranks`·batch rows, of which this loop draws the share of
  // `rank`, rows [rank·batch, (rank + 1)·batch) of that global batch, so that the ranks' draws
  // together are exactly one process's with batch ranks·batch.
  EpochLoop(Backend& backend, int64_t batch, int64_t features, Sampling sampling, uint64_t seed, int rank = 0,
            int ranks = 1);
  ~EpochLoop();

  // Whether this loop was made for these settings (else make a new one).
  bool serves(int64_t batch, int64_t features, Sampling sampling, uint64_t seed, int rank = 0, int ranks = 1) const;

  // Epoch `epoch` (1-based) of `steps` steps from `source` (yb is B or B × T): positions the draws
  // at the epoch's first (with replacement: continuing the previous epochs' draws; shuffled: the
  // epoch's own permutation), then for each step fills xb, yb and calls step(xb, yb); with
  // `capture` (the backend and the step must be capturable), every step after the loop's first
  // is a replay of one captured (draw +) step. after(s) is called after step s (0-based), on the
  // host, without waiting for the device; returning false ends the epoch there. first_step > 0
  // resumes an epoch after that many steps (the draws continue as if the epoch had run from its
  // start). Returns the steps finished.
  int64_t run(const EpochSource& source, int epoch, int64_t steps, bool capture,
              const std::function<void(const Tensor& xb, const Tensor& yb)>& step,
              const std::function<bool(int64_t)>& after, int64_t first_step = 0);
  // Epoch `epoch` as run() does it with resident x, y (class indices) on one rank, as
  // launches of the backend's fused step (Backend::fused_mlp_steps; `args` gives all but the
  // data, the draw counter and the steps). A launch ends at the epoch's end, after every step s
  // with (s + 1) a multiple of `report` (when > 0), and after `poll` steps (when > 0); after(s) is
  // called after each launch with its last step s. Returns the steps finished.
  int64_t run_fused(const Tensor& x, const Tensor& y, int epoch, int64_t steps, FusedMlpArgs args, int64_t report,
                    int64_t poll, const std::function<bool(int64_t)>& after, int64_t first_step = 0);
  // The resident form, for callers that hold tensors.
  int64_t run(const Tensor& x, const Tensor& y, int epoch, int64_t steps, bool capture,
              const std::function<void(const Tensor& xb, const Tensor& yb)>& step,
              const std::function<bool(int64_t)>& after, int64_t first_step = 0) {
    return run(EpochSource::resident(x, y), epoch, steps, capture, step, after, first_step);
  }

 private:
  Backend& backend_;
  int64_t batch_, features_;
  Sampling sampling_;
  uint64_t seed_;
  int rank_, ranks_;
  // The resident data a captured draw reads (by address): a graph is made again for other data,
  // also for a new tensor in the same variable.
  const float* x_data_ = nullptr;
  const float* y_data_ = nullptr;
  Shape x_shape_, y_shape_;
  Tensor xb_, yb_, draw_;
  // The streamed path on a backend whose uploads are asynchronous (Backend::async_uploads): two
  // staging buffers on the device, alternating by step. Step s's batch is uploaded into stage
  // s % 2 on the copy queue (once the copy out of that stage two steps before has run) while the
  // steps before it compute; the compute queue waits for the upload, copies the stage into xb/yb
  // and runs the step. The host waits for an upload only before the loader may reuse the host
  // slot it read (the next batch), so the device never waits for the host's copy.
  struct Stage {
    Tensor x, y;
    std::unique_ptr<Backend::Event> uploaded;
    std::unique_ptr<Backend::Event> consumed;  // recorded when made, then after each copy out
  };
  void upload(const void* x, const void* y, int64_t step);
  void finish_upload() noexcept;
  Stage stages_[2];
  Stage* in_flight_ = nullptr;  // the stage whose upload the host has not yet waited for
  std::unique_ptr<Captured> graph_;
  bool graph_draws_ = false;  // whether graph_ holds the draw too (resident) or the step alone
  int64_t steps_run_ = 0;
};

}  // namespace cudl::detail

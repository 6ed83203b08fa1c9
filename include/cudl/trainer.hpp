#pragma once
/// @file
/// The training loop (docs/design/training-core.md). One step, written once:
///     [draw the batch]  [schedule → learning rate]  forward  loss  backward  optimizer.step()
/// queued eagerly, or captured once as a CUDA graph and replayed (StepLaunch), with the same
/// arithmetic. Trainer exposes that step for a loop of one's own; fit() runs epochs of it with
/// sampling, validation, early stopping, callbacks and progress. train() is the 2014 run
/// (presets::Gdbn2014) in one call.
///
///     cudl::SoftmaxCrossEntropy loss;
///     cudl::Adam opt(net.param_set(), cudl::AdamOptions{});
///     cudl::FitOptions o;  o.epochs = 20;  o.valid_x = &x_valid;  o.valid_y = &y_valid;
///     cudl::History h = cudl::fit(net, loss, opt, x, y, o);
#include <atomic>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "cudl/communicator.hpp"
#include "cudl/dataset.hpp"
#include "cudl/error.hpp"
#include "cudl/loss.hpp"
#include "cudl/network.hpp"
#include "cudl/optimizer.hpp"
#include "cudl/schedule.hpp"
#include "cudl/step_launch.hpp"

namespace cudl {
namespace detail {
class EpochLoop;     // src/nn/epoch_loop.hpp
struct EpochSource;  // src/nn/epoch_loop.hpp: resident tensors or a streamed Dataset
}

/// How fit() draws an epoch's minibatches from the R training rows (batch B):
/// kShuffle: every row once per epoch, in a fresh pseudo-random order per epoch (computed on the
/// device, Backend::shuffled_rows); floor(R/B) full batches, the last R mod B rows of that order
/// left out (PyTorch's drop_last). kWithReplacement: floor(R/B) batches of rows drawn uniformly
/// with replacement (the 2014 run).
enum class Sampling { kShuffle, kWithReplacement };

/// fit()'s output while it runs: kAuto: a live bar per epoch on a terminal (stderr), else one
/// line per epoch; kBar, kLines: those, always; kNone: nothing.
enum class Progress { kAuto, kBar, kLines, kNone };

/// How fit() on a Dataset feeds its steps (docs/design/user-data.md). kResident: every row is put
/// on the network's backend first and each batch is drawn there. kStreamed: each batch is filled on
/// the host from the dataset by background threads, a few batches ahead, and copied in before its
/// step; the device holds one batch. Both draw the same rows, so they train alike bit for bit.
/// kAuto: resident when the data's bytes are at most FitOptions::max_resident_bytes.
enum class DataPath { kAuto, kResident, kStreamed };

/// What one epoch of fit() (or Trainer::run_epoch) did; the numbers are read from the device once,
/// at the epoch's end. With a communicator, global: every rank gets the same.
struct EpochReport {
  int epoch = 0;          ///< 1-based
  int64_t steps = 0;      ///< minibatches
  int64_t samples = 0;    ///< steps · batch
  double loss = 0.0;      ///< mean per-sample training loss over the epoch's batches
  double err = 0.0;       ///< training error rate over the same batches (classification losses)
  double seconds = 0.0;   ///< wall time of the epoch's steps, queued work included
  float learn_rate = 0.0f;  ///< at the epoch's start (per-step schedules move it within the epoch)
  bool captured = false;  ///< whether the epoch replayed a captured step (StepLaunch)
  /// Whether the epoch ran as the backend's fused step (Backend::fused_mlp_steps: on a GPU, one
  /// persistent kernel for many steps); then captured is false. Only StepLaunch::kAuto fuses.
  bool fused = false;
  std::string not_fused;  ///< why it did not (empty when it did), e.g. "the epoch is shuffled"
  bool validated = false; ///< whether valid_loss and valid_err were measured after this epoch
  /// Mean validation loss and error rate after this epoch (when validated).
  ///@{
  double valid_loss = 0.0, valid_err = 0.0;
  ///@}
  double valid_seconds = 0.0;  ///< wall time of that validation
};

/// Progress inside an epoch, for a per-step callback (reading it synchronises with the device).
struct StepReport {
  int epoch = 0;          ///< 1-based
  int64_t step = 0;       ///< steps done in this epoch
  int64_t steps = 0;      ///< steps in the epoch
  int64_t samples = 0;    ///< rows trained on so far in this epoch
  double loss = 0.0;      ///< mean loss so far in this epoch
  double err = 0.0;       ///< error rate so far in this epoch
  double seconds = 0.0;   ///< since the epoch's start
};

/// When fit() stops before FitOptions::epochs: after `patience` validations without a fall of the
/// validation loss by more than `min_delta`.
struct EarlyStopping {
  int patience = 0;        ///< epochs without improvement of the validation loss before stopping; 0: off
  double min_delta = 0.0;  ///< an improvement is a fall of more than this
  bool restore_best = true;  ///< put the best epoch's parameters back when stopping or finishing
};

/// Everything fit() can be told; the defaults train 10 shuffled epochs of batch 64 with progress
/// on a terminal. Inconsistent options (validation data of the wrong shape, early stopping without
/// validation data, a checkpoint of another run) make fit() throw Error before training.
struct FitOptions {
  int epochs = 10;  ///< the run's total, also when resuming
  int64_t batch = 64;  ///< rows per step (per rank with a communicator)
  Sampling sampling = Sampling::kShuffle;  ///< how an epoch's minibatches are drawn
  uint64_t seed = 1;  ///< the minibatch order
  StepLaunch launch = StepLaunch::kAuto;  ///< fused, captured (GPU) or eager steps (step_launch.hpp)
  /// Validation examples and targets, evaluated every `validate_every` epochs (and after the last)
  /// when set: loss and error rate in Mode::kInfer over all their rows, in batches of `batch`
  /// (with a communicator, each rank evaluates its share of the batches; the figures are all
  /// the rows').
  ///@{
  const Tensor* valid_x = nullptr;
  const Tensor* valid_y = nullptr;
  ///@}
  /// The same for fit() on a Dataset: its rows are the validation data (put on the network's
  /// backend once, before training). Not read by fit() on tensors, which refuses it.
  const Dataset* validation_data = nullptr;
  /// fit() on a Dataset: resident or streamed (DataPath). The validation data is resident either
  /// way.
  DataPath data_path = DataPath::kAuto;
  int64_t max_resident_bytes = int64_t{1} << 30;  ///< kAuto's limit: 1 GiB of examples and targets
  int prefetch = 4;        ///< batches filled ahead (the host holds this many beyond the dataset)
  int loader_threads = 2;  ///< threads filling them; 0: filled on the training thread
  int validate_every = 1;  ///< epochs between validations
  EarlyStopping early_stopping;  ///< needs validation data
  Progress progress = Progress::kAuto;  ///< what fit() prints while it runs
  std::function<void(const EpochReport&)> on_epoch;  ///< called on the training thread after every epoch
  /// Called every `every_steps` steps within an epoch; the only host reads inside an epoch (on a
  /// GPU each one waits for the queued steps), so keep it rare. 0: never.
  int64_t every_steps = 0;
  std::function<void(const StepReport&)> on_steps;  ///< called every `every_steps` steps (on the training thread)

  /// Checkpoints (docs/design/checkpoints.md), when checkpoint_path is set: the network, the
  /// optimizer's and schedule's state and the run's position, written atomically after every
  /// `checkpoint_every` epochs, after the last (or an early stop), and when `stop` ends the run.
  std::string checkpoint_path;
  int checkpoint_every = 1;  ///< epochs between checkpoints
  /// When set: continue the run saved in this checkpoint (it must exist): the network, optimizer
  /// and schedule get the saved state and the run goes on from the saved epoch and step until
  /// `epochs`, so that 2 epochs + resume to 4 equal 4 epochs bit for bit. The data and batch,
  /// sampling and seed must be the saved run's (an Error names what differs).
  std::string resume_from;
  /// Polled on the host after every step (no device sync; with the fused step, EpochReport::fused,
  /// after every launch, of at most 64 steps while this is set). Once it reads true, fit finishes
  /// the step, writes the checkpoint (when checkpoint_path is set) and returns with `interrupted`
  /// set; the finished epochs are in the History.
  const std::atomic<bool>* stop = nullptr;

  /// Data-parallel training (docs/design/data-parallel.md) when set and of more than one rank:
  /// every rank calls fit() with the same network architecture, data, options and seed. Rank 0's
  /// parameters and layer state are broadcast first; each step, every rank draws its own `batch`
  /// rows (a disjoint share of what one process with size()·batch rows per step would draw) and
  /// the gradients are averaged over the ranks before the optimizer's step, so that every rank
  /// takes the same step: with a mean-reduced loss (or the 2014 preset's grad_scale = 1/batch)
  /// that is one process with batch size()·batch. An epoch has rows / (size()·batch) steps. The
  /// reports are global (every rank gets the same), only rank 0 prints progress and writes
  /// checkpoints, layer state is averaged after every epoch, and a check after every epoch proves
  /// the ranks hold the same parameters. A rank that throws anything but a global Diverged ends
  /// the whole job through Communicator::abort, naming itself, rather than leaving the others
  /// waiting. Null (or one rank): one process, as without it.
  Communicator* communicator = nullptr;
};

/// What fit() returns: the epochs' reports and how the run ended.
struct History {
  std::vector<EpochReport> epochs;  ///< every finished epoch of the run (a resumed run's earlier ones too)
  bool stopped_early = false;  ///< early stopping ended the run
  bool interrupted = false;  ///< FitOptions::stop ended the run
  int best_epoch = 0;  ///< the epoch with the lowest validation loss (0 without validation)
  std::string data_path;  ///< fit() on a Dataset: how the data was fed, e.g. "resident on cpu (0.2 MB)"
};

namespace detail {
// fit() on this rank alone (fit() adds the abort of a data-parallel job around it).
History fit_on_rank(Network& net, const Loss& loss, Optimizer& opt, const EpochSource& data,
                    const FitOptions& options, Schedule* schedule);
}  // namespace detail

/// Where a fit() run stands, as a checkpoint records it (save_checkpoint / load_checkpoint).
struct FitState {
  int epoch = 0;      ///< epochs finished
  int64_t step = 0;   ///< steps finished in epoch + 1 when the run stopped inside it, else 0
  // The run's settings, which a resume must share (the minibatch draws depend on them).
  int64_t rows = 0;  ///< training rows (a resume must have as many)
  int64_t batch = 0;  ///< FitOptions::batch
  Sampling sampling = Sampling::kShuffle;  ///< FitOptions::sampling
  uint64_t seed = 0;  ///< FitOptions::seed
  int ranks = 1;  ///< data-parallel ranks (FitOptions::communicator): a resume needs as many
  /// Inside an epoch (step > 0): its loss statistics so far (the LossStats floats; with several
  /// ranks, each rank's in turn, rank 0's first).
  std::vector<float> epoch_stats;
  double epoch_seconds = 0.0;     ///< inside an epoch: its time so far
  float epoch_learn_rate = 0.0f;  ///< inside an epoch: the learning rate at its start (its report's)
  // Early stopping's bookkeeping, and the best epoch's parameters (with restore_best).
  bool stopped_early = false;  ///< early stopping ended the run
  int best_epoch = 0;  ///< the epoch with the lowest validation loss so far (0: none yet)
  double best_valid_loss = std::numeric_limits<double>::infinity();  ///< its validation loss
  int since_best = 0;  ///< validations since then (early stopping's patience count)
  std::vector<float> best_params;  ///< the best epoch's parameters (with restore_best)
  std::vector<EpochReport> history;  ///< the finished epochs' reports
};

/// One training step and its bookkeeping, for fit() and for a loop of one's own. Holds the
/// network, loss, optimizer and schedule by reference; they must outlive it.
///
/// Everything it queues runs on the network's backend; the optimizer must be on the same one
/// (Error if not). Use a Trainer from one thread at a time.
class Trainer {
 public:
  /// A trainer of `net` with `loss`, `opt` and, when not null, `schedule` (its per-step and
  /// per-epoch learning rates), queuing steps as `launch` says.
  Trainer(Network& net, const Loss& loss, Optimizer& opt, Schedule* schedule = nullptr,
          StepLaunch launch = StepLaunch::kAuto);
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  /// One step on a batch the caller filled: xb (B × features, any B ≥ 1), yb (B, or B × D: as the
  /// loss takes its targets). Queued; no host read. Statistics accumulate in stats() until
  /// reset_stats().
  void step(const Tensor& xb, const Tensor& yb);

  /// An epoch of `steps` steps of `batch` rows drawn from x, y (on the network's backend) as
  /// `sampling` says, the draws positioned by `epoch` (1-based) and `seed`; runs the schedule's
  /// epoch hook first; checks divergence at the end (and at each on_steps call), throwing Diverged.
  /// `epochs` is the run's total (for the schedule and progress). Used by fit().
  EpochReport run_epoch(const Tensor& x, const Tensor& y, int epoch, int epochs, int64_t batch, Sampling sampling,
                        uint64_t seed, int64_t every_steps = 0,
                        const std::function<void(const StepReport&)>& on_steps = {});

  /// Mean loss and error rate of the network on x, y in Mode::kInfer (the optimizer's end() and
  /// begin() around it where it keeps a look-ahead point), in batches of `batch`. Reads the
  /// results from the device. Throws Error on shapes that do not match or batch < 1. With a
  /// communicator of several ranks, every rank calls it together with the same rows: each
  /// evaluates its share of the batches, and every rank gets the figures of all the rows.
  std::pair<double, double> evaluate(const Tensor& x, const Tensor& y, int64_t batch);

  /// Data-parallel: each step averages the gradients over comm's ranks before the optimizer's
  /// step, and run_epoch draws this rank's share of size()·batch rows per step (and the network's
  /// Dropout layers their rows' share of the masks: Network::set_shares) and reports the global
  /// statistics. Null: one process. Set it on every rank before the first step.
  void set_communicator(Communicator* comm);

  /// The loss statistics accumulated since reset_stats() (LossStats layout, on the backend).
  Tensor& stats() { return stats_; }
  /// Zeroes stats() (queued).
  void reset_stats();
  /// The network it trains.
  Network& network() { return net_; }
  /// The optimizer it steps.
  Optimizer& optimizer() { return opt_; }

 private:
  friend History detail::fit_on_rank(Network&, const Loss&, Optimizer&, const detail::EpochSource&,
                                     const FitOptions&, Schedule*);
  // run_epoch from step `first_step` with the statistics in stats() carried over (a resumed
  // epoch), stopping after any step at which *stop reads true: `done` receives the steps
  // finished. A stopped epoch leaves the optimizer as it is (a GdbnNesterov still at its
  // look-ahead point), for an exact checkpoint; its report covers the finished steps.
  EpochReport run_epoch_from(const detail::EpochSource& data, int epoch, int epochs, int64_t batch,
                             Sampling sampling, uint64_t seed, int64_t every_steps,
                             const std::function<void(const StepReport&)>& on_steps, int64_t first_step,
                             const std::atomic<bool>* stop, int64_t& done);
  void queue_step(const Tensor& xb, const Tensor& yb);
  void check_divergence(int epoch, const LossTotals& totals);
  LossTotals read_totals();  // this rank's, or with a communicator every rank's together


  Network& net_;
  const Loss& loss_;
  Optimizer& opt_;
  Schedule* schedule_;
  StepLaunch launch_;
  Communicator* comm_ = nullptr;
  Tensor stats_;
  Tensor step_in_epoch_;  // the loss's step numbers (a counter, zeroed per epoch)
  Tensor dlogits_;
  std::unique_ptr<detail::EpochLoop> loop_;  // fit's batch buffers, draw counter and captured step
};

/// Trains net on x (R × features) and y (R class indices, or R × D target rows, as the loss
/// takes them), both on net's backend. Returns every epoch's report. Throws Error naming the row
/// and column when x, y or the validation data hold NaN or an infinity (checked once, before
/// training), and Diverged when a batch's loss is not finite or exceeds the loss's limit; Error
/// also for options that contradict each other or the data (FitOptions). Runs on the calling
/// thread; reads the device once per epoch (and at on_steps calls).
History fit(Network& net, const Loss& loss, Optimizer& opt, const Tensor& x, const Tensor& y,
            const FitOptions& options = {}, Schedule* schedule = nullptr);

/// fit() on any Dataset (include/cudl/dataset.hpp): an in-memory array, a Subset or split of one,
/// a standardised view, a reader of files. FitOptions::data_path decides how the rows reach the
/// network's backend: all of them first (resident), or a few batches ahead, filled by
/// FitOptions::loader_threads threads that read the dataset concurrently (streamed). Either way
/// the run is that of fit() on the same rows as tensors, bit for bit: same draws, same steps, same
/// reports. Validation data comes as FitOptions::validation_data (valid_x and valid_y are refused).
History fit(Network& net, const Loss& loss, Optimizer& opt, const Dataset& train, const FitOptions& options = {},
            Schedule* schedule = nullptr);

/// @namespace cudl::presets
/// Named settings of past runs, each giving the loss, optimizer, schedule and FitOptions it used.
namespace presets {

/// The 2014 run (nolearn.dbn over gdbn): softmax cross-entropy summed over the batch, gdbn's
/// Nesterov momentum (grad_scale 1/B), L2 on weights only, minibatches drawn with replacement,
/// the learning rate ×decay after each epoch, divergence above max_loss (0: 100·ln K).
struct Gdbn2014 {
  int epochs = 10;            ///< FitOptions::epochs
  int64_t batch = 64;         ///< B
  float learn_rate = 0.3f;    ///< the first epoch's learning rate
  float decay = 0.9f;         ///< the learning rate's factor after each epoch
  float momentum = 0.9f;      ///< Nesterov momentum μ
  float l2 = 1e-4f;           ///< L2 cost on the weights
  uint64_t seed = 2014;       ///< the minibatch draws
  float max_loss = 0.0f;      ///< the loss above which a batch counts as diverged (0: 100·ln K)
  StepLaunch launch = StepLaunch::kAuto;  ///< FitOptions::launch

  /// Softmax cross-entropy summed over the batch, with max_loss as its divergence limit.
  SoftmaxCrossEntropy loss() const { return SoftmaxCrossEntropy(Reduction::kSum, max_loss); }
  /// GdbnNesterov over `params` with learn_rate, momentum, l2 and grad_scale 1/batch.
  std::unique_ptr<GdbnNesterov> optimizer(ParamSet params) const;
  /// The learning rate ×decay after each epoch.
  ExponentialSchedule schedule() const { return ExponentialSchedule(decay); }
  /// epochs, batch, seed and launch, sampling with replacement, no progress output.
  FitOptions options() const;
};

}  // namespace presets

/// The 2014 run in one call (presets::Gdbn2014 through fit()), kept for its many callers.
using TrainConfig = presets::Gdbn2014;
/// Trains net on x (R × features) and y (R class indices) with the 2014 run's settings and
/// returns every epoch's report; on_epoch is called after each. Throws as fit() does, and Error
/// when the network has no layers or its output is not of at least 2 classes.
std::vector<EpochReport> train(Network& net, const Tensor& x, const Tensor& y, const TrainConfig& config,
                               const std::function<void(const EpochReport&)>& on_epoch = {});

}  // namespace cudl

#include "cudl/trainer.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include "cudl/checkpoint.hpp"
#include "cudl/optimizer.hpp"
#include "io/checkpoint_json.hpp"
#include "nn/data_checks.hpp"
#include "nn/data_parallel.hpp"
#include "nn/epoch_loop.hpp"
#include "nn/fused_step.hpp"
#include "data/batch_loader.hpp"
#include "nn/progress.hpp"

namespace cudl {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

Trainer::Trainer(Network& net, const Loss& loss, Optimizer& opt, Schedule* schedule, StepLaunch launch)
    : net_(net),
      loss_(loss),
      opt_(opt),
      schedule_(schedule),
      launch_(launch),
      stats_(Loss::make_stats(net.backend())),
      step_in_epoch_(make_counter(net.backend())) {
  CUDL_REQUIRE(&opt.backend() == &net.backend(),
               "Trainer: the optimizer's parameters live on another backend than the network");
}

Trainer::~Trainer() = default;

void Trainer::reset_stats() {
  Loss::reset(stats_);
  net_.backend().set_counter(step_in_epoch_, 0);
}

void Trainer::set_communicator(Communicator* comm) {
  comm_ = comm;
  loop_.reset();  // its draws depend on the rank and the number of ranks
  // Dropout's masks too: each rank draws its rows' share (a captured step is made again, above).
  net_.set_shares(comm != nullptr ? comm->rank() : 0, comm != nullptr ? comm->size() : 1);
}

LossTotals Trainer::read_totals() {
  const LossTotals mine = Loss::read(stats_);
  return detail::several_ranks(comm_) ? detail::global_totals(*comm_, mine) : mine;
}

void Trainer::queue_step(const Tensor& xb, const Tensor& yb) {
  if (schedule_ != nullptr) schedule_->before_step(opt_);
  const Tensor& logits = net_.forward(xb, Mode::kTrain);
  if (dlogits_.shape() != logits.shape()) dlogits_ = Tensor(logits.shape(), net_.backend());
  loss_.forward_backward(logits, yb, step_in_epoch_, dlogits_, stats_);
  net_.backward(xb, dlogits_);
  // Data-parallel: the one hook. The gradient is one flat tensor, so this is one all-reduce. It
  // runs with a communicator of one rank too (a no-op for LocalCommunicator), so that an engine's
  // path through the step can be tested on one GPU.
  if (comm_ != nullptr) comm_->all_reduce_mean(net_.grads());
  opt_.step();
  net_.backend().add_to_counter(step_in_epoch_, 1);
}

void Trainer::step(const Tensor& xb, const Tensor& yb) { queue_step(xb, yb); }

void Trainer::check_divergence(int epoch, const LossTotals& totals) {
  if (totals.bad_step >= 0) {
    opt_.end();
    throw Diverged(epoch, totals.bad_step + 1, totals.bad_value, opt_.current_learning_rate());
  }
}

EpochReport Trainer::run_epoch(const Tensor& x, const Tensor& y, int epoch, int epochs, int64_t batch,
                               Sampling sampling, uint64_t seed, int64_t every_steps,
                               const std::function<void(const StepReport&)>& on_steps) {
  reset_stats();
  int64_t done = 0;
  return run_epoch_from(detail::EpochSource::resident(x, y), epoch, epochs, batch, sampling, seed, every_steps, on_steps,
                        0, nullptr, done);
}

EpochReport Trainer::run_epoch_from(const detail::EpochSource& data, int epoch, int epochs, int64_t batch,
                                    Sampling sampling, uint64_t seed, int64_t every_steps,
                                    const std::function<void(const StepReport&)>& on_steps, int64_t first_step,
                                    const std::atomic<bool>* stop, int64_t& done) {
  Backend& backend = net_.backend();
  if (data.loader == nullptr) {
    const Tensor& x = *data.x;
    const Tensor& y = *data.y;
    CUDL_REQUIRE(x.rank() == 2 && (y.rank() == 1 || y.rank() == 2) && x.dim(0) == y.dim(0),
                 "fit: expected x (R × features) and y (R) or (R × targets), found " + to_string(x.shape()) + " and " +
                     to_string(y.shape()));
  }
  CUDL_REQUIRE(batch >= 1, "fit: the batch size must be at least 1, got " + std::to_string(batch));
  const int64_t rows = data.rows;
  const bool multi = detail::several_ranks(comm_);
  const int rank = multi ? comm_->rank() : 0;
  const int ranks = multi ? comm_->size() : 1;
  const int64_t steps = rows / (batch * ranks);
  CUDL_REQUIRE(steps >= 1, "fit: " + std::to_string(rows) + " rows are fewer than one batch of " +
                               std::to_string(batch) +
                               (multi ? " on each of " + std::to_string(ranks) + " ranks" : std::string()));
  CUDL_REQUIRE(data.features == numel(net_.input_shape()), "fit: x has rows of " + std::to_string(data.features) +
                                                              " features, the network expects " +
                                                              to_string(net_.input_shape()));
  if (!loop_ || !loop_->serves(batch, data.features, sampling, seed, rank, ranks))
    loop_ = std::make_unique<detail::EpochLoop>(backend, batch, data.features, sampling, seed, rank, ranks);
  if (schedule_ != nullptr) schedule_->begin_epoch(opt_, epoch, epochs, steps);
  opt_.begin();
  const detail::FusedStep fused = detail::fused_epoch(net_, loss_, opt_, schedule_, launch_, multi || comm_ != nullptr,
                                                      data, batch, step_in_epoch_, stats_);
  const bool fuse = fused.why.empty();
  const bool capture = !fuse && launch_ != StepLaunch::kEager && backend.can_capture() && net_.capturable() &&
                       (comm_ == nullptr || comm_->capturable(backend));
  if (capture) net_.reserve(batch);
  EpochReport r;
  r.epoch = epoch;
  r.steps = steps;
  r.samples = steps * batch * ranks;
  r.learn_rate = opt_.current_learning_rate();
  r.captured = capture;
  r.fused = fuse;
  r.not_fused = fused.why;
  backend.set_counter(step_in_epoch_, static_cast<uint64_t>(first_step));

  // The CPU reads its statistics for free, so it checks every step and stops at once; a GPU
  // checks once per epoch (and at each on_steps call) and names the first bad step. So do
  // several ranks, on the global statistics, so that every rank stops at the same step.
  const bool check_each_step = backend.device() == Device::kCpu && !multi;
  const auto t0 = std::chrono::steady_clock::now();
  const std::function<bool(int64_t)> after = [&](int64_t s) {
    const bool report = every_steps > 0 && on_steps && (s + 1) % every_steps == 0 && s + 1 < steps;
    bool go_on = stop == nullptr || !stop->load();
    if (multi && stop != nullptr) go_on = !detail::on_any_rank(*comm_, !go_on);  // all stop at one step
    if (!check_each_step && !report) return go_on;
    const LossTotals t = read_totals();
    check_divergence(epoch, t);
    if (!report) return go_on;
    StepReport sr;
    sr.epoch = epoch;
    sr.step = s + 1;
    sr.steps = steps;
    sr.samples = (s + 1) * batch * ranks;
    sr.loss = t.loss_sum / static_cast<double>(sr.samples);
    sr.err = t.errors / static_cast<double>(sr.samples);
    sr.seconds = seconds_since(t0);
    on_steps(sr);
    return go_on;
  };
  if (fuse) {  // launches end where a report is due, and every 64 steps where a stop may be asked for
    FusedMlpArgs args = fused.args;
    args.layers = fused.layers.data();
    done = loop_->run_fused(*data.x, *data.y, epoch, steps, args, every_steps > 0 && on_steps ? every_steps : 0,
                            stop != nullptr ? 64 : 0, after, first_step);
  } else {
    done = loop_->run(
        data, epoch, steps, capture, [this](const Tensor& xb, const Tensor& yb) { queue_step(xb, yb); }, after,
        first_step);
  }
  if (done == steps) opt_.end();  // a stopped epoch keeps the optimizer's state as it is
  const LossTotals t = read_totals();  // waits for the epoch's queued work
  r.seconds = seconds_since(t0);
  check_divergence(epoch, t);
  r.steps = done;
  r.samples = done * batch * ranks;
  r.loss = done > 0 ? t.loss_sum / static_cast<double>(r.samples) : 0.0;
  r.err = done > 0 ? t.errors / static_cast<double>(r.samples) : 0.0;
  return r;
}

std::pair<double, double> Trainer::evaluate(const Tensor& x, const Tensor& y, int64_t batch) {
  Backend& backend = net_.backend();
  CUDL_REQUIRE(x.rank() == 2 && (y.rank() == 1 || y.rank() == 2) && x.dim(0) == y.dim(0) && x.dim(0) > 0,
               "evaluate: expected x (R × features) and y (R) or (R × targets) with R ≥ 1, found " +
                   to_string(x.shape()) + " and " + to_string(y.shape()));
  CUDL_REQUIRE(batch >= 1, "evaluate: the batch size must be at least 1, got " + std::to_string(batch));
  opt_.end();  // the true weights (GdbnNesterov keeps a look-ahead point while training)
  Tensor stats = Loss::make_stats(backend);
  Tensor step = make_counter(backend);
  Tensor dlogits;
  const int64_t rows = x.dim(0);
  // With several ranks each evaluates its share of the batches (contiguous runs, as even as the
  // count allows), and the sums are added over the ranks.
  const int64_t batches = (rows + batch - 1) / batch;
  const int rank = detail::several_ranks(comm_) ? comm_->rank() : 0;
  const int ranks = detail::several_ranks(comm_) ? comm_->size() : 1;
  const int64_t begin = batches * rank / ranks, end = batches * (rank + 1) / ranks;
  for (int64_t first = begin * batch; first < std::min(rows, end * batch); first += batch) {
    const int64_t n = std::min(batch, rows - first);
    const Tensor xb = x.rows(first, first + n);
    const Tensor yb = y.rows(first, first + n);
    const Tensor& logits = net_.forward(xb, Mode::kInfer);
    if (dlogits.shape() != logits.shape()) dlogits = Tensor(logits.shape(), backend);
    // The statistics are per-sample sums whatever the reduction; the gradient is not used.
    loss_.forward_backward(logits, yb, step, dlogits, stats);
  }
  const LossTotals t = ranks > 1 ? detail::global_totals(*comm_, Loss::read(stats)) : Loss::read(stats);
  return {t.loss_sum / static_cast<double>(rows), t.errors / static_cast<double>(rows)};
}

namespace {

// A resume must continue the saved run: the draws depend on the rows, batch, sampling and seed.
void require_same_run(const FitState& saved, const FitState& now, const std::string& path) {
  auto differs = [&](const char* what, const std::string& was, const std::string& is) {
    throw Error("fit: cannot resume from " + path + ": it was saved by a run with " + what + " " + was +
                ", this run has " + is + " (the minibatch draws would differ)");
  };
  if (saved.rows != now.rows) differs("training rows", std::to_string(saved.rows), std::to_string(now.rows));
  if (saved.batch != now.batch) differs("batch", std::to_string(saved.batch), std::to_string(now.batch));
  if (saved.sampling != now.sampling)
    differs("sampling", saved.sampling == Sampling::kShuffle ? "shuffle" : "with replacement",
            now.sampling == Sampling::kShuffle ? "shuffle" : "with replacement");
  if (saved.seed != now.seed) differs("seed", std::to_string(saved.seed), std::to_string(now.seed));
  if (saved.ranks != now.ranks) differs("ranks", std::to_string(saved.ranks), std::to_string(now.ranks));
}

}  // namespace

namespace detail {

History fit_on_rank(Network& net, const Loss& loss, Optimizer& opt, const EpochSource& data,
                    const FitOptions& options, Schedule* schedule) {
  CUDL_REQUIRE(options.epochs >= 0, "fit: epochs must be ≥ 0, got " + std::to_string(options.epochs));
  CUDL_REQUIRE(options.validation_data == nullptr,
               "fit: FitOptions::validation_data is for fit() on a Dataset; on tensors give valid_x and valid_y");
  const bool validating = options.valid_x != nullptr || options.valid_y != nullptr;
  CUDL_REQUIRE(!validating || (options.valid_x != nullptr && options.valid_y != nullptr),
               "fit: validation needs both valid_x and valid_y");
  CUDL_REQUIRE(options.validate_every >= 1,
               "fit: validate_every must be ≥ 1, got " + std::to_string(options.validate_every));
  CUDL_REQUIRE(options.early_stopping.patience == 0 || validating,
               "fit: early stopping needs validation data (valid_x, valid_y)");
  CUDL_REQUIRE(options.checkpoint_every >= 1,
               "fit: checkpoint_every must be ≥ 1, got " + std::to_string(options.checkpoint_every));
  CUDL_REQUIRE(options.batch >= 1, "fit: the batch size must be at least 1, got " + std::to_string(options.batch));
  Backend& backend = net.backend();
  if (data.loader == nullptr) {  // streamed batches are checked as the loader fills them
    CUDL_REQUIRE(data.x->rank() >= 1, "fit: expected x (R × features)");
    detail::require_finite(*data.x, "fit", "x");
    detail::require_finite(*data.y, "fit", "y");
  }
  if (validating) {
    detail::require_finite(*options.valid_x, "fit", "valid_x");
    detail::require_finite(*options.valid_y, "fit", "valid_y");
  }
  Communicator* comm = detail::several_ranks(options.communicator) ? options.communicator : nullptr;
  const int ranks = comm != nullptr ? comm->size() : 1;
  const bool rank0 = comm == nullptr || comm->rank() == 0;  // prints and writes checkpoints
  Trainer trainer(net, loss, opt, schedule, options.launch);
  trainer.set_communicator(options.communicator);
  ProgressPrinter progress(rank0 ? options.progress : Progress::kNone, options.epochs, stderr,
                           loss.counts_errors());
  const bool keep_best = options.early_stopping.patience > 0 && options.early_stopping.restore_best;
  History h;
  FitState st;  // where the run stands: what a checkpoint records
  st.rows = data.rows;
  st.batch = options.batch;
  st.sampling = options.sampling;
  st.seed = options.seed;
  st.ranks = ranks;
  Tensor best_params;
  if (!options.resume_from.empty()) {
    FitState saved = detail::load_checkpoint_if(options.resume_from, net, opt, schedule, [&](const FitState& s) {
      require_same_run(s, st, options.resume_from);
    });
    st = std::move(saved);
    h.epochs = st.history;
    h.best_epoch = st.best_epoch;
    h.stopped_early = st.stopped_early;
    if (!st.best_params.empty()) best_params = Tensor::from_host(st.best_params, net.params().shape(), backend);
    if (st.stopped_early) return h;
  }
  if (comm != nullptr) detail::broadcast_model(*comm, net);  // every rank starts from rank 0's model
  const int64_t steps = st.rows / (options.batch * ranks);
  auto checkpoint = [&] {
    if (options.checkpoint_path.empty() || !rank0) return;
    st.history = h.epochs;
    st.best_params = keep_best && best_params.size() == net.params().size() ? best_params.to_vector()
                                                                             : std::vector<float>{};
    save_checkpoint(options.checkpoint_path, net, opt, schedule, st);
  };
  int64_t first_step = st.step;
  for (int epoch = st.epoch + 1; epoch <= options.epochs; ++epoch) {
    auto on_steps = [&](const StepReport& s) {
      progress.step(s);
      if (options.on_steps && options.every_steps > 0 && s.step % options.every_steps == 0) options.on_steps(s);
    };
    int64_t every = progress.every_steps(steps, options.every_steps);
    if (comm != nullptr) {  // rank 0's bar decides when every rank reads the global statistics
      double e = static_cast<double>(every);
      comm->broadcast(&e, 1, 0);
      every = static_cast<int64_t>(e);
    }
    trainer.reset_stats();
    const double carried_seconds = first_step > 0 ? st.epoch_seconds : 0.0;
    const size_t per_rank = static_cast<size_t>(LossStats::kSize);
    if (first_step > 0 && st.epoch_stats.size() == per_rank * static_cast<size_t>(ranks)) {
      const auto mine = st.epoch_stats.begin() + static_cast<std::ptrdiff_t>(per_rank * (comm ? comm->rank() : 0));
      trainer.stats().copy_from(std::vector<float>(mine, mine + static_cast<std::ptrdiff_t>(per_rank)));
    }
    int64_t done = 0;
    EpochReport r = trainer.run_epoch_from(data, epoch, options.epochs, options.batch, options.sampling, options.seed,
                                           every, on_steps, first_step, options.stop, done);
    r.seconds += carried_seconds;
    if (first_step > 0) r.learn_rate = st.epoch_learn_rate;
    first_step = 0;
    if (done < steps) {  // stopped inside the epoch: save exactly where it stands
      h.interrupted = true;
      st.step = done;
      st.epoch_stats = comm != nullptr ? detail::every_ranks_values(*comm, trainer.stats().to_vector())
                                       : trainer.stats().to_vector();  // each rank's, so a resume is exact
      st.epoch_seconds = r.seconds;
      st.epoch_learn_rate = r.learn_rate;
      checkpoint();
      opt.end();  // the network holds the true weights when fit returns
      break;
    }
    if (comm != nullptr) {
      detail::average_layer_state(*comm, net);
      detail::require_same_parameters(*comm, net, epoch);
    }
    if (validating && (epoch % options.validate_every == 0 || epoch == options.epochs)) {
      const auto t0 = std::chrono::steady_clock::now();
      const auto [vl, ve] = trainer.evaluate(*options.valid_x, *options.valid_y, options.batch);
      r.validated = true;
      r.valid_loss = vl;
      r.valid_err = ve;
      r.valid_seconds = seconds_since(t0);
    }
    if (schedule != nullptr) schedule->end_epoch(r.validated ? r.valid_loss : r.loss);
    h.epochs.push_back(r);
    progress.epoch(r);
    if (options.on_epoch) options.on_epoch(r);
    bool stop_early = false;
    if (r.validated) {
      if (r.valid_loss < st.best_valid_loss - options.early_stopping.min_delta) {
        st.best_valid_loss = r.valid_loss;
        h.best_epoch = epoch;
        st.since_best = 0;
        if (keep_best) {
          if (best_params.size() != net.params().size()) best_params = Tensor(net.params().shape(), backend);
          backend.copy(net.params().data(), best_params.data(), sizeof(float) * net.params().size());
        }
      } else if (options.early_stopping.patience > 0 && ++st.since_best >= options.early_stopping.patience) {
        stop_early = h.stopped_early = true;
      }
    }
    st.epoch = epoch;
    st.step = 0;
    st.epoch_stats.clear();
    st.epoch_seconds = 0.0;
    st.best_epoch = h.best_epoch;
    st.stopped_early = stop_early;
    bool stopping = options.stop != nullptr && options.stop->load();
    if (comm != nullptr && options.stop != nullptr) stopping = detail::on_any_rank(*comm, stopping);
    if (epoch % options.checkpoint_every == 0 || epoch == options.epochs || stop_early || stopping) checkpoint();
    if (stop_early) break;
    if (stopping) {
      h.interrupted = epoch < options.epochs;
      break;
    }
  }
  if (!h.interrupted && h.best_epoch > 0 && best_params.size() == net.params().size() && !h.epochs.empty() &&
      h.best_epoch != h.epochs.back().epoch) {
    backend.copy(best_params.data(), net.params().data(), sizeof(float) * net.params().size());
  }

  return h;
}

}  // namespace detail

namespace {

// fit() on a Dataset, past its checks: the validation rows uploaded, the training rows uploaded
// (resident) or a loader started (streamed), then the run (defined below fit).
History fit_dataset(Network& net, const Loss& loss, Optimizer& opt, const Dataset& train, const Dataset* valid,
                    const FitOptions& options, Schedule* schedule, Communicator* comm, double mb, bool streamed);

// fit() on any source; with several ranks, an error on one rank ends the job (data_parallel.hpp).
History fit_source(Network& net, const Loss& loss, Optimizer& opt, const detail::EpochSource& data,
                   const FitOptions& options, Schedule* schedule) {
  return detail::ending_the_job_on_error(options.communicator,
                                         [&] { return detail::fit_on_rank(net, loss, opt, data, options, schedule); });
}

}  // namespace

History fit(Network& net, const Loss& loss, Optimizer& opt, const Tensor& x, const Tensor& y,
            const FitOptions& options, Schedule* schedule) {
  return fit_source(net, loss, opt, detail::EpochSource::resident(x, y), options, schedule);
}

History fit(Network& net, const Loss& loss, Optimizer& opt, const Dataset& train, const FitOptions& options,
            Schedule* schedule) {
  CUDL_REQUIRE(options.valid_x == nullptr && options.valid_y == nullptr,
               "fit: on a Dataset, give the validation rows as FitOptions::validation_data (a Dataset), not valid_x/valid_y");
  const Dataset* valid = options.validation_data;
  CUDL_REQUIRE(valid == nullptr || (valid->example_shape() == train.example_shape() &&
                                    valid->target_shape() == train.target_shape()),
               "fit: the validation data's examples " + (valid ? to_string(valid->example_shape()) : std::string()) +
                   " and targets " + (valid ? to_string(valid->target_shape()) : std::string()) +
                   " differ from the training data's " + to_string(train.example_shape()) + " and " +
                   to_string(train.target_shape()));
  Communicator* comm = detail::several_ranks(options.communicator) ? options.communicator : nullptr;
  const double mb = static_cast<double>(train.size()) * static_cast<double>(train.example_numel() + train.target_numel()) *
                    sizeof(float) / 1e6;
  CUDL_REQUIRE(options.prefetch >= 1 && options.loader_threads >= 0 && options.max_resident_bytes >= 0,
               "fit: prefetch must be ≥ 1 and loader_threads ≥ 0, got " + std::to_string(options.prefetch) + " and " +
                   std::to_string(options.loader_threads));
  const bool streamed = options.data_path == DataPath::kStreamed ||
                        (options.data_path == DataPath::kAuto && mb * 1e6 > static_cast<double>(options.max_resident_bytes));
  // The uploads and the loader's threads may fail on one rank only: inside the job's abort too.
  return detail::ending_the_job_on_error(options.communicator, [&] {
    return fit_dataset(net, loss, opt, train, valid, options, schedule, comm, mb, streamed);
  });
}

namespace {

History fit_dataset(Network& net, const Loss& loss, Optimizer& opt, const Dataset& train, const Dataset* valid,
                    const FitOptions& options, Schedule* schedule, Communicator* comm, double mb, bool streamed) {
  FitOptions o = options;
  o.validation_data = nullptr;
  DeviceData held;
  if (valid != nullptr) {
    held = to_device(*valid, net.backend());
    o.valid_x = &held.x;
    o.valid_y = &held.y;
  }
  char size[32];
  std::snprintf(size, sizeof size, "%.1f MB", mb);
  History h;
  if (!streamed) {  // every row on the backend, then fit on tensors
    const DeviceData rows = to_device(train, net.backend());
    h = detail::fit_on_rank(net, loss, opt, detail::EpochSource::resident(rows.x, rows.y), o, schedule);
    h.data_path = std::string("resident on ") + to_string(net.backend().device()) + " (" + size + ")";
    return h;
  }
  detail::BatchLoader loader(train, options.sampling, options.seed, options.batch, comm ? comm->rank() : 0,
                             comm ? comm->size() : 1, options.prefetch, options.loader_threads,
                             net.backend().async_uploads() ? &net.backend() : nullptr);
  detail::EpochSource source;
  source.loader = &loader;
  source.rows = train.size();
  source.features = train.example_numel();
  if (!train.target_shape().empty()) source.target_row = {train.target_numel()};
  h = detail::fit_on_rank(net, loss, opt, source, o, schedule);
  h.data_path = "streamed from " + train.describe() + " (" + size + "): " + std::to_string(options.prefetch) +
                " batches filled ahead by " + std::to_string(options.loader_threads) + " threads" +
                (net.backend().async_uploads() ? ", uploaded on a second queue while the step before computes" : "");
  return h;
}

}  // namespace

}  // namespace cudl

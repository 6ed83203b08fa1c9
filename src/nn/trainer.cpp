#include "cudl/trainer.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>

#include "cudl/optimizer.hpp"
#include "nn/epoch_loop.hpp"
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

void Trainer::queue_step(const Tensor& xb, const Tensor& yb) {
  if (schedule_ != nullptr) schedule_->before_step(opt_);
  const Tensor& logits = net_.forward(xb, Mode::kTrain);
  if (dlogits_.shape() != logits.shape()) dlogits_ = Tensor(logits.shape(), net_.backend());
  loss_.forward_backward(logits, yb, step_in_epoch_, dlogits_, stats_);
  net_.backward(xb, dlogits_);
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
  Backend& backend = net_.backend();
  CUDL_REQUIRE(x.rank() == 2 && (y.rank() == 1 || y.rank() == 2) && x.dim(0) == y.dim(0),
               "fit: expected x (R × features) and y (R) or (R × targets), found " + to_string(x.shape()) + " and " +
                   to_string(y.shape()));
  CUDL_REQUIRE(batch >= 1, "fit: the batch size must be at least 1, got " + std::to_string(batch));
  const int64_t rows = x.dim(0);
  const int64_t steps = rows / batch;
  CUDL_REQUIRE(steps >= 1, "fit: " + std::to_string(rows) + " rows are fewer than one batch of " +
                               std::to_string(batch));
  CUDL_REQUIRE(x.dim(1) == numel(net_.input_shape()), "fit: x has rows of " + std::to_string(x.dim(1)) +
                                                          " features, the network expects " +
                                                          to_string(net_.input_shape()));
  if (!loop_ || !loop_->serves(batch, x.dim(1), sampling, seed, x, y))
    loop_ = std::make_unique<detail::EpochLoop>(backend, batch, x.dim(1), sampling, seed);
  const bool capture = launch_ == StepLaunch::kAuto && backend.can_capture() && net_.capturable();
  if (capture) net_.reserve(batch);
  if (schedule_ != nullptr) schedule_->begin_epoch(opt_, epoch, epochs, steps);
  EpochReport r;
  r.epoch = epoch;
  r.steps = steps;
  r.samples = steps * batch;
  r.learn_rate = opt_.current_learning_rate();
  r.captured = capture;
  reset_stats();

  // The CPU reads its statistics for free, so it checks every step and stops at once; a GPU
  // checks once per epoch (and at each on_steps call) and names the first bad step.
  const bool check_each_step = backend.device() == Device::kCpu;
  const auto t0 = std::chrono::steady_clock::now();
  opt_.begin();
  loop_->run(x, y, epoch, steps, capture, [this](const Tensor& xb, const Tensor& yb) { queue_step(xb, yb); },
             [&](int64_t s) {
               const bool report = every_steps > 0 && on_steps && (s + 1) % every_steps == 0 && s + 1 < steps;
               if (!check_each_step && !report) return;
               const LossTotals t = Loss::read(stats_);
               check_divergence(epoch, t);
               if (!report) return;
               StepReport sr;
               sr.epoch = epoch;
               sr.step = s + 1;
               sr.steps = steps;
               sr.samples = (s + 1) * batch;
               sr.loss = t.loss_sum / static_cast<double>((s + 1) * batch);
               sr.err = t.errors / static_cast<double>((s + 1) * batch);
               sr.seconds = seconds_since(t0);
               on_steps(sr);
             });
  opt_.end();
  const LossTotals t = Loss::read(stats_);  // waits for the epoch's queued work
  r.seconds = seconds_since(t0);
  check_divergence(epoch, t);
  r.loss = t.loss_sum / static_cast<double>(r.samples);
  r.err = t.errors / static_cast<double>(r.samples);
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
  for (int64_t first = 0; first < rows; first += batch) {
    const int64_t n = std::min(batch, rows - first);
    const Tensor xb = x.rows(first, first + n);
    const Tensor yb = y.rows(first, first + n);
    const Tensor& logits = net_.forward(xb, Mode::kInfer);
    if (dlogits.shape() != logits.shape()) dlogits = Tensor(logits.shape(), backend);
    // The statistics are per-sample sums whatever the reduction; the gradient is not used.
    loss_.forward_backward(logits, yb, step, dlogits, stats);
  }
  const LossTotals t = Loss::read(stats);
  return {t.loss_sum / static_cast<double>(rows), t.errors / static_cast<double>(rows)};
}

History fit(Network& net, const Loss& loss, Optimizer& opt, const Tensor& x, const Tensor& y,
            const FitOptions& options, Schedule* schedule) {
  CUDL_REQUIRE(options.epochs >= 0, "fit: epochs must be ≥ 0, got " + std::to_string(options.epochs));
  const bool validating = options.valid_x != nullptr || options.valid_y != nullptr;
  CUDL_REQUIRE(!validating || (options.valid_x != nullptr && options.valid_y != nullptr),
               "fit: validation needs both valid_x and valid_y");
  CUDL_REQUIRE(options.validate_every >= 1,
               "fit: validate_every must be ≥ 1, got " + std::to_string(options.validate_every));
  CUDL_REQUIRE(options.early_stopping.patience == 0 || validating,
               "fit: early stopping needs validation data (valid_x, valid_y)");
  Trainer trainer(net, loss, opt, schedule, options.launch);
  ProgressPrinter progress(options.progress, options.epochs, stderr, loss.counts_errors());
  History h;
  double best = std::numeric_limits<double>::infinity();
  Tensor best_params;
  int since_best = 0;
  for (int epoch = 1; epoch <= options.epochs; ++epoch) {
    auto on_steps = [&](const StepReport& s) {
      progress.step(s);
      if (options.on_steps && options.every_steps > 0 && s.step % options.every_steps == 0) options.on_steps(s);
    };
    const int64_t every = progress.every_steps(x.dim(0) / std::max<int64_t>(options.batch, 1), options.every_steps);
    EpochReport r = trainer.run_epoch(x, y, epoch, options.epochs, options.batch, options.sampling, options.seed,
                                      every, on_steps);
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
    if (r.validated) {
      if (r.valid_loss < best - options.early_stopping.min_delta) {
        best = r.valid_loss;
        h.best_epoch = epoch;
        since_best = 0;
        if (options.early_stopping.patience > 0 && options.early_stopping.restore_best) {
          if (best_params.size() != net.params().size()) best_params = Tensor(net.params().shape(), net.backend());
          net.backend().copy(net.params().data(), best_params.data(), sizeof(float) * net.params().size());
        }
      } else if (options.early_stopping.patience > 0 && ++since_best >= options.early_stopping.patience) {
        h.stopped_early = true;
        break;
      }
    }
  }
  if (h.best_epoch > 0 && best_params.size() == net.params().size() &&
      h.best_epoch != h.epochs.back().epoch) {
    net.backend().copy(best_params.data(), net.params().data(), sizeof(float) * net.params().size());
  }
  return h;
}

namespace presets {

std::unique_ptr<GdbnNesterov> Gdbn2014::optimizer(ParamSet params) const {
  GdbnNesterovOptions o;
  o.learn_rate = learn_rate;
  o.momentum = momentum;
  o.l2 = l2;
  o.grad_scale = 1.0f / static_cast<float>(batch);
  return std::make_unique<GdbnNesterov>(params, o);
}

FitOptions Gdbn2014::options() const {
  FitOptions o;
  o.epochs = epochs;
  o.batch = batch;
  o.sampling = Sampling::kWithReplacement;
  o.seed = seed;
  o.launch = launch;
  o.progress = Progress::kNone;
  return o;
}

}  // namespace presets

std::vector<EpochReport> train(Network& net, const Tensor& x, const Tensor& y, const TrainConfig& config,
                               const std::function<void(const EpochReport&)>& on_epoch) {
  CUDL_REQUIRE(net.num_layers() > 0, "train: the network has no layers");
  const Shape out = net.output_shape();
  CUDL_REQUIRE(out.size() == 1 && out[0] >= 2,
               "train: the network must end in K ≥ 2 class scores, found output " + to_string(out));
  const SoftmaxCrossEntropy loss = config.loss();
  std::unique_ptr<GdbnNesterov> opt = config.optimizer(net.param_set());
  ExponentialSchedule schedule = config.schedule();
  FitOptions options = config.options();
  options.on_epoch = on_epoch;
  return fit(net, loss, *opt, x, y, options, &schedule).epochs;
}

}  // namespace cudl

#include "cudl/trainer.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>

#include "cudl/optimizer.hpp"

namespace cudl {
namespace {

std::string format_value(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

}  // namespace

Diverged::Diverged(int epoch_, int64_t minibatch_, double value_, float learn_rate)
    : Error("training diverged at epoch " + std::to_string(epoch_) + ", minibatch " + std::to_string(minibatch_) +
            ": mean loss " + format_value(value_) + " (learning rate " + format_value(learn_rate) +
            "); try a lower --learn-rate"),
      epoch(epoch_),
      minibatch(minibatch_),
      value(value_) {}

std::vector<EpochReport> train(Network& net, const Tensor& x, const Tensor& y, const TrainConfig& config,
                               const std::function<void(const EpochReport&)>& on_epoch) {
  Backend& backend = net.backend();
  CUDL_REQUIRE(config.epochs >= 0, "train: epochs must be non-negative, got " + std::to_string(config.epochs));
  CUDL_REQUIRE(config.batch > 0, "train: batch must be positive, got " + std::to_string(config.batch));
  CUDL_REQUIRE(x.rank() >= 1 && y.shape() == Shape{x.rows()},
               "train: labels " + to_string(y.shape()) + " do not match data " + to_string(x.shape()));
  const int64_t steps = x.rows() / config.batch;
  CUDL_REQUIRE(steps > 0, "train: " + std::to_string(x.rows()) + " rows are fewer than one batch of " +
                              std::to_string(config.batch));
  const Shape& out = net.output_shape();
  CUDL_REQUIRE(out.size() == 1 && out[0] >= 2,
               "train: the network must end in K ≥ 2 class scores, found output " + to_string(out));
  const float max_loss = config.max_loss > 0.0f ? config.max_loss : 100.0f * std::log(static_cast<float>(out[0]));

  // Minibatches are drawn as flat rows (B × features); the network views them in its input shape.
  CUDL_REQUIRE(x.cols() == numel(net.input_shape()), "train: x has rows of " + std::to_string(x.cols()) +
                                                         " features, the network expects " +
                                                         to_string(net.input_shape()));
  Tensor xb({config.batch, x.cols()}, backend), yb({config.batch}, backend);
  Tensor dlogits({config.batch, out[0]}, backend);
  Tensor stats({LossStats::kSize}, backend);
  const std::vector<float> fresh_stats = {0.0f, 0.0f, -1.0f, 0.0f};
  // The CPU reads its statistics for free, so it checks every step and stops at once; a GPU
  // checks once per epoch (no host synchronisation inside an epoch) and names the first bad step.
  const bool check_each_step = backend.device() == Device::kCpu;
  // Captured steps (StepLaunch): every tensor they touch exists before the capture.
  const bool captured = config.launch == StepLaunch::kAuto && backend.can_capture() && net.capturable();
  Tensor draw, step;
  // The captured step; replaced each epoch only after the epoch's statistics were read (the
  // replays have finished then), since a graph must not be destroyed while it runs.
  std::unique_ptr<Captured> work;
  if (captured) {
    net.reserve(config.batch);
    draw = make_counter(backend);
    step = make_counter(backend);
  }

  NesterovSgd opt(net, {config.learn_rate, config.momentum, config.l2});
  CrossEntropyArgs xent;
  xent.grad_scale = 1.0f;  // gradients of the summed loss; the optimizer divides by B
  xent.max_loss = max_loss;
  std::vector<EpochReport> reports;
  for (int epoch = 1; epoch <= config.epochs; ++epoch) {
    const auto t0 = std::chrono::steady_clock::now();
    stats.copy_from(fresh_stats);
    opt.begin();
    const uint64_t draw0 = static_cast<uint64_t>(epoch - 1) * static_cast<uint64_t>(steps * config.batch);
    if (captured) {
      // One step with the draw and step numbers in device counters: on the first epoch run once
      // eagerly (so that cuBLAS and cuDNN initialise and pick their kernels outside any capture),
      // then recorded and replayed for the epoch's remaining steps. The eager and the captured
      // step queue the same work, so the results are those of an all-eager epoch.
      auto counted_step = [&] {
        backend.sample_rows(x, y, config.seed, draw, xb, yb);
        const Tensor& logits = net.forward(xb, Mode::kTrain);
        backend.softmax_cross_entropy(logits, yb, xent, step, dlogits, stats);
        net.backward(xb, dlogits);
        opt.step(config.batch);
        backend.add_to_counter(draw, static_cast<uint64_t>(config.batch));
        backend.add_to_counter(step, 1);
      };
      backend.set_counter(draw, draw0);
      backend.set_counter(step, 0);
      int64_t done = 0;
      if (epoch == 1 && steps > 0) {
        counted_step();
        done = 1;
      }
      if (done < steps) {
        backend.begin_capture();
        try {
          counted_step();
        } catch (...) {
          try {
            backend.end_capture();  // leave the stream out of capture mode
          } catch (...) {
          }
          throw;  // the first error is the one reported
        }
        work = backend.end_capture();
        for (int64_t s = done; s < steps; ++s) work->replay();
      }
    } else {
      for (int64_t s = 0; s < steps; ++s) {
        backend.sample_rows(x, y, config.seed, draw0 + static_cast<uint64_t>(s * config.batch), xb, yb);
        const Tensor& logits = net.forward(xb, Mode::kTrain);
        xent.step = s;
        backend.softmax_cross_entropy(logits, yb, xent, dlogits, stats);
        if (check_each_step) {
          const std::vector<float> st = stats.to_vector();
          if (st[LossStats::kBadStep] >= 0.0f) throw Diverged(epoch, s + 1, st[LossStats::kBadValue], opt.learn_rate());
        }
        net.backward(xb, dlogits);
        opt.step(config.batch);
      }
    }
    opt.end();
    const std::vector<float> st = stats.to_vector();  // waits for the epoch's queued work
    const auto t1 = std::chrono::steady_clock::now();
    if (st[LossStats::kBadStep] >= 0.0f) {
      throw Diverged(epoch, static_cast<int64_t>(st[LossStats::kBadStep]) + 1, st[LossStats::kBadValue],
                     opt.learn_rate());
    }
    EpochReport r;
    r.epoch = epoch;
    r.steps = steps;
    r.samples = steps * config.batch;
    r.loss = st[LossStats::kLossSum] / static_cast<double>(r.samples);
    r.err = st[LossStats::kErrors] / static_cast<double>(r.samples);
    r.seconds = std::chrono::duration<double>(t1 - t0).count();
    r.learn_rate = opt.learn_rate();
    r.captured = captured;
    reports.push_back(r);
    if (on_epoch) on_epoch(r);
    opt.set_learn_rate(opt.learn_rate() * config.decay);
  }
  return reports;
}

}  // namespace cudl

#pragma once
// Learning-rate schedules. Each writes the optimizer's learning rate (Optimizer::learning_rate(),
// one float on the backend), so a captured GPU step follows it without being captured again:
// - per epoch (ConstantSchedule, StepSchedule, ExponentialSchedule, ReduceOnPlateau): computed on
//   the host at each epoch's start and written before the epoch's steps;
// - per step (CosineSchedule, with linear warm-up): one tiny primitive queued before every step
//   evaluates it on the device from the optimizer's step count.
// The rate of epoch e (1-based) or step t (0-based, steps taken before this one) is base·f, with
// base = Optimizer::base_learning_rate().
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "cudl/optimizer.hpp"

namespace cudl {

/// A learning-rate schedule: sets the optimizer's rate before each epoch or step (see the top
/// of schedule.hpp for which does which).
///
/// Host-side state: one thread drives a schedule, as it drives the optimizer.
class Schedule {
 public:
  virtual ~Schedule() = default;
  /// Before epoch `epoch` (1-based) of `epochs`, each of `steps` steps (host side; not while
  /// capturing). Throws Error for a position that is not one (epoch outside [1, epochs], steps
  /// negative).
  virtual void begin_epoch(Optimizer& opt, int epoch, int epochs, int64_t steps) = 0;
  /// Queued before each step (captured with it). Per-epoch schedules do nothing.
  virtual void before_step(Optimizer& opt) { (void)opt; }
  /// After each epoch, with the metric a plateau is judged on (the validation loss if there is
  /// one, else the training loss). Only ReduceOnPlateau uses it.
  virtual void end_epoch(double metric) { (void)metric; }
  /// Whether this schedule queues work in before_step (a per-step schedule).
  virtual bool per_step() const { return false; }
  /// One line, e.g. "exponential ×0.9 per epoch".
  virtual std::string describe() const = 0;
  /// What a checkpoint must keep for a resumed run to continue exactly, by name (ReduceOnPlateau's
  /// rate and plateau count; the others recompute their rate from the epoch or step number).
  virtual std::vector<std::pair<std::string, double>> state() const { return {}; }
  /// Puts back what state() returned. Throws Error (changing nothing) for a key this schedule
  /// does not have or a value out of range.
  virtual void set_state(const std::vector<std::pair<std::string, double>>& state);
  /// Throws exactly what set_state would, changing nothing (a checkpoint is checked whole before
  /// anything is loaded).
  virtual void check_state(const std::vector<std::pair<std::string, double>>& state) const;
};

/// The base rate throughout: f = 1.
class ConstantSchedule final : public Schedule {
 public:
  void begin_epoch(Optimizer& opt, int epoch, int epochs, int64_t steps) override;
  std::string describe() const override { return "constant"; }
};

/// f = gamma^floor((e − 1) / every): ×gamma every `every` epochs (PyTorch's StepLR by epoch).
class StepSchedule final : public Schedule {
 public:
  /// ×gamma every `every` epochs. Throws Error when every < 1 or gamma is not a positive number.
  StepSchedule(int every, float gamma);
  void begin_epoch(Optimizer& opt, int epoch, int epochs, int64_t steps) override;
  std::string describe() const override;

 private:
  int every_;
  float gamma_;
};

/// ×gamma after every epoch (the 2014 run's ×0.9), computed as that run did: the rate is
/// multiplied by gamma in float once per epoch, so its epochs' rates are bit-for-bit the same.
class ExponentialSchedule final : public Schedule {
 public:
  /// ×gamma per epoch. Throws Error when gamma is not a positive number.
  explicit ExponentialSchedule(float gamma);
  void begin_epoch(Optimizer& opt, int epoch, int epochs, int64_t steps) override;
  std::string describe() const override;

 private:
  float gamma_;
  float rate_ = 0.0f;  // the current epoch's rate
  int epoch_ = 0;
};

/// Per step: linear warm-up from base/warmup to base over `warmup_steps`, then a half cosine
/// from base down to base·min_factor at the run's last step (the run's length comes from fit's
/// epochs × steps, or total_steps when given), and base·min_factor after it:
///   t < W: f = (t + 1) / W;   else f = m + (1 − m)·(1 + cos(π·min(1, (t − W) / max(1, T − W))))/2.
class CosineSchedule final : public Schedule {
 public:
  /// W = warmup_steps, m = min_factor, T = total_steps (0: fit's epochs × steps). Throws Error when
  /// warmup_steps or total_steps is negative or min_factor is outside [0, 1].
  explicit CosineSchedule(int64_t warmup_steps = 0, float min_factor = 0.0f, int64_t total_steps = 0);
  void begin_epoch(Optimizer& opt, int epoch, int epochs, int64_t steps) override;
  /// Queues the device-side evaluation of f from the optimizer's step count (captured with the
  /// step). Throws Error when called before the first begin_epoch.
  void before_step(Optimizer& opt) override;
  bool per_step() const override { return true; }
  std::string describe() const override;

 private:
  CosineArgs args_;
  int64_t total_given_;
};

/// PyTorch's ReduceLROnPlateau (mode min, relative threshold): an epoch improves when its metric
/// is below best·(1 − threshold); after more than `patience` epochs in a row without improvement,
/// the rate is multiplied by `factor` (never below min_rate), then `cooldown` epochs pass before
/// epochs count again.
class ReduceOnPlateau final : public Schedule {
 public:
  /// The rule above with these settings (the defaults are PyTorch's). Throws Error when factor is
  /// outside (0, 1), or patience, cooldown, threshold or min_rate is negative.
  ReduceOnPlateau(float factor = 0.1f, int patience = 10, float threshold = 1e-4f, float min_rate = 0.0f,
                  int cooldown = 0);
  void begin_epoch(Optimizer& opt, int epoch, int epochs, int64_t steps) override;
  void end_epoch(double metric) override;
  std::string describe() const override;
  float rate() const { return rate_; }  ///< The current rate; negative before the first epoch.
  /// "rate", "best", "have_best", "bad_epochs", "cooling".
  std::vector<std::pair<std::string, double>> state() const override;
  /// Puts back those five values. Throws Error (changing nothing) for an unknown key or a value
  /// out of range.
  void set_state(const std::vector<std::pair<std::string, double>>& state) override;
  void check_state(const std::vector<std::pair<std::string, double>>& state) const override;

 private:
  float factor_, threshold_, min_rate_;
  int patience_, cooldown_;
  float rate_ = -1.0f;  // set from the optimizer at the first epoch
  double best_ = 0.0;
  bool have_best_ = false;
  int bad_epochs_ = 0, cooling_ = 0;
};

}  // namespace cudl

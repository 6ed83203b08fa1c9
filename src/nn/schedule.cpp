#include "cudl/schedule.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "cudl/error.hpp"

namespace cudl {
namespace {

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

void require_epoch(int epoch, int epochs, int64_t steps, const char* who) {
  CUDL_REQUIRE(epoch >= 1 && epochs >= epoch && steps >= 0, std::string(who) + ": epoch " + std::to_string(epoch) +
                                                                " of " + std::to_string(epochs) + " with " +
                                                                std::to_string(steps) + " steps is not a valid position");
}

}  // namespace

void ConstantSchedule::begin_epoch(Optimizer& opt, int epoch, int epochs, int64_t steps) {
  require_epoch(epoch, epochs, steps, "ConstantSchedule");
  if (epoch == 1) opt.set_learning_rate(opt.base_learning_rate());
}

StepSchedule::StepSchedule(int every, float gamma) : every_(every), gamma_(gamma) {
  CUDL_REQUIRE(every >= 1, "StepSchedule: the step must be at least one epoch, got " + std::to_string(every));
  CUDL_REQUIRE(std::isfinite(gamma) && gamma > 0.0f, "StepSchedule: gamma must be positive, got " + number(gamma));
}

void StepSchedule::begin_epoch(Optimizer& opt, int epoch, int epochs, int64_t steps) {
  require_epoch(epoch, epochs, steps, "StepSchedule");
  if (epoch != 1 && (epoch - 1) % every_ != 0) return;
  float rate = opt.base_learning_rate();
  for (int k = 0; k < (epoch - 1) / every_; ++k) rate *= gamma_;
  opt.set_learning_rate(rate);
}

std::string StepSchedule::describe() const {
  return "step ×" + number(gamma_) + " every " + std::to_string(every_) + " epochs";
}

ExponentialSchedule::ExponentialSchedule(float gamma) : gamma_(gamma) {
  CUDL_REQUIRE(std::isfinite(gamma) && gamma > 0.0f,
               "ExponentialSchedule: gamma must be positive, got " + number(gamma));
}

void ExponentialSchedule::begin_epoch(Optimizer& opt, int epoch, int epochs, int64_t steps) {
  require_epoch(epoch, epochs, steps, "ExponentialSchedule");
  if (epoch == 1 || epoch != epoch_ + 1) {  // a fresh run, or a resumed one: replay the products
    rate_ = opt.base_learning_rate();
    for (int e = 1; e < epoch; ++e) rate_ *= gamma_;
  } else {
    rate_ *= gamma_;
  }
  epoch_ = epoch;
  opt.set_learning_rate(rate_);
}

std::string ExponentialSchedule::describe() const { return "exponential ×" + number(gamma_) + " per epoch"; }

CosineSchedule::CosineSchedule(int64_t warmup_steps, float min_factor, int64_t total_steps)
    : total_given_(total_steps) {
  CUDL_REQUIRE(warmup_steps >= 0, "CosineSchedule: warm-up steps must be ≥ 0, got " + std::to_string(warmup_steps));
  CUDL_REQUIRE(min_factor >= 0.0f && min_factor <= 1.0f,
               "CosineSchedule: min_factor must be in [0, 1], got " + number(min_factor));
  CUDL_REQUIRE(total_steps >= 0, "CosineSchedule: total steps must be ≥ 0 (0: the run's), got " +
                                     std::to_string(total_steps));
  args_.warmup_steps = warmup_steps;
  args_.min_factor = min_factor;
}

void CosineSchedule::begin_epoch(Optimizer& opt, int epoch, int epochs, int64_t steps) {
  require_epoch(epoch, epochs, steps, "CosineSchedule");
  args_.base = opt.base_learning_rate();
  args_.total_steps = total_given_ > 0 ? total_given_ : std::max<int64_t>(1, static_cast<int64_t>(epochs) * steps);
}

void CosineSchedule::before_step(Optimizer& opt) {
  CUDL_REQUIRE(args_.base > 0.0f || opt.base_learning_rate() == 0.0f,
               "CosineSchedule: before_step before begin_epoch");
  opt.backend().cosine_learning_rate(args_, opt.step_count(), opt.learning_rate());
}

std::string CosineSchedule::describe() const {
  return "cosine to ×" + number(args_.min_factor) + " with " + std::to_string(args_.warmup_steps) +
         " warm-up steps";
}

ReduceOnPlateau::ReduceOnPlateau(float factor, int patience, float threshold, float min_rate, int cooldown)
    : factor_(factor), threshold_(threshold), min_rate_(min_rate), patience_(patience), cooldown_(cooldown) {
  CUDL_REQUIRE(factor > 0.0f && factor < 1.0f, "ReduceOnPlateau: factor must be in (0, 1), got " + number(factor));
  CUDL_REQUIRE(patience >= 0 && cooldown >= 0, "ReduceOnPlateau: patience and cooldown must be ≥ 0");
  CUDL_REQUIRE(threshold >= 0.0f && min_rate >= 0.0f, "ReduceOnPlateau: threshold and min_rate must be ≥ 0");
}

void ReduceOnPlateau::begin_epoch(Optimizer& opt, int epoch, int epochs, int64_t steps) {
  require_epoch(epoch, epochs, steps, "ReduceOnPlateau");
  if (rate_ < 0.0f) rate_ = opt.base_learning_rate();
  opt.set_learning_rate(rate_);
}

void ReduceOnPlateau::end_epoch(double metric) {
  if (std::isnan(metric)) return;
  if (!have_best_ || metric < best_ * (1.0 - threshold_)) {
    best_ = metric;
    have_best_ = true;
    bad_epochs_ = 0;
  } else {
    ++bad_epochs_;
  }
  if (cooling_ > 0) {
    --cooling_;
    bad_epochs_ = 0;
    return;
  }
  if (bad_epochs_ > patience_ && rate_ > min_rate_) {
    rate_ = std::max(min_rate_, rate_ * factor_);
    cooling_ = cooldown_;
    bad_epochs_ = 0;
  }
}

std::string ReduceOnPlateau::describe() const {
  return "×" + number(factor_) + " after " + std::to_string(patience_) + " epochs without improvement";
}

void Schedule::set_state(const std::vector<std::pair<std::string, double>>& state) { check_state(state); }

void Schedule::check_state(const std::vector<std::pair<std::string, double>>& state) const {
  CUDL_REQUIRE(state.empty(), "schedule '" + describe() + "' keeps no state, but was given '" + state.front().first +
                                  "' (saved by another schedule?)");
}

std::vector<std::pair<std::string, double>> ReduceOnPlateau::state() const {
  return {{"rate", rate_},
          {"best", best_},
          {"have_best", have_best_ ? 1.0 : 0.0},
          {"bad_epochs", bad_epochs_},
          {"cooling", cooling_}};
}

namespace {

struct PlateauState {
  float rate = -1.0f;
  double best = 0.0;
  bool have_best = false;
  int bad_epochs = 0, cooling = 0;
};

// ReduceOnPlateau's saved state, every value checked: a rate that is a finite non-negative float
// (or −1, "not started"), counts that are whole and not negative, no unknown key.
PlateauState parse_plateau(const std::vector<std::pair<std::string, double>>& state) {
  PlateauState p;
  for (const auto& [key, value] : state) {
    const bool count = key == "bad_epochs" || key == "cooling";
    CUDL_REQUIRE(!count || (value >= 0.0 && value <= 1e9 && value == std::floor(value)),
                 "ReduceOnPlateau: state '" + key + "' must be a count, found " + number(static_cast<float>(value)));
    if (key == "rate") {
      CUDL_REQUIRE(value == -1.0 || (std::isfinite(value) && value >= 0.0 && value <= 3.4e38),
                   "ReduceOnPlateau: state 'rate' must be a learning rate, found " + number(static_cast<float>(value)));
      p.rate = static_cast<float>(value);  // saved from a float: exact
    } else if (key == "best") {
      p.best = value;
    } else if (key == "have_best") {
      p.have_best = value != 0.0;
    } else if (key == "bad_epochs") {
      p.bad_epochs = static_cast<int>(value);
    } else if (key == "cooling") {
      p.cooling = static_cast<int>(value);
    } else {
      throw Error("ReduceOnPlateau: unknown state '" + key + "' (saved by another schedule?)");
    }
  }
  return p;
}

}  // namespace

void ReduceOnPlateau::check_state(const std::vector<std::pair<std::string, double>>& state) const {
  parse_plateau(state);
}

void ReduceOnPlateau::set_state(const std::vector<std::pair<std::string, double>>& state) {
  const PlateauState p = parse_plateau(state);
  rate_ = p.rate;
  best_ = p.best;
  have_best_ = p.have_best;
  bad_epochs_ = p.bad_epochs;
  cooling_ = p.cooling;
}

}  // namespace cudl

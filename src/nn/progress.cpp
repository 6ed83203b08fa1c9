#include "nn/progress.hpp"

#include <unistd.h>

#include <algorithm>
#include <numeric>
#include <string>

namespace cudl {
namespace {

std::string rate(double samples_per_s) {
  char buf[32];
  if (samples_per_s >= 1e6) {
    std::snprintf(buf, sizeof buf, "%.2fM", samples_per_s / 1e6);
  } else if (samples_per_s >= 1e3) {
    std::snprintf(buf, sizeof buf, "%.1fk", samples_per_s / 1e3);
  } else {
    std::snprintf(buf, sizeof buf, "%.0f", samples_per_s);
  }
  return buf;
}

}  // namespace

ProgressPrinter::ProgressPrinter(Progress mode, int epochs, std::FILE* out, bool show_err)
    : epochs_(epochs), out_(out), show_err_(show_err) {
  const bool terminal = isatty(fileno(out)) != 0;
  bar_ = mode == Progress::kBar || (mode == Progress::kAuto && terminal);
  lines_ = mode == Progress::kLines || (mode == Progress::kAuto && !terminal);
}

int64_t ProgressPrinter::every_steps(int64_t steps, int64_t user_every) const {
  const int64_t mine = bar_ ? std::max<int64_t>(1, steps / 25) : 0;
  if (mine == 0) return user_every;
  if (user_every <= 0) return mine;
  return std::gcd(mine, user_every);
}

std::string ProgressPrinter::err(double rate) const {
  if (!show_err_) return "";
  char buf[32];
  std::snprintf(buf, sizeof buf, "  err %.2f%%", 100.0 * rate);
  return buf;
}

void ProgressPrinter::step(const StepReport& s) {
  if (!bar_ || s.steps <= 0) return;
  constexpr int kWidth = 24;
  const int filled = static_cast<int>(kWidth * s.step / s.steps);
  std::string bar(static_cast<size_t>(filled), '=');
  if (filled < kWidth) bar += '>' + std::string(static_cast<size_t>(kWidth - filled - 1), ' ');
  const double per_s = s.seconds > 0 ? static_cast<double>(s.step) / s.seconds : 0.0;
  const double samples_per_s = s.seconds > 0 ? static_cast<double>(s.samples) / s.seconds : 0.0;
  const double eta = per_s > 0 ? static_cast<double>(s.steps - s.step) / per_s : 0.0;
  std::fprintf(out_, "\r\033[Kepoch %d/%d [%s] %lld/%lld  loss %.4f%s  %s samples/s  ETA %.1fs", s.epoch,
               epochs_, bar.c_str(), static_cast<long long>(s.step), static_cast<long long>(s.steps), s.loss,
               err(s.err).c_str(), rate(samples_per_s).c_str(), eta);
  std::fflush(out_);
}

void ProgressPrinter::epoch(const EpochReport& r) {
  if (!bar_ && !lines_) return;
  if (bar_) std::fprintf(out_, "\r\033[K");
  std::fprintf(out_, "epoch %d/%d  %lld steps  loss %.4f%s", r.epoch, epochs_, static_cast<long long>(r.steps),
               r.loss, err(r.err).c_str());
  if (r.validated) std::fprintf(out_, "  valid loss %.4f%s", r.valid_loss, err(r.valid_err).c_str());
  std::fprintf(out_, "  lr %.3g  %.2fs (%s samples/s)\n", static_cast<double>(r.learn_rate), r.seconds,
               rate(r.seconds > 0 ? static_cast<double>(r.samples) / r.seconds : 0.0).c_str());
  std::fflush(out_);
}

}  // namespace cudl

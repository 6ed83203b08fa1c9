#pragma once
// fit()'s progress output (FitOptions::progress), on stderr: a live bar per epoch on a terminal
// ("epoch 3/10 [=========>      ] 412/732  loss 0.2841  err 8.12%  51.2k samples/s  ETA 0.6s"),
// else one line per epoch. The bar is redrawn at most ~25 times per epoch, each redraw a host
// read of the loss statistics (on a GPU it waits for the queued steps).
#include <cstdint>
#include <cstdio>
#include <string>

#include "cudl/trainer.hpp"

namespace cudl {

class ProgressPrinter {
 public:
  // show_err: print error rates (false for a loss that counts none, Loss::counts_errors).
  ProgressPrinter(Progress mode, int epochs, std::FILE* out = stderr, bool show_err = true);
  // How often run_epoch must report steps for the bar and a callback every `user_every` steps
  // (0: never) to both be served; 0 when neither needs it.
  int64_t every_steps(int64_t steps, int64_t user_every) const;
  void step(const StepReport& s);
  void epoch(const EpochReport& r);
  bool bar() const { return bar_; }

 private:
  std::string err(double rate) const;  // "  err 8.12%", or "" when errors are not shown

  int epochs_;
  std::FILE* out_;
  bool show_err_;
  bool bar_ = false, lines_ = false;
};

}  // namespace cudl

#include "cudl/error.hpp"

#include <cstdio>

namespace cudl {
namespace {

std::string format_value(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

}  // namespace

Diverged::Diverged(const std::string& what, int64_t layer_, int epoch_, int64_t minibatch_, double value_)
    : Error(what), layer(layer_), epoch(epoch_), minibatch(minibatch_), value(value_) {}

Diverged::Diverged(int epoch_, int64_t minibatch_, double value_, float learn_rate)
    : Diverged("training diverged at epoch " + std::to_string(epoch_) + ", minibatch " + std::to_string(minibatch_) +
                   ": mean loss " + format_value(value_) + " (learning rate " + format_value(learn_rate) +
                   "); try a lower learning rate",
               0, epoch_, minibatch_, value_) {}

Diverged Diverged::pretraining(int64_t layer_, int epoch_, double value_, float learn_rate) {
  return Diverged("pretraining diverged: layer " + std::to_string(layer_) + ", epoch " + std::to_string(epoch_) +
                      ": reconstruction error " + format_value(value_) + " (learning rate " +
                      format_value(learn_rate) + "); try a lower learning rate",
                  layer_, epoch_, 0, value_);
}

namespace detail {

void fail(const char* file, int line, const std::string& message) {
  std::string where(file);
  const auto slash = where.find_last_of('/');
  if (slash != std::string::npos) where = where.substr(slash + 1);
  throw Error(where + ":" + std::to_string(line) + ": " + message);
}

}  // namespace detail
}  // namespace cudl

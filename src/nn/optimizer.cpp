#include "cudl/optimizer.hpp"

#include <cmath>

#include "cudl/error.hpp"

namespace cudl {

NesterovSgd::NesterovSgd(Network& net, const NesterovConfig& config)
    : net_(net), config_(config), velocity_(net.params().shape(), net.backend()) {
  CUDL_REQUIRE(std::isfinite(config.learn_rate) && config.learn_rate > 0.0f,
               "NesterovSgd: learning rate must be positive, got " + std::to_string(config.learn_rate));
  CUDL_REQUIRE(config.momentum >= 0.0f && config.momentum < 1.0f,
               "NesterovSgd: momentum must be in [0, 1), got " + std::to_string(config.momentum));
  CUDL_REQUIRE(config.l2 >= 0.0f, "NesterovSgd: L2 cost must be non-negative, got " + std::to_string(config.l2));
  net.backend().fill(velocity_, 0.0f);
}

void NesterovSgd::begin() {
  if (active_) return;
  net_.backend().axpy(config_.momentum, velocity_, net_.params());
  active_ = true;
}

void NesterovSgd::step(int64_t batch) {
  CUDL_REQUIRE(active_, "NesterovSgd::step: call begin() first");
  CUDL_REQUIRE(batch > 0, "NesterovSgd::step: batch must be positive, got " + std::to_string(batch));
  NesterovArgs args;
  args.learn_rate = config_.learn_rate;
  args.momentum = config_.momentum;
  args.grad_scale = 1.0f / static_cast<float>(batch);
  args.l2 = config_.l2;
  args.decayed = net_.decayed_params();
  net_.backend().nesterov_step(net_.params(), velocity_, net_.grads(), args);
}

void NesterovSgd::end() {
  if (!active_) return;
  net_.backend().axpy(-config_.momentum, velocity_, net_.params());
  active_ = false;
}

}  // namespace cudl

// The named presets of past runs (presets::Gdbn2014) and train(), the 2014 run in one call.
#include <memory>
#include <vector>

#include "cudl/error.hpp"
#include "cudl/trainer.hpp"

namespace cudl {

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

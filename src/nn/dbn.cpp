#include "cudl/dbn.hpp"

#include <algorithm>
#include <cmath>

#include "cudl/error.hpp"
#include "nn/data_checks.hpp"
#include "nn/data_parallel.hpp"

namespace cudl {

DeepBeliefNet::DeepBeliefNet(Backend& backend, std::vector<int64_t> layers, const DbnConfig& config)
    : backend_(backend), layers_(std::move(layers)) {
  CUDL_REQUIRE(layers_.size() >= 2, "DeepBeliefNet: expected at least two layer sizes, found " +
                                        std::to_string(layers_.size()));
  for (size_t i = 0; i + 1 < layers_.size(); ++i) {
    RbmConfig rc;
    // Above the first layer the visible units are the layer below's hidden units.
    rc.visible = i == 0 ? config.first_visible : config.hidden;
    rc.hidden = i + 2 == layers_.size() ? config.top_hidden : config.hidden;
    rc.k = config.k;
    rc.learn_rate = config.learn_rate;
    rc.momentum = config.momentum;
    rc.l2 = config.l2;
    rc.batch = config.batch;
    rc.seed = config.seed + i;
    rc.communicator = config.communicator;
    rc.launch = config.launch;
    rbms_.push_back(std::make_unique<Rbm>(backend, layers_[i], layers_[i + 1], rc));
    rbms_.back()->initialize(config.seed + 100 + i, config.weight_stddev);
  }
}

// The hidden means of `r` for every row of input, computed in chunks.
Rbm& DeepBeliefNet::rbm(int64_t i) {
  CUDL_REQUIRE(i >= 0 && i < num_rbms(),
               "DeepBeliefNet::rbm: no RBM " + std::to_string(i) + " in a stack of " + std::to_string(num_rbms()));
  return *rbms_[static_cast<size_t>(i)];
}

Tensor DeepBeliefNet::propagate(Rbm& r, const Tensor& input) {
  Tensor above({input.dim(0), r.hidden()}, backend_);
  const int64_t chunk = 4096;
  for (int64_t begin = 0; begin < input.dim(0); begin += chunk) {
    const int64_t end = std::min(input.dim(0), begin + chunk);
    Tensor out = above.rows(begin, end);
    r.hidden_means(input.rows(begin, end), out);
  }
  return above;
}

void DeepBeliefNet::pretrain(const Tensor& data, int epochs,
                             const std::function<void(int64_t, const RbmEpochReport&)>& on_epoch,
                             const Tensor* heldout) {
  // Each RBM trains data-parallel where a communicator was given; the propagation between them
  // runs on every rank alike (the same parameters, the same rows).
  Communicator* comm = rbms_.empty() ? nullptr : rbms_.front()->config().communicator;
  detail::ending_the_job_on_error(comm, [&] { pretrain_on_rank(data, epochs, on_epoch, heldout); });
}

void DeepBeliefNet::pretrain_on_rank(const Tensor& data, int epochs,
                                     const std::function<void(int64_t, const RbmEpochReport&)>& on_epoch,
                                     const Tensor* heldout) {
  for (const Tensor* t : {&data, heldout}) {
    CUDL_REQUIRE(t == nullptr || (t->rank() == 2 && t->dim(1) == layers_[0]),
                 "DeepBeliefNet::pretrain: expected data [R, " + std::to_string(layers_[0]) + "], found " +
                     to_string(t->shape()));
    if (t != nullptr) detail::require_finite(*t, "DeepBeliefNet::pretrain", t == &data ? "data" : "heldout");
  }
  Tensor below, below_heldout;  // the current layer's inputs, once they are not the originals
  for (int64_t i = 0; i < num_rbms(); ++i) {
    const Tensor& input = i == 0 ? data : below;
    const Tensor* held = heldout == nullptr ? nullptr : i == 0 ? heldout : &below_heldout;
    Rbm& r = rbm(i);
    for (int e = 1; e <= epochs; ++e) {
      const RbmEpochReport report = r.train_epoch(input, e, held);
      if (on_epoch) on_epoch(i, report);
      if (!std::isfinite(report.reconstruction_error))
        throw Diverged::pretraining(i + 1, e, report.reconstruction_error, r.config().learn_rate);
    }
    if (i + 1 == num_rbms()) break;
    // The next RBM learns from this one's hidden means.
    Tensor next = propagate(r, input);
    if (held != nullptr) below_heldout = propagate(r, *held);
    below = std::move(next);
  }
}

void DeepBeliefNet::unroll_into(Network& net) {
  net.params();  // builds the network, binding the layers' parameter views
  int64_t next = 0;
  for (int64_t l = 0; l < net.num_layers() && next < num_rbms(); ++l) {
    auto* dense = dynamic_cast<Dense*>(&net.layer(l));
    if (dense == nullptr) continue;
    Rbm& r = rbm(next);
    CUDL_REQUIRE(dense->weight().shape() == r.weights().shape(),
                 "DeepBeliefNet::unroll_into: " + dense->describe() + " (layer " + std::to_string(l) +
                     ") has weights " + to_string(dense->weight().shape()) + " but RBM " + std::to_string(next) +
                     " has " + to_string(r.weights().shape()));
    dense->weight().copy_from(r.weights());
    dense->bias().copy_from(r.hidden_bias());
    ++next;
  }
  CUDL_REQUIRE(next == num_rbms(), "DeepBeliefNet::unroll_into: the network has " + std::to_string(next) +
                                       " Dense layers but the DBN has " + std::to_string(num_rbms()) + " RBMs");
}

}  // namespace cudl

#pragma once
// DeepBeliefNet: a stack of RBMs trained greedily, layer by layer (each on the hidden means of
// the one below), then unrolled into a Network for fine-tuning. The defaults are the nolearn /
// gdbn pretraining of the 2014 run: every weight layer, the top 800→10 one too, is an RBM
// trained with CD-1 and gdbn's update; the first has Gaussian visible units (the data is
// real-valued); every RBM's hidden units are noisy rectified units, and each upper RBM's visible
// units are the hidden units of the one below.
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "cudl/error.hpp"
#include "cudl/network.hpp"
#include "cudl/rbm.hpp"

namespace cudl {

struct DbnConfig {
  Units first_visible = Units::kGaussian;
  Units hidden = Units::kNoisyRelu;      // hidden units of every RBM but the top one
  Units top_hidden = Units::kNoisyRelu;  // hidden units of the last RBM
  int k = 1;
  float learn_rate = 0.3f;
  float momentum = 0.9f;
  float l2 = 1e-4f;
  int64_t batch = 64;
  uint64_t seed = 2014;
  float weight_stddev = 0.05f;  // initial weights, as the fine-tuned network's
};

class DeepBeliefNet {
 public:
  // layers: sizes from the input up, e.g. {784, 800, 800, 10} (three RBMs).
  DeepBeliefNet(Backend& backend, std::vector<int64_t> layers, const DbnConfig& config);

  int64_t num_rbms() const { return static_cast<int64_t>(rbms_.size()); }
  Rbm& rbm(int64_t i) { return *rbms_.at(static_cast<size_t>(i)); }
  const std::vector<int64_t>& layers() const { return layers_; }

  // Greedy pretraining: RBM i trains `epochs` epochs on data (R × layers[0]) passed through the
  // hidden means of RBMs 0..i-1. on_epoch(layer index, report) is called after every epoch.
  // Throws Diverged (with its layer set), after that epoch's on_epoch, if the reconstruction
  // error is not finite.
  // `heldout` (rows × layers[0]), when given, is passed up the same way and monitored each epoch.
  void pretrain(const Tensor& data, int epochs,
                const std::function<void(int64_t, const RbmEpochReport&)>& on_epoch = {},
                const Tensor* heldout = nullptr);

  // Copies every RBM's weights (V×H) and hidden biases into the Dense layers of net, in order;
  // net's Dense layers must have the RBMs' shapes (an Error names the first that does not).
  // Visible biases are not part of a feed-forward network and are dropped.
  void unroll_into(Network& net);

 private:
  Tensor propagate(Rbm& r, const Tensor& input);

  Backend& backend_;
  std::vector<int64_t> layers_;
  std::vector<std::unique_ptr<Rbm>> rbms_;
};

}  // namespace cudl

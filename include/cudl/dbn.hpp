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

/// The settings every RBM of a DeepBeliefNet shares (see RbmConfig), and their units.
struct DbnConfig {
  Units first_visible = Units::kGaussian;  ///< Visible units of the first RBM (the data).
  Units hidden = Units::kNoisyRelu;      ///< Hidden units of every RBM but the top one.
  Units top_hidden = Units::kNoisyRelu;  ///< Hidden units of the last RBM.
  int k = 1;                    ///< Gibbs steps of CD-k.
  float learn_rate = 0.3f;      ///< Every RBM's learning rate.
  float momentum = 0.9f;        ///< Every RBM's momentum.
  float l2 = 1e-4f;             ///< Every RBM's weight decay.
  int64_t batch = 64;           ///< Rows per minibatch.
  uint64_t seed = 2014;         ///< RBM i trains with seed + i and is initialised from seed + 100 + i.
  float weight_stddev = 0.05f;  ///< Initial weights' deviation, as the fine-tuned network's.
  /// Data-parallel pretraining: null (one process), or the ranks that pretrain together, each with
  /// `batch` rows per step and the same data (every RBM's RbmConfig::communicator). The ranks
  /// start from rank 0's parameters and end with the same stack. Not owned.
  Communicator* communicator = nullptr;
  StepLaunch launch = StepLaunch::kAuto;  ///< Every RBM's RbmConfig::launch.
};

/// A stack of RBMs trained greedily, then unrolled into a Network (see the top of dbn.hpp).
///
/// Lives on one backend, as its RBMs do; not thread-safe (one thread drives it).
class DeepBeliefNet {
 public:
  /// layers: sizes from the input up, such as {784, 800, 800, 10} (three RBMs). Each RBM is built
  /// and initialised here. Throws Error for fewer than two sizes, and what Rbm's constructor throws.
  DeepBeliefNet(Backend& backend, std::vector<int64_t> layers, const DbnConfig& config);

  /// The RBMs in the stack: layers().size() − 1.
  int64_t num_rbms() const { return static_cast<int64_t>(rbms_.size()); }
  /// RBM i, from the input up. Throws Error for i outside [0, num_rbms()).
  Rbm& rbm(int64_t i);
  /// The layer sizes given to the constructor.
  const std::vector<int64_t>& layers() const { return layers_; }

  /// Greedy pretraining: RBM i trains `epochs` epochs on data (R × layers[0]) passed through the
  /// hidden means of RBMs 0..i-1. on_epoch(layer index, report) is called after every epoch.
  /// Throws Diverged (with its layer set), after that epoch's on_epoch, if the reconstruction
  /// error is not finite.
  /// `heldout` (rows × layers[0]), when given, is passed up the same way and monitored each epoch.
  /// Throws Error when data or heldout is not R × layers[0] or holds a NaN or an infinity. With
  /// several ranks (DbnConfig::communicator), every rank calls this together; an error on one
  /// rank only ends the job, a Diverged is thrown on every rank alike.
  void pretrain(const Tensor& data, int epochs,
                const std::function<void(int64_t, const RbmEpochReport&)>& on_epoch = {},
                const Tensor* heldout = nullptr);

  /// Copies every RBM's weights (V×H) and hidden biases into the Dense layers of net, in order;
  /// net's Dense layers must have the RBMs' shapes (an Error names the first that does not).
  /// Visible biases are not part of a feed-forward network and are dropped.
  void unroll_into(Network& net);

 private:
  Tensor propagate(Rbm& r, const Tensor& input);
  void pretrain_on_rank(const Tensor& data, int epochs,
                        const std::function<void(int64_t, const RbmEpochReport&)>& on_epoch, const Tensor* heldout);

  Backend& backend_;
  std::vector<int64_t> layers_;
  std::vector<std::unique_ptr<Rbm>> rbms_;
};

}  // namespace cudl

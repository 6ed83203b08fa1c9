#pragma once
// Restricted Boltzmann machines, on any Backend. Conventions (Hinton, "A Practical Guide to
// Training Restricted Boltzmann Machines", 2010), in one place:
//   energy, Bernoulli visible:  E(v, h) = −bᵀv − cᵀh − vᵀWh
//   energy, Gaussian visible:   E(v, h) = ½‖v − b‖² − cᵀh − vᵀWh   (unit variance)
//   hidden means  E[h | v]: σ(c + vᵀW) (Bernoulli), max(0, c + vᵀW) (noisy ReLU, gdbn's)
//   visible means E[v | h]: σ(b + Wh) (Bernoulli), b + Wh (Gaussian), max(0, b + Wh) (noisy
//   ReLU: in a stack, the visible units of an upper RBM are the hidden units of the one below)
// Training (CD-k, or persistent CD): the hidden states that drive the chain are SAMPLED; the
// statistics use hidden PROBABILITIES (means): the gradient estimate is
//   ∂ log p / ∂W ≈ (v₀ᵀ p(h|v₀) − v_kᵀ p(h|v_k)) / B,
// and likewise for the biases. The visible units of the chain are means by default (the usual
// practice, Reconstruction::kMeans) or samples (kSamples: a true Gibbs chain, as CD-k with large
// k and persistent chains need to approach the model's distribution). Updates are gdbn's
// (RbmMomentum, Backend::momentum_step): momentum averaging the gradient, with weight decay applied to the
// weights directly.
// W is V×H row-major, so the first layer's filters are its columns.
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cudl/backend.hpp"
#include "cudl/communicator.hpp"
#include "cudl/optimizer.hpp"
#include "cudl/step_launch.hpp"

namespace cudl {
namespace detail {
class EpochLoop;  // src/nn/epoch_loop.hpp
}

/// What the visible units of the negative-phase Gibbs chain carry.
enum class Reconstruction {
  kMeans,    ///< Their means E[v | h] (the usual practice).
  kSamples,  ///< Samples drawn with those means: a true Gibbs chain.
};
/// Where the negative phase's chains start.
enum class Negative {
  kContrastive,  ///< CD-k: at each batch's data.
  kPersistent,   ///< PCD: where the previous batch's chains ended (kept across batches).
};

/// An RBM's units, training algorithm and hyperparameters.
struct RbmConfig {
  Units visible = Units::kBernoulli;  ///< Visible units: any Units.
  Units hidden = Units::kBernoulli;   ///< Hidden units: kBernoulli or kNoisyRelu.
  int k = 1;                          ///< Gibbs steps in the negative phase (≥ 1).
  Negative negative = Negative::kContrastive;  ///< CD-k or persistent CD.
  Reconstruction reconstruction = Reconstruction::kMeans;  ///< Means or samples in the chain.
  float learn_rate = 0.1f;  ///< The momentum step's learning rate.
  float momentum = 0.5f;    ///< The momentum step's averaging factor.
  float l2 = 2e-4f;         ///< Weight decay, applied to W only.
  int64_t batch = 64;       ///< Rows per minibatch B (≥ 1).
  uint64_t seed = 1;        ///< Seed of the minibatch draws and unit samples.
  /// Data-parallel training (docs/design/data-parallel.md): null (one process), or the ranks
  /// that train this RBM together, each with `batch` rows per step. Every rank must hold the same
  /// training data. Each rank takes its share of the rows and unit samples that one process of
  /// `batch` × size() rows would draw, the gradients are averaged over the ranks before every
  /// step, and every rank takes the same step: 2 ranks × 32 rows train as 1 process × 64.
  /// train_epoch starts from rank 0's parameters and checks after the epoch that every rank holds
  /// the same; an error on one rank only ends the job (Communicator::abort). Not owned: it must
  /// outlive the training.
  Communicator* communicator = nullptr;
  /// How train_epoch queues its CD steps: kAuto replays one captured step on a backend that can
  /// capture (a GPU; with a communicator, one whose all-reduce can be captured), kEager queues every
  /// primitive. The same arithmetic and the same samples either way (StepLaunch).
  StepLaunch launch = StepLaunch::kAuto;
};

/// What Rbm::train_epoch measured.
///
/// The figures are measured after the epoch on the first ≤ 10,000 rows of the training data and
/// of the held-out data (NaN where there is none): reconstruction_error() and the mean free
/// energy (Bernoulli hidden units only, NaN otherwise). A held-out free energy rising above the
/// training one is the sign of over-fitting.
struct RbmEpochReport {
  int epoch = 0;                       ///< The epoch's number, 1-based.
  double seconds = 0.0;                ///< Wall time of the training alone, not the measuring.
  bool captured = false;               ///< Whether the steps replayed a captured one (StepLaunch).
  double reconstruction_error = 0.0;   ///< Mean squared reconstruction error, training rows.
  double heldout_reconstruction_error = 0.0;  ///< The same on held-out rows, or NaN.
  double free_energy = 0.0;            ///< Mean free energy of the training rows, or NaN.
  double heldout_free_energy = 0.0;    ///< Mean free energy of held-out rows, or NaN.
  /// The exact mean log-likelihood of the same training rows, for models small enough to
  /// enumerate (Bernoulli hidden units, Bernoulli or Gaussian visible units, H ≤ 20; NaN
  /// otherwise).
  double log_likelihood = 0.0;
};

/// A restricted Boltzmann machine on one backend, trained by CD-k or persistent CD (the energy,
/// means and gradient conventions are listed at the top of rbm.hpp).
///
/// Its tensors live on the backend it was built with; training queues work there and reads
/// back only the monitoring figures (train_epoch and reconstruction_error, which sum on the backend
/// and read back one double per 1,000 rows; free_energy and the enumerations, which copy data to
/// the host and compute in double there). The unit samples are
/// counter-based draws, so the CPU and CUDA backends sample the same numbers. Not thread-safe:
/// one thread drives an Rbm. Shape mismatches throw Error naming the expected and found shapes.
class Rbm {
 public:
  /// V = `visible` and H = `hidden` units, with parameters allocated on `backend` and set by
  /// initialize(config.seed, 0.01). Throws Error when a size, k or batch is below 1, or the hidden
  /// units are neither kBernoulli nor kNoisyRelu.
  Rbm(Backend& backend, int64_t visible, int64_t hidden, const RbmConfig& config);
  ~Rbm();
  Rbm(const Rbm&) = delete;
  Rbm& operator=(const Rbm&) = delete;

  /// W ← N(0, weight_stddev²) from `seed`; biases ← 0; velocities and persistent chains reset.
  void initialize(uint64_t seed, float weight_stddev);

  int64_t visible() const { return visible_; }         ///< V.
  int64_t hidden() const { return hidden_; }           ///< H.
  const RbmConfig& config() const { return config_; }  ///< The settings (learn_rate as last set).
  /// Changes the learning rate of the following steps (the config and the optimizer).
  void set_learn_rate(float lr);
  Backend& backend() const { return backend_; }        ///< Where every tensor of the RBM lives.
  /// Views of the flat parameter buffer [W (V×H) | b (V) | c (H)].
  Tensor& params() { return params_; }
  /// params() and gradient() with the weights W as the decayed prefix, for an optimizer.
  ParamSet param_set();
  /// The update (gdbn's momentum step, configured from RbmConfig) and its state.
  RbmMomentum& optimizer() { return *opt_; }
  Tensor& weights() { return w_; }       ///< W (V×H), a view into params().
  Tensor& visible_bias() { return b_; }  ///< b (V), a view into params().
  Tensor& hidden_bias() { return c_; }   ///< c (H), a view into params().
  /// The last computed gradient of the NEGATIVE log-likelihood estimate, summed over the batch,
  /// in the layout of params() (what one step descends).
  const Tensor& gradient() const { return grad_; }

  /// h(N×H) ← E[h | v] for v (N×V).
  void hidden_means(const Tensor& v, Tensor& h);
  /// v(N×V) ← E[v | h] for h (N×H).
  void visible_means(const Tensor& h, Tensor& v);

  /// Fills gradient() from the batch v0 (N×V) by CD-k or PCD, without changing the parameters.
  /// Throws Error when v0 is not N×V, or (PCD) when N differs from the persistent chains' rows.
  void compute_gradient(const Tensor& v0);
  /// compute_gradient, then one momentum step. With a communicator, the gradient is first averaged
  /// over the ranks (every rank calls this together, with its share of the batch).
  void train_batch(const Tensor& v0);
  /// One epoch over data (R×V): floor(R/B) minibatches of B rows drawn with replacement (B the
  /// batch times the communicator's ranks); then the monitoring figures of RbmEpochReport, on
  /// `heldout` too when given. `epoch` (1-based) is reported back. Synchronises with the backend.
  /// Throws Error when data is not R×V or has fewer rows than one batch; with several ranks an
  /// error on one rank only ends the job, and parameters that differ between the ranks after the
  /// epoch are an Error naming the ranks.
  RbmEpochReport train_epoch(const Tensor& data, int epoch, const Tensor* heldout = nullptr);
  /// The mean of free_energy() over rows, or NaN where free_energy() is not defined.
  double mean_free_energy(const Tensor& data);

  /// Mean over rows of ‖v − E[v | E[h | v]]‖² (one deterministic up-down pass), summed in double
  /// on the backend (Backend::squared_distance), in chunks of 1,000 rows. Throws Error when data is
  /// not R×V.
  double reconstruction_error(const Tensor& data);
  /// F(v) per row, with p(v) ∝ exp(−F(v)). Bernoulli hidden units and Bernoulli or Gaussian
  /// visible units only (throws otherwise).
  std::vector<double> free_energy(const Tensor& data);
  /// Exact mean log-likelihood of the rows of data, by enumerating all 2^H hidden states
  /// (Bernoulli hidden units, H ≤ 24; throws otherwise).
  double exact_log_likelihood(const Tensor& data);
  /// log Z by the same enumeration (the same units and H ≤ 24; throws otherwise).
  double log_partition();

  /// The persistent chains' visible states (B×V; empty before the first PCD batch).
  const Tensor& persistent_chains() const { return chain_; }

 private:
  struct Scratch;
  Activation visible_activation() const;
  Scratch& scratch(int64_t rows);
  uint64_t take_offset(int64_t n);
  int rank() const { return config_.communicator != nullptr ? config_.communicator->rank() : 0; }
  int ranks() const { return config_.communicator != nullptr ? config_.communicator->size() : 1; }
  RbmEpochReport train_epoch_on_rank(const Tensor& data, int epoch, const Tensor* heldout);

  Backend& backend_;
  int64_t visible_, hidden_;
  RbmConfig config_;
  Tensor params_, grad_;
  std::unique_ptr<RbmMomentum> opt_;
  std::unique_ptr<detail::EpochLoop> loop_;  // the minibatch driver fit() uses too
  Tensor no_targets_;                        // zeros: the driver draws (row, target) pairs
  Tensor w_, b_, c_, gw_, gb_, gc_;
  Tensor chain_;
  uint64_t counter_ = 0;  // unit samples drawn so far by all ranks (their Philox counter)
  // counter_ in the backend's memory, as it stands between steps: a step's draws read it when they
  // run (plus their offset within the step) and the step's last primitive advances it, so that a
  // captured step draws fresh samples at each replay.
  Tensor samples_;
  uint64_t step_base_ = 0;  // counter_ when the step being queued began
  std::vector<std::pair<int64_t, std::unique_ptr<Scratch>>> scratch_;
};

}  // namespace cudl

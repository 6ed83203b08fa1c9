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
#include "cudl/optimizer.hpp"

namespace cudl {
namespace detail {
class EpochLoop;  // src/nn/epoch_loop.hpp
}

enum class Reconstruction { kMeans, kSamples };
enum class Negative { kContrastive, kPersistent };  // CD-k, or PCD (chains kept across batches)

struct RbmConfig {
  Units visible = Units::kBernoulli;  // any Units
  Units hidden = Units::kBernoulli;   // kBernoulli or kNoisyRelu
  int k = 1;                          // Gibbs steps in the negative phase
  Negative negative = Negative::kContrastive;
  Reconstruction reconstruction = Reconstruction::kMeans;
  float learn_rate = 0.1f;
  float momentum = 0.5f;
  float l2 = 2e-4f;
  int64_t batch = 64;
  uint64_t seed = 1;  // minibatch draws and unit samples
};

struct RbmEpochReport {
  int epoch = 0;                       // 1-based
  double seconds = 0.0;                // training only
  // Measured after the epoch on the first ≤ 10,000 rows of the training data and of the
  // held-out data (NaN where there is none): reconstruction_error() and the mean free energy
  // (Bernoulli hidden units only, NaN otherwise). A held-out free energy rising above the
  // training one is the sign of over-fitting.
  double reconstruction_error = 0.0;
  double heldout_reconstruction_error = 0.0;
  double free_energy = 0.0;
  double heldout_free_energy = 0.0;
  // The exact mean log-likelihood of the same training rows, for models small enough to
  // enumerate (Bernoulli hidden units, H ≤ 20; NaN otherwise).
  double log_likelihood = 0.0;
};

class Rbm {
 public:
  Rbm(Backend& backend, int64_t visible, int64_t hidden, const RbmConfig& config);
  ~Rbm();
  Rbm(const Rbm&) = delete;
  Rbm& operator=(const Rbm&) = delete;

  // W ← N(0, weight_stddev²) from `seed`; biases ← 0; velocities and persistent chains reset.
  void initialize(uint64_t seed, float weight_stddev);

  int64_t visible() const { return visible_; }
  int64_t hidden() const { return hidden_; }
  const RbmConfig& config() const { return config_; }
  void set_learn_rate(float lr);
  Backend& backend() const { return backend_; }
  // Views of the flat parameter buffer [W (V×H) | b (V) | c (H)].
  Tensor& params() { return params_; }
  // params() and gradient() with the weights W as the decayed prefix, for an optimizer.
  ParamSet param_set();
  // The update (gdbn's momentum step, configured from RbmConfig) and its state.
  RbmMomentum& optimizer() { return *opt_; }
  Tensor& weights() { return w_; }
  Tensor& visible_bias() { return b_; }
  Tensor& hidden_bias() { return c_; }
  // The last computed gradient of the NEGATIVE log-likelihood estimate, summed over the batch,
  // in the layout of params() (what one step descends).
  const Tensor& gradient() const { return grad_; }

  // h(N×H) ← E[h | v]; v(N×V) ← E[v | h].
  void hidden_means(const Tensor& v, Tensor& h);
  void visible_means(const Tensor& h, Tensor& v);

  // Fills gradient() from the batch v0 (N×V) by CD-k or PCD, without changing the parameters.
  void compute_gradient(const Tensor& v0);
  // compute_gradient, then one momentum step.
  void train_batch(const Tensor& v0);
  // One epoch over data (R×V): floor(R/B) minibatches drawn with replacement; then the
  // monitoring figures of RbmEpochReport, on `heldout` too when given.
  RbmEpochReport train_epoch(const Tensor& data, int epoch, const Tensor* heldout = nullptr);
  // The mean of free_energy() over rows, or NaN where free_energy() is not defined.
  double mean_free_energy(const Tensor& data);

  // Mean over rows of ‖v − E[v | E[h | v]]‖² (one deterministic up-down pass).
  double reconstruction_error(const Tensor& data);
  // F(v) per row, with p(v) ∝ exp(−F(v)). Bernoulli hidden units and Bernoulli or Gaussian
  // visible units only (throws otherwise).
  std::vector<double> free_energy(const Tensor& data);
  // Exact mean log-likelihood of the rows of data, by enumerating all 2^H hidden states
  // (Bernoulli hidden units, H ≤ 24; throws otherwise).
  double exact_log_likelihood(const Tensor& data);
  // log Z by the same enumeration.
  double log_partition();

  // The persistent chains' visible states (B×V; empty before the first PCD batch).
  const Tensor& persistent_chains() const { return chain_; }

 private:
  struct Scratch;
  Activation visible_activation() const;
  Scratch& scratch(int64_t rows);
  uint64_t take_counter(int64_t n);

  Backend& backend_;
  int64_t visible_, hidden_;
  RbmConfig config_;
  Tensor params_, grad_;
  std::unique_ptr<RbmMomentum> opt_;
  std::unique_ptr<detail::EpochLoop> loop_;  // the minibatch driver fit() uses too
  Tensor no_targets_;                        // zeros: the driver draws (row, target) pairs
  Tensor w_, b_, c_, gw_, gb_, gc_;
  Tensor chain_;
  uint64_t counter_ = 0;  // unit samples drawn so far (their Philox counter)
  std::vector<std::pair<int64_t, std::unique_ptr<Scratch>>> scratch_;
};

}  // namespace cudl

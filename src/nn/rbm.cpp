#include "cudl/rbm.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include "cudl/error.hpp"
#include "nn/data_parallel.hpp"
#include "nn/epoch_loop.hpp"

namespace cudl {
namespace {
// Rows of the training data on which an epoch's reconstruction error is measured.
constexpr int64_t kMonitorRows = 10000;
}  // namespace

// Buffers for one batch size: hidden means and states, visible means and states.
struct Rbm::Scratch {
  Tensor p0, h, vm, v, pk;
  Scratch(Backend& backend, int64_t rows, int64_t visible, int64_t hidden)
      : p0({rows, hidden}, backend),
        h({rows, hidden}, backend),
        vm({rows, visible}, backend),
        v({rows, visible}, backend),
        pk({rows, hidden}, backend) {}
};

Rbm::Rbm(Backend& backend, int64_t visible, int64_t hidden, const RbmConfig& config)
    : backend_(backend), visible_(visible), hidden_(hidden), config_(config) {
  CUDL_REQUIRE(visible > 0 && hidden > 0, "Rbm: sizes must be positive, got " + std::to_string(visible) + " visible, " +
                                              std::to_string(hidden) + " hidden");
  CUDL_REQUIRE(config.hidden == Units::kBernoulli || config.hidden == Units::kNoisyRelu,
               std::string("Rbm: hidden units must be bernoulli or noisy-relu, got ") + to_string(config.hidden));
  CUDL_REQUIRE(config.k >= 1, "Rbm: k must be at least 1, got " + std::to_string(config.k));
  CUDL_REQUIRE(config.batch >= 1, "Rbm: batch must be at least 1, got " + std::to_string(config.batch));
  const int64_t p = visible * hidden + visible + hidden;
  params_ = Tensor({p}, backend);
  grad_ = Tensor({p}, backend);
  w_ = params_.slice(0, {visible, hidden});
  b_ = params_.slice(visible * hidden, {visible});
  c_ = params_.slice(visible * hidden + visible, {hidden});
  gw_ = grad_.slice(0, {visible, hidden});
  gb_ = grad_.slice(visible * hidden, {visible});
  gc_ = grad_.slice(visible * hidden + visible, {hidden});
  samples_ = make_counter(backend);
  RbmMomentumOptions o;
  o.learn_rate = config.learn_rate;
  o.momentum = config.momentum;
  o.l2 = config.l2;
  o.grad_scale = 1.0f / static_cast<float>(config.batch);
  opt_ = std::make_unique<RbmMomentum>(param_set(), o);
  initialize(config.seed, 0.01f);
}

Rbm::~Rbm() = default;

Activation Rbm::visible_activation() const {
  switch (config_.visible) {
    case Units::kBernoulli: return Activation::kSigmoid;
    case Units::kNoisyRelu: return Activation::kRelu;
    case Units::kGaussian: return Activation::kIdentity;
  }
  return Activation::kIdentity;
}

void Rbm::initialize(uint64_t seed, float weight_stddev) {
  backend_.fill(params_, 0.0f);
  backend_.fill_normal(w_, seed, 0.0f, weight_stddev);
  backend_.fill(grad_, 0.0f);
  opt_->reset();
  chain_ = Tensor();
  loop_.reset();  // a captured step reads the chains it was captured with
}

Rbm::Scratch& Rbm::scratch(int64_t rows) {
  for (auto& [n, s] : scratch_)
    if (n == rows) return *s;
  scratch_.emplace_back(rows, std::make_unique<Scratch>(backend_, rows, visible_, hidden_));
  return *scratch_.back().second;
}

uint64_t Rbm::take_offset(int64_t n) {
  // Element i of a draw uses counter + i, and every rank draws n numbers for its rows: rank r
  // takes the r-th n of the numbers one process of all the ranks' rows would draw. The draw reads
  // the step's first counter from samples_, so it is given the offset from there.
  const uint64_t c = counter_ + static_cast<uint64_t>(rank()) * static_cast<uint64_t>(n);
  counter_ += static_cast<uint64_t>(ranks()) * static_cast<uint64_t>(n);
  return c - step_base_;
}

// The product and its bias and activation in one call: one kernel where the backend fuses them
// (CudaBackend's cuBLASLt epilogue), the two calls' bits elsewhere.
void Rbm::hidden_means(const Tensor& v, Tensor& h) {
  const Activation act = config_.hidden == Units::kBernoulli ? Activation::kSigmoid : Activation::kRelu;
  backend_.gemm_bias_activation(1.0f, v, Trans::kNo, w_, Trans::kNo, c_, act, h);  // h(N×H) = act(v·W + c)
}

void Rbm::visible_means(const Tensor& h, Tensor& v) {
  backend_.gemm_bias_activation(1.0f, h, Trans::kNo, w_, Trans::kYes, b_, visible_activation(), v);  // act(h·Wᵀ + b)
}

void Rbm::compute_gradient(const Tensor& v0) {
  CUDL_REQUIRE(v0.rank() == 2 && v0.dim(1) == visible_,
               "Rbm: expected a batch [N, " + std::to_string(visible_) + "], found " + to_string(v0.shape()));
  const int64_t n = v0.dim(0);
  Scratch& s = scratch(n);
  step_base_ = counter_;  // what samples_ holds when this step's draws run
  // The chain starts from the data (CD) or from the persistent chains (PCD).
  const bool persistent = config_.negative == Negative::kPersistent;
  if (persistent && chain_.empty()) {
    chain_ = Tensor(v0.shape(), backend_);
    chain_.copy_from(v0);  // the chains start at the first batch
  }
  CUDL_REQUIRE(!persistent || chain_.shape() == v0.shape(),
               "Rbm: persistent chains hold " + to_string(chain_.shape()) + " but the batch is " +
                   to_string(v0.shape()));
  // Means and samples come from one fused pass each (Backend::bias_activation_sample).
  const Activation hidden_act = config_.hidden == Units::kBernoulli ? Activation::kSigmoid : Activation::kRelu;
  const Activation visible_act = visible_activation();
  auto up_and_sample = [&](const Tensor& v, Tensor& means) {
    backend_.gemm(1.0f, v, Trans::kNo, w_, Trans::kNo, 0.0f, means);
    backend_.bias_activation_sample(means, c_, hidden_act, config_.hidden, config_.seed, samples_,
                                    take_offset(means.size()), s.h);
  };
  if (persistent) {
    hidden_means(v0, s.p0);
    up_and_sample(chain_, s.pk);
  } else {
    backend_.gemm(1.0f, v0, Trans::kNo, w_, Trans::kNo, 0.0f, s.p0);
    backend_.bias_activation_sample(s.p0, c_, hidden_act, config_.hidden, config_.seed, samples_,
                                    take_offset(s.p0.size()), s.h);
  }
  for (int step = 1; step <= config_.k; ++step) {
    if (config_.reconstruction == Reconstruction::kSamples) {
      backend_.gemm(1.0f, s.h, Trans::kNo, w_, Trans::kYes, 0.0f, s.vm);
      backend_.bias_activation_sample(s.vm, b_, visible_act, config_.visible, config_.seed, samples_,
                                      take_offset(s.vm.size()), s.v);
    } else {
      visible_means(s.h, s.v);
    }
    if (step < config_.k) {
      up_and_sample(s.v, s.pk);
    } else {
      hidden_means(s.v, s.pk);
    }
  }
  if (persistent) chain_.copy_from(s.v);
  // Gradient of −log p summed over the batch: negative statistics minus positive ones.
  // gW = v_kᵀ·p_k − v₀ᵀ·p₀, gc = Σ p_k − Σ p₀ (B's rows), gb = Σ v_k − Σ v₀ (A's rows).
  backend_.gemm_sum_rows(1.0f, s.v, Trans::kYes, s.pk, 0.0f, gw_, 1.0f, 0.0f, gc_, &gb_);
  backend_.gemm_sum_rows(-1.0f, v0, Trans::kYes, s.p0, 1.0f, gw_, -1.0f, 1.0f, gc_, &gb_);
  backend_.add_to_counter(samples_, counter_ - step_base_);
}

void Rbm::train_batch(const Tensor& v0) {
  compute_gradient(v0);
  // The mean over the ranks of their batch sums, over the per-rank batch: the global batch's
  // mean, as one process of every rank's rows would take.
  if (config_.communicator != nullptr) config_.communicator->all_reduce_mean(grad_);
  opt_->set_grad_scale(1.0f / static_cast<float>(v0.dim(0)));
  opt_->step();
}

void Rbm::set_learn_rate(float lr) {
  config_.learn_rate = lr;
  opt_->set_learning_rate(lr);
}

ParamSet Rbm::param_set() { return ParamSet{&params_, &grad_, visible_ * hidden_}; }

RbmEpochReport Rbm::train_epoch(const Tensor& data, int epoch, const Tensor* heldout) {
  Communicator* comm = config_.communicator;
  return detail::ending_the_job_on_error(comm, [&] {
    if (detail::several_ranks(comm)) comm->broadcast(params_, 0);  // rank 0's model on every rank
    RbmEpochReport r = train_epoch_on_rank(data, epoch, heldout);
    if (detail::several_ranks(comm)) detail::require_same_parameters(*comm, params_, "Rbm", epoch);
    return r;
  });
}

RbmEpochReport Rbm::train_epoch_on_rank(const Tensor& data, int epoch, const Tensor* heldout) {
  CUDL_REQUIRE(data.rank() == 2 && data.dim(1) == visible_,
               "Rbm: expected data [R, " + std::to_string(visible_) + "], found " + to_string(data.shape()));
  const int64_t global_batch = config_.batch * ranks();
  const int64_t steps = data.dim(0) / global_batch;
  CUDL_REQUIRE(steps > 0, "Rbm: " + std::to_string(data.dim(0)) + " rows are fewer than one batch of " +
                              std::to_string(global_batch) +
                              (ranks() > 1 ? " (" + std::to_string(config_.batch) + " rows on each of " +
                                                 std::to_string(ranks()) + " ranks)"
                                           : std::string()));
  const auto t0 = std::chrono::steady_clock::now();
  // The minibatches are fit()'s (detail::EpochLoop: draws with replacement continuing from the
  // previous epochs'); an RBM has no targets, so they come from a column of zeros.
  if (no_targets_.rank() != 1 || no_targets_.dim(0) != data.dim(0)) {
    no_targets_ = Tensor({data.dim(0)}, backend_);
    backend_.fill(no_targets_, 0.0f);
  }
  // With several ranks, rank r draws rows [r·B, (r+1)·B) of each step's B·ranks (EpochLoop).
  if (!loop_ || !loop_->serves(config_.batch, visible_, Sampling::kWithReplacement, config_.seed, rank(), ranks()))
    loop_ = std::make_unique<detail::EpochLoop>(backend_, config_.batch, visible_, Sampling::kWithReplacement,
                                                config_.seed, rank(), ranks());
  backend_.set_counter(samples_, counter_);  // as it stands, even after a step that threw
  Communicator* comm = config_.communicator;
  const bool capture = config_.launch != StepLaunch::kEager && backend_.can_capture() &&
                       (comm == nullptr || comm->capturable(backend_));
  loop_->run(data, no_targets_, epoch, steps, capture, [this](const Tensor& v0, const Tensor&) { train_batch(v0); },
             {});
  // The replays advanced the unit-sample counter on the device only (waits for the epoch's work).
  counter_ = read_counter(samples_);
  RbmEpochReport r;
  r.epoch = epoch;
  r.captured = capture;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const Tensor train_rows = data.rows(0, std::min<int64_t>(data.dim(0), kMonitorRows));
  r.reconstruction_error = reconstruction_error(train_rows);
  r.free_energy = mean_free_energy(train_rows);
  const bool enumerable = config_.hidden == Units::kBernoulli && config_.visible != Units::kNoisyRelu && hidden_ <= 20;
  r.log_likelihood = enumerable ? exact_log_likelihood(train_rows) : nan;
  r.heldout_reconstruction_error = r.heldout_free_energy = nan;
  if (heldout != nullptr && heldout->rows() > 0) {
    const Tensor held = heldout->rows(0, std::min<int64_t>(heldout->dim(0), kMonitorRows));
    r.heldout_reconstruction_error = reconstruction_error(held);
    r.heldout_free_energy = mean_free_energy(held);
  }
  return r;
}

double Rbm::reconstruction_error(const Tensor& data) {
  CUDL_REQUIRE(data.rank() == 2 && data.dim(1) == visible_,
               "Rbm: expected data [R, " + std::to_string(visible_) + "], found " + to_string(data.shape()));
  double sum = 0.0;
  const int64_t chunk = 1000;
  for (int64_t begin = 0; begin < data.dim(0); begin += chunk) {
    const int64_t end = std::min(data.dim(0), begin + chunk);
    const Tensor v = data.rows(begin, end);
    Scratch& s = scratch(end - begin);
    hidden_means(v, s.p0);
    visible_means(s.p0, s.vm);
    sum += backend_.squared_distance(v, s.vm);  // summed where the tensors live: one double comes back
  }
  return data.dim(0) > 0 ? sum / static_cast<double>(data.dim(0)) : 0.0;
}

}  // namespace cudl

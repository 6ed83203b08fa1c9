// Free energies and exact likelihoods of small RBMs, in double precision on the host. Used for
// monitoring and for testing the sampler against enumeration.
#include <algorithm>
#include <cmath>
#include <limits>

#include "cudl/error.hpp"
#include "cudl/rbm.hpp"

namespace cudl {
namespace {

double softplus(double x) { return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)); }

// log Σ exp(terms), stably.
double log_sum_exp(const std::vector<double>& terms) {
  double m = -std::numeric_limits<double>::infinity();
  for (double t : terms) m = std::max(m, t);
  if (!std::isfinite(m)) return m;
  double s = 0.0;
  for (double t : terms) s += std::exp(t - m);
  return m + std::log(s);
}

}  // namespace

std::vector<double> Rbm::free_energy(const Tensor& data) {
  CUDL_REQUIRE(config_.hidden == Units::kBernoulli && config_.visible != Units::kNoisyRelu,
               "Rbm::free_energy: defined in closed form for bernoulli hidden units and bernoulli or gaussian "
               "visible units only");
  CUDL_REQUIRE(data.rank() == 2 && data.dim(1) == visible_,
               "Rbm: expected data [R, " + std::to_string(visible_) + "], found " + to_string(data.shape()));
  const std::vector<float> b = b_.to_vector(), c = c_.to_vector();
  std::vector<double> f;
  f.reserve(static_cast<size_t>(data.dim(0)));
  // F(v) = visible term − Σ_j softplus(c_j + (vW)_j): the product on the backend, the rest here.
  const int64_t chunk = 1000;
  for (int64_t begin = 0; begin < data.dim(0); begin += chunk) {
    const int64_t end = std::min(data.dim(0), begin + chunk);
    const Tensor rows = data.rows(begin, end);
    Tensor x({end - begin, hidden_}, backend_);
    backend_.gemm(1.0f, rows, Trans::kNo, w_, Trans::kNo, 0.0f, x);
    const std::vector<float> v = rows.to_vector(), xv = x.to_vector();
    for (int64_t r = 0; r < end - begin; ++r) {
      const float* vr = v.data() + r * visible_;
      double visible_term = 0.0;
      for (int64_t i = 0; i < visible_; ++i) {
        visible_term += config_.visible == Units::kBernoulli
                            ? -static_cast<double>(b[i]) * vr[i]
                            : 0.5 * (vr[i] - static_cast<double>(b[i])) * (vr[i] - b[i]);
      }
      double hidden_term = 0.0;
      for (int64_t j = 0; j < hidden_; ++j) hidden_term += softplus(static_cast<double>(c[j]) + xv[r * hidden_ + j]);
      f.push_back(visible_term - hidden_term);
    }
  }
  return f;
}

double Rbm::mean_free_energy(const Tensor& data) {
  if (config_.hidden != Units::kBernoulli || config_.visible == Units::kNoisyRelu || data.rows() == 0)
    return std::numeric_limits<double>::quiet_NaN();
  double sum = 0.0;
  const std::vector<double> f = free_energy(data);
  for (double fe : f) sum += fe;
  return sum / static_cast<double>(f.size());
}

// Z = Σ_h exp(cᵀh) · Π_i Σ_{v_i} exp(v_i (b_i + W_i·h)) for Bernoulli visible units, and
// Σ_h exp(cᵀh + ½‖b + Wh‖² − ½‖b‖²) · (2π)^{V/2} for Gaussian ones.
double Rbm::log_partition() {
  CUDL_REQUIRE(config_.hidden == Units::kBernoulli && config_.visible != Units::kNoisyRelu,
               "Rbm::log_partition: bernoulli hidden units and bernoulli or gaussian visible units only");
  CUDL_REQUIRE(hidden_ <= 24, "Rbm::log_partition: enumerating 2^" + std::to_string(hidden_) +
                                  " hidden states is too many (at most 24 hidden units)");
  const std::vector<float> w = w_.to_vector(), b = b_.to_vector(), c = c_.to_vector();
  std::vector<double> terms;
  terms.reserve(size_t{1} << hidden_);
  for (uint64_t state = 0; state < (uint64_t{1} << hidden_); ++state) {
    double t = 0.0;
    for (int64_t j = 0; j < hidden_; ++j)
      if (state >> j & 1) t += c[j];
    for (int64_t i = 0; i < visible_; ++i) {
      double a = b[i];
      for (int64_t j = 0; j < hidden_; ++j)
        if (state >> j & 1) a += w[i * hidden_ + j];
      t += config_.visible == Units::kBernoulli ? softplus(a) : 0.5 * (a * a - static_cast<double>(b[i]) * b[i]);
    }
    terms.push_back(t);
  }
  const double log_z = log_sum_exp(terms);
  return config_.visible == Units::kBernoulli ? log_z
                                              : log_z + 0.5 * static_cast<double>(visible_) * std::log(2.0 * M_PI);
}

double Rbm::exact_log_likelihood(const Tensor& data) {
  const double log_z = log_partition();
  const std::vector<double> f = free_energy(data);
  double sum = 0.0;
  for (double fe : f) sum += -fe - log_z;
  return f.empty() ? 0.0 : sum / static_cast<double>(f.size());
}

}  // namespace cudl

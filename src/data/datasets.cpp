// The Dataset interface's shared parts and its general-purpose implementations: the in-memory
// dataset's fill, subsets and the seeded split, standardisation, and the upload to a backend.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "cudl/backend.hpp"
#include "cudl/data.hpp"
#include "cudl/dataset.hpp"
#include "cudl/error.hpp"
#include "data/dataset_internal.hpp"
#include "data/run_tasks.hpp"

namespace cudl {

namespace {

// idx = first, first + 1, ..., first + n - 1.
void iota_rows(std::vector<int64_t>& idx, int64_t first, int64_t n) {
  idx.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) idx[static_cast<size_t>(i)] = first + i;
}

}  // namespace

// ---- Subset and random_split ----

Subset::Subset(const Dataset& base, std::vector<int64_t> indices) : base_(&base), indices_(std::move(indices)) {
  base.check_indices(indices_.data(), static_cast<int64_t>(indices_.size()), "Subset");
}

std::vector<int64_t> Subset::map(const int64_t* idx, int64_t n, const char* who) const {
  check_indices(idx, n, who);
  std::vector<int64_t> mapped(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) mapped[static_cast<size_t>(i)] = indices_[static_cast<size_t>(idx[i])];
  return mapped;
}

void Subset::fill(const int64_t* idx, int64_t n, float* x, float* y) const {
  const std::vector<int64_t> mapped = map(idx, n, "Subset::fill");
  base_->fill(mapped.data(), n, x, y);
}

void Subset::fill_targets(const int64_t* idx, int64_t n, float* y) const {
  const std::vector<int64_t> mapped = map(idx, n, "Subset::fill_targets");
  base_->fill_targets(mapped.data(), n, y);
}

std::string Subset::describe() const {
  return std::to_string(indices_.size()) + " rows of " + base_->describe();
}

DatasetSplit random_split(const Dataset& data, double valid_fraction, uint64_t seed, bool stratified) {
  int64_t n_valid = 0;
  std::vector<int64_t> order =
      detail::split_permutation(data.size(), valid_fraction, seed, n_valid, "random_split", "valid");
  if (!stratified) {
    std::vector<int64_t> valid(order.begin(), order.begin() + n_valid), train(order.begin() + n_valid, order.end());
    return DatasetSplit{Subset(data, std::move(train)), Subset(data, std::move(valid))};
  }
  const int64_t classes = data.num_classes();
  CUDL_REQUIRE(classes > 0 && data.target_numel() == 1,
               "random_split: stratified needs class-index targets; " + data.describe() + " has targets of shape " +
                   to_string(data.target_shape()));
  std::vector<float> labels(order.size());
  data.fill_targets(order.data(), static_cast<int64_t>(order.size()), labels.data());
  // Each class's rows in permutation order; the first ceil(fraction · count) go to validation.
  std::vector<int64_t> count(static_cast<size_t>(classes), 0), taken(static_cast<size_t>(classes), 0);
  for (size_t i = 0; i < labels.size(); ++i) {
    const float c = labels[i];
    CUDL_REQUIRE(c >= 0.0f && c < static_cast<float>(classes) && c == std::floor(c),
                 "random_split: row " + std::to_string(order[i]) + " of " + data.describe() + " has label " +
                     std::to_string(c) + ", not a class index in [0, " + std::to_string(classes) + ")");
    ++count[static_cast<size_t>(c)];
  }
  std::vector<int64_t> train, valid;
  for (size_t i = 0; i < labels.size(); ++i) {
    const auto c = static_cast<size_t>(labels[i]);
    const auto quota = static_cast<int64_t>(std::ceil(valid_fraction * static_cast<double>(count[c])));
    (taken[c]++ < quota ? valid : train).push_back(order[i]);
  }
  CUDL_REQUIRE(!train.empty() && !valid.empty(),
               "random_split: stratified valid_fraction " + std::to_string(valid_fraction) + " of " +
                   std::to_string(data.size()) + " rows leaves " + std::to_string(train.size()) + " training and " +
                   std::to_string(valid.size()) + " valid rows; both need at least 1");
  return DatasetSplit{Subset(data, std::move(train)), Subset(data, std::move(valid))};
}

// ---- Normalize and Transformed ----

Normalize Normalize::fit(const Dataset& data, Per per) {
  Normalize n;
  n.per = per;
  n.example_numel = data.example_numel();
  const Shape shape = data.example_shape();
  int64_t groups = n.example_numel, spread = 1;  // statistics per group of `spread` contiguous values
  if (per == Per::kChannel) {
    CUDL_REQUIRE(shape.size() == 3, "Normalize::fit: per channel needs examples of shape {C, H, W}; " +
                                        data.describe() + " has examples of shape " + to_string(shape));
    n.channels = groups = shape[0];
    spread = shape[1] * shape[2];
  }
  const int64_t rows = data.size();
  CUDL_REQUIRE(rows >= 1, "Normalize::fit: " + data.describe() + " has no rows");
  std::vector<double> sum(static_cast<size_t>(groups), 0.0), sq(static_cast<size_t>(groups), 0.0);
  const int64_t chunk = detail::chunk_rows(n.example_numel);
  std::vector<float> x, y;
  std::vector<int64_t> idx;
  for (int64_t b = 0; b < rows; b += chunk) {
    const int64_t m = std::min(chunk, rows - b);
    iota_rows(idx, b, m);
    x.resize(static_cast<size_t>(m * n.example_numel));
    y.resize(static_cast<size_t>(m * data.target_numel()));
    data.fill(idx.data(), m, x.data(), y.data());
    for (int64_t r = 0; r < m; ++r)
      for (int64_t g = 0; g < groups; ++g)
        for (int64_t k = 0; k < spread; ++k) {
          const double v = x[static_cast<size_t>(r * n.example_numel + g * spread + k)];
          sum[static_cast<size_t>(g)] += v;
          sq[static_cast<size_t>(g)] += v * v;
        }
  }
  const double count = static_cast<double>(rows) * static_cast<double>(spread);
  for (int64_t g = 0; g < groups; ++g) {
    const double mean = sum[static_cast<size_t>(g)] / count;
    const double var = std::max(0.0, sq[static_cast<size_t>(g)] / count - mean * mean);
    CUDL_REQUIRE(std::isfinite(mean) && std::isfinite(var),
                 "Normalize::fit: " + data.describe() + " holds a NaN or an infinity (in " +
                     (per == Per::kChannel ? "channel " : "feature ") + std::to_string(g) + ")");
    n.mean.push_back(static_cast<float>(mean));
    n.inv_std.push_back(var > 0.0 ? static_cast<float>(1.0 / std::sqrt(var)) : 1.0f);
  }
  return n;
}

void Normalize::apply(float* x, int64_t n) const {
  const int64_t groups = static_cast<int64_t>(mean.size());
  const int64_t spread = groups > 0 ? example_numel / groups : 0;
  for (int64_t r = 0; r < n; ++r)
    for (int64_t g = 0; g < groups; ++g) {
      float* v = x + r * example_numel + g * spread;
      const float m = mean[static_cast<size_t>(g)], s = inv_std[static_cast<size_t>(g)];
      for (int64_t k = 0; k < spread; ++k) v[k] = (v[k] - m) * s;
    }
}

std::string Normalize::describe() const {
  return per == Per::kChannel ? "standardised per channel (" + std::to_string(channels) + ")"
                              : "standardised per feature (" + std::to_string(example_numel) + ")";
}

Transformed::Transformed(const Dataset& base, Normalize normalize) : base_(&base), normalize_(std::move(normalize)) {
  CUDL_REQUIRE(normalize_->example_numel == base.example_numel() && !normalize_->mean.empty() &&
                   normalize_->mean.size() == normalize_->inv_std.size() &&
                   normalize_->example_numel % static_cast<int64_t>(normalize_->mean.size()) == 0,
               "Transformed: the Normalize (for examples of " + std::to_string(normalize_->example_numel) + " values, " +
                   std::to_string(normalize_->mean.size()) + " statistics) does not fit " + base.describe());
}

Transformed::Transformed(const Dataset& base, Scale scale) : base_(&base), scale_(scale) {
  CUDL_REQUIRE(std::isfinite(scale.factor) && std::isfinite(scale.offset),
               "Transformed: Scale{" + std::to_string(scale.factor) + ", " + std::to_string(scale.offset) +
                   "} is not finite");
}

void Transformed::fill(const int64_t* idx, int64_t n, float* x, float* y) const {
  base_->fill(idx, n, x, y);
  if (normalize_) {
    normalize_->apply(x, n);
  } else {
    scale_.apply(x, n * base_->example_numel());
  }
}

std::string Transformed::describe() const {
  return base_->describe() + ", " + (normalize_ ? normalize_->describe() : scale_.describe());
}

void Scale::apply(float* x, int64_t values) const {
  if (factor == 1.0f && offset == 0.0f) return;
  for (int64_t i = 0; i < values; ++i) x[i] = x[i] * factor + offset;
}

std::string Scale::describe() const {
  std::ostringstream s;
  s << "scaled by " << factor;
  if (offset != 0.0f) s << (offset > 0 ? " + " : " - ") << std::fabs(offset);
  return s.str();
}

// ---- the upload to a backend ----

DeviceData to_device(const Dataset& data, Backend& backend, int threads) {
  const int64_t rows = data.size(), xf = data.example_numel(), yf = data.target_numel();
  // fit()'s layout: one row per example (the network's input shape gives each row its shape again).
  const Shape ys = data.target_shape().empty() ? Shape{rows} : Shape{rows, yf};
  DeviceData out{Tensor({rows, xf}, backend), Tensor(ys, backend)};
  const int64_t chunk = detail::chunk_rows(xf + yf), chunks = (rows + chunk - 1) / chunk;
  const int workers = detail::task_threads(threads, chunks, "to_device");
  auto fill_chunk = [&](int64_t c, float* x, float* y) {
    const int64_t b = c * chunk, m = std::min(chunk, rows - b);
    std::vector<int64_t> idx;
    iota_rows(idx, b, m);
    data.fill(idx.data(), m, x, y);
  };
  if (backend.device() == Device::kCpu) {
    // A CPU backend's memory is host memory: each chunk is filled where it belongs, the threads
    // sharing the work and the first touch of the new pages (which costs as much as the copy).
    float* const x = out.x.data();
    float* const y = out.y.data();
    detail::run_tasks(workers, chunks, [&](int64_t c) { fill_chunk(c, x + c * chunk * xf, y + c * chunk * yf); });
    return out;
  }
  // Waves of one chunk per thread, filled on the host in parallel, then copied in row order from
  // this thread (a backend is used from one thread): `workers` chunk buffers at most.
  std::vector<std::vector<float>> xs(static_cast<size_t>(workers)), yv(static_cast<size_t>(workers));
  for (int64_t first = 0; first < chunks; first += workers) {
    const int64_t wave = std::min<int64_t>(workers, chunks - first);
    detail::run_tasks(workers, wave, [&](int64_t i) {
      const int64_t m = std::min(chunk, rows - (first + i) * chunk);
      auto& x = xs[static_cast<size_t>(i)];
      auto& y = yv[static_cast<size_t>(i)];
      x.resize(static_cast<size_t>(m * xf));
      y.resize(static_cast<size_t>(m * yf));
      fill_chunk(first + i, x.data(), y.data());
    });
    for (int64_t i = 0; i < wave; ++i) {
      const int64_t b = (first + i) * chunk, m = std::min(chunk, rows - b);
      out.x.rows(b, b + m).copy_from(xs[static_cast<size_t>(i)]);
      out.y.rows(b, b + m).copy_from(yv[static_cast<size_t>(i)]);
    }
  }
  return out;
}

}  // namespace cudl

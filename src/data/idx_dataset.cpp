// IdxDataset: an IDX data set kept as bytes, converted to floats by fill() (include/cudl/data.hpp).
#include <future>
#include <string>
#include <utility>
#include <vector>

#include "cudl/data.hpp"
#include "cudl/error.hpp"
#include "data/dataset_internal.hpp"

namespace cudl {

namespace detail {
struct IdxPart {
  IdxPayload pixels;            // rows × features bytes
  std::vector<uint8_t> labels;  // rows labels, each below the class count
  int64_t rows = 0;
};
}  // namespace detail

namespace {

constexpr int kClasses = 10;

std::shared_ptr<const detail::IdxPart> read_part(const detail::IdxPartPlan& plan) {
  auto part = std::make_shared<detail::IdxPart>();
  part->pixels = detail::read_idx_images_whole(plan.images_path, plan.images);
  part->labels = read_idx_labels(plan.labels_path, kClasses);
  part->rows = plan.images.count;
  CUDL_REQUIRE(static_cast<int64_t>(part->labels.size()) == part->rows,
               "image/label count mismatch: " + plan.images_path + " holds " + std::to_string(part->rows) +
                   " images but " + plan.labels_path + " holds " + std::to_string(part->labels.size()) + " labels");
  return part;
}

}  // namespace

IdxDataset IdxDataset::load(const std::string& dir, const std::string& name, const LoadOptions& options) {
  const detail::IdxPlan plan = detail::plan_idx_load(dir, name, options, "IdxDataset::load");
  IdxDataset data;
  data.name_ = name;
  data.source_ = dir;
  data.rows_ = plan.shape.rows;
  data.features_ = plan.shape.features;
  data.classes_ = plan.shape.classes;
  // The splits decompress at the same time (one inflates on one core): the t10k split beside.
  std::future<std::shared_ptr<const detail::IdxPart>> last;
  if (plan.parts.size() == 2) last = std::async(std::launch::async, [&plan] { return read_part(plan.parts.back()); });
  data.parts_.push_back(read_part(plan.parts.front()));
  if (last.valid()) data.parts_.push_back(last.get());
  return data;
}

const detail::IdxPart& IdxDataset::part_of(int64_t& row) const {
  size_t p = 0;
  while (p + 1 < parts_.size() && row >= parts_[p]->rows) row -= parts_[p++]->rows;
  return *parts_[p];
}

void IdxDataset::fill(const int64_t* idx, int64_t n, float* x, float* y) const {
  check_indices(idx, n, "IdxDataset::fill");
  for (int64_t i = 0; i < n; ++i) {
    int64_t row = idx[i];
    const detail::IdxPart& part = part_of(row);
    const uint8_t* px = part.pixels.data + row * features_;
    float* out = x + i * features_;
    for (int64_t k = 0; k < features_; ++k) out[k] = static_cast<float>(px[k]) / 255.f;  // load_idx_dataset's floats
    y[i] = static_cast<float>(part.labels[static_cast<size_t>(row)]);
  }
}

void IdxDataset::fill_targets(const int64_t* idx, int64_t n, float* y) const {
  check_indices(idx, n, "IdxDataset::fill_targets");
  for (int64_t i = 0; i < n; ++i) {
    int64_t row = idx[i];
    y[i] = static_cast<float>(part_of(row).labels[static_cast<size_t>(row)]);
  }
}

std::string IdxDataset::describe() const {
  return name_ + ": " + std::to_string(rows_) + " rows of " + std::to_string(features_) + " features (bytes), " +
         std::to_string(classes_) + " classes (" + source_ + ")";
}

}  // namespace cudl

// Datasets built from IDX files: loading a directory of MNIST-style files, finding one for
// bench_dbn, and the seeded train/test split.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <future>
#include <numeric>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "cudl/data.hpp"
#include "cudl/error.hpp"
#include "cudl/rng.hpp"
#include "data/dataset_internal.hpp"

namespace cudl {

namespace {

namespace fs = std::filesystem;

constexpr const char* kTrainImages = "train-images-idx3-ubyte";
constexpr const char* kTrainLabels = "train-labels-idx1-ubyte";
constexpr const char* kTestImages = "t10k-images-idx3-ubyte";
constexpr const char* kTestLabels = "t10k-labels-idx1-ubyte";
constexpr const char* kFashionDir = "/usr/share/datasets/fashion-mnist";
constexpr int kClasses = 10;

// The path of IDX file `stem` in `dir`, compressed (stem.gz, preferred) or plain; "" if neither.
std::string find_idx(const std::string& dir, const std::string& stem) {
  for (const char* suffix : {".gz", ""}) {
    const fs::path p = fs::path(dir) / (stem + suffix);
    std::error_code ec;
    if (fs::is_regular_file(p, ec)) return p.string();
  }
  return "";
}

// Whether `dir` holds the t10k image and label files, the part every load needs.
bool holds_idx(const std::string& dir) {
  return !find_idx(dir, kTestImages).empty() && !find_idx(dir, kTestLabels).empty();
}

std::string dims(const IdxHeader& h) {
  return std::to_string(h.rows) + "×" + std::to_string(h.cols);
}

std::string str(int64_t v) { return std::to_string(v); }

using PartPlan = detail::IdxPartPlan;
using Plan = detail::IdxPlan;

// The bytes x takes as floats for `count` images of h's size; below 2^35, as the readers'
// 2 GiB payload limit bounds count·rows·cols.
int64_t float_bytes(const IdxHeader& h, int64_t count) {
  return count * h.rows * h.cols * static_cast<int64_t>(sizeof(float));
}

std::string cap_text(const LoadOptions& options) {
  return "the cap of " + str(options.max_float_bytes) +
         " bytes (" + options.cap_name + "; raise it to load a larger set, if the header is right)";
}

PartPlan plan_part(const std::string& images_path, const std::string& labels_path,
                   const LoadOptions& options) {
  PartPlan part{images_path, labels_path, detail::read_idx_header(images_path, kIdxImagesMagic)};
  const IdxHeader& h = part.images;
  const int64_t bytes = float_bytes(h, h.count);
  CUDL_REQUIRE(bytes <= options.max_float_bytes,
               images_path + ": the header gives " + str(h.count) + " images of " + dims(h) +
                   ": as floats (" + str(h.count) + " rows × " + str(h.rows * h.cols) +
                   " features × 4 bytes) that is " + str(bytes) + " bytes, over " +
                   cap_text(options));
  const int64_t n_labels = detail::read_idx_header(labels_path, kIdxLabelsMagic).count;
  CUDL_REQUIRE(h.count == n_labels, "image/label count mismatch: " + images_path + " holds " +
                                        str(h.count) + " images but " + labels_path +
                                        " holds " + str(n_labels) + " labels");
  return part;
}

// Converts pixels to floats in [0, 1] at the end of x (whose capacity the caller reserved).
void append_pixels(std::vector<float>& x, const uint8_t* px, size_t n) {
  const size_t at = x.size();
  x.resize(at + n);
  float* out = x.data() + at;
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<float>(px[i]) / 255.f;
}

// Reads a split's labels (checked against the header's count, in case the file changed since)
// and appends them to y as floats.
void append_labels(std::vector<float>& y, const PartPlan& part) {
  const std::vector<uint8_t> labels = read_idx_labels(part.labels_path, kClasses);
  CUDL_REQUIRE(static_cast<int64_t>(labels.size()) == part.images.count,
               "image/label count mismatch: " + part.images_path + " holds " +
                   str(part.images.count) + " images but " + part.labels_path + " holds " +
                   str(static_cast<int64_t>(labels.size())) + " labels");
  for (const uint8_t label : labels) y.push_back(static_cast<float>(label));
}

// A split read whole: its pixels as bytes (a quarter of their size as floats) and its labels.
struct Part {
  IdxImages images;
  std::vector<float> y;
};

Part read_part(const PartPlan& plan) {
  Part part{read_idx_images(plan.images_path), {}};
  const IdxImages& im = part.images;
  CUDL_REQUIRE(im.count == plan.images.count && im.rows == plan.images.rows &&
                   im.cols == plan.images.cols,
               plan.images_path + ": the file changed while it was being loaded");
  append_labels(part.y, plan);
  return part;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

DatasetLocation located(const std::string& dir, const std::string& reason) {
  const bool fashion = lower(dir).find("fashion") != std::string::npos;
  return DatasetLocation{dir, fashion ? "Fashion-MNIST" : "MNIST", reason};
}

const std::string kWhatIdx = "t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz]";

// Floats of y per row: one class index, or target_cols values.
size_t target_width(const InMemoryDataset& data) { return static_cast<size_t>(std::max<int64_t>(1, data.target_cols)); }

// The rows `order[begin, end)` of `data`, in that order.
InMemoryDataset take_rows(const InMemoryDataset& data, const std::vector<int64_t>& order, size_t begin, size_t end) {
  InMemoryDataset out;
  out.name = data.name;
  out.source = data.source;
  out.features = data.features;
  out.classes = data.classes;
  out.target_cols = data.target_cols;
  out.rows = static_cast<int64_t>(end - begin);
  const auto f = static_cast<size_t>(data.features), t = target_width(data);
  out.x.resize(static_cast<size_t>(out.rows) * f);
  out.y.resize(static_cast<size_t>(out.rows) * t);
  for (size_t i = begin; i < end; ++i) {
    const auto src = static_cast<size_t>(order[i]);
    std::copy_n(data.x.begin() + static_cast<std::ptrdiff_t>(src * f), f,
                out.x.begin() + static_cast<std::ptrdiff_t>((i - begin) * f));
    std::copy_n(data.y.begin() + static_cast<std::ptrdiff_t>(src * t), t,
                out.y.begin() + static_cast<std::ptrdiff_t>((i - begin) * t));
  }
  return out;
}

// Permutes the rows of `data` in place so that row i becomes the old row order[(i + offset) %
// rows]: each cycle of that permutation is followed once, with one row of scratch.
void gather_rows_in_place(InMemoryDataset& data, const std::vector<int64_t>& order, size_t offset) {
  const size_t n = order.size(), f = static_cast<size_t>(data.features), t = target_width(data);
  float* x = data.x.data();
  float* y = data.y.data();
  std::vector<bool> placed(n, false);
  std::vector<float> row(f), target(t);
  for (size_t start = 0; start < n; ++start) {
    if (placed[start]) continue;
    std::copy_n(x + start * f, f, row.data());  // the cycle's first row, overwritten first
    std::copy_n(y + start * t, t, target.data());
    for (size_t i = start;;) {
      placed[i] = true;
      const auto from = static_cast<size_t>(order[(i + offset) % n]);
      if (from == start) {
        std::copy_n(row.data(), f, x + i * f);
        std::copy_n(target.data(), t, y + i * t);
        break;
      }
      std::copy_n(x + from * f, f, x + i * f);
      std::copy_n(y + from * t, t, y + i * t);
      i = from;
    }
  }
}

// The checks of load_idx_dataset that read only headers, in the order a user would fix them.
Plan plan_load(const std::string& dir, const std::string& name, const LoadOptions& options,
               const std::string& who = "load_idx_dataset") {
  CUDL_REQUIRE(options.max_float_bytes > 0,
               who + ": LoadOptions::max_float_bytes must be positive, got " +
                   str(options.max_float_bytes));
  std::error_code ec;
  CUDL_REQUIRE(fs::is_directory(dir, ec), dir + ": not a directory (looking for " + name + ")");
  const std::string test_images = find_idx(dir, kTestImages);
  const std::string test_labels = find_idx(dir, kTestLabels);
  const std::string missing = std::string(test_images.empty() ? kTestImages : "") +
                              (test_images.empty() && test_labels.empty() ? "[.gz] and " : "") +
                              (test_labels.empty() ? kTestLabels : "");
  CUDL_REQUIRE(missing.empty(), dir + ": no " + name + " IDX files: expected " + kWhatIdx +
                                    ", missing " + missing + "[.gz]");
  const std::string train_images = find_idx(dir, kTrainImages);
  const std::string train_labels = find_idx(dir, kTrainLabels);
  CUDL_REQUIRE(train_images.empty() == train_labels.empty(),
               dir + ": found " + (train_images.empty() ? train_labels : train_images) +
                   " but no " + (train_images.empty() ? kTrainImages : kTrainLabels) +
                   "[.gz]: the training split needs both files, or neither");

  Plan plan;
  if (!train_images.empty()) plan.parts.push_back(plan_part(train_images, train_labels, options));
  plan.parts.push_back(plan_part(test_images, test_labels, options));
  const PartPlan& first = plan.parts.front();
  const PartPlan& last = plan.parts.back();
  CUDL_REQUIRE(first.images.rows == last.images.rows && first.images.cols == last.images.cols,
               "image size mismatch: " + first.images_path + " holds " + dims(first.images) +
                   " images but " + last.images_path + " holds " + dims(last.images));
  for (const PartPlan& p : plan.parts) plan.shape.rows += p.images.count;
  plan.shape.features = first.images.rows * first.images.cols;
  plan.shape.classes = kClasses;
  const int64_t bytes = float_bytes(first.images, plan.shape.rows);
  CUDL_REQUIRE(bytes <= options.max_float_bytes,
               first.images_path + " (" + str(first.images.count) + " images) and " +
                   last.images_path + " (" + str(last.images.count) + " images) of " +
                   dims(first.images) + " take " + str(bytes) + " bytes together as floats, over " +
                   cap_text(options));
  return plan;
}

}  // namespace

detail::IdxPlan detail::plan_idx_load(const std::string& dir, const std::string& name, const LoadOptions& options,
                                      const std::string& who) {
  return plan_load(dir, name, options, who);
}

DatasetShape peek_idx_dataset(const std::string& dir, const std::string& name,
                              const LoadOptions& options) {
  return plan_load(dir, name, options).shape;
}

InMemoryDataset load_idx_dataset(const std::string& dir, const std::string& name,
                         const LoadOptions& options) {
  const Plan plan = plan_load(dir, name, options);
  InMemoryDataset data;
  data.name = name;
  data.source = dir;
  data.rows = plan.shape.rows;
  data.features = plan.shape.features;
  data.classes = plan.shape.classes;
  // Reserved, not resized: the pages are touched only as data arrives, so a file that promises
  // more than it holds costs what it holds (and at most the cap, checked above).
  data.x.reserve(static_cast<size_t>(data.rows * data.features));
  data.y.reserve(static_cast<size_t>(data.rows));
  // The two splits are decompressed at the same time (zlib inflates one stream on one core):
  // the first straight into x as floats, the t10k split beside it as bytes, appended last.
  const PartPlan& first = plan.parts.front();
  std::future<Part> test_part;
  if (plan.parts.size() == 2) {
    test_part = std::async(std::launch::async, [&plan] { return read_part(plan.parts.back()); });
  }
  detail::read_idx_images_into(first.images_path, first.images, [&data](const uint8_t* px, size_t n) {
    append_pixels(data.x, px, n);
  });
  append_labels(data.y, first);
  if (test_part.valid()) {
    Part test = test_part.get();
    append_pixels(data.x, test.images.pixels.data(), test.images.pixels.size());
    data.y.insert(data.y.end(), test.y.begin(), test.y.end());
  }
  return data;
}

DatasetLocation detail::find_dataset_in(const std::string& cli_dir,
                                        const std::string& project_root,
                                        const std::string& fallback_dir) {
  if (!cli_dir.empty()) {
    CUDL_REQUIRE(holds_idx(cli_dir), "--data " + cli_dir + ": no IDX files there (expected " +
                                         kWhatIdx + ")");
    return located(cli_dir, "--data");
  }
  const char* env = std::getenv("CUDL_DATA");
  if (env != nullptr && *env != '\0') {  // set but empty counts as unset
    CUDL_REQUIRE(holds_idx(env), std::string("$CUDL_DATA=") + env +
                                     ": no IDX files there (expected " + kWhatIdx + ")");
    return located(env, "$CUDL_DATA");
  }
  // An installed program has no source folder: its data/mnist is neither tried nor mentioned,
  // nor is the script that fills it.
  std::error_code ec;
  const bool have_project = !project_root.empty() && fs::is_directory(project_root, ec);
  const std::string project_dir = (fs::path(project_root) / "data" / "mnist").string();
  if (have_project && holds_idx(project_dir)) return located(project_dir, "project data/mnist");
  if (holds_idx(fallback_dir)) return located(fallback_dir, "Debian dataset-fashion-mnist");
  const std::string tried = have_project ? project_dir + " (no " + kWhatIdx + "); " + fallback_dir + " (same)"
                                         : fallback_dir + " (no " + kWhatIdx + ")";
  const std::string fetch = have_project ? "run scripts/fetch_mnist.sh (downloads MNIST into " + project_dir + "), or " : "";
  CUDL_REQUIRE(false, "no dataset found. Tried: --data (not given); $CUDL_DATA (not set); " + tried +
                          ". To fill one: " + fetch + "`apt-get install dataset-fashion-mnist` (installs " +
                          kFashionDir + "), or pass --data DIR or set CUDL_DATA=DIR to a directory holding "
                          "MNIST-style IDX files");
  return {};  // not reached
}

DatasetLocation find_dataset(const std::string& cli_dir, const std::string& project_root) {
  return detail::find_dataset_in(cli_dir, project_root, kFashionDir);
}

namespace {

// The seeded permutation of a split of `rows` rows (its first n_test entries are the test or
// validation rows), after checking the split's arguments; `who` names the caller in errors.
std::vector<int64_t> split_order(int64_t rows, double test_fraction, uint64_t seed, int64_t& n_test,
                                 const std::string& who, const std::string& side = "test") {
  const std::string fraction = who + ": " + side + "_fraction";
  CUDL_REQUIRE(test_fraction > 0.0 && test_fraction < 1.0,
               fraction + " must lie in (0, 1), got " + std::to_string(test_fraction));
  CUDL_REQUIRE(rows <= int64_t{UINT32_MAX}, who + ": at most 2^32 - 1 rows, got " + std::to_string(rows));
  // ceil in double, as sklearn does: 0.33 of 70,000 rows is 23,100 test rows.
  n_test = static_cast<int64_t>(std::ceil(test_fraction * static_cast<double>(rows)));
  const int64_t n_train = rows - n_test;
  CUDL_REQUIRE(n_test >= 1 && n_train >= 1,
               fraction + " " + std::to_string(test_fraction) + " of " + std::to_string(rows) + " rows leaves " +
                   std::to_string(n_train) + " training and " + std::to_string(n_test) + " " + side +
                   " rows; both need at least 1");

  // Fisher–Yates from the back: position i swaps with j uniform in [0, i], drawn from word 0
  // of Philox block (seed, stream 1, counter i). Stateless, so any platform can reproduce it.
  std::vector<int64_t> order(static_cast<size_t>(rows));
  std::iota(order.begin(), order.end(), int64_t{0});
  for (int64_t i = rows - 1; i > 0; --i) {
    const uint32_t word = rng::bits(seed, /*stream=*/1, static_cast<uint64_t>(i)).v[0];
    const uint32_t j = rng::below(word, static_cast<uint32_t>(i + 1));
    std::swap(order[static_cast<size_t>(i)], order[j]);
  }
  return order;
}

// split_order for an InMemoryDataset, after checking that its sizes agree.
std::vector<int64_t> split_order(const InMemoryDataset& data, double test_fraction, uint64_t seed, int64_t& n_test) {
  CUDL_REQUIRE(data.rows >= 0 && data.features >= 0 && data.target_cols >= 0 &&
                   data.x.size() == static_cast<size_t>(data.rows * data.features) &&
                   data.y.size() == static_cast<size_t>(data.rows) * target_width(data),
               "train_test_split: inconsistent dataset: rows " + std::to_string(data.rows) +
                   ", features " + std::to_string(data.features) + ", x.size() " + std::to_string(data.x.size()) +
                   ", y.size() " + std::to_string(data.y.size()) +
                   (data.target_cols > 0 ? ", target_cols " + std::to_string(data.target_cols) : std::string()));
  return split_order(data.rows, test_fraction, seed, n_test, "train_test_split");
}

}  // namespace

namespace detail {
std::vector<int64_t> split_permutation(int64_t rows, double fraction, uint64_t seed, int64_t& n_first,
                                       const std::string& who, const std::string& side) {
  return split_order(rows, fraction, seed, n_first, who, side);
}
}  // namespace detail

Split train_test_split(const InMemoryDataset& data, double test_fraction, uint64_t seed) {
  int64_t n_test = 0;
  const std::vector<int64_t> order = split_order(data, test_fraction, seed, n_test);
  Split split;
  auto test = std::async(std::launch::async, [&] { return take_rows(data, order, 0, static_cast<size_t>(n_test)); });
  split.train = take_rows(data, order, static_cast<size_t>(n_test), order.size());
  split.test = test.get();
  return split;
}

Split train_test_split(InMemoryDataset&& data, double test_fraction, uint64_t seed) {
  int64_t n_test = 0;
  const std::vector<int64_t> order = split_order(data, test_fraction, seed, n_test);
  const auto rows = order.size(), test_rows = static_cast<size_t>(n_test);
  // The larger side stays in data's buffers: rows [0, kept) after the gather. The test side is
  // order[0, n_test), so it starts at offset 0; the training side at offset n_test.
  const bool keep_test = test_rows > rows - test_rows;
  Split split;
  if (keep_test) {
    split.train = take_rows(data, order, test_rows, rows);
  } else {
    split.test = take_rows(data, order, 0, test_rows);
  }
  gather_rows_in_place(data, order, keep_test ? 0 : test_rows);
  const size_t kept = keep_test ? test_rows : rows - test_rows;
  data.rows = static_cast<int64_t>(kept);
  data.x.resize(kept * static_cast<size_t>(data.features));
  data.y.resize(kept * target_width(data));
  (keep_test ? split.test : split.train) = std::move(data);
  return split;
}

// ---- the Dataset interface's shared parts, and InMemoryDataset (include/cudl/dataset.hpp) ----
// Here rather than in datasets.cpp so that the IDX loader and its fuzz harness need only this file.

void Dataset::check_indices(const int64_t* idx, int64_t n, const char* who) const {
  const int64_t rows = size();
  for (int64_t i = 0; i < n; ++i)
    CUDL_REQUIRE(idx[i] >= 0 && idx[i] < rows, std::string(who) + ": row index " + std::to_string(idx[i]) +
                                                   " (entry " + std::to_string(i) + " of the request) is outside [0, " +
                                                   std::to_string(rows) + ") of " + describe());
}

void Dataset::fill_targets(const int64_t* idx, int64_t n, float* y) const {
  const int64_t per = example_numel(), chunk = detail::chunk_rows(per);
  std::vector<float> scratch(static_cast<size_t>(std::min(chunk, std::max<int64_t>(n, 1)) * per));
  for (int64_t b = 0; b < n; b += chunk) {
    const int64_t m = std::min(chunk, n - b);
    fill(idx + b, m, scratch.data(), y + b * target_numel());
  }
}

// ---- InMemoryDataset ----

void InMemoryDataset::fill(const int64_t* idx, int64_t n, float* xo, float* yo) const {
  fill_targets(idx, n, yo);  // checks the sizes and the indices
  const auto f = static_cast<size_t>(features);
  for (int64_t i = 0; i < n; ++i) std::memcpy(xo + static_cast<size_t>(i) * f, x.data() + static_cast<size_t>(idx[i]) * f, f * sizeof(float));
}

void InMemoryDataset::fill_targets(const int64_t* idx, int64_t n, float* yo) const {
  const auto t = static_cast<size_t>(std::max<int64_t>(1, target_cols));
  CUDL_REQUIRE(rows >= 0 && features >= 0 && target_cols >= 0 &&
                   x.size() == static_cast<size_t>(rows) * static_cast<size_t>(features) &&
                   y.size() == static_cast<size_t>(rows) * t,
               "InMemoryDataset " + name + ": inconsistent sizes: rows " + std::to_string(rows) + ", features " +
                   std::to_string(features) + ", target_cols " + std::to_string(target_cols) + ", x.size() " +
                   std::to_string(x.size()) + ", y.size() " + std::to_string(y.size()));
  check_indices(idx, n, "InMemoryDataset::fill");
  for (int64_t i = 0; i < n; ++i) std::memcpy(yo + static_cast<size_t>(i) * t, y.data() + static_cast<size_t>(idx[i]) * t, t * sizeof(float));
}

std::string InMemoryDataset::describe() const {
  std::string what = (name.empty() ? std::string("in-memory data") : name) + ": " + std::to_string(rows) + " rows of " +
                     std::to_string(features) + " features, ";
  what += target_cols > 0 ? std::to_string(target_cols) + " target values each" : std::to_string(classes) + " classes";
  return source.empty() ? what : what + " (" + source + ")";
}

}  // namespace cudl

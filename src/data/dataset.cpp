// Datasets built from IDX files: loading a directory of MNIST-style files, finding one for
// bench_dbn, and the seeded train/test split.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
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

std::string dims(const IdxImages& im) {
  return std::to_string(im.rows) + "×" + std::to_string(im.cols);
}

// One split's images and labels, read and checked to agree in count.
struct Part {
  IdxImages images;
  std::vector<uint8_t> labels;
  std::string images_path;
};

Part read_part(const std::string& images_path, const std::string& labels_path) {
  Part part{read_idx_images(images_path), read_idx_labels(labels_path, kClasses), images_path};
  const auto n_labels = static_cast<int64_t>(part.labels.size());
  CUDL_REQUIRE(part.images.count == n_labels,
               "image/label count mismatch: " + images_path + " holds " +
                   std::to_string(part.images.count) + " images but " + labels_path +
                   " holds " + std::to_string(n_labels) + " labels");
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

// The rows `order[begin, end)` of `data`, in that order.
Dataset take_rows(const Dataset& data, const std::vector<int64_t>& order, size_t begin,
                  size_t end) {
  Dataset out;
  out.name = data.name;
  out.source = data.source;
  out.features = data.features;
  out.classes = data.classes;
  out.rows = static_cast<int64_t>(end - begin);
  const auto f = static_cast<size_t>(data.features);
  out.x.resize(static_cast<size_t>(out.rows) * f);
  out.y.resize(static_cast<size_t>(out.rows));
  for (size_t i = begin; i < end; ++i) {
    const auto src = static_cast<size_t>(order[i]);
    std::copy_n(data.x.begin() + static_cast<std::ptrdiff_t>(src * f), f,
                out.x.begin() + static_cast<std::ptrdiff_t>((i - begin) * f));
    out.y[i - begin] = data.y[src];
  }
  return out;
}

}  // namespace

Dataset load_idx_dataset(const std::string& dir, const std::string& name) {
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

  // The two splits are decompressed at the same time (zlib inflates one stream on one core).
  std::vector<Part> parts;  // train (if present), then t10k
  auto test_part = std::async(std::launch::async, [&] { return read_part(test_images, test_labels); });
  if (!train_images.empty()) parts.push_back(read_part(train_images, train_labels));
  parts.push_back(test_part.get());
  const IdxImages& first = parts.front().images;
  const IdxImages& last = parts.back().images;
  CUDL_REQUIRE(first.rows == last.rows && first.cols == last.cols,
               "image size mismatch: " + parts.front().images_path + " holds " + dims(first) +
                   " images but " + parts.back().images_path + " holds " + dims(last));

  Dataset data;
  data.name = name;
  data.source = dir;
  data.features = first.rows * first.cols;
  data.classes = kClasses;
  for (const Part& p : parts) data.rows += p.images.count;
  data.x.resize(static_cast<size_t>(data.rows * data.features));
  data.y.resize(static_cast<size_t>(data.rows));
  size_t at = 0, label_at = 0;
  for (const Part& p : parts) {
    const uint8_t* px = p.images.pixels.data();
    float* out = data.x.data() + at;
    const size_t n = p.images.pixels.size();
    for (size_t i = 0; i < n; ++i) out[i] = static_cast<float>(px[i]) / 255.f;
    for (const uint8_t label : p.labels) data.y[label_at++] = static_cast<float>(label);
    at += n;
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
  const std::string project_dir = (fs::path(project_root) / "data" / "mnist").string();
  if (holds_idx(project_dir)) return located(project_dir, "project data/mnist");
  if (holds_idx(fallback_dir)) return located(fallback_dir, "Debian dataset-fashion-mnist");
  CUDL_REQUIRE(false, "no dataset found. Tried: --data (not given); $CUDL_DATA (not set); " +
                          project_dir + " (no " + kWhatIdx + "); " + fallback_dir +
                          " (same). To fill one: run scripts/fetch_mnist.sh (downloads MNIST "
                          "into " + project_dir + "), or `apt-get install dataset-fashion-mnist` "
                          "(installs " + kFashionDir + "), or pass --data DIR or set "
                          "CUDL_DATA=DIR to a directory holding MNIST-style IDX files");
  return {};  // not reached
}

DatasetLocation find_dataset(const std::string& cli_dir, const std::string& project_root) {
  return detail::find_dataset_in(cli_dir, project_root, kFashionDir);
}

Split train_test_split(const Dataset& data, double test_fraction, uint64_t seed) {
  CUDL_REQUIRE(test_fraction > 0.0 && test_fraction < 1.0,
               "train_test_split: test_fraction must lie in (0, 1), got " +
                   std::to_string(test_fraction));
  CUDL_REQUIRE(data.rows >= 0 && data.features >= 0 &&
                   data.x.size() == static_cast<size_t>(data.rows * data.features) &&
                   data.y.size() == static_cast<size_t>(data.rows),
               "train_test_split: inconsistent dataset: rows " + std::to_string(data.rows) +
                   ", features " + std::to_string(data.features) + ", x.size() " +
                   std::to_string(data.x.size()) + ", y.size() " + std::to_string(data.y.size()));
  CUDL_REQUIRE(data.rows <= int64_t{UINT32_MAX},
               "train_test_split: at most 2^32 - 1 rows, got " + std::to_string(data.rows));
  // ceil in double, as sklearn does: 0.33 of 70,000 rows is 23,100 test rows.
  const auto n_test = static_cast<int64_t>(std::ceil(test_fraction * static_cast<double>(data.rows)));
  const int64_t n_train = data.rows - n_test;
  CUDL_REQUIRE(n_test >= 1 && n_train >= 1,
               "train_test_split: test_fraction " + std::to_string(test_fraction) + " of " +
                   std::to_string(data.rows) + " rows leaves " + std::to_string(n_train) +
                   " training and " + std::to_string(n_test) + " test rows; both need at least 1");

  // Fisher–Yates from the back: position i swaps with j uniform in [0, i], drawn from word 0
  // of Philox block (seed, stream 1, counter i). Stateless, so any platform can reproduce it.
  std::vector<int64_t> order(static_cast<size_t>(data.rows));
  std::iota(order.begin(), order.end(), int64_t{0});
  for (int64_t i = data.rows - 1; i > 0; --i) {
    const uint32_t word = rng::bits(seed, /*stream=*/1, static_cast<uint64_t>(i)).v[0];
    const uint32_t j = rng::below(word, static_cast<uint32_t>(i + 1));
    std::swap(order[static_cast<size_t>(i)], order[j]);
  }
  Split split;
  auto test = std::async(std::launch::async, [&] { return take_rows(data, order, 0, static_cast<size_t>(n_test)); });
  split.train = take_rows(data, order, static_cast<size_t>(n_test), order.size());
  split.test = test.get();
  return split;
}

}  // namespace cudl

#pragma once
// Helpers shared by the test files: the message of an expected cudl::Error, seeded inputs, a
// fresh loss-statistics tensor, temporary directories with the IDX files written into them,
// where the real MNIST digits live, and an environment variable set for one scope. (The tolerance rule has its own header, tolerance.hpp.)
#include <gtest/gtest.h>
#include <stdlib.h>
#include <zlib.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "cudl/backend.hpp"
#include "cudl/data.hpp"
#include "cudl/error.hpp"
#include "cudl/rng.hpp"
#include "cudl/tensor.hpp"

namespace cudl::testing {

using Bytes = std::vector<uint8_t>;

// Runs f and returns the message of the cudl::Error it throws (a test failure if it throws none).
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const cudl::Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a cudl::Error";
  return "";
}

// n values uniform in [lo, hi), a deterministic function of (seed, stream, index). Stream 7 is
// the one the gradient tests were written with.
inline std::vector<float> uniform_values(uint64_t seed, int64_t n, float lo, float hi, uint64_t stream = 7) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const float u = rng::uniform(rng::bits(seed, stream, static_cast<uint64_t>(i)).v[0]);
    v[static_cast<size_t>(i)] = lo + (hi - lo) * u;
  }
  return v;
}

// A stats tensor (LossStats layout) as softmax_cross_entropy expects it before the first call:
// no loss, no errors, no bad step (-1).
inline Tensor fresh_loss_stats(Backend& backend) {
  return Tensor::from_host({0.0f, 0.0f, -1.0f, 0.0f}, {LossStats::kSize}, backend);
}

// ---- files ----

// Writes `bytes` to p as they are, creating p's directory if needed (a test failure if it cannot).
inline void write_file(const std::filesystem::path& p, const Bytes& bytes) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  EXPECT_TRUE(out.good()) << p << ": could not write " << bytes.size() << " bytes";
}

// A fresh directory under the system temp directory, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "cudl_test_XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  // The path of `sub` here (the directory itself by default), as a string.
  std::string str(const std::string& sub = "") const { return (path_ / sub).string(); }
  // Writes `bytes` to the file `name` here and returns its path.
  std::string write(const std::string& name, const Bytes& bytes) const {
    write_file(path_ / name, bytes);
    return str(name);
  }

 private:
  std::filesystem::path path_;
};

// ---- IDX files ----

// Appends v big-endian, as IDX headers store it.
inline void put32(Bytes& b, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) b.push_back(static_cast<uint8_t>(v >> shift));
}

// An IDX3 image file: magic, count, rows, cols (big-endian), then `pixels` as given.
inline Bytes idx_images(uint32_t count, uint32_t rows, uint32_t cols, const Bytes& pixels) {
  Bytes b;
  put32(b, 0x00000803);
  put32(b, count);
  put32(b, rows);
  put32(b, cols);
  b.insert(b.end(), pixels.begin(), pixels.end());
  return b;
}

// An IDX1 label file holding `labels`; the header count is labels.size() unless given.
inline Bytes idx_labels(const Bytes& labels, int64_t count = -1) {
  Bytes b;
  put32(b, 0x00000801);
  put32(b, static_cast<uint32_t>(count < 0 ? static_cast<int64_t>(labels.size()) : count));
  b.insert(b.end(), labels.begin(), labels.end());
  return b;
}

// `plain` as one gzip member (zlib deflate with a gzip wrapper).
inline Bytes gzip(const Bytes& plain) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
  Bytes out(deflateBound(&z, plain.size()) + 32);
  z.next_in = const_cast<Bytes::value_type*>(plain.data());
  z.avail_in = static_cast<uInt>(plain.size());
  z.next_out = out.data();
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

// The real MNIST t10k digits: $CUDL_MNIST_DIR when set, else tests/data/mnist in this
// repository (shipped with it, so every test runs from a fresh clone).
inline std::string shared_mnist_dir() {
  if (const char* env = std::getenv("CUDL_MNIST_DIR"); env != nullptr && *env != '\0') return env;
#if defined(CUDL_SOURCE_DIR)
  return std::string(CUDL_SOURCE_DIR) + "/tests/data/mnist";
#else
  return "";
#endif
}

// Why a test of the real digits must skip, or "" when shared_mnist_dir() holds the t10k files
// (only where CUDL_MNIST_DIR names another folder, or the repository lost its test data).
inline std::string why_no_shared_mnist() {
  const std::string dir = shared_mnist_dir();
  if (!dir.empty() && std::filesystem::exists(dir + "/t10k-images-idx3-ubyte.gz")) return "";
  return "no real MNIST t10k files at '" + dir + "' (tests/data/mnist is part of the repository)";
}

// Two Gaussian blobs in 8 dimensions, labels 0/1 (alternating), centred at ±1 with σ 0.5: a
// problem every optimizer learns in a few epochs, for the training-loop tests.
struct Blobs {
  std::vector<float> x, y;
  int64_t rows;
  explicit Blobs(int64_t n, uint64_t seed = 5) : rows(n) {
    for (int64_t r = 0; r < n; ++r) {
      const int label = static_cast<int>(r % 2);
      y.push_back(static_cast<float>(label));
      for (int c = 0; c < 8; ++c) {
        const rng::Philox4 b = rng::bits(seed, 7, static_cast<uint64_t>(r * 8 + c));
        x.push_back((label ? 1.0f : -1.0f) + 0.5f * rng::normal(b.v[0], b.v[1]));
      }
    }
  }
  Tensor x_on(Backend& backend) const { return Tensor::from_host(x, {rows, 8}, backend); }  // N×8
  Tensor y_on(Backend& backend) const { return Tensor::from_host(y, {rows}, backend); }     // N
  // The rows as a dataset of 8 features and 2 classes, named "blobs".
  InMemoryDataset dataset() const {
    InMemoryDataset d;
    d.name = "blobs";
    d.rows = rows;
    d.features = 8;
    d.classes = 2;
    d.x = x;
    d.y = y;
    return d;
  }
};

// Debian's dataset-fashion-mnist (the default dataset where MNIST is absent).
inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

// Writes <dir>/<split>-images-idx3-ubyte[.gz] holding `count` images of rows×cols whose pixel
// k of image i is (first + i)·16 + k, and <split>-labels-idx1-ubyte[.gz] with labels
// (first + i) % 10; `label_count` overrides the number of labels written.
inline void write_split(const std::filesystem::path& dir, const std::string& split, uint32_t count, uint32_t rows,
                        uint32_t cols, bool gz, uint32_t first = 0, int64_t label_count = -1) {
  const std::string suffix = gz ? ".gz" : "";
  Bytes pixels;
  for (uint32_t i = 0; i < count; ++i) {
    for (uint32_t k = 0; k < rows * cols; ++k) {
      pixels.push_back(static_cast<uint8_t>((first + i) * 16 + k));
    }
  }
  const Bytes images = idx_images(count, rows, cols, pixels);
  write_file(dir / (split + "-images-idx3-ubyte" + suffix), gz ? gzip(images) : images);
  const auto n = static_cast<uint32_t>(label_count < 0 ? count : label_count);
  Bytes values;
  for (uint32_t i = 0; i < n; ++i) values.push_back(static_cast<uint8_t>((first + i) % 10));
  const Bytes labels = idx_labels(values);
  write_file(dir / (split + "-labels-idx1-ubyte" + suffix), gz ? gzip(labels) : labels);
}

// Sets (or, with nullopt, unsets) an environment variable for one scope, then restores it.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::optional<std::string>& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    set(value);
  }
  ~ScopedEnv() { set(old_); }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  void set(const std::optional<std::string>& value) const {
    value ? setenv(name_, value->c_str(), 1) : unsetenv(name_);
  }
  const char* name_;
  std::optional<std::string> old_;
};

}  // namespace cudl::testing

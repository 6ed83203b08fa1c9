#pragma once
// Datasets on the host: the IDX file format (MNIST, Fashion-MNIST), gzip or plain, dataset
// discovery for bench_dbn, and the seeded train/test split of the 2014 run.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cudl/dataset.hpp"

namespace cudl {

constexpr uint32_t kIdxImagesMagic = 0x00000803;  ///< An image file's magic (IDX3: unsigned bytes, 3 dimensions).
constexpr uint32_t kIdxLabelsMagic = 0x00000801;  ///< A label file's magic (IDX1: unsigned bytes, 1 dimension).

/// The header of an IDX image or label file: what its payload will hold.
struct IdxHeader {
  uint32_t magic = 0;  ///< kIdxImagesMagic or kIdxLabelsMagic.
  int64_t count = 0;   ///< Images or labels in the payload.
  int64_t rows = 0;    ///< The image height; 0 for a label file.
  int64_t cols = 0;    ///< The image width; 0 for a label file.
};

/// Reads only the header of an IDX3 image or IDX1 label file, gzip or plain (a few bytes are
/// decompressed, whatever the payload's size), and validates it as the readers below do: the
/// magic, every dimension at least 1, the payload within the readers' 2 GiB limit. The payload
/// itself is not read, so a truncated or over-long file passes here and fails in the reader.
/// Throws Error naming the file when it is missing or unreadable or its header fails a check.
IdxHeader read_idx_header(const std::string& path);

/// An IDX image file: count images of rows×cols bytes, row-major, image after image.
struct IdxImages {
  int64_t count = 0;            ///< Images in the file.
  int64_t rows = 0;             ///< Image height.
  int64_t cols = 0;             ///< Image width.
  std::vector<uint8_t> pixels;  ///< count·rows·cols bytes.
};

/// Reads an IDX3 image file (magic 0x00000803), gzip-compressed or plain (detected from the
/// content, not the name). Throws cudl::Error naming the file and the problem: missing or
/// unreadable file, wrong magic (expected vs found), zero or absurd dimensions, truncated or
/// over-long payload, corrupt gzip stream. Never reads out of bounds.
IdxImages read_idx_images(const std::string& path);

/// Reads an IDX1 label file (magic 0x00000801), same rules. Every label must be < num_classes;
/// the error names the first offending label, its index and the file.
std::vector<uint8_t> read_idx_labels(const std::string& path, int num_classes);

/// A dataset in host memory, as plain fields: x is rows×features floats; y holds one class index
/// per row (as a float, target_cols 0) or target_cols values per row.
///
/// Loaded from IDX files, x lies in [0, 1] and y in [0, classes): bytes hold no NaN or Inf, so
/// loading needs no finiteness check (data built by hand is checked where it is used). The
/// fields are the data; the Dataset methods read them (const, so several threads may call them
/// at once while nobody writes the fields).
struct InMemoryDataset : Dataset {
  std::string name;      ///< For describe() and errors, e.g. "MNIST", "Fashion-MNIST".
  std::string source;    ///< The directory it was read from (may be empty).
  int64_t rows = 0;      ///< Examples.
  int64_t features = 0;  ///< Floats per example.
  int64_t classes = 0;   ///< Classes of the class-index targets (unused when target_cols > 0).
  int64_t target_cols = 0;  ///< 0: y holds class indices (rows); D > 0: y holds rows × D values.
  std::vector<float> x;  ///< rows × features, row-major.
  std::vector<float> y;  ///< rows, or rows × target_cols.

  int64_t size() const override { return rows; }
  Shape example_shape() const override { return {features}; }
  Shape target_shape() const override { return target_cols > 0 ? Shape{target_cols} : Shape{}; }
  int64_t num_classes() const override { return target_cols > 0 ? 0 : classes; }
  /// Copies rows idx[0..n), after checking that x and y hold rows × features and rows × target
  /// values (Error naming the sizes) and that every index is in [0, rows).
  void fill(const int64_t* idx, int64_t n, float* x, float* y) const override;
  /// Copies the targets of rows idx[0..n), with fill()'s checks.
  void fill_targets(const int64_t* idx, int64_t n, float* y) const override;
  /// e.g. "MNIST: 70000 rows of 784 features, 10 classes (data/mnist)".
  std::string describe() const override;
};

/// Limits on what load_idx_dataset may load.
struct LoadOptions {
  /// The most bytes x (rows × features floats) may take. 1 GiB by default: MNIST's 70,000 rows of
  /// 784 take 220 MB, and a corrupt or hostile header (a 2 MB gzip file of zeros can claim 2.7
  /// million images) fails at once instead of exhausting memory. Raise it for larger sets
  /// (EMNIST ByClass needs 2.6 GB). Must be positive.
  int64_t max_float_bytes = int64_t{1} << 30;
  /// How the cap's error tells the user to raise it (a program names its own flag here, as
  /// bench_dbn names "--max-data-mib").
  std::string cap_name = "LoadOptions::max_float_bytes";
};

/// What load_idx_dataset would load, learnt from the four files' headers alone (see
/// peek_idx_dataset): rows, features per row (rows × cols of an image) and classes.
struct DatasetShape {
  int64_t rows = 0;      ///< Rows load_idx_dataset would load (train and t10k together).
  int64_t features = 0;  ///< Floats per row (image rows × cols).
  int64_t classes = 0;   ///< Classes (10).
};

/// Loads a directory holding the IDX files of MNIST or Fashion-MNIST into host memory.
///
/// The files: train-{images-idx3,labels-idx1}-ubyte[.gz] and t10k-{...}-ubyte[.gz]. With both splits the
/// rows are train followed by t10k (70,000); with only the t10k files, those (10,000). Pixels
/// are scaled by 1/255; labels must be below 10. Image/label count mismatch is an error naming
/// both files and counts; so are a missing directory or t10k file, a training split with only
/// one of its two files, image sizes that differ between splits, and everything the IDX readers
/// refuse. Every header is read and checked before any payload (see peek_idx_dataset), so an x over
/// options.max_float_bytes is an error naming the file, its count and image size, the bytes and
/// the cap, raised before anything is decompressed or allocated. Memory: x is reserved once and
/// filled only as data arrives (the first split's pixels go straight into it as floats); beside
/// it there is only the t10k payload as bytes (a quarter of its floats) while a training split
/// decompresses in parallel (on a second thread): about x + x/28 for MNIST, never a second copy
/// of x. Returns the data on the host; to_device() moves it to a backend.
InMemoryDataset load_idx_dataset(const std::string& dir, const std::string& name,
                         const LoadOptions& options = {});

/// The checks of load_idx_dataset that need no payload (files present, headers valid, image and
/// label counts equal, image sizes equal across splits, the cap) and the shape it would load; a
/// few bytes of each file are read, so a caller can check the shape against its network before
/// paying for the load. Throws the Errors load_idx_dataset would throw for these checks.
DatasetShape peek_idx_dataset(const std::string& dir, const std::string& name,
                              const LoadOptions& options = {});

namespace detail {
struct IdxPart;  // one split's bytes (src/data/idx_dataset.cpp)
}

/// An IDX data set (MNIST, Fashion-MNIST) held as its files hold it: pixels and labels as bytes,
/// a quarter of the floats load_idx_dataset makes, filled as floats only when asked.
///
/// The fast way to train on IDX data: load() decompresses the image files whole and in parallel,
/// and to_device() converts the rows into the backend's tensors on several threads, so no float
/// copy of the data exists on the host. fill() writes pixel / 255 and the label, the very floats
/// of load_idx_dataset, and the rows are in its order (train, then t10k): random_split() of an
/// IdxDataset gives the rows and bits of train_test_split() of load_idx_dataset(). Copies share
/// the (immutable) bytes; every const member may be called from several threads at once.
class IdxDataset : public Dataset {
 public:
  /// Reads the IDX files of `dir` as load_idx_dataset does: the same files, checks, errors and
  /// cap (options.max_float_bytes bounds the floats the rows make, as there: to_device() makes
  /// them). The image files are decompressed on two threads, each whole in one call to
  /// libdeflate where it is a single gzip member, else by zlib's stream reader.
  static IdxDataset load(const std::string& dir, const std::string& name, const LoadOptions& options = {});

  int64_t size() const override { return rows_; }
  Shape example_shape() const override { return {features_}; }
  Shape target_shape() const override { return {}; }
  int64_t num_classes() const override { return classes_; }
  /// Rows idx[0..n) as floats: each pixel / 255, and the label as a float.
  void fill(const int64_t* idx, int64_t n, float* x, float* y) const override;
  /// The labels of rows idx[0..n), as floats.
  void fill_targets(const int64_t* idx, int64_t n, float* y) const override;
  /// e.g. "Fashion-MNIST: 70000 rows of 784 features (bytes), 10 classes (/usr/share/datasets/fashion-mnist)".
  std::string describe() const override;
  /// "MNIST" or "Fashion-MNIST", as given to load().
  const std::string& name() const { return name_; }

 private:
  IdxDataset() = default;
  // The split holding row `row` and the row's index in it.
  const detail::IdxPart& part_of(int64_t& row) const;
  std::string name_, source_;
  int64_t rows_ = 0, features_ = 0, classes_ = 0;
  std::vector<std::shared_ptr<const detail::IdxPart>> parts_;  // train (if present), then t10k
};

/// Where bench_dbn's data comes from and why.
struct DatasetLocation {
  std::string dir;      ///< The directory holding the IDX files.
  std::string name;     ///< "MNIST" or "Fashion-MNIST".
  /// How it was found: "--data", "$CUDL_DATA", "project data/mnist" or "Debian dataset-fashion-mnist".
  std::string reason;
};

/// Finds bench_dbn's IDX data set.
///
/// Discovery order: `cli_dir` if not empty; else $CUDL_DATA; else `project_root`/data/mnist if
/// it holds MNIST files; else /usr/share/datasets/fashion-mnist. The name is "Fashion-MNIST" when
/// the directory path contains "fashion" (case-insensitive), otherwise "MNIST". An explicitly
/// named directory (flag or variable) that holds no IDX files is an error; none found at all is
/// an error listing every place tried and how to fill one (scripts/fetch_mnist.sh, apt). Only
/// the t10k image and label files are looked for (the training split is optional). Reads the
/// environment (std::getenv): do not call it while another thread changes the environment.
DatasetLocation find_dataset(const std::string& cli_dir, const std::string& project_root);

/// What train_test_split returns.
///
/// The seeded split of sklearn's train_test_split(test_size): rows are permuted with a
/// counter-based Fisher-Yates shuffle under `seed`; the first ceil(test_fraction·rows) of the
/// permutation are the test set, the rest the training set, both in permutation order.
struct Split {
  InMemoryDataset train;  ///< The rest of the permutation, in its order.
  InMemoryDataset test;   ///< The first ceil(test_fraction·rows) rows of the permutation.
};
/// Splits `data` as Split describes, copying every row: the peak is twice the data (the data and
/// both sides); the two sides are copied on two threads. Throws Error when test_fraction is
/// outside (0, 1), when a side would be empty, when data's sizes disagree, or when it has 2^32
/// rows or more.
Split train_test_split(const InMemoryDataset& data, double test_fraction, uint64_t seed);
/// The same split, bit for bit, reusing data's storage: the smaller side is copied out, then the
/// larger side's rows are permuted in place and data's buffers are moved into it (they keep
/// their capacity). The peak is the data plus its smaller side, not twice the data. Throws what
/// the copying overload throws, before `data` is changed.
Split train_test_split(InMemoryDataset&& data, double test_fraction, uint64_t seed);

}  // namespace cudl

#pragma once
// Datasets a user trains on (docs/design/user-data.md): one small interface, random access by row
// index, so that an in-memory array, a memory-mapped file and a folder of images are all datasets
// and fit() takes any of them. The trainer decides the order of rows (its counter-based sampler);
// a dataset only fills the rows it is asked for.
//
//   cudl::InMemoryDataset data = cudl::load_idx_dataset(dir, "MNIST");
//   cudl::DatasetSplit parts = cudl::random_split(data, 0.1, /*seed=*/7);
//   cudl::Normalize norm = cudl::Normalize::fit(parts.train);
//   cudl::Transformed train(parts.train, norm), valid(parts.valid, norm);
//   o.validation_data = &valid;
//   cudl::fit(net, loss, opt, train, o);
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cudl/tensor.hpp"

namespace cudl {

/// Random access to the rows (examples and their targets) of a data set, on the host.
///
/// An in-memory array, a memory-mapped file and a folder of images are all datasets, so fit()
/// takes any of them. The trainer chooses the order of rows; a dataset only fills the rows it is
/// asked for, into host buffers (uploading to a GPU backend is the caller's step, e.g.
/// to_device()). Every const member may be called from several threads at once.
class Dataset {
 public:
  virtual ~Dataset() = default;

  /// Rows (examples) in the dataset.
  virtual int64_t size() const = 0;
  /// The shape of one example: {784} for a flat row, {1, 28, 28} or {3, 64, 64} for an image.
  virtual Shape example_shape() const = 0;
  /// The shape of one target: {} for a class index (then num_classes() > 0), {D} for D values
  /// (regression, several outputs).
  virtual Shape target_shape() const = 0;
  /// Classes of a class-index target; 0 for targets that are values.
  virtual int64_t num_classes() const { return 0; }

  /// Writes the rows idx[0..n) into x (n × example_numel() floats, row after row) and their
  /// targets into y (n × target_numel() floats; a class index as a float), in the order of idx.
  /// Every index must lie in [0, size()) (an Error names the first that does not). Called from
  /// several threads at once on disjoint buffers: implementations keep no cursor and are
  /// thread-safe for concurrent calls.
  virtual void fill(const int64_t* idx, int64_t n, float* x, float* y) const = 0;
  /// The targets alone of rows idx[0..n) into y (n × target_numel() floats), as fill() writes
  /// them; random_split's stratification reads them. The default fills whole rows through a
  /// scratch buffer; datasets whose targets are cheap to read override it. Thread-safe as fill().
  virtual void fill_targets(const int64_t* idx, int64_t n, float* y) const;

  /// One line for logs: what the data is and where it comes from.
  virtual std::string describe() const = 0;

  /// Floats in one example: the product of example_shape().
  int64_t example_numel() const { return numel(example_shape()); }
  /// Floats in one target: 1 for a class index ({}), D for {D}.
  int64_t target_numel() const { return numel(target_shape()); }
  /// Throws Error naming `who`, this dataset and the first index of idx[0..n) outside [0, size()).
  void check_indices(const int64_t* idx, int64_t n, const char* who) const;

 protected:
  /// For derived classes; a Dataset is used through references and pointers.
  Dataset() = default;
  /// Copies as derived classes do (the interface holds no data).
  Dataset(const Dataset&) = default;
  /// Moves as derived classes do (the interface holds no data).
  Dataset(Dataset&&) = default;
  /// Copy-assigns as derived classes do (the interface holds no data).
  Dataset& operator=(const Dataset&) = default;
  /// Move-assigns as derived classes do (the interface holds no data).
  Dataset& operator=(Dataset&&) = default;
};

/// Rows of another dataset, in the order of `indices` (which may repeat rows), as a view: no
/// row is copied. Holds a reference: the base dataset must outlive it.
class Subset : public Dataset {
 public:
  /// Row i of the subset is row indices[i] of `base`. Throws Error naming the first index outside
  /// [0, base.size()).
  Subset(const Dataset& base, std::vector<int64_t> indices);
  int64_t size() const override { return static_cast<int64_t>(indices_.size()); }
  Shape example_shape() const override { return base_->example_shape(); }
  Shape target_shape() const override { return base_->target_shape(); }
  int64_t num_classes() const override { return base_->num_classes(); }
  void fill(const int64_t* idx, int64_t n, float* x, float* y) const override;
  void fill_targets(const int64_t* idx, int64_t n, float* y) const override;
  /// "N rows of " and the base's description.
  std::string describe() const override;
  /// The base's row of each subset row.
  const std::vector<int64_t>& indices() const { return indices_; }

 private:
  std::vector<int64_t> map(const int64_t* idx, int64_t n, const char* who) const;
  const Dataset* base_;
  std::vector<int64_t> indices_;
};

/// What random_split returns: two views of the same dataset.
struct DatasetSplit {
  Subset train;  ///< The training rows.
  Subset valid;  ///< The validation rows.
};

/// A seeded split into training and validation rows, as views (no row is copied).
///
/// The rows are permuted by the counter-based Fisher–Yates shuffle of train_test_split (so on an
/// InMemoryDataset the two give the same rows in the same order); the first
/// ceil(valid_fraction · size()) rows of the permutation are the validation rows. With
/// `stratified` (class-index targets only), each class is split on its own in that proportion,
/// its rows taken in the permutation's order, so both sides keep the class frequencies; the
/// classes are then interleaved in permutation order. Both Subsets refer to `data`, which must
/// outlive them. Throws Error when a side would be empty, when valid_fraction is outside (0, 1),
/// when the dataset has 2^32 rows or more, when stratified is asked of targets that are values,
/// or when it meets a label that is not a class index.
DatasetSplit random_split(const Dataset& data, double valid_fraction, uint64_t seed, bool stratified = false);

/// Per-feature standardisation, x' = (x − mean) · inv_std, with the statistics of a training set.
///
/// Features (or channels, for an example shape {C, H, W}: one mean and deviation per channel) whose
/// deviation is 0 keep inv_std = 1, so a constant feature becomes 0 rather than NaN. Applied on
/// the host, in Transformed::fill().
struct Normalize {
  /// What one mean and deviation are computed over.
  enum class Per {
    kFeature,  ///< Each value of an example on its own.
    kChannel,  ///< Each channel C of an example shape {C, H, W}, over its H·W values.
  };
  Per per = Per::kFeature;    ///< Per feature or per channel.
  int64_t example_numel = 0;  ///< The example size the statistics are for.
  int64_t channels = 0;       ///< kChannel: C of an example shape {C, H, W}; 0 for kFeature.
  std::vector<float> mean;     ///< One mean per feature or channel.
  std::vector<float> inv_std;  ///< 1 / standard deviation (population), per feature or channel.

  /// Computes the statistics over every row of `data` (in double precision, in chunks, so any
  /// size fits), per feature or per channel. Throws Error when kChannel is asked of an example
  /// shape that is not of rank 3, when `data` has no rows, or when it holds a NaN or an infinity.
  static Normalize fit(const Dataset& data, Per per = Per::kFeature);
  /// Applies the statistics to n rows of x (n × example_numel floats) in place.
  void apply(float* x, int64_t n) const;
  /// "standardised per feature (784)" or "standardised per channel (3)".
  std::string describe() const;
};

/// Every example value mapped by x' = x · factor + offset: {1.0f / 255} puts bytes in [0, 1],
/// {2.0f / 255, -1.0f} in [-1, 1]. Both must be finite (Transformed checks).
struct Scale {
  float factor = 1.0f;  ///< Multiplies every value.
  float offset = 0.0f;  ///< Added after the factor.
  /// Maps `values` floats of x in place (nothing is done for {1, 0}).
  void apply(float* x, int64_t values) const;
  /// "scaled by 0.00392157", with " + offset" or " - |offset|" when the offset is not 0.
  std::string describe() const;
};

/// A dataset seen through a Scale or a Normalize: fill() fills from the base, then maps the
/// examples on the host (the targets pass unchanged).
///
/// Holds a reference to the base, which must outlive it. Transforms chain as datasets do:
/// Normalize::fit(scaled) computes the statistics of the scaled values, and
/// Transformed(scaled, those) applies both.
class Transformed : public Dataset {
 public:
  /// Standardises the base's examples. Throws Error when the statistics are not for the base's
  /// examples (another example size, or no statistics).
  Transformed(const Dataset& base, Normalize normalize);
  /// Scales the base's examples. Throws Error when the factor or the offset is not finite.
  Transformed(const Dataset& base, Scale scale);
  int64_t size() const override { return base_->size(); }
  Shape example_shape() const override { return base_->example_shape(); }
  Shape target_shape() const override { return base_->target_shape(); }
  int64_t num_classes() const override { return base_->num_classes(); }
  void fill(const int64_t* idx, int64_t n, float* x, float* y) const override;
  void fill_targets(const int64_t* idx, int64_t n, float* y) const override { base_->fill_targets(idx, n, y); }
  /// The base's description, then the transform's.
  std::string describe() const override;

 private:
  const Dataset* base_;
  Scale scale_;
  std::optional<Normalize> normalize_;
};

/// A whole dataset as two tensors on one backend (what to_device() returns).
struct DeviceData {
  Tensor x;  ///< Examples, {rows, example_numel()}.
  Tensor y;  ///< Targets, {rows} (class indices as floats) or {rows, target_numel()}.
};
/// Every row of `data` on `backend`, in fit()'s layout: x of shape {size(), example_numel()} (the
/// network's input shape gives each row its shape again) and y of shape {size()} (class indices)
/// or {size(), target_numel()}. Rows are filled in chunks of about 4 MB by `threads` threads at
/// once (0: one per hardware thread, at most 16; data.fill() is called concurrently, as the
/// Dataset contract allows). On a Device::kCpu backend, whose memory is host memory, each chunk is
/// filled in place; on a GPU backend each chunk is filled into a host buffer of its own and copied
/// over, so the host never holds a second copy of the data (`threads` chunks at most). Throws
/// what data.fill() throws (the first error, after the other threads stop), Error for
/// threads < 0, and what allocating on the backend throws.
DeviceData to_device(const Dataset& data, Backend& backend, int threads = 0);

}  // namespace cudl

#pragma once
// NumPy .npy and .npz files as a cudl::Dataset (issue 21): the examples in one file and the
// targets in another, as `np.save("x.npy", x); np.save("y.npy", y)` writes them, or both in one
// archive, as `np.savez("data.npz", x=x, y=y)` (or np.savez_compressed) writes it. The files are
// memory-mapped read-only, so a file larger than RAM trains (the pages are read as rows are asked
// for); each row is converted to float when fill() copies it. Deflated .npz members
// (np.savez_compressed) cannot be mapped: they are inflated into memory at open.
//
//   auto data = cudl::NpyDataset::open("x.npy", "y.npy");     // or NpyDataset::open_npz("data.npz")
//   cudl::fit(net, loss, opt, *data, options);
//
// save_npy writes arrays that NumPy (np.load) and NpyDataset read.
//
// Accepted: format versions 1.0, 2.0 and 3.0; C order; little-endian (or byte-sized) float32,
// float64, uint8, int32 and int64 ('<f4', '<f8', '|u1', '<i4', '<i8'); x of rank ≥ 2 (N × …), y of
// rank 1 (N) or 2 (N × D). Everything else (Fortran order, big-endian, other types, a truncated
// file, a header that is not NumPy's) is refused with one sentence naming the file.
#include <cstdint>
#include <memory>
#include <string>

#include "cudl/dataset.hpp"

namespace cudl {

/// The element types NpyDataset reads and save_npy writes (little-endian, or byte-sized).
enum class NpyType {
  kFloat32,  ///< '<f4'
  kFloat64,  ///< '<f8'
  kUint8,    ///< '|u1'
  kInt32,    ///< '<i4'
  kInt64,    ///< '<i8'
};
const char* to_string(NpyType type);  ///< NumPy's name of the type: "float32", "float64", "uint8", "int32", "int64".

/// What a .npy header says.
struct NpyHeader {
  NpyType type = NpyType::kFloat32;  ///< The element type ('descr').
  Shape shape;             ///< The array's shape; {} for a scalar.
  int64_t data_offset = 0; ///< Where the array's bytes start, from the start of the file.
  int64_t item_bytes = 0;  ///< Bytes per element.
};

/// Parses and validates the header of a .npy file held in `bytes` (`size` of them; only the
/// header is read, but the data it announces must fit in `size` exactly). `what` names the file in
/// errors. Throws Error for a missing magic, a format version other than 1, 2 or 3, a truncated or
/// over-long file, Fortran order, an unsupported type, a header that is not NumPy's, and a shape
/// whose size overflows.
NpyHeader parse_npy_header(const uint8_t* bytes, size_t size, const std::string& what);

/// How NpyDataset reads its targets.
struct NpyOptions {
  /// Whether y holds class indices or values.
  enum class Targets {
    kAuto,     ///< Integer y of rank 1: class indices; any other y: values.
    kClasses,  ///< y of rank 1 holding whole numbers in [0, classes).
    kValues,   ///< y as values (rank 1: one per row; rank 2: D per row).
  };
  Targets targets = Targets::kAuto;  ///< Class indices or values; by default, from y's type.
  /// Classes of class-index targets; 0: the largest label + 1 (every label is read at open).
  int64_t classes = 0;
  /// Multiplies every example value as it is converted (1/255 for uint8 images in [0, 1]).
  float x_scale = 1.0f;
  /// .npz only: the name of the example array (np.savez's keyword). npz_x and npz_y both empty:
  /// "x" and "y", or "arr_0" and "arr_1" (np.savez(path, x, y)) when the archive has neither.
  std::string npz_x;
  /// .npz only: the name of the target array (see npz_x).
  std::string npz_y;
  /// .npz only: the most bytes one deflated member may inflate to (it is held in memory); a larger
  /// one is refused before anything is allocated.
  uint64_t max_inflated_bytes = uint64_t{8} << 30;
};

/// Examples and targets in NumPy .npy files (or one .npz archive), memory-mapped read-only.
///
/// Each row is converted to float (and multiplied by NpyOptions::x_scale) when fill() copies it.
/// After open() the dataset does not change: every const member may be called from several
/// threads at once. The mapping is released by the destructor.
class NpyDataset : public Dataset {
 public:
  /// Maps both files and checks them: headers, matching row counts, and for class targets every
  /// label (whole, ≥ 0, below `classes`) and, for float examples, nothing else (NaN is found by
  /// fit's check). Throws Error naming the file and the problem (also for a non-finite x_scale or
  /// a negative `classes`).
  static std::unique_ptr<NpyDataset> open(const std::string& x_path, const std::string& y_path,
                                          const NpyOptions& options = {});
  /// The same from one .npz archive (a ZIP of .npy members, stored or deflated, ZIP64 included).
  /// Throws Error naming the archive: not a ZIP archive NumPy writes, a missing array (the error
  /// lists the members), an encrypted member or another compression method, a corrupt member (CRC),
  /// a deflated member over max_inflated_bytes, and everything open() refuses.
  static std::unique_ptr<NpyDataset> open_npz(const std::string& path, const NpyOptions& options = {});
  ~NpyDataset() override;

  int64_t size() const override { return rows_; }
  /// x's shape without its first dimension.
  Shape example_shape() const override { return example_shape_; }
  /// {D} for y of rank 2 (N × D); {} for y of rank 1, whether class indices or one value per row
  /// (for values, num_classes() is 0).
  Shape target_shape() const override { return target_shape_; }
  int64_t num_classes() const override { return classes_; }
  /// Converts rows idx[0..n) from the mapped files (pages are read as they are touched).
  /// Thread-safe. Throws Error for an index outside [0, size()).
  void fill(const int64_t* idx, int64_t n, float* x, float* y) const override;
  /// Converts the targets of rows idx[0..n) from the mapped file; thread-safe as fill().
  void fill_targets(const int64_t* idx, int64_t n, float* y) const override;
  /// Both files with their shapes, the classes (or "values"), and whether memory-mapped.
  std::string describe() const override;

  struct Mapped;  ///< A read-only mapping of one file and its header (defined in the library).

 private:
  NpyDataset() = default;
  static std::unique_ptr<NpyDataset> from(std::unique_ptr<Mapped> x, std::unique_ptr<Mapped> y, const NpyOptions& options);
  std::unique_ptr<Mapped> x_, y_;
  int64_t rows_ = 0, classes_ = 0;
  Shape example_shape_, target_shape_;
  float x_scale_ = 1.0f;
};

/// Writes `data`, a C-order array of `shape` (rows first), as a .npy file of version 1.0 that
/// np.load reads: float32, float64, uint8, int32 or int64 after the pointer's type. The file is
/// written to path + ".tmp" and renamed over `path`, so an existing file is never left
/// half-written. Throws Error naming the file: a negative or too large shape, no data for a
/// non-empty shape, a file that cannot be written or renamed. (Little-endian, as x86-64 and
/// AArch64 store numbers.)
void save_npy(const std::string& path, const float* data, const Shape& shape);
/// Writes float64 data ('<f8'); see save_npy(const std::string&, const float*, const Shape&).
void save_npy(const std::string& path, const double* data, const Shape& shape);
/// Writes uint8 data ('|u1'); see save_npy(const std::string&, const float*, const Shape&).
void save_npy(const std::string& path, const uint8_t* data, const Shape& shape);
/// Writes int32 data ('<i4'); see save_npy(const std::string&, const float*, const Shape&).
void save_npy(const std::string& path, const int32_t* data, const Shape& shape);
/// Writes int64 data ('<i8'); see save_npy(const std::string&, const float*, const Shape&).
void save_npy(const std::string& path, const int64_t* data, const Shape& shape);

}  // namespace cudl

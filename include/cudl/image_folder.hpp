#pragma once
// A folder of images as a cudl::Dataset (issue 21): one subfolder per class, PNG and JPEG files in
// each, decoded to floats of one fixed size.
//
//   photos/cat/001.jpg, photos/cat/002.png, ..., photos/dog/001.jpg, ...
//   cudl::ImageFolderOptions o;
//   o.height = o.width = 64;
//   o.channels = 3;
//   o.resize = cudl::ImageFolderOptions::Resize::kBilinear;
//   auto data = cudl::ImageFolderDataset::open("photos", o);   // classes: cat = 0, dog = 1
//   cudl::fit(net, loss, opt, *data, fit_options);
//
// The folder:
// - Classes are the subfolders of the root, in byte order of their names (std::string's `<`):
//   class k is the k-th name. Rows are the images of class 0, then of class 1, ..., each class's
//   files in byte order of their names, so row numbers do not depend on the file system.
// - Images are the files named *.png, *.jpg or *.jpeg (any case) directly in a class folder; each
//   is decoded as what its first bytes say it is (PNG or JPEG), whatever its extension.
// - Everything else is skipped and counted (describe() reports the count): other files, files and
//   folders whose name starts with '.' (.DS_Store, ._x.jpg, .ipynb_checkpoints), files directly in
//   the root, folders inside a class folder (the search is not recursive). Links are followed.
//
// The pixels: an example is channels × height × width floats (CHW, planes of rows), each in [0, 1]:
// 8-bit values v become v / 255, 16-bit PNG values v / 65535 (all 16 bits kept). A PNG of 1, 2 or
// 4 bits per value is scaled to the full range (bit depth 1: 0 and 1.0); a palette PNG is looked up
// to RGB. Alpha (and a PNG's tRNS transparency) is dropped, not composited over a background; gamma
// and colour profiles are not applied: values are as stored. Gray to RGB repeats the value in the
// three planes; RGB to gray is the BT.601 luma 0.299·R + 0.587·G + 0.114·B of the [0, 1] values.
// JPEGs decode with libjpeg-turbo's accurate integer DCT and smooth chroma upsampling (the values
// Pillow gives); CMYK JPEGs are refused, and so is any image of more than 2^26 pixels (8192 × 8192).
//
// PNG is read with libspng and JPEG with libjpeg-turbo (Debian's libspng-dev and libturbojpeg0-dev,
// linked into libcudl; no type of theirs appears here).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cudl/dataset.hpp"

namespace cudl {
namespace image_io {
struct Info;  // what an image's header says (src/data/image_decode.hpp, private)
}  // namespace image_io

/// How ImageFolderDataset::open reads a folder: the example size, channels, resizing, caching.
struct ImageFolderOptions {
  /// The height of every example. Both 0: the size of the first image (row 0); otherwise both > 0.
  int64_t height = 0;
  /// The width of every example (see height).
  int64_t width = 0;
  /// Channels of every example, 1 (gray) or 3 (RGB); 0: as the first image is stored, 1 for a
  /// gray PNG (with or without alpha) or a gray JPEG, 3 for anything in colour (palette PNGs
  /// included).
  int channels = 0;
  /// An image of another size than the example size: kRefuse throws Error naming the file and both
  /// sizes; kBilinear resamples it (pixel centres aligned, source coordinate (o + 0.5)·in/out − 0.5
  /// clamped to the image, no antialiasing when shrinking: OpenCV's INTER_LINEAR, PyTorch's
  /// interpolate(mode="bilinear", align_corners=False)).
  enum class Resize {
    kRefuse,    ///< An Error naming the file and both sizes.
    kBilinear,  ///< Resampled bilinearly to the example size.
  };
  Resize resize = Resize::kRefuse;  ///< What to do with an image of another size.
  /// true: every image is decoded at open and held as floats (size() × C × H × W × 4 bytes), and
  /// fill() only copies. false: open() reads headers only and fill() decodes the rows it is asked for.
  bool cache = false;
};

/// A folder of PNG and JPEG images, one subfolder per class, decoded on the host to CHW floats.
///
/// After open() the dataset does not change: every const member may be called from several threads
/// at once. It holds the file list (and the cache), not open files.
class ImageFolderDataset : public Dataset {
 public:
  /// Lists the folder (see above) and reads the header of every image, so that a file that is not a
  /// PNG or JPEG, a corrupt header, a CMYK JPEG and, under Resize::kRefuse, an image of another
  /// size are found here rather than in the middle of training; with options.cache it also decodes
  /// every image (corrupt or truncated image data is then found here too, else in fill()).
  /// Throws Error in one sentence naming the folder or file: a root that is missing or not a folder,
  /// no class subfolder, a class folder without images, any of the faults above, and options out of
  /// range (height and width not both 0 or both positive, channels not 0, 1 or 3).
  static std::unique_ptr<ImageFolderDataset> open(const std::string& root, const ImageFolderOptions& options = {});
  ~ImageFolderDataset() override;

  int64_t size() const override { return static_cast<int64_t>(rows_.size()); }
  /// {C, H, W}.
  Shape example_shape() const override { return {channels_, height_, width_}; }
  /// {}: a class index.
  Shape target_shape() const override { return {}; }
  /// The number of class subfolders.
  int64_t num_classes() const override { return static_cast<int64_t>(class_names_.size()); }

  /// Writes rows idx[0..n) into x (n × C·H·W floats) and their class indices into y (n floats).
  /// Without the cache each row's file is read and decoded here. Throws Error for an index outside
  /// [0, size()) and, naming the file, for an image that cannot be read or decoded (corrupt or
  /// truncated data) or, under Resize::kRefuse, whose size changed since open(). Thread-safe: const,
  /// with per-thread decoding buffers, so several loader threads may fill disjoint buffers at once.
  void fill(const int64_t* idx, int64_t n, float* x, float* y) const override;
  /// The class indices alone, without reading any image. Thread-safe.
  void fill_targets(const int64_t* idx, int64_t n, float* y) const override;
  /// One line: the root, images (PNG and JPEG counts), classes, the example shape, resizing,
  /// whether decoded at open, and how many other entries were skipped.
  std::string describe() const override;

  /// The class names (subfolder names), in class-index order.
  const std::vector<std::string>& class_names() const { return class_names_; }
  /// The file of `row` (root/class/name). Throws Error for a row outside [0, size()).
  const std::string& path(int64_t row) const;
  /// The class index of `row`. Throws Error for a row outside [0, size()).
  int64_t class_of(int64_t row) const;
  /// Entries of the folder that are not images of a class (see above), skipped at open.
  int64_t skipped() const { return skipped_; }

 private:
  struct Row {
    std::string path;
    int64_t label = 0;
  };
  ImageFolderDataset() = default;
  void check_row(int64_t row, const char* who) const;
  // Throws Error naming the file of `row` when its stored size is not the example size under kRefuse.
  void check_size(const image_io::Info& info, int64_t row) const;
  // Decodes the image of `row` into out (C·H·W floats), resizing or refusing as the options say;
  // returns its header.
  image_io::Info decode_row(int64_t row, float* out) const;

  std::string root_;
  std::vector<std::string> class_names_;
  std::vector<Row> rows_;
  int64_t channels_ = 0, height_ = 0, width_ = 0;
  ImageFolderOptions options_;
  int64_t skipped_ = 0, png_ = 0, jpeg_ = 0, resized_ = 0;  // resized_: images of another size (from their headers)
  std::string first_;              // the file that set the size, when the options did not
  std::vector<float> cache_;       // size() × C·H·W, when options_.cache
};

}  // namespace cudl

// ImageFolderDataset: the folder listed once at open (classes and files in byte order), every
// header read there (or every image decoded, with the cache), and rows decoded in fill() through
// image_decode.hpp with per-thread buffers.
#include "cudl/image_folder.hpp"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "cudl/error.hpp"
#include "data/image_decode.hpp"

namespace cudl {
namespace {

namespace fs = std::filesystem;

bool hidden(const std::string& name) { return !name.empty() && name[0] == '.'; }

bool image_name(const std::string& name) {
  const size_t dot = name.rfind('.');
  if (dot == std::string::npos) return false;
  std::string ext = name.substr(dot + 1);
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext == "png" || ext == "jpg" || ext == "jpeg";
}

// The entries of folder `dir` (names only), or Error naming it.
std::vector<fs::directory_entry> entries(const fs::path& dir) {
  std::error_code ec;
  std::vector<fs::directory_entry> out;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) out.push_back(*it);
  if (ec) throw Error(dir.string() + ": cannot list the folder: " + ec.message());
  return out;
}

std::string hw(int64_t h, int64_t w) { return std::to_string(h) + "×" + std::to_string(w); }

}  // namespace

ImageFolderDataset::~ImageFolderDataset() = default;

std::unique_ptr<ImageFolderDataset> ImageFolderDataset::open(const std::string& root, const ImageFolderOptions& options) {
  if (!((options.height == 0 && options.width == 0) || (options.height > 0 && options.width > 0)))
    throw Error("ImageFolderOptions: height and width must both be 0 (the first image's size) or both positive, found " +
                hw(options.height, options.width) + " for " + root);
  if (options.channels != 0 && options.channels != 1 && options.channels != 3)
    throw Error("ImageFolderOptions: channels must be 0 (as the first image), 1 (gray) or 3 (RGB), found " +
                std::to_string(options.channels) + " for " + root);
  std::error_code ec;
  const fs::file_status st = fs::status(root, ec);
  if (!fs::exists(st)) throw Error(root + ": no such folder" + (ec && ec != std::errc::no_such_file_or_directory ? " (" + ec.message() + ")" : ""));
  if (!fs::is_directory(st))
    throw Error(root + ": not a folder (ImageFolderDataset wants a folder with one subfolder of images per class)");

  std::unique_ptr<ImageFolderDataset> d(new ImageFolderDataset());
  d->root_ = root;
  d->options_ = options;
  for (const fs::directory_entry& e : entries(root)) {
    const std::string name = e.path().filename().string();
    if (!hidden(name) && e.is_directory(ec))
      d->class_names_.push_back(name);
    else
      ++d->skipped_;
  }
  if (d->class_names_.empty())
    throw Error(root + ": no class subfolders (ImageFolderDataset wants one subfolder per class, holding .png, .jpg or .jpeg files)");
  std::sort(d->class_names_.begin(), d->class_names_.end());
  for (size_t k = 0; k < d->class_names_.size(); ++k) {
    const fs::path dir = fs::path(root) / d->class_names_[k];
    std::vector<std::string> names;
    for (const fs::directory_entry& e : entries(dir)) {
      const std::string name = e.path().filename().string();
      if (!hidden(name) && image_name(name) && e.is_regular_file(ec))
        names.push_back(name);
      else
        ++d->skipped_;
    }
    if (names.empty())
      throw Error(dir.string() + ": the folder of class '" + d->class_names_[k] +
                  "' holds no images (files named *.png, *.jpg or *.jpeg)");
    std::sort(names.begin(), names.end());
    for (const std::string& name : names) d->rows_.push_back({(dir / name).string(), static_cast<int64_t>(k)});
  }

  // The example shape: the options', else the first image's.
  const image_io::Info first = image_io::read_info(d->rows_[0].path);
  d->channels_ = options.channels > 0 ? options.channels : first.channels;
  d->height_ = options.height > 0 ? options.height : first.height;
  d->width_ = options.width > 0 ? options.width : first.width;
  if (options.height == 0) d->first_ = d->rows_[0].path;
  const int64_t per = d->example_numel();
  if (options.cache) d->cache_.resize(static_cast<size_t>(d->size() * per));
  for (int64_t r = 0; r < d->size(); ++r) {
    const image_io::Info info = options.cache ? d->decode_row(r, d->cache_.data() + r * per)
                                              : (r == 0 ? first : image_io::read_info(d->rows_[static_cast<size_t>(r)].path));
    d->check_size(info, r);
    ++(info.format == image_io::Format::kPng ? d->png_ : d->jpeg_);
    if (info.height != d->height_ || info.width != d->width_) ++d->resized_;
  }
  return d;
}

void ImageFolderDataset::check_row(int64_t row, const char* who) const {
  if (row < 0 || row >= size())
    throw Error(std::string(who) + ": row " + std::to_string(row) + " is outside [0, " + std::to_string(size()) + ") of " +
                root_);
}

const std::string& ImageFolderDataset::path(int64_t row) const {
  check_row(row, "ImageFolderDataset::path");
  return rows_[static_cast<size_t>(row)].path;
}

int64_t ImageFolderDataset::class_of(int64_t row) const {
  check_row(row, "ImageFolderDataset::class_of");
  return rows_[static_cast<size_t>(row)].label;
}

void ImageFolderDataset::check_size(const image_io::Info& info, int64_t row) const {
  if (options_.resize == ImageFolderOptions::Resize::kRefuse && (info.height != height_ || info.width != width_))
    throw Error(rows_[static_cast<size_t>(row)].path + ": expected an image of " + hw(height_, width_) + " (height×width, " +
                (first_.empty() ? std::string("as ImageFolderOptions asks") : "the size of the first image, " + first_) +
                "), found " + hw(info.height, info.width) + "; ImageFolderOptions::Resize::kBilinear would resample it");
}

image_io::Info ImageFolderDataset::decode_row(int64_t row, float* out) const {
  static thread_local std::vector<float> planes;
  const image_io::Info info = image_io::decode(rows_[static_cast<size_t>(row)].path, static_cast<int>(channels_), planes);
  check_size(info, row);
  if (info.height == height_ && info.width == width_)
    std::memcpy(out, planes.data(), planes.size() * sizeof(float));
  else
    image_io::resize_bilinear(planes.data(), static_cast<int>(channels_), info.height, info.width, out, height_, width_);
  image_io::release_if_large(planes);
  return info;
}

void ImageFolderDataset::fill(const int64_t* idx, int64_t n, float* x, float* y) const {
  fill_targets(idx, n, y);  // checks the indices
  const int64_t per = example_numel();
  for (int64_t i = 0; i < n; ++i) {
    if (options_.cache)
      std::memcpy(x + i * per, cache_.data() + idx[i] * per, static_cast<size_t>(per) * sizeof(float));
    else
      decode_row(idx[i], x + i * per);
  }
}

void ImageFolderDataset::fill_targets(const int64_t* idx, int64_t n, float* y) const {
  check_indices(idx, n, "ImageFolderDataset::fill");
  for (int64_t i = 0; i < n; ++i) y[i] = static_cast<float>(rows_[static_cast<size_t>(idx[i])].label);
}

std::string ImageFolderDataset::describe() const {
  std::string classes;
  for (size_t k = 0; k < class_names_.size() && k < 8; ++k) classes += (k ? ", " : "") + class_names_[k];
  if (class_names_.size() > 8) classes += ", …";
  std::string s = root_ + ": " + std::to_string(size()) + " images (" + std::to_string(png_) + " PNG, " +
                  std::to_string(jpeg_) + " JPEG) in " + std::to_string(num_classes()) + " classes (" + classes + ") as " +
                  to_string(example_shape()) + " floats in [0, 1]";
  if (resized_ > 0) s += ", " + std::to_string(resized_) + " resized bilinearly";
  s += options_.cache ? ", decoded at open" : ", decoded in fill";
  if (skipped_ > 0) s += ", " + std::to_string(skipped_) + (skipped_ == 1 ? " other entry" : " other entries") + " skipped";
  return s;
}

}  // namespace cudl

#pragma once
// Decoding one image file to floats, for ImageFolderDataset (include/cudl/image_folder.hpp): PNG
// through libspng, JPEG through libjpeg-turbo's TurboJPEG API, the format told by the file's first
// bytes (not its name). Private to the library: no public header includes it, and the spng and
// turbojpeg types stay in image_decode.cpp.
//
// Conversions, as image_folder.hpp documents them: 8-bit values v → v / 255, 16-bit v → v / 65535;
// alpha (and PNG tRNS transparency) is dropped, never composited; gamma is not applied. Gray to
// RGB replicates the value; RGB to gray is the BT.601 luma 0.299·R + 0.587·G + 0.114·B of the
// [0, 1] values. Every function is thread-safe: the scratch buffers and the JPEG decompressor are
// per thread.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace cudl::image_io {

enum class Format { kPng, kJpeg };

// The most pixels an image may have (2^26: 8192 × 8192), so that a corrupt or hostile header cannot
// make the decoder allocate gigabytes.
constexpr int64_t kMaxPixels = int64_t{1} << 26;

// What a file's header says.
struct Info {
  Format format = Format::kPng;
  int64_t height = 0, width = 0;
  int channels = 0;  // as stored: 1 for gray (gray PNG with or without alpha, gray JPEG), 3 for colour
};

// Reads and checks the header of the image at `path` (the first 64 KiB of the file, or all of it
// for a JPEG whose frame header lies further). Throws Error naming the file: unreadable, empty,
// neither PNG nor JPEG by its first bytes, a header libspng or libjpeg-turbo refuses, a CMYK JPEG,
// more than kMaxPixels pixels.
Info read_info(const std::string& path);

// Decodes the image at `path` into out (channels × height × width floats in [0, 1], CHW) at its
// stored size, converting to `channels` (1 or 3). Returns its header. Throws Error naming the file
// as read_info does, and for corrupt or truncated data (a libjpeg-turbo warning included).
Info decode(const std::string& path, int channels, std::vector<float>& out);

// Frees a per-thread buffer that an unusually large image grew past 64 MiB, so that a loader thread
// does not hold on to it after that image.
template <typename V>
void release_if_large(V& v) {
  if (v.capacity() * sizeof(typename V::value_type) > (size_t{64} << 20)) V().swap(v);
}

// Bilinear resampling of each of `channels` planes from in_h × in_w to out_h × out_w, with pixel
// centres aligned (source coordinate (o + 0.5)·in/out − 0.5, clamped to the image; no antialiasing
// when shrinking): OpenCV's INTER_LINEAR, PyTorch's interpolate(align_corners=False).
void resize_bilinear(const float* in, int channels, int64_t in_h, int64_t in_w, float* out, int64_t out_h,
                     int64_t out_w);

}  // namespace cudl::image_io

// 8-bit grayscale PNG files written with zlib alone, and the grid of first-layer filters.
// PNG layout (RFC 2083): the 8-byte signature, then chunks of
//   length (4 bytes, big-endian, data only) · type (4 ASCII bytes) · data · CRC-32 of type+data.
// IHDR, one or more IDAT (together one zlib stream of the scanlines, each prefixed with
// filter byte 0 = None), IEND.
#include "cudl/image.hpp"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "cudl/error.hpp"

namespace cudl {
namespace {

using Bytes = std::vector<uint8_t>;

constexpr int64_t kMaxPngSide = 0x7fffffff;  // PNG stores width and height as 31-bit values
constexpr size_t kIdatBytes = size_t{1} << 16;  // compressed bytes per IDAT chunk, at most
constexpr uint8_t kSeparator = 0;               // black lines between filter tiles
constexpr uint8_t kMidGray = 128;               // a constant filter

std::string num(int64_t v) { return std::to_string(v); }

void put32(Bytes& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(v >> shift));
}

// Appends one chunk: length, type, data, CRC-32 over type and data.
void put_chunk(Bytes& out, const char (&type)[5], const uint8_t* data, size_t size) {
  put32(out, static_cast<uint32_t>(size));
  const size_t type_at = out.size();
  out.insert(out.end(), type, type + 4);
  if (size > 0) out.insert(out.end(), data, data + size);
  const uLong crc = crc32(0L, out.data() + type_at, static_cast<uInt>(4 + size));
  put32(out, static_cast<uint32_t>(crc));
}

// The whole PNG file in memory. Sizes are already checked by the caller.
Bytes encode_png_gray(const std::string& path, int64_t width, int64_t height, const Bytes& pixels) {
  static const uint8_t kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  Bytes png(kSignature, kSignature + 8);

  Bytes ihdr;
  put32(ihdr, static_cast<uint32_t>(width));
  put32(ihdr, static_cast<uint32_t>(height));
  ihdr.push_back(8);  // bit depth
  ihdr.push_back(0);  // color type: grayscale
  ihdr.push_back(0);  // compression method: deflate
  ihdr.push_back(0);  // filter method: adaptive (per-scanline filter byte)
  ihdr.push_back(0);  // interlace: none
  put_chunk(png, "IHDR", ihdr.data(), ihdr.size());

  // The scanlines are fed to deflate one at a time (filter byte 0, then the row), so no second
  // copy of the image is made; the output is cut into IDAT chunks of at most kIdatBytes.
  z_stream z{};
  int ret = deflateInit(&z, Z_DEFAULT_COMPRESSION);
  CUDL_REQUIRE(ret == Z_OK, path + ": zlib deflateInit failed: " + zError(ret));
  struct DeflateEnd {
    z_stream* z;
    ~DeflateEnd() { deflateEnd(z); }
  } end_guard{&z};

  const size_t w = static_cast<size_t>(width);
  Bytes row(w + 1);
  Bytes idat(kIdatBytes);
  z.next_out = idat.data();
  z.avail_out = static_cast<uInt>(idat.size());
  for (int64_t y = 0; y < height; ++y) {
    row[0] = 0;  // filter type None
    std::memcpy(row.data() + 1, pixels.data() + static_cast<size_t>(y) * w, w);
    z.next_in = row.data();
    z.avail_in = static_cast<uInt>(row.size());
    const int flush = y + 1 == height ? Z_FINISH : Z_NO_FLUSH;
    for (;;) {
      ret = deflate(&z, flush);
      CUDL_REQUIRE(ret == Z_OK || ret == Z_STREAM_END || ret == Z_BUF_ERROR,
                   path + ": zlib deflate failed: " + zError(ret));
      if (z.avail_out == 0) {  // a full IDAT chunk
        put_chunk(png, "IDAT", idat.data(), idat.size());
        z.next_out = idat.data();
        z.avail_out = static_cast<uInt>(idat.size());
      }
      if (flush == Z_FINISH ? ret == Z_STREAM_END : z.avail_in == 0) break;
    }
  }
  const size_t pending = idat.size() - z.avail_out;
  if (pending > 0) put_chunk(png, "IDAT", idat.data(), pending);
  put_chunk(png, "IEND", nullptr, 0);
  return png;
}

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

// Writes bytes to path + ".tmp", then renames it over path. The temporary file is removed on
// any failure, so path holds either its old content or the complete new one.
void write_file_atomically(const std::string& path, const Bytes& bytes) {
  const std::string tmp = path + ".tmp";
  errno = 0;
  std::unique_ptr<std::FILE, FileCloser> file(std::fopen(tmp.c_str(), "wb"));
  int err = errno;
  CUDL_REQUIRE(file != nullptr,
               path + ": cannot open '" + tmp + "' for writing: " + std::strerror(err));
  struct RemoveUnlessDone {
    const std::string& tmp;
    bool done = false;
    ~RemoveUnlessDone() {
      if (!done) std::remove(tmp.c_str());
    }
  } guard{tmp};

  errno = 0;
  const size_t wrote = std::fwrite(bytes.data(), 1, bytes.size(), file.get());
  err = errno;
  CUDL_REQUIRE(wrote == bytes.size(),
               path + ": writing '" + tmp + "' failed after " + std::to_string(wrote) + " of " +
                   std::to_string(bytes.size()) + " bytes: " + std::strerror(err));
  errno = 0;
  const int closed = std::fclose(file.release());
  err = errno;
  CUDL_REQUIRE(closed == 0, path + ": closing '" + tmp + "' failed: " + std::strerror(err));
  errno = 0;
  const int renamed = std::rename(tmp.c_str(), path.c_str());
  err = errno;
  CUDL_REQUIRE(renamed == 0,
               path + ": cannot rename '" + tmp + "' to it: " + std::strerror(err));
  guard.done = true;
}

// The smallest c with c·c ≥ n (n ≥ 1).
int64_t ceil_sqrt(int64_t n) {
  int64_t c = static_cast<int64_t>(std::sqrt(static_cast<double>(n)));
  while (c * c < n) ++c;
  while (c > 1 && (c - 1) * (c - 1) >= n) --c;
  return c;
}

}  // namespace

void write_png_gray(const std::string& path, int64_t width, int64_t height,
                    const std::vector<uint8_t>& pixels) {
  CUDL_REQUIRE(width > 0 && height > 0 && width <= kMaxPngSide && height <= kMaxPngSide,
               path + ": PNG width and height must be in 1.." + num(kMaxPngSide) + ", found " +
                   num(width) + "×" + num(height));
  CUDL_REQUIRE(static_cast<uint64_t>(width) * static_cast<uint64_t>(height) == pixels.size(),
               path + ": expected " + num(width * height) + " pixels (" + num(width) + "×" +
                   num(height) + "), found " + std::to_string(pixels.size()));
  write_file_atomically(path, encode_png_gray(path, width, height, pixels));
}

void save_filter_grid(const std::string& path, const std::vector<float>& weights, int64_t visible,
                      int64_t hidden, int64_t tile_height, int64_t tile_width,
                      int64_t max_filters) {
  CUDL_REQUIRE(visible > 0 && hidden > 0,
               path + ": filter grid needs visible > 0 and hidden > 0, found visible " +
                   num(visible) + ", hidden " + num(hidden));
  CUDL_REQUIRE(tile_height > 0 && tile_width > 0,
               path + ": filter grid needs tiles of at least 1×1, found " + num(tile_height) +
                   "×" + num(tile_width));
  CUDL_REQUIRE(max_filters > 0,
               path + ": filter grid needs max_filters > 0, found " + num(max_filters));
  // visible == tile_height·tile_width, and weights.size() == visible·hidden, without overflow.
  CUDL_REQUIRE(visible % tile_width == 0 && visible / tile_width == tile_height,
               path + ": filter tiles of " + num(tile_height) + "×" + num(tile_width) +
                   " expect visible = " + num(tile_height) + "·" + num(tile_width) +
                   (tile_height <= INT64_MAX / tile_width ? " = " + num(tile_height * tile_width)
                                                          : std::string()) +
                   ", found visible = " + num(visible));
  const uint64_t size = weights.size();
  CUDL_REQUIRE(size % static_cast<uint64_t>(visible) == 0 &&
                   size / static_cast<uint64_t>(visible) == static_cast<uint64_t>(hidden),
               path + ": expected a " + num(visible) + "×" + num(hidden) +
                   " weight matrix (visible × hidden), found " + std::to_string(size) +
                   " weights");

  const int64_t n = std::min(hidden, max_filters);
  const int64_t cols = ceil_sqrt(n);
  const int64_t rows = (n + cols - 1) / cols;
  const int64_t width = cols * tile_width + (cols - 1);
  const int64_t height = rows * tile_height + (rows - 1);
  CUDL_REQUIRE(width <= kMaxPngSide && height <= kMaxPngSide,
               path + ": a grid of " + num(rows) + "×" + num(cols) + " tiles of " +
                   num(tile_height) + "×" + num(tile_width) + " is " + num(width) + "×" +
                   num(height) + " pixels, above PNG's limit of " + num(kMaxPngSide));

  std::vector<uint8_t> pixels(static_cast<size_t>(width * height), kSeparator);
  for (int64_t h = 0; h < n; ++h) {
    // Column h of W: W[v·hidden + h] for v in 0..V−1. Min and max in double, so that
    // max − min cannot overflow even for floats near FLT_MAX.
    double lo = INFINITY, hi = -INFINITY;
    for (int64_t v = 0; v < visible; ++v) {
      const float w = weights[static_cast<size_t>(v * hidden + h)];
      CUDL_REQUIRE(std::isfinite(w), path + ": filter " + num(h) + " holds a non-finite weight (" +
                                         std::to_string(w) + " at visible unit " + num(v) + ")");
      lo = std::min(lo, static_cast<double>(w));
      hi = std::max(hi, static_cast<double>(w));
    }
    const double scale = hi > lo ? 255.0 / (hi - lo) : 0.0;
    const int64_t top = (h / cols) * (tile_height + 1);
    const int64_t left = (h % cols) * (tile_width + 1);
    for (int64_t v = 0; v < visible; ++v) {
      const double w = weights[static_cast<size_t>(v * hidden + h)];
      const int64_t y = top + v / tile_width, x = left + v % tile_width;
      pixels[static_cast<size_t>(y * width + x)] =
          hi > lo ? static_cast<uint8_t>(std::clamp(std::lround((w - lo) * scale), 0L, 255L))
                  : kMidGray;
    }
  }
  write_png_gray(path, width, height, pixels);
}

}  // namespace cudl

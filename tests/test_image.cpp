// PNG output: files are checked by a small decoder written here with zlib (signature, chunk
// order, CRC-32 of every chunk, IHDR fields, inflated scanlines with filter byte 0), so the
// pixels must round-trip exactly. Then the filter grid: its size, its separators, each tile
// scaled to its own min..max, and the error messages.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include "cudl/error.hpp"
#include "cudl/image.hpp"
#include "test_support.hpp"

namespace {

using cudl::testing::Bytes;
using cudl::testing::error_of;
using cudl::testing::TempDir;
using cudl::testing::uniform_values;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

struct DecodedPng {
  int64_t width = 0, height = 0;
  int bit_depth = 0, color_type = 0, compression = 0, filter = 0, interlace = 0;
  int idat_chunks = 0;
  Bytes pixels;  // height×width, filter bytes removed
};

Bytes read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open");
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

uint32_t be32(const Bytes& b, size_t at) {
  return (uint32_t{b[at]} << 24) | (uint32_t{b[at + 1]} << 16) | (uint32_t{b[at + 2]} << 8) |
         b[at + 3];
}

// Decodes an 8-bit grayscale, non-interlaced PNG whose scanlines all use filter 0, checking
// every structural rule on the way; throws std::runtime_error (a test failure) on any breach.
DecodedPng decode_png_gray(const std::string& path) {
  const Bytes file = read_bytes(path);
  const auto check = [&](bool ok, const std::string& what) {
    if (!ok) throw std::runtime_error(path + ": " + what);
  };
  const Bytes signature = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  check(file.size() >= 8 && Bytes(file.begin(), file.begin() + 8) == signature, "bad signature");

  DecodedPng png;
  Bytes zdata;
  bool seen_ihdr = false, seen_iend = false;
  size_t at = 8;
  while (at < file.size()) {
    check(!seen_iend, "data after IEND");
    check(at + 12 <= file.size(), "truncated chunk header");
    const uint32_t length = be32(file, at);
    check(at + 12 + length <= file.size(), "truncated chunk");
    const std::string type(file.begin() + static_cast<long>(at + 4),
                           file.begin() + static_cast<long>(at + 8));
    const uint8_t* data = file.data() + at + 8;
    const uint32_t crc = be32(file, at + 8 + length);
    check(crc == static_cast<uint32_t>(crc32(0L, file.data() + at + 4, 4 + length)),
          "bad CRC in chunk " + type);
    check(seen_ihdr || type == "IHDR", "first chunk is " + type + ", not IHDR");
    if (type == "IHDR") {
      check(!seen_ihdr && length == 13, "bad IHDR");
      seen_ihdr = true;
      png.width = be32(file, at + 8);
      png.height = be32(file, at + 12);
      png.bit_depth = data[8];
      png.color_type = data[9];
      png.compression = data[10];
      png.filter = data[11];
      png.interlace = data[12];
    } else if (type == "IDAT") {
      ++png.idat_chunks;
      zdata.insert(zdata.end(), data, data + length);
    } else if (type == "IEND") {
      check(length == 0, "IEND with data");
      seen_iend = true;
    } else {
      check(false, "unexpected chunk " + type);
    }
    at += 12 + length;
  }
  check(seen_iend, "no IEND");
  check(png.idat_chunks > 0, "no IDAT");

  const size_t stride = static_cast<size_t>(png.width) + 1;
  Bytes raw(stride * static_cast<size_t>(png.height) + 1);  // one spare byte catches excess data
  uLongf raw_size = raw.size();
  check(uncompress(raw.data(), &raw_size, zdata.data(), zdata.size()) == Z_OK, "bad zlib stream");
  check(raw_size == raw.size() - 1, "inflated to " + std::to_string(raw_size) + " bytes, expected " +
                                        std::to_string(raw.size() - 1));
  for (int64_t y = 0; y < png.height; ++y) {
    const size_t row = static_cast<size_t>(y) * stride;
    check(raw[row] == 0, "scanline " + std::to_string(y) + " has filter " + std::to_string(raw[row]));
    png.pixels.insert(png.pixels.end(), raw.begin() + static_cast<long>(row + 1),
                      raw.begin() + static_cast<long>(row + stride));
  }
  return png;
}

// The pixel at (row y, column x) of a decoded image.
int at(const DecodedPng& png, int64_t y, int64_t x) {
  return png.pixels.at(static_cast<size_t>(y * png.width + x));
}

// ---- write_png_gray ----

TEST(Png, TinyImageRoundTripsExactly) {
  TempDir dir;
  const std::string path = dir.str("tiny.png");
  const Bytes pixels = {0, 1, 127, 128, 254, 255};  // 3 wide, 2 high
  cudl::write_png_gray(path, 3, 2, pixels);

  const DecodedPng png = decode_png_gray(path);
  EXPECT_EQ(png.width, 3);
  EXPECT_EQ(png.height, 2);
  EXPECT_EQ(png.bit_depth, 8);
  EXPECT_EQ(png.color_type, 0);
  EXPECT_EQ(png.compression, 0);
  EXPECT_EQ(png.filter, 0);
  EXPECT_EQ(png.interlace, 0);
  EXPECT_EQ(png.idat_chunks, 1);
  EXPECT_THAT(png.pixels, ElementsAreArray(pixels));
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

TEST(Png, SinglePixelRoundTrips) {
  TempDir dir;
  const std::string path = dir.str("one.png");
  cudl::write_png_gray(path, 1, 1, {200});
  const DecodedPng png = decode_png_gray(path);
  EXPECT_EQ(png.width, 1);
  EXPECT_EQ(png.height, 1);
  EXPECT_THAT(png.pixels, ElementsAreArray(Bytes{200}));
}

TEST(Png, LargeNoisyImageSpansSeveralIdatChunksAndRoundTrips) {
  TempDir dir;
  const std::string path = dir.str("noise.png");
  const int64_t width = 613, height = 401;  // odd sizes; noise barely compresses: > 64 KiB
  const std::vector<float> u = uniform_values(3, width * height, 0.0f, 256.0f);
  Bytes pixels(u.size());
  for (size_t i = 0; i < u.size(); ++i) pixels[i] = static_cast<uint8_t>(std::min(u[i], 255.0f));
  cudl::write_png_gray(path, width, height, pixels);

  const DecodedPng png = decode_png_gray(path);
  EXPECT_EQ(png.width, width);
  EXPECT_EQ(png.height, height);
  EXPECT_GT(png.idat_chunks, 1);
  EXPECT_TRUE(png.pixels == pixels);
}

TEST(Png, OverwritesAnExistingImage) {
  TempDir dir;
  const std::string path = dir.write("old.png", Bytes(1000, 'x'));
  cudl::write_png_gray(path, 2, 1, {10, 20});
  EXPECT_THAT(decode_png_gray(path).pixels, ElementsAreArray(Bytes{10, 20}));
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

TEST(Png, BadSizesAreErrorsNamingTheFile) {
  TempDir dir;
  const std::string path = dir.str("bad.png");
  std::string msg = error_of([&] { cudl::write_png_gray(path, 0, 2, {}); });
  EXPECT_THAT(msg, HasSubstr(path));
  EXPECT_THAT(msg, HasSubstr("found 0×2"));
  msg = error_of([&] { cudl::write_png_gray(path, 2, -1, {}); });
  EXPECT_THAT(msg, HasSubstr("found 2×-1"));
  msg = error_of([&] { cudl::write_png_gray(path, int64_t{1} << 31, 1, {}); });
  EXPECT_THAT(msg, HasSubstr("1..2147483647"));
  msg = error_of([&] { cudl::write_png_gray(path, 3, 2, Bytes(5)); });
  EXPECT_THAT(msg, HasSubstr(path + ": expected 6 pixels (3×2), found 5"));
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

TEST(Png, UnwritablePathIsAnErrorNamingTheFile) {
  TempDir dir;
  const std::string path = dir.str("no/such/dir/out.png");
  const std::string msg = error_of([&] { cudl::write_png_gray(path, 1, 1, {0}); });
  EXPECT_THAT(msg, HasSubstr(path + ": cannot open '" + path + ".tmp' for writing"));
  EXPECT_THAT(msg, HasSubstr("No such file or directory"));
}

TEST(Png, FailedRenameLeavesTargetAndNoTemporary) {
  TempDir dir;
  const std::string path = dir.str("taken.png");
  std::filesystem::create_directories(std::filesystem::path(path) / "inside");  // not a file
  const std::string msg = error_of([&] { cudl::write_png_gray(path, 1, 1, {0}); });
  EXPECT_THAT(msg, HasSubstr(path + ": cannot rename '" + path + ".tmp' to it"));
  EXPECT_TRUE(std::filesystem::is_directory(std::filesystem::path(path) / "inside"));
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

// ---- save_filter_grid ----

// A V×H row-major weight matrix (W[v·H + h]) whose column h is filters[h].
std::vector<float> weights_of(const std::vector<std::vector<float>>& filters) {
  const size_t hidden = filters.size(), visible = filters[0].size();
  std::vector<float> w(visible * hidden);
  for (size_t h = 0; h < hidden; ++h)
    for (size_t v = 0; v < visible; ++v) w[v * hidden + h] = filters[h][v];
  return w;
}

// Four filters of 2 rows × 3 columns: a ramp, a constant, a negated ramp, and a wide-range one.
const std::vector<std::vector<float>> kFourFilters = {
    {-1.0f, 0.0f, 1.0f, 2.0f, 3.0f, 4.0f},
    {0.25f, 0.25f, 0.25f, 0.25f, 0.25f, 0.25f},
    {4.0f, 3.0f, 2.0f, 1.0f, 0.0f, -1.0f},
    {-3e38f, 3e38f, -3e38f, 3e38f, 3e38f, -3e38f},
};

TEST(FilterGrid, FourTwoByThreeFiltersMakeATwoByTwoGridWithSeparators) {
  TempDir dir;
  const std::string path = dir.str("grid.png");
  cudl::save_filter_grid(path, weights_of(kFourFilters), 6, 4, 2, 3);

  const DecodedPng png = decode_png_gray(path);
  EXPECT_EQ(png.width, 2 * 3 + 1);
  EXPECT_EQ(png.height, 2 * 2 + 1);
  EXPECT_EQ(png.bit_depth, 8);
  EXPECT_EQ(png.color_type, 0);
  for (int64_t y = 0; y < png.height; ++y) EXPECT_EQ(at(png, y, 3), 0) << "separator column, y " << y;
  for (int64_t x = 0; x < png.width; ++x) EXPECT_EQ(at(png, 2, x), 0) << "separator row, x " << x;
}

TEST(FilterGrid, EachTileIsScaledToItsOwnMinAndMax) {
  TempDir dir;
  const std::string path = dir.str("grid.png");
  cudl::save_filter_grid(path, weights_of(kFourFilters), 6, 4, 2, 3);
  const DecodedPng png = decode_png_gray(path);
  // Tile of filter h starts at row (h / 2)·3, column (h % 2)·4; pixel v at (v / 3, v % 3).
  const auto tile = [&](int h) {
    Bytes t;
    for (int v = 0; v < 6; ++v)
      t.push_back(static_cast<uint8_t>(at(png, (h / 2) * 3 + v / 3, (h % 2) * 4 + v % 3)));
    return t;
  };
  // (w − min)·255 / (max − min), rounded: min → 0, max → 255.
  EXPECT_THAT(tile(0), ElementsAreArray(Bytes{0, 51, 102, 153, 204, 255}));
  EXPECT_THAT(tile(1), ElementsAreArray(Bytes{128, 128, 128, 128, 128, 128}));  // constant
  EXPECT_THAT(tile(2), ElementsAreArray(Bytes{255, 204, 153, 102, 51, 0}));
  // max − min overflows float: the scaling must not.
  EXPECT_THAT(tile(3), ElementsAreArray(Bytes{0, 255, 0, 255, 255, 0}));
}

TEST(FilterGrid, ShowsAtMostMaxFiltersInANearSquareGrid) {
  TempDir dir;
  const std::string path = dir.str("grid.png");
  const int64_t visible = 4, hidden = 10;  // 2×2 tiles
  const std::vector<float> w = uniform_values(5, visible * hidden, -1.0f, 1.0f);

  cudl::save_filter_grid(path, w, visible, hidden, 2, 2, 5);  // 5 filters: 3 columns, 2 rows
  DecodedPng png = decode_png_gray(path);
  EXPECT_EQ(png.width, 3 * 2 + 2);
  EXPECT_EQ(png.height, 2 * 2 + 1);
  for (int64_t y = 3; y < 5; ++y)  // the unused sixth cell is black
    for (int64_t x = 6; x < 8; ++x) EXPECT_EQ(at(png, y, x), 0);

  cudl::save_filter_grid(path, w, visible, hidden, 2, 2);  // default 100: all 10, 4×3 cells
  png = decode_png_gray(path);
  EXPECT_EQ(png.width, 4 * 2 + 3);
  EXPECT_EQ(png.height, 3 * 2 + 2);

  cudl::save_filter_grid(path, w, visible, hidden, 2, 2, 1);  // one tile, no separators
  png = decode_png_gray(path);
  EXPECT_EQ(png.width, 2);
  EXPECT_EQ(png.height, 2);
}

TEST(FilterGrid, MismatchedVisibleSizeNamesExpectedAndFound) {
  TempDir dir;
  const std::string path = dir.str("grid.png");
  const std::vector<float> w(5 * 4, 0.5f);
  const std::string msg = error_of([&] { cudl::save_filter_grid(path, w, 5, 4, 2, 3); });
  EXPECT_THAT(msg, HasSubstr(path +
                             ": filter tiles of 2×3 expect visible = 2·3 = 6, found visible = 5"));
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(FilterGrid, MismatchedWeightCountIsAnError) {
  TempDir dir;
  const std::string path = dir.str("grid.png");
  const std::string msg =
      error_of([&] { cudl::save_filter_grid(path, std::vector<float>(23), 6, 4, 2, 3); });
  EXPECT_THAT(msg, HasSubstr(path + ": expected a 6×4 weight matrix (visible × hidden), found " +
                             "23 weights"));
}

TEST(FilterGrid, NonFiniteWeightIsAnErrorNamingTheFilter) {
  TempDir dir;
  const std::string path = dir.str("grid.png");
  std::vector<float> w = weights_of(kFourFilters);
  w[1 * 4 + 2] = NAN;  // filter 2, visible unit 1
  const std::string msg = error_of([&] { cudl::save_filter_grid(path, w, 6, 4, 2, 3); });
  EXPECT_THAT(msg, HasSubstr(path + ": filter 2 holds a non-finite weight"));
  EXPECT_THAT(msg, HasSubstr("at visible unit 1"));
}

TEST(FilterGrid, BadSizesAreErrors) {
  TempDir dir;
  const std::string path = dir.str("grid.png");
  const std::vector<float> w = weights_of(kFourFilters);
  EXPECT_THAT(error_of([&] { cudl::save_filter_grid(path, w, 6, 0, 2, 3); }),
              HasSubstr("found visible 6, hidden 0"));
  EXPECT_THAT(error_of([&] { cudl::save_filter_grid(path, w, 6, 4, 0, 3); }),
              HasSubstr("tiles of at least 1×1, found 0×3"));
  EXPECT_THAT(error_of([&] { cudl::save_filter_grid(path, w, 6, 4, 2, 3, 0); }),
              HasSubstr("max_filters > 0, found 0"));
}

TEST(FilterGrid, BadPathIsAnErrorNamingTheFile) {
  TempDir dir;
  const std::string path = dir.str("missing/grid.png");
  const std::string msg =
      error_of([&] { cudl::save_filter_grid(path, weights_of(kFourFilters), 6, 4, 2, 3); });
  EXPECT_THAT(msg, HasSubstr(path + ": cannot open '" + path + ".tmp' for writing"));
}

}  // namespace

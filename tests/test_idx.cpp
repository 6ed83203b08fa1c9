// The IDX reader: good files (plain and gzip) round trip; headers read alone; every kind of bad
// file is an Error whose message names the file and the problem; garbled files never crash it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "cudl/data.hpp"
#include "cudl/error.hpp"
#include "test_support.hpp"

namespace {

using cudl::testing::Bytes;
using cudl::testing::error_of;
using cudl::testing::gzip;
using cudl::testing::idx_images;
using cudl::testing::idx_labels;
using cudl::testing::shared_mnist_dir;
using cudl::testing::TempDir;
using cudl::testing::why_no_shared_mnist;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

Bytes counting_pixels(size_t n) {
  Bytes p(n);
  for (size_t i = 0; i < n; ++i) p[i] = static_cast<uint8_t>(i * 37 + 11);
  return p;
}

std::string images_error(const std::string& path) {
  return error_of([&] { cudl::read_idx_images(path); });
}

std::string labels_error(const std::string& path, int classes = 10) {
  return error_of([&] { cudl::read_idx_labels(path, classes); });
}

// The images_error of a file `name` in dir holding only a header of these dimensions.
std::string header_only_error(const TempDir& dir, const std::string& name, uint32_t count, uint32_t rows,
                              uint32_t cols) {
  return images_error(dir.write(name, idx_images(count, rows, cols, {})));
}

TEST(IdxImages, PlainFileRoundTripsValuesAndDims) {
  TempDir dir;
  const Bytes pixels = counting_pixels(5 * 4 * 3);
  const cudl::IdxImages im = cudl::read_idx_images(dir.write("im", idx_images(5, 4, 3, pixels)));
  EXPECT_EQ(im.count, 5);
  EXPECT_EQ(im.rows, 4);
  EXPECT_EQ(im.cols, 3);
  EXPECT_THAT(im.pixels, ElementsAreArray(pixels));
}

TEST(IdxImages, GzipIsDetectedByContentNotName) {
  TempDir dir;
  const Bytes file = idx_images(7, 6, 5, counting_pixels(7 * 6 * 5));
  const std::string gz_named_plain = dir.write("plain.gz", file);
  const std::string plain_named_gz = dir.write("compressed.idx", gzip(file));
  const cudl::IdxImages a = cudl::read_idx_images(gz_named_plain);
  const cudl::IdxImages b = cudl::read_idx_images(plain_named_gz);
  EXPECT_EQ(b.count, 7);
  EXPECT_EQ(b.rows, 6);
  EXPECT_EQ(b.cols, 5);
  EXPECT_EQ(a.pixels, b.pixels);
}

TEST(IdxImages, ConcatenatedGzipMembersReadAsOneFile) {
  TempDir dir;
  const Bytes file = idx_images(4, 8, 8, counting_pixels(4 * 8 * 8));
  Bytes two = gzip(Bytes(file.begin(), file.begin() + 100));
  const Bytes rest = gzip(Bytes(file.begin() + 100, file.end()));
  two.insert(two.end(), rest.begin(), rest.end());
  const cudl::IdxImages im = cudl::read_idx_images(dir.write("two.gz", two));
  EXPECT_EQ(im.pixels, Bytes(file.begin() + 16, file.end()));
}

TEST(IdxLabels, PlainAndGzipRoundTrip) {
  TempDir dir;
  const Bytes labels{7, 2, 1, 0, 4, 9};
  EXPECT_THAT(cudl::read_idx_labels(dir.write("l", idx_labels(labels)), 10),
              ElementsAreArray(labels));
  EXPECT_THAT(cudl::read_idx_labels(dir.write("l.gz", gzip(idx_labels(labels))), 10),
              ElementsAreArray(labels));
}

TEST(IdxHeader, ReadsTheSizesOfEitherKindWithoutThePayload) {
  TempDir dir;
  // Both files promise far more than they hold: the header alone is read, so both pass.
  const cudl::IdxHeader im =
      cudl::read_idx_header(dir.write("im.gz", gzip(idx_images(1000, 28, 27, counting_pixels(5)))));
  EXPECT_EQ(im.magic, cudl::kIdxImagesMagic);
  EXPECT_EQ(im.count, 1000);
  EXPECT_EQ(im.rows, 28);
  EXPECT_EQ(im.cols, 27);
  const cudl::IdxHeader lab = cudl::read_idx_header(dir.write("lab", idx_labels({1, 2}, 60000)));
  EXPECT_EQ(lab.magic, cudl::kIdxLabelsMagic);
  EXPECT_EQ(lab.count, 60000);
  EXPECT_EQ(lab.rows, 0);
  EXPECT_EQ(lab.cols, 0);
}

TEST(IdxHeader, RejectsWhatTheReadersReject) {
  TempDir dir;
  const auto header_error = [](const std::string& path) {
    return error_of([&] { cudl::read_idx_header(path); });
  };
  EXPECT_THAT(header_error(dir.write("text", Bytes{'h', 'e', 'l', 'l', 'o', '\n'})),
              HasSubstr("text: expected IDX magic 0x00000803 (images) or 0x00000801 (labels), "
                        "found 0x68656c6c (not an IDX file)"));
  EXPECT_THAT(header_error(dir.write("empty", {})), HasSubstr("found only 0 bytes"));
  EXPECT_THAT(header_error(dir.write("zero", idx_images(5, 0, 28, {}))),
              HasSubstr("zero: the header gives 5 images of 0×28: every dimension must be"));
  EXPECT_THAT(header_error(dir.write("huge", idx_labels({}, 0xffffffff))),
              HasSubstr("huge: the header gives 4294967295 labels: more than the 2147483648-byte"));
  Bytes cut = idx_images(1, 2, 2, {});
  cut.resize(9);
  EXPECT_THAT(header_error(dir.write("cut", cut)),
              HasSubstr("cut: truncated IDX header: expected 16 bytes, found 9"));
}

TEST(IdxErrors, MissingFileNamesFileAndCause) {
  TempDir dir;
  const std::string path = (dir.path() / "absent.gz").string();
  EXPECT_THAT(images_error(path), HasSubstr(path + ": cannot open: No such file or directory"));
  EXPECT_THAT(labels_error(path), HasSubstr(path + ": cannot open: No such file or directory"));
}

TEST(IdxErrors, DirectoryIsNotAFile) {
  TempDir dir;
  EXPECT_THAT(images_error(dir.path().string()), HasSubstr("Is a directory"));
}

TEST(IdxErrors, WrongMagicShowsExpectedAndFound) {
  TempDir dir;
  const std::string labels = dir.write("labels.gz", gzip(idx_labels({1, 2})));
  EXPECT_THAT(images_error(labels),
              HasSubstr(labels + ": expected IDX magic 0x00000803, found 0x00000801 "
                                 "(IDX data type 0x08, 1 dimension, a label file?)"));
  const std::string images = dir.write("images", idx_images(1, 1, 1, {0}));
  EXPECT_THAT(labels_error(images),
              HasSubstr(images + ": expected IDX magic 0x00000801, found 0x00000803 "
                                 "(IDX data type 0x08, 3 dimensions, an image file?)"));
  const std::string text = dir.write("text", Bytes{'h', 'e', 'l', 'l', 'o', '\n'});
  EXPECT_THAT(images_error(text),
              HasSubstr(": expected IDX magic 0x00000803, found 0x68656c6c (not an IDX file)"));
  const std::string twice = dir.write("twice.gz", gzip(gzip(idx_labels({1}))));
  EXPECT_THAT(labels_error(twice), HasSubstr("found 0x1f8b0800 (gzip data inside gzip"));
}

TEST(IdxErrors, ShortHeaderSaysHowShort) {
  TempDir dir;
  EXPECT_THAT(images_error(dir.write("empty", {})),
              HasSubstr("expected IDX magic 0x00000803, found only 0 bytes"));
  Bytes header = idx_images(1, 2, 2, {});
  header.resize(10);
  EXPECT_THAT(images_error(dir.write("short", header)),
              HasSubstr("short: truncated IDX header: expected 16 bytes, found 10"));
}

TEST(IdxErrors, ZeroDimensionIsRejected) {
  TempDir dir;
  EXPECT_THAT(header_only_error(dir, "a", 0, 28, 28),
              HasSubstr("a: the header gives 0 images of 28×28: every dimension must be at "
                        "least 1"));
  EXPECT_THAT(header_only_error(dir, "b", 5, 0, 28), HasSubstr("5 images of 0×28: every dimension"));
  EXPECT_THAT(header_only_error(dir, "c", 5, 28, 0), HasSubstr("5 images of 28×0: every dimension"));
  EXPECT_THAT(labels_error(dir.write("d", idx_labels({}))),
              HasSubstr("d: the header gives 0 labels: expected at least 1"));
}

TEST(IdxErrors, HugeDimensionsAreRejectedWithoutOverflow) {
  TempDir dir;
  // 2^32-1 cubed overflows 64 bits; 2^16·2^16·1 is 4 GiB; both exceed the 2 GiB cap.
  EXPECT_THAT(header_only_error(dir, "a", 0xffffffff, 0xffffffff, 0xffffffff),
              HasSubstr("a: the header gives 4294967295 images of 4294967295×4294967295: more "
                        "than the 2147483648-byte limit (corrupt header?)"));
  EXPECT_THAT(header_only_error(dir, "b", 1, 65536, 65536),
              HasSubstr("1 image of 65536×65536: more than the 2147483648-byte limit"));
  EXPECT_THAT(labels_error(dir.write("c", idx_labels({}, 0xffffffff))),
              HasSubstr("c: the header gives 4294967295 labels: more than the"));
  // Exactly at the cap the header is accepted, and the missing payload is found without
  // allocating the 2 GiB the header promises.
  EXPECT_THAT(images_error(dir.write("d", idx_images(1 << 21, 32, 32, counting_pixels(3)))),
              HasSubstr("d: truncated payload: the header promises 2097152 images of 32×32 = "
                        "2147483648 bytes, found 3"));
}

TEST(IdxErrors, TruncatedPayloadSaysExpectedAndFoundBytes) {
  TempDir dir;
  Bytes file = idx_images(10, 4, 4, counting_pixels(160));
  file.resize(file.size() - 7);
  EXPECT_THAT(images_error(dir.write("im", file)),
              HasSubstr("im: truncated payload: the header promises 10 images of 4×4 = 160 "
                        "bytes, found 153"));
  EXPECT_THAT(labels_error(dir.write("l", idx_labels({1, 2, 3}, 5))),
              HasSubstr("l: truncated payload: the header promises 5 labels = 5 bytes, found 3"));
}

TEST(IdxErrors, CutShortGzipSaysSo) {
  TempDir dir;
  Bytes gz = gzip(idx_images(10, 4, 4, counting_pixels(160)));
  Bytes cut(gz.begin(), gz.begin() + static_cast<long>(gz.size() / 2));
  EXPECT_THAT(images_error(dir.write("half.gz", cut)),
              HasSubstr("(the gzip stream is cut short: the file ends inside compressed data)"));
  // Only the 8-byte trailer (CRC-32, length) missing: the payload is whole, the file is not.
  gz.resize(gz.size() - 8);
  EXPECT_THAT(images_error(dir.write("notrailer.gz", gz)),
              HasSubstr("notrailer.gz: the gzip stream is cut short: the file ends inside "
                        "compressed data, after the complete payload"));
}

TEST(IdxErrors, TrailingDataIsRejected) {
  TempDir dir;
  Bytes file = idx_images(2, 2, 2, counting_pixels(8));
  file.insert(file.end(), {1, 2, 3});
  EXPECT_THAT(images_error(dir.write("im", file)),
              HasSubstr("im: 3 bytes of unexpected data after the 8-byte payload of 2 images "
                        "of 2×2"));
  EXPECT_THAT(images_error(dir.write("im.gz", gzip(file))),
              HasSubstr("3 bytes of unexpected data after the 8-byte payload"));
  EXPECT_THAT(labels_error(dir.write("l", idx_labels({1, 2, 3, 4}, 2))),
              HasSubstr("l: 2 bytes of unexpected data after the 2-byte payload of 2 labels"));
}

TEST(IdxErrors, GarbageAfterGzipStreamIsRejected) {
  TempDir dir;
  Bytes gz = gzip(idx_labels({1, 2, 3}));
  gz.insert(gz.end(), {'j', 'u', 'n', 'k'});
  EXPECT_THAT(labels_error(dir.write("l.gz", gz)),
              HasSubstr("l.gz: unexpected data after the end of the gzip stream"));
}

TEST(IdxErrors, CorruptGzipReportsZlibMessage) {
  TempDir dir;
  const Bytes gz = gzip(idx_images(3, 5, 5, counting_pixels(75)));
  Bytes bad_crc = gz;
  bad_crc[gz.size() - 8] ^= 0xff;  // first byte of the CRC-32 trailer
  EXPECT_THAT(images_error(dir.write("crc.gz", bad_crc)),
              HasSubstr("crc.gz: corrupt gzip stream: incorrect data check"));
  Bytes bad_len = gz;
  bad_len[gz.size() - 1] ^= 0x01;  // last byte of the length trailer
  EXPECT_THAT(images_error(dir.write("len.gz", bad_len)),
              HasSubstr("len.gz: corrupt gzip stream: incorrect length check"));
  Bytes bad_block = gz;
  bad_block[10] |= 0x06;  // first deflate block header: BTYPE 11 is reserved
  EXPECT_THAT(images_error(dir.write("block.gz", bad_block)),
              HasSubstr("block.gz: corrupt gzip stream: invalid block type"));
  Bytes bad_method = gz;
  bad_method[2] = 7;  // compression method other than deflate
  EXPECT_THAT(images_error(dir.write("method.gz", bad_method)),
              HasSubstr("method.gz: corrupt gzip stream: unknown compression method"));
}

TEST(IdxErrors, LabelOutOfRangeNamesIndexAndValue) {
  TempDir dir;
  const std::string path = dir.write("l", idx_labels({0, 9, 3, 10, 12}));
  EXPECT_THAT(labels_error(path, 10),
              HasSubstr(path + ": label 10 at index 3 is out of range: expected a class below 10"));
  EXPECT_THAT(cudl::read_idx_labels(path, 13), ElementsAre(0, 9, 3, 10, 12));
  EXPECT_THAT(labels_error(path, 0), HasSubstr("num_classes must be at least 1, got 0"));
}

// Every prefix of a valid file, and the file with each byte flipped in three ways, either
// reads (with consistent sizes) or throws cudl::Error: never a crash, never another exception.
TEST(IdxFuzz, TruncatedOrFlippedFilesThrowOnlyCudlError) {
  TempDir dir;
  const Bytes images = idx_images(12, 7, 5, counting_pixels(12 * 7 * 5));
  const Bytes labels = idx_labels({3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8});
  int errors = 0, reads = 0;
  auto check = [&](const Bytes& file, bool is_images) {
    const std::string path = dir.write("fuzz", file);
    try {
      if (is_images) {
        const cudl::IdxImages im = cudl::read_idx_images(path);
        ASSERT_EQ(im.pixels.size(), static_cast<size_t>(im.count * im.rows * im.cols));
      } else {
        ASSERT_LE(cudl::read_idx_labels(path, 10).size(), 0xffffffffu);
      }
      ++reads;
    } catch (const cudl::Error&) {
      ++errors;
    }
  };
  for (const bool is_images : {true, false}) {
    const Bytes& plain = is_images ? images : labels;
    for (const Bytes& file : {plain, gzip(plain)}) {
      for (size_t n = 0; n < file.size(); ++n) {
        check(Bytes(file.begin(), file.begin() + static_cast<long>(n)), is_images);
      }
      for (size_t i = 0; i < file.size(); ++i) {
        for (const uint8_t mask : {0x01, 0x80, 0xff}) {
          Bytes flipped = file;
          flipped[i] ^= mask;
          check(flipped, is_images);
        }
      }
    }
  }
  EXPECT_GT(errors, 1000);  // most damage is detected...
  EXPECT_GT(reads, 100);    // ...but a flipped pixel or label in a plain file is still valid
}

TEST(IdxRealData, MnistT10kHasTenThousandDigitsWithKnownFirstLabels) {
  if (const std::string why = why_no_shared_mnist(); !why.empty()) GTEST_SKIP() << why;
  const std::string dir = shared_mnist_dir();
  const cudl::IdxImages im = cudl::read_idx_images(dir + "/t10k-images-idx3-ubyte.gz");
  EXPECT_EQ(im.count, 10000);
  EXPECT_EQ(im.rows, 28);
  EXPECT_EQ(im.cols, 28);
  ASSERT_EQ(im.pixels.size(), 10000u * 28 * 28);
  EXPECT_EQ(im.pixels[0], 0);  // the corner of a centred digit is background
  const std::vector<uint8_t> labels = cudl::read_idx_labels(dir + "/t10k-labels-idx1-ubyte.gz", 10);
  ASSERT_EQ(labels.size(), 10000u);
  EXPECT_THAT(Bytes(labels.begin(), labels.begin() + 5), ElementsAre(7, 2, 1, 0, 4));
}

}  // namespace

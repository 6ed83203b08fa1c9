// The safetensors layer: files round trip (every dtype, scalars, empty tensors, metadata); writes
// are atomic (a failed write leaves the old file byte-identical and no temporary file); every kind
// of bad file is refused with a message naming the problem; a file laid out exactly as Python's
// safetensors writes it (unpadded header, no metadata) reads.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "cudl/error.hpp"
#include "io/safetensors.hpp"
#include "test_support.hpp"

namespace {

using cudl::io::DType;
using cudl::io::SafetensorsFile;
using cudl::io::TensorView;
using cudl::testing::Bytes;
using cudl::testing::error_of;
using cudl::testing::TempDir;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

Bytes slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::vector<std::string> listing(const TempDir& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir.path())) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// A safetensors file: little-endian header length, the header as given, then `data`.
Bytes st_file(const std::string& header, const Bytes& data) {
  Bytes b;
  for (int i = 0; i < 8; ++i) b.push_back(static_cast<uint8_t>(uint64_t{header.size()} >> (8 * i)));
  b.insert(b.end(), header.begin(), header.end());
  b.insert(b.end(), data.begin(), data.end());
  return b;
}
Bytes st_file(const std::string& header, size_t data_bytes) { return st_file(header, Bytes(data_bytes, 0)); }

std::string parse_error(const Bytes& b) {
  return error_of([&] { SafetensorsFile::parse(b.data(), b.size(), "buf.safetensors"); });
}
// The error of a file holding `header` and `data_bytes` zero bytes of data.
std::string header_error(const std::string& header, size_t data_bytes) {
  return parse_error(st_file(header, data_bytes));
}

template <class T>
std::vector<T> copy_out(const SafetensorsFile& f, const std::string& name) {
  std::vector<T> v(f.entry(name).bytes / sizeof(T));
  f.copy_to(name, v.data(), v.size() * sizeof(T));
  return v;
}

TEST(Safetensors, EveryDtypeAndShapeRoundTrips) {
  TempDir dir;
  const std::vector<float> f32 = {1.5f, -2.f, 3.25f, 0.f, 1e-30f, 7.f};
  const std::vector<double> f64 = {3.141592653589793, -1e300};
  const std::vector<int32_t> i32 = {-7, 2147483647, 0, -2147483647 - 1};
  const std::vector<int64_t> i64 = {-(int64_t{1} << 62), 5, 9};
  const std::vector<uint8_t> u8 = {1, 2, 255};  // odd size: the tensors after it are unaligned
  const std::vector<uint32_t> u32 = {4000000000u, 1u};
  const uint64_t scalar = 0xfedcba9876543210ull;
  const std::string path = dir.str("m.safetensors");
  cudl::io::write_safetensors(path,
                              {{"w", DType::kF32, {2, 3}, f32.data()},
                               {"d", DType::kF64, {2}, f64.data()},
                               {"i", DType::kI32, {2, 1, 2}, i32.data()},
                               {"l", DType::kI64, {3}, i64.data()},
                               {"bytes", DType::kU8, {3}, u8.data()},
                               {"empty", DType::kF32, {0, 4}, nullptr},
                               {"u", DType::kU32, {2}, u32.data()},
                               {"step", DType::kU64, {}, &scalar}},
                              {{"format", "1"}, {"note", "ünïcödé \"quoted\"\n"}, {"empty", ""}});
  const SafetensorsFile f = SafetensorsFile::read(path);
  EXPECT_EQ(f.source(), path);
  // Data order is the order given; the empty tensor sits between its neighbours.
  EXPECT_THAT(f.names(), ElementsAre("w", "d", "i", "l", "bytes", "empty", "u", "step"));
  EXPECT_EQ(f.entry("w").dtype, DType::kF32);
  EXPECT_THAT(f.entry("w").shape, ElementsAre(2, 3));
  EXPECT_THAT(f.entry("i").shape, ElementsAre(2, 1, 2));
  EXPECT_THAT(f.entry("empty").shape, ElementsAre(0, 4));
  EXPECT_EQ(f.entry("empty").bytes, 0u);
  EXPECT_TRUE(f.entry("step").shape.empty());
  EXPECT_EQ(f.entry("step").bytes, 8u);
  EXPECT_EQ(f.entry("u").offset, 24u + 16 + 16 + 24 + 3);
  EXPECT_EQ(copy_out<float>(f, "w"), f32);
  EXPECT_EQ(copy_out<double>(f, "d"), f64);
  EXPECT_EQ(copy_out<int32_t>(f, "i"), i32);
  EXPECT_EQ(copy_out<int64_t>(f, "l"), i64);
  EXPECT_EQ(copy_out<uint8_t>(f, "bytes"), u8);
  EXPECT_EQ(copy_out<uint32_t>(f, "u"), u32);
  EXPECT_EQ(copy_out<uint64_t>(f, "step"), std::vector<uint64_t>{scalar});
  EXPECT_TRUE(f.contains("empty"));
  EXPECT_FALSE(f.contains("missing"));
  EXPECT_EQ(f.metadata().at("format"), "1");
  EXPECT_EQ(f.metadata().at("note"), "ünïcödé \"quoted\"\n");
  EXPECT_EQ(f.metadata().at("empty"), "");
  EXPECT_EQ(f.metadata().size(), 4u);  // with cudl.crc32
}

TEST(Safetensors, HeaderIsPaddedSoDataStartsAtAMultipleOfEight) {
  TempDir dir;
  const float x = 1.f;
  for (const std::string name : {"a", "ab", "abc", "abcd", "abcde", "abcdef", "abcdefg", "abcdefgh"}) {
    cudl::io::write_safetensors(dir.str("p"), {{name, DType::kF32, {1}, &x}}, {});
    const Bytes b = slurp(dir.str("p"));
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | b[i];
    EXPECT_EQ(n % 8, 0u) << name;
    EXPECT_EQ(b.size(), 8 + n + 4) << name;
    EXPECT_EQ(b[8], '{');
    EXPECT_EQ(SafetensorsFile::read(dir.str("p")).entry(name).offset, 0u);
  }
}

TEST(Safetensors, CrcIsTheCrc32OfTheDataSectionInLowercaseHex) {
  TempDir dir;
  const std::vector<uint8_t> data = {9, 8, 7, 6, 5};
  cudl::io::write_safetensors(dir.str("c"), {{"x", DType::kU8, {5}, data.data()}}, {});
  const std::string crc = SafetensorsFile::read(dir.str("c")).metadata().at("cudl.crc32");
  char want[16];
  std::snprintf(want, sizeof want, "%08lx", crc32(crc32(0, nullptr, 0), data.data(), 5));
  EXPECT_EQ(crc, want);
}

TEST(Safetensors, AFileWithNoTensorsRoundTrips) {
  TempDir dir;
  cudl::io::write_safetensors(dir.str("e"), {}, {{"k", "v"}});
  const SafetensorsFile f = SafetensorsFile::read(dir.str("e"));
  EXPECT_TRUE(f.names().empty());
  EXPECT_EQ(f.metadata().at("k"), "v");
}

TEST(Safetensors, CrcMismatchAfterOneFlippedDataByte) {
  TempDir dir;
  const std::vector<float> x = {1, 2, 3, 4};
  cudl::io::write_safetensors(dir.str("f"), {{"x", DType::kF32, {4}, x.data()}}, {});
  Bytes b = slurp(dir.str("f"));
  b[b.size() - 3] ^= 0x10;
  EXPECT_THAT(error_of([&] { SafetensorsFile::read(dir.write("damaged", b)); }),
              AllOf(HasSubstr("damaged"), HasSubstr("CRC mismatch: file is damaged")));
}

// What Python's safetensors writes for {"b": float32 [2], "a": int64 [1]} without metadata: tensors
// sorted by dtype alignment then name, compact JSON, no padding (releases before 0.4) — so the data
// section starts at an odd offset and every tensor is unaligned in memory.
TEST(Safetensors, ReadsAFileLaidOutAsPythonWritesIt) {
  const std::string header =
      R"({"a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})";
  ASSERT_NE(header.size() % 8, 0u);
  Bytes data(16);
  const int64_t a = -42;
  const float b[2] = {0.5f, -8.f};
  std::memcpy(data.data(), &a, 8);
  std::memcpy(data.data() + 8, b, 8);
  const Bytes file = st_file(header, data);
  const SafetensorsFile f = SafetensorsFile::parse(file.data(), file.size(), "python.safetensors");
  EXPECT_THAT(f.names(), ElementsAre("a", "b"));
  EXPECT_TRUE(f.metadata().empty());
  EXPECT_EQ(copy_out<int64_t>(f, "a"), std::vector<int64_t>{-42});
  EXPECT_THAT(copy_out<float>(f, "b"), ElementsAre(0.5f, -8.f));
  float first = 0;
  std::memcpy(&first, f.data("b"), sizeof first);
  EXPECT_EQ(first, 0.5f);
}

// The example in the official crate's documentation, byte for byte.
TEST(Safetensors, ReadsTheOfficialDocumentationExample) {
  const std::string header = R"({"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}})";
  ASSERT_EQ(header.size(), 0x3cu);
  const Bytes file = st_file(header, 16);
  const SafetensorsFile f = SafetensorsFile::parse(file.data(), file.size(), "doc");
  EXPECT_THAT(copy_out<int32_t>(f, "test"), ElementsAre(0, 0, 0, 0));
}

TEST(Safetensors, AcceptsWhatTheOfficialReaderAccepts) {
  // Null metadata, extra keys in an entry, empty tensors sharing an offset, tensors listed out of
  // data order.
  const std::string header = R"({"y":{"dtype":"U8","shape":[1],"data_offsets":[2,3]},"__metadata__":null,)"
                             R"("z":{"dtype":"U8","shape":[2],"data_offsets":[0,2],"extra":[1]},)"
                             R"("e2":{"dtype":"F32","shape":[3,0],"data_offsets":[2,2]},)"
                             R"("e1":{"dtype":"F32","shape":[0],"data_offsets":[2,2]}})";
  const Bytes file = st_file(header, Bytes{1, 2, 3});
  const SafetensorsFile f = SafetensorsFile::parse(file.data(), file.size(), "ok");
  EXPECT_THAT(f.names(), ElementsAre("z", "e1", "e2", "y"));
  EXPECT_EQ(copy_out<uint8_t>(f, "y"), std::vector<uint8_t>{3});
}

TEST(Safetensors, LookupsNameTheTensorAndTheSizes) {
  const Bytes file = st_file(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8);
  const SafetensorsFile f = SafetensorsFile::parse(file.data(), file.size(), "lookup.st");
  EXPECT_THAT(error_of([&] { f.entry("y"); }), HasSubstr("no tensor named 'y' in lookup.st"));
  float one = 0;
  EXPECT_THAT(error_of([&] { f.copy_to("x", &one, sizeof one); }),
              AllOf(HasSubstr("'x' holds 8 bytes"), HasSubstr("destination 4")));
}

// ---- writing: refusals and atomicity ----

class SafetensorsWrite : public ::testing::Test {
 protected:
  void SetUp() override {
    cudl::io::write_safetensors(path_, {{"old", DType::kF32, {2}, old_.data()}}, {{"v", "1"}});
    before_ = slurp(path_);
  }
  // The old file is byte-identical and nothing else (no temporary file) is in the directory.
  void expect_untouched() {
    EXPECT_EQ(slurp(path_), before_);
    EXPECT_THAT(listing(dir_), ElementsAre("model.safetensors"));
  }
  std::string write_error(const std::vector<TensorView>& tensors, const std::map<std::string, std::string>& meta = {},
                          const std::string& path = "") {
    return error_of([&] { cudl::io::write_safetensors(path.empty() ? path_ : path, tensors, meta); });
  }

  TempDir dir_;
  std::string path_ = dir_.str("model.safetensors");
  std::vector<float> old_ = {1, 2}, x_ = {3, 4, 5};
  Bytes before_;
};

TEST_F(SafetensorsWrite, OverwritesAtomicallyLeavingNoTemporaryFile) {
  cudl::io::write_safetensors(path_, {{"new", DType::kF32, {3}, x_.data()}}, {});
  EXPECT_THAT(SafetensorsFile::read(path_).names(), ElementsAre("new"));
  EXPECT_THAT(listing(dir_), ElementsAre("model.safetensors"));
}

TEST_F(SafetensorsWrite, DuplicateNameIsRefusedBeforeWriting) {
  EXPECT_THAT(write_error({{"a", DType::kF32, {3}, x_.data()}, {"a", DType::kF32, {3}, x_.data()}}),
              AllOf(HasSubstr(path_), HasSubstr("tensor 1 'a': the name is used twice")));
  expect_untouched();
}

TEST_F(SafetensorsWrite, BadTensorsAndMetadataAreRefused) {
  EXPECT_THAT(write_error({{"", DType::kF32, {3}, x_.data()}}), HasSubstr("tensor 0 has an empty name"));
  EXPECT_THAT(write_error({{"__metadata__", DType::kF32, {3}, x_.data()}}), HasSubstr("reserved"));
  EXPECT_THAT(write_error({{"n", DType::kF32, {3, -1}, x_.data()}}), HasSubstr("dimension 1 is negative (-1)"));
  EXPECT_THAT(write_error({{"o", DType::kF64, {int64_t{1} << 40, int64_t{1} << 20}, x_.data()}}),
              HasSubstr("more than 2^63 bytes"));
  EXPECT_THAT(write_error({{"z", DType::kF32, {3}, nullptr}}), HasSubstr("data is null for 12 bytes"));
  EXPECT_THAT(write_error({}, {{"cudl.crc32", "00000000"}}), HasSubstr("cudl.crc32 is reserved"));
  EXPECT_THAT(write_error({{"bad\xff", DType::kF32, {3}, x_.data()}}), HasSubstr("not valid UTF-8"));
  EXPECT_THAT(write_error({}, {{"k", "bad\xc3"}}), HasSubstr("not valid UTF-8"));
  expect_untouched();
}

TEST_F(SafetensorsWrite, MissingDirectoryNamesThePathAndTheOsError) {
  const std::string missing = dir_.str("no/such/dir/model.safetensors");
  EXPECT_THAT(write_error({{"a", DType::kF32, {3}, x_.data()}}, {}, missing),
              AllOf(HasSubstr(missing), HasSubstr("No such file or directory")));
  expect_untouched();
}

// The temporary file is written, then the rename fails: it must be removed and the target kept.
TEST_F(SafetensorsWrite, FailedRenameRemovesTheTemporaryFile) {
  fs::create_directory(dir_.path() / "target");
  const std::string keep = dir_.write("target/keep", Bytes{1});
  EXPECT_THAT(write_error({{"a", DType::kF32, {3}, x_.data()}}, {}, dir_.str("target")),
              AllOf(HasSubstr("cannot rename"), HasSubstr("Is a directory")));
  EXPECT_EQ(slurp(keep), Bytes{1});
  fs::remove_all(dir_.path() / "target");
  expect_untouched();
}

TEST(SafetensorsRead, MissingFileAndDirectoryAreClearErrors) {
  TempDir dir;
  EXPECT_THAT(error_of([&] { SafetensorsFile::read(dir.str("absent.st")); }),
              AllOf(HasSubstr("absent.st: cannot open: No such file or directory")));
  EXPECT_THAT(error_of([&] { SafetensorsFile::read(dir.str()); }), HasSubstr("is a directory"));
}

// ---- validation: every malformed file is refused, naming the problem ----

TEST(SafetensorsValidation, FileShorterThanTheLengthField) {
  EXPECT_THAT(parse_error({1, 0, 0}), AllOf(HasSubstr("buf.safetensors: 3 bytes is too short")));
  EXPECT_THAT(parse_error({}), HasSubstr("0 bytes is too short"));
}

TEST(SafetensorsValidation, HeaderLengthBeyondTheFileOrTheCap) {
  Bytes b = st_file("{}", 0);
  b[0] = 100;
  EXPECT_THAT(parse_error(b), HasSubstr("header length 100 runs past the end of the file (2 bytes follow"));
  b[0] = 0;
  b[3] = 0x10;  // 256 MiB
  EXPECT_THAT(parse_error(b), HasSubstr("above the 16 MiB cap"));
  std::fill(b.begin(), b.begin() + 8, 0xff);  // 2^64 - 1
  EXPECT_THAT(parse_error(b), HasSubstr("above the 16 MiB cap"));
}

TEST(SafetensorsValidation, HeaderMustBeUtf8JsonObject) {
  EXPECT_THAT(header_error("{oops}", 0), HasSubstr("header is not valid UTF-8 JSON"));
  EXPECT_THAT(header_error("{\"a\xff\":1}", 0), HasSubstr("header is not valid UTF-8 JSON"));
  EXPECT_THAT(header_error("", 0), HasSubstr("header is not valid UTF-8 JSON"));
  EXPECT_THAT(header_error("{} x", 0), HasSubstr("header is not valid UTF-8 JSON"));
  EXPECT_THAT(header_error("[1, 2]", 0), HasSubstr("header must be a JSON object, found array"));
  EXPECT_THAT(header_error(R"({"a":{"dtype":"U8","shape":[[1]],"data_offsets":[0,1]}})", 1),
              HasSubstr("nests objects or arrays 4 deep"));
}

TEST(SafetensorsValidation, DuplicateKeysAnywhere) {
  const std::string t = R"({"dtype":"U8","shape":[1],"data_offsets":[0,1]})";
  EXPECT_THAT(header_error(R"({"a":)" + t + R"(,"a":)" + t + "}", 1),
              HasSubstr("the key 'a' twice in one object (a tensor named twice?)"));
  EXPECT_THAT(header_error(R"({"a":{"dtype":"U8","dtype":"U8","shape":[1],"data_offsets":[0,1]}})", 1),
              HasSubstr("the key 'dtype' twice"));
  EXPECT_THAT(header_error(R"({"__metadata__":{"k":"1","k":"2"}})", 0), HasSubstr("the key 'k' twice"));
}

TEST(SafetensorsValidation, EntriesNeedDtypeShapeAndOffsetsOfTheRightTypes) {
  EXPECT_THAT(header_error(R"({"a":3})", 0), HasSubstr("tensor 'a': expected an object with dtype"));
  EXPECT_THAT(header_error(R"({"a":{"shape":[1],"data_offsets":[0,1]}})", 1),
              HasSubstr("tensor 'a': missing \"dtype\""));
  EXPECT_THAT(header_error(R"({"a":{"dtype":"U8","data_offsets":[0,1]}})", 1), HasSubstr("missing \"shape\""));
  EXPECT_THAT(header_error(R"({"a":{"dtype":"U8","shape":[1]}})", 1), HasSubstr("missing \"data_offsets\""));
  EXPECT_THAT(header_error(R"({"a":{"dtype":4,"shape":[1],"data_offsets":[0,1]}})", 1),
              HasSubstr("dtype must be a string, found number"));
  EXPECT_THAT(header_error(R"({"a":{"dtype":"U8","shape":{},"data_offsets":[0,1]}})", 1),
              HasSubstr("shape must be an array of integers, found object"));
  EXPECT_THAT(header_error(R"({"a":{"dtype":"U8","shape":[2.5],"data_offsets":[0,1]}})", 1),
              HasSubstr("dimension 0 must be a non-negative integer, found 2.5"));
  EXPECT_THAT(header_error(R"({"a":{"dtype":"U8","shape":["1"],"data_offsets":[0,1]}})", 1),
              HasSubstr("found the string '1'"));
  for (const char* offsets : {"[0]", "[0,1,2]", "\"0-1\"", "[0,-1]", "[0.0,1]"})
    EXPECT_THAT(header_error(std::string(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":)") + offsets + "}}", 1),
                HasSubstr("data_offsets must be [begin, end], two non-negative integers"))
        << offsets;
}

TEST(SafetensorsValidation, UnknownDtypeIsNamed) {
  EXPECT_THAT(header_error(R"({"w":{"dtype":"F16","shape":[1],"data_offsets":[0,2]}})", 2),
              HasSubstr("tensor 'w': unknown dtype 'F16' (cudl reads F32, F64, I32, I64, U8, U32, U64)"));
}

TEST(SafetensorsValidation, NegativeOrOverflowingShapes) {
  EXPECT_THAT(header_error(R"({"a":{"dtype":"U8","shape":[2,-3],"data_offsets":[0,0]}})", 0),
              HasSubstr("dimension 1 is negative (-3)"));
  EXPECT_THAT(header_error(R"({"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,0]}})", 0),
              HasSubstr("holds more than 2^63 bytes"));
  // Overflow midway is refused even though a later 0 makes the product 0, as officially.
  EXPECT_THAT(header_error(R"({"a":{"dtype":"U8","shape":[4294967296,4294967296,0],"data_offsets":[0,0]}})", 0),
              HasSubstr("holds more than 2^63 bytes"));
  EXPECT_THAT(header_error(R"({"a":{"dtype":"U8","shape":[18446744073709551615],"data_offsets":[0,0]}})", 0),
              HasSubstr("dimension 0 (18446744073709551615) is beyond int64"));
}

TEST(SafetensorsValidation, ByteRangesMustFitTheShapeAndTheFile) {
  EXPECT_THAT(header_error(R"({"a":{"dtype":"U8","shape":[0],"data_offsets":[4,2]}})", 4),
              HasSubstr("data_offsets [4, 2] end before they begin"));
  EXPECT_THAT(header_error(R"({"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]}})", 4),
              HasSubstr("data_offsets [0, 8] reach beyond the data section (4 bytes)"));
  EXPECT_THAT(header_error(R"({"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}})", 20),
              HasSubstr("shape [2, 3] of F32 needs 24 bytes, but data_offsets [0, 20] hold 20"));
}

TEST(SafetensorsValidation, RangesMustTileTheDataSection) {
  EXPECT_THAT(header_error(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                           R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                           12),
              HasSubstr("tensors 'a' and 'b' overlap"));
  EXPECT_THAT(header_error(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                           R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                           12),
              HasSubstr("bytes [4, 8) of the data section belong to no tensor (a hole before 'b'"));
  EXPECT_THAT(header_error(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8),
              HasSubstr("bytes [0, 4) of the data section belong to no tensor"));
  EXPECT_THAT(header_error(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 7),
              HasSubstr("3 bytes after the last tensor belong to none"));
  EXPECT_THAT(header_error("{}", 1), HasSubstr("1 bytes after the last tensor"));
}

TEST(SafetensorsValidation, MetadataMustMapStringsToStrings) {
  EXPECT_THAT(header_error(R"({"__metadata__":["a"]})", 0),
              HasSubstr("__metadata__ must be an object of strings, found array"));
  EXPECT_THAT(header_error(R"({"__metadata__":{"epoch":3}})", 0),
              HasSubstr("__metadata__ must map strings to strings; 'epoch' holds number"));
}

TEST(SafetensorsValidation, CrcMustBeEightHexDigits) {
  EXPECT_THAT(header_error(R"({"__metadata__":{"cudl.crc32":"12345"}})", 0),
              HasSubstr("cudl.crc32 must be 8 hex digits, found '12345'"));
  EXPECT_THAT(header_error(R"({"__metadata__":{"cudl.crc32":"0000000g"}})", 0), HasSubstr("8 hex digits"));
  EXPECT_THAT(header_error(R"({"__metadata__":{"cudl.crc32":"12345678"}})", 0), HasSubstr("CRC mismatch"));
  // The CRC-32 of no bytes is 0.
  const Bytes empty = st_file(R"({"__metadata__":{"cudl.crc32":"00000000"}})", 0);
  EXPECT_NO_THROW(SafetensorsFile::parse(empty.data(), empty.size(), "empty"));
}

TEST(SafetensorsValidation, MessagesQuoteHostileNamesShortly) {
  const std::string name(10000, 'n');
  const std::string message = header_error("{\"" + name + "\":3}", 0);
  EXPECT_THAT(message, HasSubstr("… (10000 bytes)"));
  EXPECT_LT(message.size(), 300u);
  EXPECT_THAT(header_error(R"({"a\u0001":3})", 0), HasSubstr("'a\\x01'"));
}

}  // namespace

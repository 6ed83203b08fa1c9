#pragma once
// The safetensors file format (https://huggingface.co/docs/safetensors): an 8-byte little-endian
// header length N, N bytes of UTF-8 JSON naming each tensor's dtype, shape and byte range
// [begin, end) within the data section, then the data section. Python's `safetensors` package (or
// a few lines of numpy) reads what we write. This is the format layer only: which tensors a
// checkpoint holds and what its metadata means live above it. Internal: not a public header, so
// the JSON library stays out of users' builds.
//
// Rules we hold written files to (and read files by), as the official implementation does:
// the tensors cover the data section exactly (no holes, no overlaps, no trailing bytes), shapes
// and dtypes agree with byte ranges, "__metadata__" maps strings to strings. Ours add metadata
// "cudl.crc32", the CRC-32 of the data section, checked on reading when present.
// Data is stored in the host's byte order, which must be little-endian (checked at compile time).
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace cudl::io {

enum class DType { kF32, kF64, kI32, kI64, kU8, kU32, kU64 };

// The safetensors name of a dtype ("F32", ...) and its size in bytes.
const char* dtype_name(DType dtype);
size_t dtype_size(DType dtype);

// The metadata key the writer adds: 8 lowercase hex digits, the CRC-32 (zlib's) of the data
// section. Reserved: passing it to write_safetensors is an error.
inline constexpr const char* kCrcKey = "cudl.crc32";

// Headers longer than this are refused on reading (and never written): 16 MiB. The official
// reader allows 100 MB, but parsed JSON takes ~20× its text, so a hostile 100 MB header would
// cost ~2 GB; a checkpoint's header is kilobytes, and 16 MiB still lists ~100,000 tensors.
inline constexpr uint64_t kMaxHeaderBytes = uint64_t{16} << 20;

// A tensor to write: `data` points to product(shape)·dtype_size(dtype) bytes of host memory,
// row-major (may be null when that is 0). shape {} is a scalar (one element).
struct TensorView {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const void* data = nullptr;
};

// Writes `tensors` (data in the given order, unpadded) and `metadata` (under "__metadata__",
// plus kCrcKey) to `path`, atomically: the file is written to a temporary file in the same
// directory (".<name>.tmp-<pid>-<random>"), fsync'ed, renamed over `path`, and the directory
// fsync'ed. The JSON header is padded with spaces so the data section starts at a multiple of 8.
// Throws cudl::Error naming the path and the problem (the OS error for I/O failures): names
// empty, duplicated or "__metadata__"; a negative dimension; a size that overflows; metadata
// holding kCrcKey; strings that are not UTF-8; any failure to create, write, sync or rename.
// Until the rename, a failure removes the temporary file and leaves an existing `path` as it
// was; a failure to sync the directory after the rename is reported although `path` is new.
void write_safetensors(const std::string& path, const std::vector<TensorView>& tensors,
                       const std::map<std::string, std::string>& metadata);

// A whole safetensors file, read into memory and validated.
class SafetensorsFile {
 public:
  // A tensor's place in the file. offset is from the start of the data section.
  struct Entry {
    DType dtype = DType::kF32;
    std::vector<int64_t> shape;
    size_t offset = 0, bytes = 0;
  };

  // Reads and validates the file at `path`. Throws cudl::Error naming the path and the problem:
  // cannot open or read, not a regular file, or any of parse()'s checks.
  static SafetensorsFile read(const std::string& path);

  // The same checks on `size` bytes in memory (copied); `what` names them in messages. Refuses:
  // fewer than 8 bytes; a header length past the end or above kMaxHeaderBytes; a header that is
  // not UTF-8 JSON, not an object, nested deeper than a header can be, or repeats a key in any
  // object; an entry without dtype, shape or data_offsets or with a wrong JSON type; an unknown
  // dtype; a negative dimension; an element count × dtype size beyond int64; a byte range that
  // is not [begin, end] with begin ≤ end ≤ the data size or whose length disagrees with the
  // shape; ranges that overlap, leave a hole, or leave bytes after the last tensor;
  // "__metadata__" not an object of strings; kCrcKey not 8 hex digits or not the data's CRC.
  // Entries may carry other keys, which are ignored (as the official reader does).
  static SafetensorsFile parse(const uint8_t* bytes, size_t size, const std::string& what);

  // What was read (the path, or parse()'s `what`), for callers' messages.
  const std::string& source() const { return what_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // The tensor names in data-offset order (by begin, then end, then name).
  const std::vector<std::string>& names() const { return names_; }
  bool contains(const std::string& name) const { return entries_.count(name) != 0; }
  // Throws cudl::Error "no tensor named X in <source>".
  const Entry& entry(const std::string& name) const;

  // The tensor's bytes inside the held file. Not necessarily aligned for its dtype (a file
  // whose header length is not a multiple of 8, or an earlier tensor of odd size, moves it):
  // read it with memcpy, or use copy_to.
  const void* data(const std::string& name) const;
  // Copies the tensor's bytes to dst, which must hold exactly entry(name).bytes bytes (else an
  // Error naming the tensor and both sizes: a mismatch means the caller expects another shape).
  void copy_to(const std::string& name, void* dst, size_t dst_bytes) const;

 private:
  static SafetensorsFile from_bytes(std::vector<uint8_t> bytes, const std::string& what);

  std::string what_;
  std::vector<uint8_t> bytes_;  // the whole file
  size_t data_start_ = 0;       // 8 + header length
  std::map<std::string, std::string> metadata_;
  std::map<std::string, Entry> entries_;
  std::vector<std::string> names_;
};

}  // namespace cudl::io

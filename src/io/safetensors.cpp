// The safetensors format layer: an atomic writer and a reader that validates everything before it
// returns (see safetensors.hpp). A file is untrusted input: every count is checked against the
// bytes actually present before anything is allocated from it, so a damaged or hostile file gives
// a cudl::Error naming the problem, never a crash or a huge allocation (tests/fuzz checks this).
#include "io/safetensors.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <tuple>
#include <unordered_set>
#include <utility>

#include "cudl/error.hpp"

namespace cudl::io {
namespace {

// Tensor bytes go to and from disk as they lie in memory; safetensors is little-endian.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors data is little-endian");

using Json = nlohmann::json;

constexpr const char* kMetadataKey = "__metadata__";

struct DTypeInfo {
  DType dtype;
  const char* name;
  size_t size;
};
constexpr DTypeInfo kDTypes[] = {{DType::kF32, "F32", 4}, {DType::kF64, "F64", 8}, {DType::kI32, "I32", 4},
                                 {DType::kI64, "I64", 8}, {DType::kU8, "U8", 1},   {DType::kU32, "U32", 4},
                                 {DType::kU64, "U64", 8}};

std::string num(uint64_t v) { return std::to_string(v); }

// A name or value from the file, quoted for a message: control bytes escaped, and cut after 64
// bytes (at a character boundary) so that a hostile 100 MB key cannot make a 100 MB message.
std::string quote(const std::string& s) {
  constexpr size_t kShown = 64;
  size_t shown = std::min(s.size(), kShown);
  while (shown < s.size() && shown > 0 && (static_cast<uint8_t>(s[shown]) & 0xc0) == 0x80) --shown;
  std::string out = "'";
  for (size_t i = 0; i < shown; ++i) {
    const auto c = static_cast<uint8_t>(s[i]);
    if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  out += "'";
  if (shown < s.size()) out += "… (" + num(s.size()) + " bytes)";
  return out;
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size() && i < 8; ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  if (shape.size() > 8) out += ", … (" + num(shape.size()) + " dimensions)";
  return out + "]";
}

std::string hex8(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%08x", v);
  return buf;
}

// zlib's crc32 takes a uInt length: feed big buffers in pieces.
uLong crc_update(uLong crc, const void* data, size_t bytes) {
  auto p = static_cast<const Bytef*>(data);
  while (bytes > 0) {
    const auto step = static_cast<uInt>(std::min<size_t>(bytes, uInt{1} << 30));
    crc = crc32(crc, p, step);
    p += step;
    bytes -= step;
  }
  return crc;
}

// The byte size of a tensor, or why it has none: "" and *bytes set, else the problem.
std::string size_problem(const std::vector<int64_t>& shape, DType dtype, int64_t* bytes) {
  int64_t n = static_cast<int64_t>(dtype_size(dtype));
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] < 0) return "dimension " + num(d) + " is negative (" + std::to_string(shape[d]) + ")";
    // Checked dimension by dimension, as the official reader does: a shape whose product
    // overflows midway is refused even when a later dimension is 0.
    if (__builtin_mul_overflow(n, shape[d], &n))
      return "shape " + shape_text(shape) + " of " + dtype_name(dtype) + " holds more than 2^63 bytes";
  }
  *bytes = n;
  return "";
}

// A file descriptor closed on scope exit (errors from close are checked where they matter).
struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

// CUDL_REQUIRE for a system call: the message ends with the OS error, read from errno at once
// (building the message may change errno).
#define CUDL_REQUIRE_OS(cond, msg)                                                                     \
  do {                                                                                                 \
    if (!(cond)) {                                                                                     \
      const int os_errno = errno;                                                                      \
      ::cudl::detail::fail(__FILE__, __LINE__, (msg) + (": " + std::string(std::strerror(os_errno)))); \
    }                                                                                                  \
  } while (0)

// The temporary file of an atomic write. Until commit() succeeds, the destructor removes it, so
// that an exception anywhere leaves no partial file and the target as it was.
class AtomicFile {
 public:
  explicit AtomicFile(const std::string& path) : path_(path) {
    const std::filesystem::path p(path);
    CUDL_REQUIRE(p.has_filename(), path + ": cannot write: the path names a directory, not a file");
    dir_ = p.has_parent_path() ? p.parent_path().string() : ".";
    const std::string prefix = "." + p.filename().string() + ".tmp-" + num(getpid()) + "-";
    std::random_device random_bits;
    for (int attempt = 0; fd_ < 0; ++attempt) {
      tmp_ = (std::filesystem::path(dir_) / (prefix + hex8(random_bits()))).string();
      fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
      // EEXIST: a name collision (or a leftover of a crashed writer): draw another name.
      CUDL_REQUIRE_OS(fd_ >= 0 || (errno == EEXIST && attempt < 8),
                      path + ": cannot create the temporary file " + tmp_);
    }
  }
  ~AtomicFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(tmp_.c_str());
  }
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t bytes) {
    auto p = static_cast<const char*>(data);
    while (bytes > 0) {
      const ssize_t n = ::write(fd_, p, std::min<size_t>(bytes, size_t{1} << 30));
      if (n < 0 && errno == EINTR) continue;
      if (n == 0) errno = EIO;  // no progress and no error: not expected of a regular file
      CUDL_REQUIRE_OS(n > 0, path_ + ": writing " + tmp_ + " failed");
      p += n;
      bytes -= static_cast<size_t>(n);
    }
  }

  // Makes the data durable, then puts it under the final name. A raw descriptor has no user-space
  // buffer, so fsync alone (no fflush) reaches the disk.
  void commit() {
    CUDL_REQUIRE_OS(::fsync(fd_) == 0, path_ + ": fsync of " + tmp_ + " failed");
    const int fd = fd_;
    fd_ = -1;
    // close can report a deferred write error (NFS): a file that failed it must not be renamed.
    CUDL_REQUIRE_OS(::close(fd) == 0, path_ + ": closing " + tmp_ + " failed");
    CUDL_REQUIRE_OS(::rename(tmp_.c_str(), path_.c_str()) == 0, path_ + ": cannot rename " + tmp_ + " to it");
    committed_ = true;
    // The rename is durable only once the directory entry is: sync the directory. EINVAL: the
    // file system cannot sync directories, and there is nothing more to do.
    const Fd dir(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    CUDL_REQUIRE_OS(dir.fd >= 0, path_ + ": written, but cannot open its directory " + dir_ + " to sync it");
    CUDL_REQUIRE_OS(::fsync(dir.fd) == 0 || errno == EINVAL,
                    path_ + ": written, but fsync of its directory " + dir_ + " failed");
  }

 private:
  std::string path_, dir_, tmp_;
  int fd_ = -1;
  bool committed_ = false;
};

// Parses the header, refusing duplicate keys (nlohmann keeps the last silently; a file that names
// a tensor twice is ambiguous) and nesting deeper than a header's own: depth 0 is the top object,
// 1 a tensor entry or __metadata__, 2 a shape or data_offsets array, whose elements are numbers.
Json parse_header(const uint8_t* text, size_t size, const std::string& what) {
  std::vector<std::unordered_set<std::string>> keys;  // one set per open object or array
  const auto watch = [&](int depth, Json::parse_event_t event, Json& parsed) {
    switch (event) {
      case Json::parse_event_t::object_start:
      case Json::parse_event_t::array_start:
        CUDL_REQUIRE(depth <= 2, what + ": header nests objects or arrays " + num(depth + 1) +
                                     " deep; a safetensors header has at most 3 levels");
        keys.emplace_back();
        break;
      case Json::parse_event_t::object_end:
      case Json::parse_event_t::array_end:
        if (!keys.empty()) keys.pop_back();
        break;
      case Json::parse_event_t::key: {
        const auto& key = parsed.get_ref<const std::string&>();
        CUDL_REQUIRE(keys.empty() || keys.back().insert(key).second,
                     what + ": header has the key " + quote(key) + " twice in one object" +
                         (depth == 1 ? " (a tensor named twice?)" : ""));
        break;
      }
      case Json::parse_event_t::value:
        break;
    }
    return true;
  };
  try {
    return Json::parse(text, text + size, watch);
  } catch (const Json::exception& e) {
    std::string why = e.what();
    const size_t tag = why.find("] ");  // drop nlohmann's "[json.exception.parse_error.101] "
    if (tag != std::string::npos) why = why.substr(tag + 2);
    if (why.size() > 200) why = why.substr(0, 200) + "…";
    detail::fail(__FILE__, __LINE__, what + ": header is not valid UTF-8 JSON: " + why);
  }
}

// A JSON value for a message: numbers, booleans and null as written, strings quoted (and cut).
std::string describe(const Json& v) {
  if (v.is_string()) return "the string " + quote(v.get_ref<const std::string&>());
  return v.is_primitive() ? v.dump() : "an " + std::string(v.type_name());
}

// Whether v is a non-negative JSON integer (nlohmann stores those, and only those, as unsigned).
bool as_count(const Json& v, uint64_t* out) {
  if (!v.is_number_unsigned()) return false;  // negative, fractional, or not a number
  *out = v.get<uint64_t>();
  return true;
}

SafetensorsFile::Entry read_entry(const std::string& where, const Json& v, uint64_t data_size) {
  CUDL_REQUIRE(v.is_object(),
               where + ": expected an object with dtype, shape and data_offsets, found " + std::string(v.type_name()));
  for (const char* field : {"dtype", "shape", "data_offsets"})
    CUDL_REQUIRE(v.contains(field), where + ": missing \"" + field + "\"");
  SafetensorsFile::Entry e;

  const Json& dtype = v["dtype"];
  CUDL_REQUIRE(dtype.is_string(), where + ": dtype must be a string, found " + std::string(dtype.type_name()));
  const auto& name = dtype.get_ref<const std::string&>();
  const auto* info =
      std::find_if(std::begin(kDTypes), std::end(kDTypes), [&](const DTypeInfo& d) { return name == d.name; });
  CUDL_REQUIRE(info != std::end(kDTypes),
               where + ": unknown dtype " + quote(name) + " (cudl reads F32, F64, I32, I64, U8, U32, U64)");
  e.dtype = info->dtype;

  const Json& shape = v["shape"];
  CUDL_REQUIRE(shape.is_array(),
               where + ": shape must be an array of integers, found " + std::string(shape.type_name()));
  e.shape.reserve(shape.size());  // elements already parsed: bounded by the header's size
  for (size_t d = 0; d < shape.size(); ++d) {
    const Json& dim = shape[d];
    CUDL_REQUIRE(!dim.is_number_integer() || dim.is_number_unsigned() || dim.get<int64_t>() >= 0,
                 where + ": dimension " + num(d) + " is negative (" + describe(dim) + ")");
    uint64_t n = 0;
    CUDL_REQUIRE(as_count(dim, &n),
                 where + ": dimension " + num(d) + " must be a non-negative integer, found " + describe(dim));
    CUDL_REQUIRE(n <= uint64_t{std::numeric_limits<int64_t>::max()},
                 where + ": dimension " + num(d) + " (" + num(n) + ") is beyond int64");
    e.shape.push_back(static_cast<int64_t>(n));
  }
  int64_t bytes = 0;
  const std::string problem = size_problem(e.shape, e.dtype, &bytes);
  CUDL_REQUIRE(problem.empty(), where + ": " + problem);

  const Json& range = v["data_offsets"];
  uint64_t begin = 0, end = 0;
  CUDL_REQUIRE(range.is_array() && range.size() == 2 && as_count(range[0], &begin) && as_count(range[1], &end),
               where + ": data_offsets must be [begin, end], two non-negative integers");
  CUDL_REQUIRE(begin <= end, where + ": data_offsets [" + num(begin) + ", " + num(end) + "] end before they begin");
  CUDL_REQUIRE(end <= data_size, where + ": data_offsets [" + num(begin) + ", " + num(end) +
                                     "] reach beyond the data section (" + num(data_size) + " bytes)");
  CUDL_REQUIRE(end - begin == static_cast<uint64_t>(bytes),
               where + ": shape " + shape_text(e.shape) + " of " + name + " needs " + num(bytes) +
                   " bytes, but data_offsets [" + num(begin) + ", " + num(end) + "] hold " + num(end - begin));
  e.offset = static_cast<size_t>(begin);  // ≤ data_size, which is in memory
  e.bytes = static_cast<size_t>(bytes);
  return e;
}

std::map<std::string, std::string> read_metadata(const std::string& what, const Json& v) {
  std::map<std::string, std::string> out;
  if (v.is_null()) return out;  // serde (the official reader) takes null as "no metadata"
  CUDL_REQUIRE(v.is_object(),
               what + ": __metadata__ must be an object of strings, found " + std::string(v.type_name()));
  for (auto it = v.begin(); it != v.end(); ++it) {
    CUDL_REQUIRE(it->is_string(), what + ": __metadata__ must map strings to strings; " + quote(it.key()) + " holds " +
                                      std::string(it->type_name()));
    out.emplace(it.key(), it->get<std::string>());
  }
  return out;
}

// Checks kCrcKey, when present, against the data section.
void check_crc(const std::string& what, const std::map<std::string, std::string>& metadata, const uint8_t* data,
               size_t size) {
  const auto it = metadata.find(kCrcKey);
  if (it == metadata.end()) return;  // a file from another writer
  const std::string& text = it->second;
  const auto hex = [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; };
  CUDL_REQUIRE(text.size() == 8 && std::all_of(text.begin(), text.end(), hex),
               what + ": metadata " + kCrcKey + " must be 8 hex digits, found " + quote(text));
  const auto expected = static_cast<uint32_t>(std::stoul(text, nullptr, 16));
  const auto found = static_cast<uint32_t>(crc_update(crc32(0, nullptr, 0), data, size));
  CUDL_REQUIRE(found == expected, what + ": CRC mismatch: file is damaged (" + kCrcKey + " says " + hex8(expected) +
                                      ", the data section's CRC-32 is " + hex8(found) + ")");
}

}  // namespace

const char* dtype_name(DType dtype) {
  for (const auto& d : kDTypes)
    if (d.dtype == dtype) return d.name;
  throw Error("cudl::io::dtype_name: invalid DType " + std::to_string(static_cast<int>(dtype)));
}

size_t dtype_size(DType dtype) {
  for (const auto& d : kDTypes)
    if (d.dtype == dtype) return d.size;
  throw Error("cudl::io::dtype_size: invalid DType " + std::to_string(static_cast<int>(dtype)));
}

void write_safetensors(const std::string& path, const std::vector<TensorView>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  CUDL_REQUIRE(metadata.count(kCrcKey) == 0,
               path + ": metadata key " + kCrcKey + " is reserved: the writer computes it");
  // Everything is checked, and the header built, before the temporary file exists.
  nlohmann::ordered_json entries = nlohmann::ordered_json::object();
  std::set<std::string> seen;
  std::vector<size_t> sizes;
  uint64_t offset = 0;
  uLong crc = crc32(0, nullptr, 0);
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TensorView& t = tensors[i];
    const std::string where = path + ": tensor " + num(i) + " " + quote(t.name);
    CUDL_REQUIRE(!t.name.empty(), path + ": tensor " + num(i) + " has an empty name");
    CUDL_REQUIRE(t.name != kMetadataKey, where + ": the name is reserved for the file's metadata");
    CUDL_REQUIRE(seen.insert(t.name).second, where + ": the name is used twice");
    int64_t bytes = 0;
    const std::string problem = size_problem(t.shape, t.dtype, &bytes);
    CUDL_REQUIRE(problem.empty(), where + ": " + problem);
    CUDL_REQUIRE(bytes == 0 || t.data != nullptr, where + ": data is null for " + num(bytes) + " bytes");
    const uint64_t end = offset + static_cast<uint64_t>(bytes);
    CUDL_REQUIRE(end >= offset && end <= uint64_t{std::numeric_limits<int64_t>::max()},
                 path + ": the tensors hold more than 2^63 bytes together");
    entries[t.name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, end}}};
    sizes.push_back(static_cast<size_t>(bytes));
    crc = crc_update(crc, t.data, static_cast<size_t>(bytes));
    offset = end;
  }
  std::map<std::string, std::string> meta = metadata;
  meta[kCrcKey] = hex8(static_cast<uint32_t>(crc));

  // __metadata__ first, then the tensors in data order, as the official writer lays them out.
  nlohmann::ordered_json header = {{kMetadataKey, meta}};
  for (auto& item : entries.items()) header[item.key()] = std::move(item.value());
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::ordered_json::exception& e) {  // type_error 316: invalid UTF-8
    detail::fail(__FILE__, __LINE__, path + ": a tensor name or metadata string is not valid UTF-8 (" + e.what() + ")");
  }
  text.append((8 - text.size() % 8) % 8, ' ');  // the data section starts 8-aligned
  CUDL_REQUIRE(text.size() <= kMaxHeaderBytes,
               path + ": the header would be " + num(text.size()) + " bytes, above the 16 MiB a reader accepts");

  AtomicFile out(path);
  uint8_t length[8];
  for (int b = 0; b < 8; ++b) length[b] = static_cast<uint8_t>(uint64_t{text.size()} >> (8 * b));
  out.write(length, sizeof length);
  out.write(text.data(), text.size());
  for (size_t i = 0; i < tensors.size(); ++i) out.write(tensors[i].data, sizes[i]);
  out.commit();
}

SafetensorsFile SafetensorsFile::read(const std::string& path) {
  // O_NONBLOCK: opening a FIFO must fail the regular-file check below, not wait for a writer.
  const Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  CUDL_REQUIRE_OS(fd.fd >= 0, path + ": cannot open");
  struct stat st {};
  CUDL_REQUIRE_OS(::fstat(fd.fd, &st) == 0, path + ": cannot stat");
  CUDL_REQUIRE(!S_ISDIR(st.st_mode), path + ": is a directory, not a safetensors file");
  CUDL_REQUIRE(S_ISREG(st.st_mode), path + ": not a regular file");
  std::vector<uint8_t> bytes(static_cast<size_t>(st.st_size));
  size_t got = 0;
  while (got < bytes.size()) {
    const ssize_t n = ::read(fd.fd, bytes.data() + got, std::min<size_t>(bytes.size() - got, size_t{1} << 30));
    if (n < 0 && errno == EINTR) continue;
    CUDL_REQUIRE_OS(n >= 0, path + ": read failed");
    CUDL_REQUIRE(n > 0,
                 path + ": the file shrank while being read (" + num(got) + " of " + num(bytes.size()) + " bytes)");
    got += static_cast<size_t>(n);
  }
  return from_bytes(std::move(bytes), path);
}

SafetensorsFile SafetensorsFile::parse(const uint8_t* bytes, size_t size, const std::string& what) {
  return from_bytes(std::vector<uint8_t>(bytes, bytes + size), what);
}

SafetensorsFile SafetensorsFile::from_bytes(std::vector<uint8_t> bytes, const std::string& what) {
  const size_t size = bytes.size();
  CUDL_REQUIRE(size >= 8, what + ": " + num(size) +
                              " bytes is too short for a safetensors file (it starts with an 8-byte header length)");
  uint64_t n = 0;
  for (int b = 7; b >= 0; --b) n = (n << 8) | bytes[b];
  CUDL_REQUIRE(n <= kMaxHeaderBytes,
               what + ": header length " + num(n) + " is above the 16 MiB cap (a damaged file, or not safetensors)");
  CUDL_REQUIRE(n <= size - 8, what + ": header length " + num(n) + " runs past the end of the file (" + num(size - 8) +
                                  " bytes follow the length)");
  const Json header = parse_header(bytes.data() + 8, static_cast<size_t>(n), what);
  CUDL_REQUIRE(header.is_object(), what + ": header must be a JSON object, found " + std::string(header.type_name()));

  SafetensorsFile file;
  file.what_ = what;
  file.data_start_ = 8 + static_cast<size_t>(n);
  const uint64_t data_size = size - file.data_start_;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == kMetadataKey)
      file.metadata_ = read_metadata(what, *it);
    else
      file.entries_.emplace(it.key(), read_entry(what + ": tensor " + quote(it.key()), *it, data_size));
  }

  // The ranges must tile the data section exactly. Sorted by (begin, end), each must begin where
  // the previous ended, and the last end at the end of the file: the official reader's rule, and
  // the only one under which every byte (and so the CRC) belongs to some tensor.
  std::vector<std::tuple<size_t, size_t, const std::string*>> order;
  order.reserve(file.entries_.size());
  for (const auto& [name, e] : file.entries_) order.emplace_back(e.offset, e.offset + e.bytes, &name);
  std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    return std::tie(std::get<0>(a), std::get<1>(a), *std::get<2>(a)) <
           std::tie(std::get<0>(b), std::get<1>(b), *std::get<2>(b));
  });
  size_t covered = 0;
  const std::string* previous = nullptr;
  for (const auto& [begin, end, name] : order) {
    CUDL_REQUIRE(begin >= covered, what + ": tensors " + quote(*previous) + " and " + quote(*name) +
                                       " overlap (the second begins at byte " + num(begin) +
                                       ", before the first ends at " + num(covered) + ")");
    CUDL_REQUIRE(begin == covered, what + ": bytes [" + num(covered) + ", " + num(begin) +
                                       ") of the data section belong to no tensor (a hole before " + quote(*name) +
                                       "; safetensors requires full coverage)");
    covered = end;
    previous = name;
    file.names_.push_back(*name);
  }
  CUDL_REQUIRE(covered == data_size, what + ": " + num(data_size - covered) +
                                         " bytes after the last tensor belong to none (the data section holds " +
                                         num(data_size) + " bytes, the tensors " + num(covered) + ")");
  check_crc(what, file.metadata_, bytes.data() + file.data_start_, static_cast<size_t>(data_size));
  file.bytes_ = std::move(bytes);
  return file;
}

const SafetensorsFile::Entry& SafetensorsFile::entry(const std::string& name) const {
  const auto it = entries_.find(name);
  CUDL_REQUIRE(it != entries_.end(), "no tensor named " + quote(name) + " in " + what_);
  return it->second;
}

const void* SafetensorsFile::data(const std::string& name) const {
  return bytes_.data() + data_start_ + entry(name).offset;
}

void SafetensorsFile::copy_to(const std::string& name, void* dst, size_t dst_bytes) const {
  const Entry& e = entry(name);
  CUDL_REQUIRE(dst_bytes == e.bytes, what_ + ": tensor " + quote(name) + " holds " + num(e.bytes) + " bytes (shape " +
                                         shape_text(e.shape) + " of " + dtype_name(e.dtype) + "), the destination " +
                                         num(dst_bytes));
  if (e.bytes > 0) std::memcpy(dst, data(name), e.bytes);
}

}  // namespace cudl::io

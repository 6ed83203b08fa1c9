// ZIP archives as np.savez writes them (see npz.hpp). The format: APPNOTE.TXT of PKWARE, version
// 6.3; only its end-of-central-directory records, central directory headers, ZIP64 extra fields
// and local headers are read. zlib inflates deflated members (raw deflate, 15-bit window).
#include "npz.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

#include "cudl/error.hpp"

namespace cudl::detail {

std::shared_ptr<const FileMap> FileMap::open(const std::string& path, const char* kind) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  CUDL_REQUIRE(fd >= 0, path + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(path + ": not a regular file");
  }
  if (st.st_size == 0) {
    ::close(fd);
    throw Error(path + ": empty file, not " + kind);
  }
  void* m = ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
  const int err = errno;
  ::close(fd);
  CUDL_REQUIRE(m != MAP_FAILED, path + ": cannot map: " + std::strerror(err));
  std::shared_ptr<FileMap> f(new FileMap());
  f->path = path;
  f->base = static_cast<const uint8_t*>(m);
  f->size = static_cast<size_t>(st.st_size);
  return f;
}

FileMap::~FileMap() {
  if (base != nullptr) ::munmap(const_cast<uint8_t*>(base), size);
}

namespace {

constexpr uint32_t kEnd = 0x06054b50, kEnd64 = 0x06064b50, kLocator64 = 0x07064b50;
constexpr uint32_t kCentral = 0x02014b50, kLocal = 0x04034b50;

// Little-endian reads inside [begin, end), every one bounds-checked.
class Reader {
 public:
  Reader(const FileMap& f, uint64_t at, const char* part) : f_(f), at_(at), part_(part) {}
  uint16_t u16() { return static_cast<uint16_t>(take(2)); }
  uint32_t u32() { return static_cast<uint32_t>(take(4)); }
  uint64_t u64() { return take(8); }
  std::string text(size_t n) {
    need(n);
    std::string s(reinterpret_cast<const char*>(f_.base + at_), n);
    at_ += n;
    return s;
  }
  void skip(uint64_t n) {
    need(n);
    at_ += n;
  }
  uint64_t at() const { return at_; }

 private:
  void need(uint64_t n) const {
    CUDL_REQUIRE(at_ <= f_.size && n <= f_.size - at_,
                 f_.path + ": not a ZIP archive NumPy writes: the " + part_ + " runs past the end of the file");
  }
  uint64_t take(int bytes) {
    need(static_cast<uint64_t>(bytes));
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; --i) v = v << 8 | f_.base[at_ + static_cast<uint64_t>(i)];
    at_ += static_cast<uint64_t>(bytes);
    return v;
  }
  const FileMap& f_;
  uint64_t at_;
  const char* part_;
};

[[noreturn]] void refuse(const FileMap& f, const std::string& why) {
  throw Error(f.path + ": not a ZIP archive NumPy writes: " + why);
}

struct Directory {
  uint64_t entries = 0, size = 0, offset = 0;
};

// The end-of-central-directory record: the last one in the file's final 64 KiB + 22 bytes (a
// comment may follow it), and its ZIP64 form when the locator precedes it.
Directory find_directory(const FileMap& f) {
  CUDL_REQUIRE(f.size >= 22, f.path + ": not a .npz file (" + std::to_string(f.size) + " bytes is too short for a ZIP archive)");
  const uint64_t lowest = f.size > 22 + 65535 ? f.size - 22 - 65535 : 0;
  uint64_t at = f.size - 22;
  for (;; --at) {
    Reader r(f, at, "end record");
    if (r.u32() == kEnd) break;
    if (at == lowest) throw Error(f.path + ": not a .npz file (no ZIP end-of-central-directory record)");
  }
  Reader r(f, at + 4, "end record");
  const uint16_t disk = r.u16(), directory_disk = r.u16();
  Directory d;
  const uint16_t here = r.u16();
  d.entries = r.u16();
  d.size = r.u32();
  d.offset = r.u32();
  if (disk != 0 || directory_disk != 0 || here != d.entries) refuse(f, "it spans several disks");
  if (at >= 20) {
    Reader l(f, at - 20, "ZIP64 locator");
    if (l.u32() == kLocator64) {
      l.skip(4);
      Reader e(f, l.u64(), "ZIP64 end record");
      if (e.u32() != kEnd64) refuse(f, "its ZIP64 locator points at no ZIP64 end record");
      e.skip(8 + 2 + 2);
      const uint32_t disk64 = e.u32(), directory_disk64 = e.u32();
      const uint64_t here64 = e.u64();
      d.entries = e.u64();
      d.size = e.u64();
      d.offset = e.u64();
      if (disk64 != 0 || directory_disk64 != 0 || here64 != d.entries) refuse(f, "it spans several disks");
    }
  }
  if (d.offset > f.size || d.size > f.size - d.offset) refuse(f, "its central directory lies outside the file");
  // A central directory header is at least 46 bytes: a count beyond that is a lie.
  if (d.entries > d.size / 46) refuse(f, "its central directory is too small for " + std::to_string(d.entries) + " members");
  return d;
}

}  // namespace

std::vector<ZipMember> read_zip_directory(const FileMap& f) {
  const Directory d = find_directory(f);
  std::vector<ZipMember> members;
  members.reserve(static_cast<size_t>(d.entries));
  Reader r(f, d.offset, "central directory");
  for (uint64_t i = 0; i < d.entries; ++i) {
    if (r.u32() != kCentral) refuse(f, "member " + std::to_string(i) + " of the central directory has a bad signature");
    r.skip(2 + 2);
    const uint16_t flags = r.u16();
    ZipMember m;
    m.method = r.u16();
    r.skip(2 + 2);
    m.crc = r.u32();
    m.packed = r.u32();
    m.unpacked = r.u32();
    const uint16_t name_len = r.u16(), extra_len = r.u16(), comment_len = r.u16();
    const uint16_t disk = r.u16();
    r.skip(2 + 4);
    uint64_t local = r.u32();
    m.name = r.text(name_len);
    const uint64_t extra_end = r.at() + extra_len;
    while (r.at() + 4 <= extra_end) {  // ZIP64 sizes and offset, present where the 32-bit field is all ones
      const uint16_t id = r.u16(), len = r.u16();
      const uint64_t next = r.at() + len;
      if (next > extra_end) refuse(f, "member '" + m.name + "' has an extra field longer than its extra area");
      if (id == 0x0001) {
        uint64_t left = len;
        for (uint64_t* v : {&m.unpacked, &m.packed, &local}) {
          if (*v != 0xffffffffu) continue;
          if (left < 8) refuse(f, "member '" + m.name + "' has a short ZIP64 field");
          *v = r.u64();
          left -= 8;
        }
      }
      r.skip(next - r.at());
    }
    r.skip(extra_end - r.at());
    r.skip(comment_len);
    if ((flags & 1) != 0) throw Error(f.path + ": member '" + m.name + "' is encrypted; save it with np.savez");
    if (disk != 0 && disk != 0xffff) refuse(f, "member '" + m.name + "' lies on another disk");
    if (m.method != 0 && m.method != 8)
      throw Error(f.path + ": member '" + m.name + "' uses ZIP compression method " + std::to_string(m.method) +
                  "; only stored (np.savez) and deflated (np.savez_compressed) members are read");
    if (m.method == 0 && m.packed != m.unpacked) refuse(f, "stored member '" + m.name + "' has two different sizes");
    // The data follows the member's local header, whose name and extra field may differ in length
    // from the central directory's.
    Reader h(f, local, "local header");
    if (h.u32() != kLocal) refuse(f, "member '" + m.name + "' has no local header where the directory says");
    h.skip(2 + 2 + 2 + 2 + 2 + 4 + 4 + 4);
    const uint16_t local_name = h.u16(), local_extra = h.u16();
    h.skip(static_cast<uint64_t>(local_name) + local_extra);
    m.data_offset = h.at();
    if (m.packed > f.size - m.data_offset)
      refuse(f, "member '" + m.name + "' is truncated: " + std::to_string(m.packed) + " bytes announced, " +
                    std::to_string(f.size - m.data_offset) + " left in the file");
    members.push_back(std::move(m));
  }
  return members;
}

std::vector<uint8_t> inflate_member(const FileMap& f, const ZipMember& m, uint64_t limit) {
  const std::string what = f.path + "[" + m.name + "]";
  CUDL_REQUIRE(m.unpacked <= limit, what + ": inflates to " + std::to_string(m.unpacked) + " bytes, over the limit of " +
                                        std::to_string(limit) + " (NpyOptions::max_inflated_bytes); save with np.savez " +
                                        "(stored members are memory-mapped, not inflated)");
  CUDL_REQUIRE(m.unpacked <= std::numeric_limits<size_t>::max(), what + ": too large to inflate on this machine");
  std::vector<uint8_t> out(static_cast<size_t>(m.unpacked));
  z_stream z{};
  CUDL_REQUIRE(inflateInit2(&z, -MAX_WBITS) == Z_OK, what + ": zlib could not start inflating");
  uint64_t in_left = m.packed;
  const uint8_t* in = f.base + m.data_offset;
  size_t produced = 0;
  int status = Z_OK;
  while (status == Z_OK) {
    const auto chunk_in = static_cast<uInt>(std::min<uint64_t>(in_left, 1u << 30));
    const auto chunk_out = static_cast<uInt>(std::min<size_t>(out.size() - produced, 1u << 30));
    z.next_in = const_cast<Bytef*>(in);
    z.avail_in = chunk_in;
    z.next_out = out.data() + produced;
    z.avail_out = chunk_out;
    status = inflate(&z, Z_NO_FLUSH);
    const size_t used = chunk_in - z.avail_in, made = chunk_out - z.avail_out;
    in += used;
    in_left -= used;
    produced += made;
    if (status == Z_BUF_ERROR && used == 0 && made == 0) break;  // no progress: input or room exhausted
    if (status == Z_OK && in_left == 0 && produced == out.size() && used == 0 && made == 0) break;
  }
  inflateEnd(&z);
  CUDL_REQUIRE(status == Z_STREAM_END, what + (status == Z_DATA_ERROR ? ": corrupt deflate data" : ": truncated or longer than its announced " +
                                                                            std::to_string(m.unpacked) + " bytes"));
  CUDL_REQUIRE(produced == out.size(), what + ": inflated to " + std::to_string(produced) + " bytes, the directory announces " +
                                           std::to_string(m.unpacked));
  uLong crc = crc32(0L, Z_NULL, 0);
  for (size_t at = 0; at < out.size(); at += 1u << 30)
    crc = crc32(crc, out.data() + at, static_cast<uInt>(std::min<size_t>(out.size() - at, 1u << 30)));
  CUDL_REQUIRE(crc == m.crc, what + ": CRC-32 mismatch (the archive is corrupt)");
  return out;
}

}  // namespace cudl::detail

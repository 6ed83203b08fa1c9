// The IDX reader (MNIST, Fashion-MNIST): gzip-compressed or plain files, read defensively.
// Every size comes from a validated header, every read count is checked, and the payload
// buffer grows only as data actually arrives, so a garbled file can neither crash the reader
// nor make it allocate what the file does not hold.
#include <libdeflate.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "cudl/data.hpp"
#include "cudl/error.hpp"
#include "data/dataset_internal.hpp"
#include "data/read_file.hpp"

namespace cudl {
namespace {

constexpr uint32_t kImagesMagic = kIdxImagesMagic;
constexpr uint32_t kLabelsMagic = kIdxLabelsMagic;
constexpr uint64_t kMaxPayload = uint64_t{1} << 31;  // bytes; MNIST's largest file holds 47 MB
constexpr size_t kChunk = size_t{1} << 16;

std::string hex(uint32_t v, int digits) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%0*x", digits, v);
  return buf;
}
std::string hex32(uint32_t v) { return hex(v, 8); }

std::string num(uint64_t v) { return std::to_string(v); }

uint32_t be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

// The bytes of a file that is gzip-compressed (detected by its first two bytes, 1f 8b) or
// plain. read() returns fewer bytes than asked only at the end of the data. Corrupt gzip data,
// or anything but another gzip member after a member's end, throws Error naming the file.
class ByteSource {
 public:
  explicit ByteSource(const std::string& path) : path_(path), in_(kChunk) {
    errno = 0;
    file_.reset(std::fopen(path.c_str(), "rb"));
    const int err = errno;
    CUDL_REQUIRE(file_ != nullptr, path_ + ": cannot open: " + std::strerror(err));
    fill();
    gzip_ = end_ >= 2 && in_[0] == 0x1f && in_[1] == 0x8b;
    if (gzip_) {
      // 16 + MAX_WBITS: a gzip wrapper (header, CRC-32 and length checked), 32 KiB window.
      const int ret = inflateInit2(&z_, 16 + MAX_WBITS);
      CUDL_REQUIRE(ret == Z_OK, path_ + ": zlib inflateInit2 failed: " + zError(ret));
    }
  }
  ~ByteSource() {
    if (gzip_) inflateEnd(&z_);
  }
  ByteSource(const ByteSource&) = delete;
  ByteSource& operator=(const ByteSource&) = delete;

  // Copies up to n bytes of (decompressed) data to dst; returns how many.
  size_t read(uint8_t* dst, size_t n) { return gzip_ ? read_gzip(dst, n) : read_plain(dst, n); }

  // Whether the file ended inside a gzip member (a cut-short download).
  bool truncated() const { return truncated_; }
  // Why data ended early beyond "the file ends": "" for a plain file or a complete stream.
  std::string truncation_note() const {
    return truncated_ ? " (the gzip stream is cut short: the file ends inside compressed data)"
                      : "";
  }

 private:
  // Moves unread input to the front of in_ and appends from the file; false when nothing new.
  bool fill() {
    if (pos_ > 0) {
      std::memmove(in_.data(), in_.data() + pos_, end_ - pos_);
      end_ -= pos_;
      pos_ = 0;
    }
    if (end_ == in_.size()) return true;
    errno = 0;
    const size_t got = std::fread(in_.data() + end_, 1, in_.size() - end_, file_.get());
    const int err = errno;
    CUDL_REQUIRE(!std::ferror(file_.get()), path_ + ": read failed: " + std::strerror(err));
    end_ += got;
    return got > 0;
  }

  size_t read_plain(uint8_t* dst, size_t n) {
    size_t got = 0;
    while (got < n) {
      if (pos_ == end_ && !fill()) break;
      const size_t take = std::min(n - got, end_ - pos_);
      std::memcpy(dst + got, in_.data() + pos_, take);
      pos_ += take;
      got += take;
    }
    return got;
  }

  size_t read_gzip(uint8_t* dst, size_t n) {
    size_t got = 0;
    while (got < n) {
      if (pos_ == end_ && !fill()) {
        truncated_ = !member_ended_;  // the file ended inside a gzip member
        break;
      }
      if (member_ended_) {
        // Concatenated gzip members are valid gzip (pigz, bgzip); anything else is not.
        if (end_ - pos_ < 2) fill();
        CUDL_REQUIRE(end_ - pos_ >= 2 && in_[pos_] == 0x1f && in_[pos_ + 1] == 0x8b,
                     path_ + ": unexpected data after the end of the gzip stream");
        inflateReset(&z_);
        member_ended_ = false;
      }
      z_.next_in = in_.data() + pos_;
      z_.avail_in = static_cast<uInt>(end_ - pos_);  // ≤ kChunk
      z_.next_out = dst + got;
      z_.avail_out = static_cast<uInt>(std::min<size_t>(n - got, UINT_MAX));
      const int ret = inflate(&z_, Z_NO_FLUSH);
      pos_ = end_ - z_.avail_in;
      got = static_cast<size_t>(z_.next_out - dst);
      if (ret == Z_STREAM_END) {
        member_ended_ = true;
      } else if (ret == Z_BUF_ERROR && z_.avail_in == 0) {
        continue;  // needs more input: refilled (or found truncated) at the top of the loop
      } else {
        CUDL_REQUIRE(ret == Z_OK, path_ + ": corrupt gzip stream: " +
                                      (z_.msg != nullptr ? z_.msg : zError(ret)));
      }
    }
    return got;
  }

  std::string path_;
  std::unique_ptr<std::FILE, FileCloser> file_;
  std::vector<uint8_t> in_;  // compressed (or plain) input; unread bytes are in_[pos_, end_)
  size_t pos_ = 0, end_ = 0;
  bool gzip_ = false, member_ended_ = false, truncated_ = false;
  z_stream z_{};
};

// What a magic number that is not the expected one looks like, to help the reader of an error.
std::string describe_magic(uint32_t found) {
  if ((found >> 16) == 0x1f8b) return " (gzip data inside gzip: compressed twice?)";
  if ((found >> 16) != 0) return " (not an IDX file)";
  const uint32_t type = (found >> 8) & 0xff, dims = found & 0xff;
  const char* kind = dims == 1 ? ", a label file?" : dims == 3 ? ", an image file?" : "";
  return " (IDX data type " + hex(type, 2) + ", " + num(dims) +
         (dims == 1 ? " dimension" : " dimensions") + kind + ")";
}

// Reads the 4-byte magic; `magic` is the one expected, or 0 for either kind.
uint32_t read_magic(ByteSource& src, const std::string& path, uint32_t magic) {
  const std::string expected = magic != 0 ? "expected IDX magic " + hex32(magic)
                                          : "expected IDX magic " + hex32(kImagesMagic) +
                                                " (images) or " + hex32(kLabelsMagic) + " (labels)";
  uint8_t header[4];
  const size_t got = src.read(header, 4);
  CUDL_REQUIRE(got == 4, path + ": " + expected + ", found only " + num(got) + " bytes" +
                             src.truncation_note());
  const uint32_t found = be32(header);
  const bool ok = magic != 0 ? found == magic : found == kImagesMagic || found == kLabelsMagic;
  CUDL_REQUIRE(ok, path + ": " + expected + ", found " + hex32(found) + describe_magic(found));
  return found;
}

// "10000 images of 28×28" or "60000 labels", for messages.
std::string describe(const IdxHeader& h) {
  const auto count = static_cast<uint64_t>(h.count);
  if (h.magic == kLabelsMagic) return num(count) + (count == 1 ? " label" : " labels");
  return num(count) + (count == 1 ? " image of " : " images of ") +
         num(static_cast<uint64_t>(h.rows)) + "×" + num(static_cast<uint64_t>(h.cols));
}

// Reads the sizes that follow `magic` (3 for images, 1 for labels) and validates them: every
// one at least 1, the payload within kMaxPayload.
IdxHeader read_sizes(ByteSource& src, const std::string& path, uint32_t magic) {
  const size_t ndims = magic == kImagesMagic ? 3 : 1;
  uint8_t sizes[12];
  const size_t got = src.read(sizes, 4 * ndims);
  CUDL_REQUIRE(got == 4 * ndims, path + ": truncated IDX header: expected " + num(4 + 4 * ndims) +
                                     " bytes, found " + num(4 + got) + src.truncation_note());
  const uint64_t count = be32(sizes);
  const uint64_t rows = ndims == 3 ? be32(sizes + 4) : 1, cols = ndims == 3 ? be32(sizes + 8) : 1;
  IdxHeader h;
  h.magic = magic;
  h.count = static_cast<int64_t>(count);
  if (ndims == 3) {
    h.rows = static_cast<int64_t>(rows);
    h.cols = static_cast<int64_t>(cols);
  }
  const std::string what = describe(h);
  if (ndims == 3) {
    CUDL_REQUIRE(count > 0 && rows > 0 && cols > 0,
                 path + ": the header gives " + what + ": every dimension must be at least 1");
  } else {
    CUDL_REQUIRE(count > 0, path + ": the header gives 0 labels: expected at least 1");
  }
  const uint64_t per_item = rows * cols;  // < 2^64: both factors < 2^32
  CUDL_REQUIRE(per_item <= kMaxPayload && count <= kMaxPayload / per_item,
               path + ": the header gives " + what + ": more than the " + num(kMaxPayload) +
                   "-byte limit (corrupt header?)");
  return h;
}

// Requires `got` to be the `bytes` the header promised and the data to end there.
// `what` names the payload for messages, e.g. "10000 images of 28×28".
void finish_payload(ByteSource& src, const std::string& path, uint64_t got, uint64_t bytes,
                    const std::string& what) {
  CUDL_REQUIRE(got == bytes, path + ": truncated payload: the header promises " + what + " = " +
                                 num(bytes) + " bytes, found " + num(got) +
                                 src.truncation_note());
  // Count trailing data, up to a bound (a gzip bomb must not keep us counting).
  constexpr uint64_t kCountLimit = uint64_t{1} << 20;
  uint64_t extra = 0;
  uint8_t sink[4096];
  while (extra <= kCountLimit) {
    const size_t r = src.read(sink, sizeof sink);
    if (r == 0) break;
    extra += r;
  }
  CUDL_REQUIRE(extra == 0, path + ": " + (extra > kCountLimit ? "more than " + num(kCountLimit)
                                                                 : num(extra)) +
                               " bytes of unexpected data after the " + num(bytes) +
                               "-byte payload of " + what);
  CUDL_REQUIRE(!src.truncated(), path + ": the gzip stream is cut short: the file ends inside "
                                        "compressed data, after the complete payload");
}

// Reads exactly `bytes` bytes of payload, then requires the data to end there.
std::vector<uint8_t> read_payload(ByteSource& src, const std::string& path, uint64_t bytes,
                                  const std::string& what) {
  std::vector<uint8_t> out;
  uint64_t got = 0;
  while (got < bytes) {
    // Grow geometrically but never past the header's promise nor far past the data seen.
    const uint64_t step64 = std::min<uint64_t>(bytes - got, std::max<uint64_t>(kChunk, got));
    const size_t step = static_cast<size_t>(step64);
    out.resize(static_cast<size_t>(got) + step);
    const size_t r = src.read(out.data() + got, step);
    got += r;
    if (r < step) break;
  }
  finish_payload(src, path, got, bytes, what);
  return out;
}

uint64_t payload_bytes(const IdxHeader& h) {
  return h.magic == kLabelsMagic ? static_cast<uint64_t>(h.count)
                                 : static_cast<uint64_t>(h.count * h.rows * h.cols);
}

}  // namespace

IdxHeader read_idx_header(const std::string& path) {
  ByteSource src(path);
  return read_sizes(src, path, read_magic(src, path, 0));
}

IdxHeader detail::read_idx_header(const std::string& path, uint32_t magic) {
  ByteSource src(path);
  return read_sizes(src, path, read_magic(src, path, magic));
}

void detail::read_idx_images_into(const std::string& path, const IdxHeader& expected,
                                  const std::function<void(const uint8_t*, size_t)>& sink) {
  ByteSource src(path);
  const IdxHeader h = read_sizes(src, path, read_magic(src, path, kImagesMagic));
  CUDL_REQUIRE(h.count == expected.count && h.rows == expected.rows && h.cols == expected.cols,
               path + ": the file changed while it was being loaded: its header gave " +
                   describe(expected) + ", now " + describe(h));
  const uint64_t bytes = payload_bytes(h);
  std::vector<uint8_t> chunk(static_cast<size_t>(std::min<uint64_t>(bytes, kChunk)));
  uint64_t got = 0;
  while (got < bytes) {
    const auto step = static_cast<size_t>(std::min<uint64_t>(bytes - got, chunk.size()));
    const size_t r = src.read(chunk.data(), step);
    if (r > 0) sink(chunk.data(), r);
    got += r;
    if (r < step) break;
  }
  finish_payload(src, path, got, bytes, describe(h));
}

detail::IdxPayload detail::read_idx_images_whole(const std::string& path, const IdxHeader& expected) {
  constexpr size_t kHeader = 16;  // magic and three sizes
  const size_t total = kHeader + static_cast<size_t>(payload_bytes(expected));
  IdxPayload out;
  {
    // The file at once, when it is one gzip member of exactly this header and payload: libdeflate
    // inflates it in one call, about twice as fast as zlib's stream (it checks CRC-32 and size).
    std::vector<uint8_t> file;
    try {
      // Read whole or not at all: a longer file (trailing data?) is the streaming reader's case.
      if (read_file(path, static_cast<int64_t>(total) + (int64_t{1} << 20), file, "no IDX header") !=
          static_cast<int64_t>(file.size()))
        file.clear();
    } catch (const Error&) {
      file.clear();  // the reader below says what is wrong
    }
    const bool gzip = file.size() >= 18 && file[0] == 0x1f && file[1] == 0x8b;
    std::unique_ptr<uint8_t[]> whole(gzip ? new uint8_t[total] : nullptr);  // pages touched as written
    std::unique_ptr<libdeflate_decompressor, void (*)(libdeflate_decompressor*)> d(
        gzip ? libdeflate_alloc_decompressor() : nullptr, libdeflate_free_decompressor);
    size_t used = 0, made = 0;
    if (d != nullptr &&
        libdeflate_gzip_decompress_ex(d.get(), file.data(), file.size(), whole.get(), total, &used, &made) ==
            LIBDEFLATE_SUCCESS &&
        used == file.size() && made == total && be32(whole.get()) == kImagesMagic &&
        be32(whole.get() + 4) == static_cast<uint64_t>(expected.count) &&
        be32(whole.get() + 8) == static_cast<uint64_t>(expected.rows) &&
        be32(whole.get() + 12) == static_cast<uint64_t>(expected.cols)) {
      out.whole = std::move(whole);
      out.data = out.whole.get() + kHeader;
      out.size = total - kHeader;
      return out;
    }
  }
  // Anything else (plain, several gzip members, damaged, another header): the streaming reader,
  // with every check and error of read_idx_images.
  IdxImages images = read_idx_images(path);
  CUDL_REQUIRE(images.count == expected.count && images.rows == expected.rows && images.cols == expected.cols,
               path + ": the file changed while it was being loaded: its header gave " + describe(expected) +
                   ", now " + describe(IdxHeader{kImagesMagic, images.count, images.rows, images.cols}));
  out.read = std::move(images.pixels);
  out.data = out.read.data();
  out.size = out.read.size();
  return out;
}

IdxImages read_idx_images(const std::string& path) {
  ByteSource src(path);
  const IdxHeader h = read_sizes(src, path, read_magic(src, path, kImagesMagic));
  IdxImages images;
  images.count = h.count;
  images.rows = h.rows;
  images.cols = h.cols;
  images.pixels = read_payload(src, path, payload_bytes(h), describe(h));
  return images;
}

std::vector<uint8_t> read_idx_labels(const std::string& path, int num_classes) {
  CUDL_REQUIRE(num_classes >= 1,
               path + ": num_classes must be at least 1, got " + std::to_string(num_classes));
  ByteSource src(path);
  const IdxHeader h = read_sizes(src, path, read_magic(src, path, kLabelsMagic));
  std::vector<uint8_t> labels = read_payload(src, path, payload_bytes(h), describe(h));
  for (size_t i = 0; i < labels.size(); ++i) {
    CUDL_REQUIRE(labels[i] < num_classes,
                 path + ": label " + num(labels[i]) + " at index " + num(i) +
                     " is out of range: expected a class below " + std::to_string(num_classes));
  }
  return labels;
}

}  // namespace cudl

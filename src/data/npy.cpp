// NumPy .npy files: the header parser (a Python dict literal of three keys, read by a small
// tokenizer of our own: no Debian package reads .npy from C++) and NpyDataset over read-only
// memory mappings of the two files.
#include "cudl/npy.hpp"


#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "cudl/error.hpp"
#include "npz.hpp"

namespace cudl {

const char* to_string(NpyType type) {
  switch (type) {
    case NpyType::kFloat32: return "float32";
    case NpyType::kFloat64: return "float64";
    case NpyType::kUint8: return "uint8";
    case NpyType::kInt32: return "int32";
    case NpyType::kInt64: return "int64";
  }
  return "?";
}

namespace {

// Reads the header dict, e.g. {'descr': '<f4', 'fortran_order': False, 'shape': (60000, 784), }
class HeaderReader {
 public:
  HeaderReader(const char* p, size_t n, const std::string& what) : p_(p), end_(p + n), what_(what) {}

  void expect(char c) {
    skip_space();
    if (p_ == end_ || *p_ != c) fail(std::string("expected '") + c + "'" + where());
    ++p_;
  }
  bool accept(char c) {
    skip_space();
    if (p_ != end_ && *p_ == c) {
      ++p_;
      return true;
    }
    return false;
  }
  std::string quoted() {
    skip_space();
    if (p_ == end_ || (*p_ != '\'' && *p_ != '"')) fail("expected a quoted string" + where());
    const char q = *p_++;
    const char* start = p_;
    while (p_ != end_ && *p_ != q) ++p_;
    if (p_ == end_) fail("unterminated string in the header");
    return std::string(start, static_cast<size_t>(p_++ - start));
  }
  bool boolean() {
    skip_space();
    for (const auto& [word, value] : {std::pair<const char*, bool>{"True", true}, {"False", false}}) {
      const size_t len = std::strlen(word);
      if (static_cast<size_t>(end_ - p_) >= len && std::memcmp(p_, word, len) == 0) {
        p_ += len;
        return value;
      }
    }
    fail("fortran_order must be True or False" + where());
  }
  int64_t integer() {
    skip_space();
    int64_t v = 0;
    const char* start = p_;
    while (p_ != end_ && *p_ >= '0' && *p_ <= '9') {
      if (v > (std::numeric_limits<int64_t>::max() - 9) / 10) fail("a dimension of the shape is too large");
      v = v * 10 + (*p_++ - '0');
    }
    if (p_ != end_ && *p_ == 'L') ++p_;  // Python 2's long suffix
    if (p_ == start) fail("expected a dimension (a non-negative integer)" + where());
    return v;
  }
  void rest_is_padding() {
    for (; p_ != end_; ++p_)
      if (*p_ != ' ' && *p_ != '\n' && *p_ != '\t' && *p_ != '\r' && *p_ != '\0') fail("text after the header's '}'");
  }
  [[noreturn]] void fail(const std::string& why) const { throw Error(what_ + ": not a .npy header NumPy writes: " + why); }

 private:
  void skip_space() {
    while (p_ != end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\t' || *p_ == '\r')) ++p_;
  }
  std::string where() const {
    return p_ == end_ ? " at the header's end" : " at '" + std::string(p_, std::min<size_t>(12, static_cast<size_t>(end_ - p_))) + "'";
  }
  const char* p_;
  const char* end_;
  const std::string& what_;
};

void set_type(NpyHeader& h, const std::string& descr, const std::string& what) {
  const bool ordered = descr.size() == 3 && std::strchr("<|=>", descr[0]) != nullptr;
  const std::string bare = ordered ? descr.substr(1) : descr;
  if (descr.size() == 3 && descr[0] == '>' && descr.substr(1) != "u1")
    throw Error(what + ": big-endian data ('" + descr + "') is not supported; save it little-endian, e.g. x.astype('<f4')");
  static const struct { const char* code; NpyType type; int64_t bytes; } kTypes[] = {
      {"f4", NpyType::kFloat32, 4}, {"f8", NpyType::kFloat64, 8}, {"u1", NpyType::kUint8, 1},
      {"i4", NpyType::kInt32, 4},   {"i8", NpyType::kInt64, 8}};
  for (const auto& t : kTypes)
    if (bare == t.code) {
      h.type = t.type;
      h.item_bytes = t.bytes;
      return;
    }
  throw Error(what + ": dtype '" + descr + "' is not supported; use float32, float64, uint8, int32 or int64");
}

}  // namespace

NpyHeader parse_npy_header(const uint8_t* bytes, size_t size, const std::string& what) {
  static const char kMagic[] = "\x93NUMPY";
  CUDL_REQUIRE(size >= 10 && std::memcmp(bytes, kMagic, 6) == 0,
               what + ": not a .npy file (it does not start with \\x93NUMPY)");
  const int major = bytes[6];
  CUDL_REQUIRE(major >= 1 && major <= 3, what + ": .npy format version " + std::to_string(major) + "." +
                                             std::to_string(bytes[7]) + " is not supported (1.0, 2.0 and 3.0 are)");
  size_t start = 10, len = static_cast<size_t>(bytes[8]) | static_cast<size_t>(bytes[9]) << 8;
  if (major >= 2) {
    CUDL_REQUIRE(size >= 12, what + ": truncated inside the .npy header");
    start = 12;
    len = static_cast<size_t>(bytes[8]) | static_cast<size_t>(bytes[9]) << 8 | static_cast<size_t>(bytes[10]) << 16 |
          static_cast<size_t>(bytes[11]) << 24;
  }
  CUDL_REQUIRE(len <= size - start, what + ": truncated: the header announces " + std::to_string(len) +
                                        " bytes, the file has " + std::to_string(size - start) + " after the preamble");
  NpyHeader h;
  h.data_offset = static_cast<int64_t>(start + len);
  HeaderReader r(reinterpret_cast<const char*>(bytes) + start, len, what);
  bool have_descr = false, have_order = false, have_shape = false, fortran = false;
  std::string descr;
  r.expect('{');
  while (!r.accept('}')) {
    const std::string key = r.quoted();
    r.expect(':');
    if (key == "descr" && !have_descr) {
      descr = r.quoted();
      have_descr = true;
    } else if (key == "fortran_order" && !have_order) {
      fortran = r.boolean();
      have_order = true;
    } else if (key == "shape" && !have_shape) {
      r.expect('(');
      while (!r.accept(')')) {
        h.shape.push_back(r.integer());
        if (!r.accept(',')) {
          r.expect(')');
          break;
        }
      }
      have_shape = true;
    } else {
      r.fail(have_descr && key == "descr" ? "key 'descr' twice" : "unexpected key '" + key + "' (a structured array?)");
    }
    if (!r.accept(',')) {
      r.expect('}');
      break;
    }
  }
  r.rest_is_padding();
  if (!have_descr || !have_order || !have_shape) r.fail("it lacks one of 'descr', 'fortran_order' and 'shape'");
  set_type(h, descr, what);
  CUDL_REQUIRE(!fortran, what + ": Fortran-order arrays are not supported; save np.ascontiguousarray(a)");
  // Every partial product must fit, zeros aside: a row of (0, 2^62, 2^20) would overflow.
  int64_t items = 1, nonzero = 1;
  for (int64_t d : h.shape) {
    CUDL_REQUIRE(d == 0 || nonzero <= (std::numeric_limits<int64_t>::max() / 8) / d,
                 what + ": the shape " + to_string(h.shape) + " is too large");
    if (d != 0) nonzero *= d;
    items *= d;
  }
  const auto available = static_cast<int64_t>(size) - h.data_offset;
  const int64_t needed = items * h.item_bytes;
  CUDL_REQUIRE(available == needed, what + (available < needed ? ": truncated: " : ": over-long: ") + "shape " +
                                        to_string(h.shape) + " of " + to_string(h.type) + " needs " + std::to_string(needed) +
                                        " bytes after the " + std::to_string(h.data_offset) + "-byte header, the file has " +
                                        std::to_string(available));
  return h;
}

// ---- the mapped files ----

struct NpyDataset::Mapped {
  std::string path;  // "x.npy", or "data.npz[x.npy]" for a member of an archive
  std::shared_ptr<const detail::FileMap> file;  // the mapped .npy file or archive
  std::vector<uint8_t> inflated;                // a deflated member's bytes
  const uint8_t* base = nullptr;                // the .npy bytes: in the mapping or `inflated`
  size_t size = 0;
  NpyHeader header;
  int64_t row_items = 1;  // values per row (first dimension)

  // A .npy file.
  explicit Mapped(const std::string& p) : path(p), file(detail::FileMap::open(p, "a .npy file")), base(file->base), size(file->size) {
    parse();
  }
  // A member of a .npz archive: in place where it is stored, inflated into memory where deflated.
  Mapped(std::shared_ptr<const detail::FileMap> zip, const detail::ZipMember& m, uint64_t limit)
      : path(zip->path + "[" + m.name + "]"), file(std::move(zip)) {
    if (m.method == 0) {
      base = file->base + m.data_offset;
      size = static_cast<size_t>(m.unpacked);
    } else {
      inflated = detail::inflate_member(*file, m, limit);
      base = inflated.data();
      size = inflated.size();
    }
    parse();
  }
  Mapped(const Mapped&) = delete;
  Mapped& operator=(const Mapped&) = delete;

  void parse() {
    header = parse_npy_header(base, size, path);
    for (size_t d = 1; d < header.shape.size(); ++d) row_items *= header.shape[d];
  }

  // Values [0, row_items) of row r, converted to float and multiplied by scale.
  void row(int64_t r, float* out, float scale) const {
    const uint8_t* src = base + header.data_offset + r * row_items * header.item_bytes;
    const auto n = static_cast<size_t>(row_items);
    // Converted and scaled in one pass (the same two roundings as converting, then scaling).
    switch (header.type) {
      case NpyType::kFloat32:
        if (scale == 1.0f) {
          std::memcpy(out, src, n * sizeof(float));
        } else {
          convert<float>(src, n, out, scale);
        }
        break;
      case NpyType::kUint8:
        if (scale == 1.0f) {
          for (size_t i = 0; i < n; ++i) out[i] = static_cast<float>(src[i]);
        } else {
          for (size_t i = 0; i < n; ++i) out[i] = static_cast<float>(src[i]) * scale;
        }
        break;
      case NpyType::kFloat64: convert<double>(src, n, out, scale); break;
      case NpyType::kInt32: convert<int32_t>(src, n, out, scale); break;
      case NpyType::kInt64: convert<int64_t>(src, n, out, scale); break;
    }
  }
  template <typename T>
  static void convert(const uint8_t* src, size_t n, float* out, float scale) {
    for (size_t i = 0; i < n; ++i) {
      T v;
      std::memcpy(&v, src + i * sizeof(T), sizeof(T));  // the data may be unaligned
      out[i] = scale == 1.0f ? static_cast<float>(v) : static_cast<float>(v) * scale;
    }
  }
  std::string shape_text() const { return to_string(header.shape) + " " + to_string(header.type); }
};

NpyDataset::~NpyDataset() = default;

std::unique_ptr<NpyDataset> NpyDataset::open(const std::string& x_path, const std::string& y_path,
                                             const NpyOptions& options) {
  auto x = std::make_unique<Mapped>(x_path);
  return from(std::move(x), std::make_unique<Mapped>(y_path), options);
}

std::unique_ptr<NpyDataset> NpyDataset::open_npz(const std::string& path, const NpyOptions& options) {
  auto zip = detail::FileMap::open(path, "a .npz file");
  const std::vector<detail::ZipMember> members = detail::read_zip_directory(*zip);
  const auto find = [&](const std::string& key) -> const detail::ZipMember* {
    for (const auto& m : members)
      if (m.name == key + ".npy") return &m;
    return nullptr;
  };
  std::string names;
  for (const auto& m : members) names += (names.empty() ? "'" : ", '") + m.name + "'";
  if (names.empty()) names = "none";
  std::string x_key = options.npz_x, y_key = options.npz_y;
  if (x_key.empty() && y_key.empty() && find("x") == nullptr && find("y") == nullptr && find("arr_0") != nullptr) {
    x_key = "arr_0";  // np.savez(path, x, y): positional arrays
    y_key = "arr_1";
  }
  if (x_key.empty()) x_key = "x";
  if (y_key.empty()) y_key = "y";
  const detail::ZipMember* xm = find(x_key);
  const detail::ZipMember* ym = find(y_key);
  CUDL_REQUIRE(xm != nullptr && ym != nullptr,
               path + ": has no array '" + (xm == nullptr ? x_key : y_key) + "' (its members: " + names +
                   "); save it as np.savez(path, x=examples, y=targets) or set NpyOptions::npz_x and npz_y");
  auto x = std::make_unique<Mapped>(zip, *xm, options.max_inflated_bytes);
  return from(std::move(x), std::make_unique<Mapped>(zip, *ym, options.max_inflated_bytes), options);
}

std::unique_ptr<NpyDataset> NpyDataset::from(std::unique_ptr<Mapped> x, std::unique_ptr<Mapped> y,
                                             const NpyOptions& options) {
  std::unique_ptr<NpyDataset> d(new NpyDataset());
  const std::string x_path = x->path, y_path = y->path;
  d->x_ = std::move(x);
  d->y_ = std::move(y);
  const Shape& xs = d->x_->header.shape;
  const Shape& ys = d->y_->header.shape;
  CUDL_REQUIRE(xs.size() >= 2, x_path + ": examples must be an array of rank 2 or more (rows × …), found " + d->x_->shape_text());
  CUDL_REQUIRE(ys.size() == 1 || ys.size() == 2,
               y_path + ": targets must be an array of rank 1 (rows) or 2 (rows × values), found " + d->y_->shape_text());
  CUDL_REQUIRE(xs[0] >= 1, x_path + ": holds no rows (shape " + to_string(xs) + ")");
  CUDL_REQUIRE(d->x_->row_items >= 1 && d->y_->row_items >= 1,
               (d->x_->row_items >= 1 ? y_path : x_path) + ": rows of zero values (shape " +
                   to_string(d->x_->row_items >= 1 ? ys : xs) + ")");
  CUDL_REQUIRE(xs[0] == ys[0], x_path + " holds " + std::to_string(xs[0]) + " rows but " + y_path + " holds " +
                                   std::to_string(ys[0]) + " targets");
  CUDL_REQUIRE(std::isfinite(options.x_scale), "NpyOptions::x_scale must be finite");
  d->rows_ = xs[0];
  d->x_scale_ = options.x_scale;
  d->example_shape_.assign(xs.begin() + 1, xs.end());
  const bool integer = d->y_->header.type != NpyType::kFloat32 && d->y_->header.type != NpyType::kFloat64;
  const bool classes = options.targets == NpyOptions::Targets::kClasses ||
                       (options.targets == NpyOptions::Targets::kAuto && integer && ys.size() == 1);
  if (!classes) {
    d->target_shape_ = {ys.size() == 2 ? ys[1] : 1};  // one value per row: {1}, as the Dataset contract says
    return d;
  }
  CUDL_REQUIRE(ys.size() == 1, y_path + ": class targets must be one label per row, found " + d->y_->shape_text());
  CUDL_REQUIRE(options.classes >= 0, "NpyOptions::classes must be 0 (from the labels) or positive");
  double largest = -1.0;
  for (int64_t r = 0; r < d->rows_; ++r) {
    float v = 0.0f;
    d->y_->row(r, &v, 1.0f);
    CUDL_REQUIRE(v >= 0.0f && v == std::floor(v) && v < 16777216.0f,
                 y_path + ": label " + std::to_string(v) + " of row " + std::to_string(r) + " is not a class index (a whole number ≥ 0)");
    CUDL_REQUIRE(options.classes == 0 || v < static_cast<float>(options.classes),
                 y_path + ": label " + std::to_string(static_cast<int64_t>(v)) + " of row " + std::to_string(r) +
                     " is not below NpyOptions::classes = " + std::to_string(options.classes));
    largest = std::max(largest, static_cast<double>(v));
  }
  d->classes_ = options.classes > 0 ? options.classes : static_cast<int64_t>(largest) + 1;
  return d;
}

void NpyDataset::fill(const int64_t* idx, int64_t n, float* x, float* y) const {
  fill_targets(idx, n, y);  // checks the indices
  const int64_t per = x_->row_items;
  for (int64_t i = 0; i < n; ++i) x_->row(idx[i], x + i * per, x_scale_);
}

void NpyDataset::fill_targets(const int64_t* idx, int64_t n, float* y) const {
  check_indices(idx, n, "NpyDataset::fill");
  const int64_t per = y_->row_items;
  for (int64_t i = 0; i < n; ++i) y_->row(idx[i], y + i * per, 1.0f);
}

std::string NpyDataset::describe() const {
  const bool inflated = !x_->inflated.empty() || !y_->inflated.empty();
  return x_->path + ": " + x_->shape_text() + ", " + y_->path + ": " + y_->shape_text() +
         (classes_ > 0 ? " (" + std::to_string(classes_) + " classes)" : std::string(" (values)")) +
         (inflated ? ", deflated members inflated into memory" : ", memory-mapped");
}

// ---- writing ----

namespace {

template <typename T>
void save(const std::string& path, const char* descr, const T* data, const Shape& shape) {
  int64_t items = 1;
  for (int64_t d : shape) {
    CUDL_REQUIRE(d >= 0, "save_npy: " + path + ": the shape " + to_string(shape) + " has a negative dimension");
    CUDL_REQUIRE(d == 0 || items <= std::numeric_limits<int64_t>::max() / static_cast<int64_t>(sizeof(T)) / d,
                 "save_npy: " + path + ": the shape " + to_string(shape) + " is too large");
    items *= d;
  }
  CUDL_REQUIRE(items == 0 || data != nullptr, "save_npy: " + path + ": no data for the shape " + to_string(shape));
  std::string dims;
  for (size_t i = 0; i < shape.size(); ++i) dims += (i ? ", " : "") + std::to_string(shape[i]);
  if (shape.size() == 1) dims += ",";
  // As NumPy writes it: the dict, padded with spaces and a newline so that the data starts at a
  // multiple of 64 bytes (version 1.0: a 10-byte preamble and a header below 64 KiB).
  std::string header = std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': (" + dims + "), }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  CUDL_REQUIRE(header.size() <= 65535, "save_npy: " + path + ": the shape " + to_string(shape) + " has too many dimensions");
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    CUDL_REQUIRE(f.is_open(), "save_npy: cannot create " + tmp);
    const char preamble[10] = {'\x93', 'N', 'U', 'M', 'P', 'Y', 1, 0, static_cast<char>(header.size() & 0xff),
                               static_cast<char>(header.size() >> 8)};
    f.write(preamble, sizeof preamble);
    f.write(header.data(), static_cast<std::streamsize>(header.size()));
    const char* bytes = reinterpret_cast<const char*>(data);
    for (int64_t at = 0, total = items * static_cast<int64_t>(sizeof(T)); at < total; at += int64_t{1} << 30)
      f.write(bytes + at, static_cast<std::streamsize>(std::min<int64_t>(total - at, int64_t{1} << 30)));
    f.close();
    if (!f) {
      std::remove(tmp.c_str());
      throw Error("save_npy: cannot write " + tmp + " (disk full?)");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw Error("save_npy: cannot rename " + tmp + " to " + path);
  }
}

}  // namespace

void save_npy(const std::string& path, const float* data, const Shape& shape) { save(path, "<f4", data, shape); }
void save_npy(const std::string& path, const double* data, const Shape& shape) { save(path, "<f8", data, shape); }
void save_npy(const std::string& path, const uint8_t* data, const Shape& shape) { save(path, "|u1", data, shape); }
void save_npy(const std::string& path, const int32_t* data, const Shape& shape) { save(path, "<i4", data, shape); }
void save_npy(const std::string& path, const int64_t* data, const Shape& shape) { save(path, "<i8", data, shape); }

}  // namespace cudl

// PNG (libspng) and JPEG (libjpeg-turbo's TurboJPEG API) to CHW floats, and bilinear resampling.
// Each decoder writes interleaved 8- or 16-bit pixels into a per-thread buffer in the format the
// library converts to most cheaply; one function then turns them into [0, 1] planes.
#include "data/image_decode.hpp"

#include <spng.h>
#include <turbojpeg.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>

#include "cudl/error.hpp"
#include "data/read_file.hpp"

namespace cudl::image_io {
namespace {

constexpr int64_t kHeaderBytes = 64 * 1024;  // enough for any PNG header and nearly every JPEG's

// Refuses a header announcing more pixels than kMaxPixels, before anything that size is allocated.
Info checked(const Info& info, const std::string& path) {
  if (info.height * info.width > kMaxPixels)
    throw Error(path + ": an image of " + std::to_string(info.height) + "×" + std::to_string(info.width) +
                " pixels, more than the " + std::to_string(kMaxPixels) + " ImageFolderDataset decodes");
  return info;
}

struct Scratch {
  std::vector<uint8_t> file;       // the file's bytes (or its first kHeaderBytes)
  std::vector<uint8_t> pixels;     // decoded, interleaved: 8-bit values
  std::vector<uint16_t> pixels16;  // or 16-bit values (host order)
};
Scratch& scratch() {
  static thread_local Scratch s;
  return s;
}

Format sniff(const std::vector<uint8_t>& b, const std::string& path) {
  static const uint8_t kPng[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (b.size() >= 8 && std::memcmp(b.data(), kPng, 8) == 0) return Format::kPng;
  if (b.size() >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff) return Format::kJpeg;
  static const char kHex[] = "0123456789abcdef";
  std::string first;
  for (size_t i = 0; i < std::min<size_t>(4, b.size()); ++i) {
    first += i ? " " : "";
    first += kHex[b[i] >> 4];
    first += kHex[b[i] & 15];
  }
  throw Error(path + ": neither a PNG nor a JPEG file (it starts with bytes " + first +
              "; PNG starts 89 50 4e 47, JPEG ff d8 ff)");
}

// ---- PNG ----

class Png {
 public:
  Png(const std::vector<uint8_t>& bytes, const std::string& path) : path_(path), ctx_(spng_ctx_new(0), spng_ctx_free) {
    if (ctx_ == nullptr) throw Error(path + ": libspng could not create a decoding context (out of memory)");
    check(spng_set_png_buffer(ctx_.get(), bytes.data(), bytes.size()), "reading the buffer");
    check(spng_get_ihdr(ctx_.get(), &ihdr_), "reading the header");
  }

  Info info() const {
    const bool gray = ihdr_.color_type == SPNG_COLOR_TYPE_GRAYSCALE || ihdr_.color_type == SPNG_COLOR_TYPE_GRAYSCALE_ALPHA;
    return checked({Format::kPng, static_cast<int64_t>(ihdr_.height), static_cast<int64_t>(ihdr_.width), gray ? 1 : 3}, path_);
  }

  // Decodes into `out` (8-bit values) or `out16` (16-bit sources) in the cheapest format libspng
  // converts to (it gives 8-bit gray only from gray of at most 8 bits, 16-bit gray-alpha only from
  // 16-bit gray). Sets the layout: values per pixel, and whether they went to out16.
  void decode(std::vector<uint8_t>& out, std::vector<uint16_t>& out16, int& step, bool& sixteen) {
    const int ct = ihdr_.color_type;
    const bool deep = ihdr_.bit_depth == 16;
    int fmt = SPNG_FMT_RGB8;
    step = 3;
    if (ct == SPNG_COLOR_TYPE_GRAYSCALE) {
      fmt = deep ? SPNG_FMT_GA16 : SPNG_FMT_G8;  // low bit depths are scaled to 0..255
      step = deep ? 2 : 1;
    } else if (ct == SPNG_COLOR_TYPE_GRAYSCALE_ALPHA || deep) {
      fmt = deep ? SPNG_FMT_RGBA16 : SPNG_FMT_RGBA8;  // gray-alpha: R = G = B = the gray value
      step = 4;
    }  // else RGB, RGB + alpha and palette (any depth) as RGB8: libspng expands the palette
    sixteen = deep;
    size_t len = 0;
    check(spng_decoded_image_size(ctx_.get(), fmt, &len), "sizing the image");
    // Flags 0: no tRNS transparency and no gamma correction (alpha is dropped; values as stored).
    if (deep) {
      out16.resize(len / 2);
      check(spng_decode_image(ctx_.get(), out16.data(), len, fmt, 0), "decoding the image");
    } else {
      out.resize(len);
      check(spng_decode_image(ctx_.get(), out.data(), len, fmt, 0), "decoding the image");
    }
  }

 private:
  void check(int rc, const char* during) const {
    if (rc != 0)
      throw Error(path_ + ": corrupt or truncated PNG (libspng, " + during + ": " + spng_strerror(rc) + ")");
  }
  const std::string& path_;
  std::unique_ptr<spng_ctx, void (*)(spng_ctx*)> ctx_;  // freed however the constructor ends
  spng_ihdr ihdr_{};
};

// ---- JPEG ----

tjhandle jpeg_decompressor() {
  struct Handle {
    tjhandle h = tjInitDecompress();
    ~Handle() {
      if (h != nullptr) tjDestroy(h);
    }
  };
  static thread_local Handle handle;
  if (handle.h == nullptr)
    throw Error(std::string("libjpeg-turbo could not create a decompressor: ") + tjGetErrorStr2(nullptr));
  return handle.h;
}

struct JpegHeader {
  int width = 0, height = 0, colorspace = 0;
};

[[noreturn]] void jpeg_fail(const std::string& path, const std::string& why) {
  throw Error(path + ": corrupt or truncated JPEG (libjpeg-turbo: " + why + ")");
}

// Reads the JPEG header in bytes; on failure returns false and sets `why`. (Data that ends before
// the frame header is not an error to libjpeg-turbo 2.1: it reports a size of 0.)
bool jpeg_header(tjhandle tj, const std::vector<uint8_t>& bytes, JpegHeader& h, std::string& why) {
  int subsamp = 0;
  if (tjDecompressHeader3(tj, bytes.data(), static_cast<unsigned long>(bytes.size()), &h.width, &h.height, &subsamp,
                          &h.colorspace) != 0) {
    why = tjGetErrorStr2(tj);
    return false;
  }
  if (h.width < 1 || h.height < 1) {
    why = "no frame header before the end of the data";
    return false;
  }
  return true;
}

Info jpeg_info(const JpegHeader& h, const std::string& path) {
  if (h.colorspace == TJCS_CMYK || h.colorspace == TJCS_YCCK)
    throw Error(path + ": a CMYK JPEG, which is not supported (only gray and RGB/YCbCr JPEGs are)");
  return checked({Format::kJpeg, h.height, h.width, h.colorspace == TJCS_GRAY ? 1 : 3}, path);
}

// ---- to floats ----

const std::array<float, 256>& by255() {
  static const std::array<float, 256> table = [] {
    std::array<float, 256> t{};
    for (int v = 0; v < 256; ++v) t[static_cast<size_t>(v)] = static_cast<float>(v) / 255.0f;
    return t;
  }();
  return table;
}

struct Unit8 {
  const float* table = by255().data();
  float operator()(uint8_t v) const { return table[v]; }
};
struct Unit16 {
  float operator()(uint16_t v) const { return static_cast<float>(v) / 65535.0f; }
};

// Interleaved pixels (`step` values each; gray in value 0, or R, G, B in values 0..2) to
// `channels` planes of [0, 1] floats.
template <typename T, typename Unit>
void planes(const T* px, int64_t pixels, int step, bool color, int channels, float* out) {
  const Unit unit;
  if (channels == 1) {
    if (!color) {
      for (int64_t i = 0; i < pixels; ++i) out[i] = unit(px[i * step]);
    } else {
      for (int64_t i = 0; i < pixels; ++i) {
        const T* p = px + i * step;
        // BT.601 luma; the weights' float sum is 1 only to rounding, so white is held at 1.
        out[i] = std::min(1.0f, 0.299f * unit(p[0]) + 0.587f * unit(p[1]) + 0.114f * unit(p[2]));
      }
    }
    return;
  }
  for (int c = 0; c < 3; ++c) {
    const int k = color ? c : 0;  // gray: the value, three times
    float* plane = out + c * pixels;
    for (int64_t i = 0; i < pixels; ++i) plane[i] = unit(px[i * step + k]);
  }
}

}  // namespace

Info read_info(const std::string& path) {
  Scratch& s = scratch();
  const int64_t size = detail::read_file(path, kHeaderBytes, s.file, "not an image");
  if (sniff(s.file, path) == Format::kPng) return Png(s.file, path).info();
  tjhandle tj = jpeg_decompressor();
  JpegHeader h;
  std::string why;
  if (!jpeg_header(tj, s.file, h, why)) {
    if (size <= kHeaderBytes) jpeg_fail(path, why);
    detail::read_file(path, -1, s.file, "not an image");  // tables or metadata beyond the first 64 KiB
    if (!jpeg_header(tj, s.file, h, why)) jpeg_fail(path, why);
  }
  return jpeg_info(h, path);
}

Info decode(const std::string& path, int channels, std::vector<float>& out) {
  Scratch& s = scratch();
  struct Release {  // however decoding ends
    Scratch& buffers;
    ~Release() {
      release_if_large(buffers.file);
      release_if_large(buffers.pixels);
      release_if_large(buffers.pixels16);
    }
  } release{s};
  detail::read_file(path, -1, s.file, "not an image");
  Info info;
  int step = 0;
  bool sixteen = false;
  if (sniff(s.file, path) == Format::kPng) {
    Png png(s.file, path);
    info = png.info();
    png.decode(s.pixels, s.pixels16, step, sixteen);
  } else {
    tjhandle tj = jpeg_decompressor();
    JpegHeader h;
    std::string why;
    if (!jpeg_header(tj, s.file, h, why)) jpeg_fail(path, why);
    info = jpeg_info(h, path);
    step = info.channels;
    s.pixels.resize(static_cast<size_t>(h.width) * static_cast<size_t>(h.height) * static_cast<size_t>(step));
    // Flags 0: the accurate integer DCT and smooth chroma upsampling, as Pillow decodes. Any
    // warning (a truncated scan, corrupt data) fails the call too: such an image is refused.
    if (tjDecompress2(tj, s.file.data(), static_cast<unsigned long>(s.file.size()), s.pixels.data(), h.width, 0, h.height,
                      step == 1 ? TJPF_GRAY : TJPF_RGB, 0) != 0)
      jpeg_fail(path, tjGetErrorStr2(tj));
  }
  const int64_t pixels = info.height * info.width;
  out.resize(static_cast<size_t>(pixels * channels));
  const bool color = info.channels == 3;
  if (sixteen)
    planes<uint16_t, Unit16>(s.pixels16.data(), pixels, step, color, channels, out.data());
  else
    planes<uint8_t, Unit8>(s.pixels.data(), pixels, step, color, channels, out.data());
  return info;
}

void resize_bilinear(const float* in, int channels, int64_t in_h, int64_t in_w, float* out, int64_t out_h,
                     int64_t out_w) {
  // Per output column: the two source columns and the weight of the second.
  std::vector<int64_t> x0(static_cast<size_t>(out_w)), x1(static_cast<size_t>(out_w));
  std::vector<float> fx(static_cast<size_t>(out_w));
  const auto source = [](int64_t o, int64_t n_in, int64_t n_out, int64_t& i0, int64_t& i1, float& f) {
    const double s = std::clamp((static_cast<double>(o) + 0.5) * static_cast<double>(n_in) / static_cast<double>(n_out) - 0.5,
                                0.0, static_cast<double>(n_in - 1));
    i0 = static_cast<int64_t>(s);
    i1 = std::min(i0 + 1, n_in - 1);
    f = static_cast<float>(s - static_cast<double>(i0));
  };
  for (int64_t x = 0; x < out_w; ++x) {
    const auto k = static_cast<size_t>(x);
    source(x, in_w, out_w, x0[k], x1[k], fx[k]);
  }
  for (int c = 0; c < channels; ++c) {
    const float* plane = in + c * in_h * in_w;
    for (int64_t y = 0; y < out_h; ++y) {
      int64_t y0 = 0, y1 = 0;
      float fy = 0.0f;
      source(y, in_h, out_h, y0, y1, fy);
      const float* r0 = plane + y0 * in_w;
      const float* r1 = plane + y1 * in_w;
      float* o = out + (c * out_h + y) * out_w;
      for (int64_t x = 0; x < out_w; ++x) {
        const auto k = static_cast<size_t>(x);
        const float top = r0[x0[k]] + fx[k] * (r0[x1[k]] - r0[x0[k]]);
        const float bottom = r1[x0[k]] + fx[k] * (r1[x1[k]] - r1[x0[k]]);
        o[x] = std::clamp(top + fy * (bottom - top), 0.0f, 1.0f);  // in [0, 1] to the last bit too
      }
    }
  }
}

}  // namespace cudl::image_io

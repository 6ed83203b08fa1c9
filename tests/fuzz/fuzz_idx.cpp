// libFuzzer harness for the IDX reader and the dataset loaders (built and run by
// `run_fuzz.sh idx`). An input is one IDX file, or (its first byte odd) a whole MNIST-style
// folder: a 4-byte little-endian length, that many bytes of the t10k images file, then the labels
// file. Either may be written gzip-compressed (the readers detect gzip from the content): its
// second byte decides, so that valid deflate streams of mutated payloads are read, not only
// corrupt ones. Every call may throw cudl::Error; a crash, a sanitizer report, another exception,
// a leak or an allocation beyond -malloc_limit_mb is a finding (the loaders bound memory by the
// header check against LoadOptions::max_float_bytes, set small here).
#include <unistd.h>
#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cudl/data.hpp"
#include "cudl/error.hpp"
#include "fuzz_folder.hpp"

namespace {

namespace fs = std::filesystem;

const fs::path& folder() { return cudl_fuzz::folder("idx"); }

std::vector<uint8_t> gzipped(const uint8_t* data, size_t size) {
  uLongf n = compressBound(static_cast<uLong>(size)) + 32;
  std::vector<uint8_t> out(n);
  z_stream z{};
  if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) std::abort();
  z.next_in = const_cast<Bytef*>(data);
  z.avail_in = static_cast<uInt>(size);
  z.next_out = out.data();
  z.avail_out = static_cast<uInt>(out.size());
  if (deflate(&z, Z_FINISH) != Z_STREAM_END) std::abort();
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

void write(const fs::path& p, const uint8_t* data, size_t size, bool compress) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  if (compress) {
    const std::vector<uint8_t> z = gzipped(data, size);
    f.write(reinterpret_cast<const char*>(z.data()), static_cast<std::streamsize>(z.size()));
  } else {
    f.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  if (!f) std::abort();
}

template <typename F>
void refused_or_done(F&& f) {
  try {
    f();
  } catch (const cudl::Error&) {
    // A refused file: the expected outcome for most inputs.
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const bool dataset = (data[0] & 1) != 0;
  const bool compress = (data[1] & 1) != 0;
  cudl::LoadOptions small;
  small.max_float_bytes = 64 << 20;  // 64 MiB of floats: hostile headers are refused before any payload
  if (!dataset) {
    const fs::path p = folder() / "one.idx";
    write(p, data + 2, size - 2, compress);
    refused_or_done([&] { (void)cudl::read_idx_header(p.string()); });
    refused_or_done([&] { (void)cudl::read_idx_images(p.string()); });
    refused_or_done([&] { (void)cudl::read_idx_labels(p.string(), 10); });
    return 0;
  }
  if (size < 6) return 0;
  uint32_t n = 0;
  std::memcpy(&n, data + 2, 4);
  const size_t images = std::min<size_t>(n, size - 6);
  write(folder() / "t10k-images-idx3-ubyte.gz", data + 6, images, compress);
  write(folder() / "t10k-labels-idx1-ubyte.gz", data + 6 + images, size - 6 - images, compress);
  refused_or_done([&] { (void)cudl::peek_idx_dataset(folder().string(), "MNIST", small); });
  bool loaded = false, as_bytes = false;
  cudl::InMemoryDataset d;
  refused_or_done([&] {
    d = cudl::load_idx_dataset(folder().string(), "MNIST", small);
    loaded = true;
    if (d.x.size() != static_cast<size_t>(d.rows * d.features) || d.y.size() != static_cast<size_t>(d.rows))
      __builtin_trap();  // a dataset that does not hold what it says
  });
  // IdxDataset (whole-file libdeflate reader) against load_idx_dataset (zlib's stream): the same
  // files are refused or loaded, and loaded ones fill the same floats.
  std::vector<float> x, y;
  refused_or_done([&] {
    const cudl::IdxDataset b = cudl::IdxDataset::load(folder().string(), "MNIST", small);
    as_bytes = true;
    std::vector<int64_t> all(static_cast<size_t>(b.size()));
    for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int64_t>(i);
    x.resize(static_cast<size_t>(b.size() * b.example_numel()));
    y.resize(all.size());
    b.fill(all.data(), b.size(), x.data(), y.data());
  });
  if (loaded != as_bytes || (loaded && (x != d.x || y != d.y))) __builtin_trap();
  if (loaded && d.rows >= 2) refused_or_done([&] { (void)cudl::train_test_split(std::move(d), 0.5, 1); });
  return 0;
}

// libFuzzer harness for the .npy and .npz readers (built and run by `run_fuzz.sh npy`). An input
// is one .npy file or one .npz archive (it starts with "PK"). An archive is opened with
// NpyDataset::open_npz (deflated members limited to 1 MiB) and every row read. For a .npy file the
// header parser runs on the bytes in memory; then the file is written out and opened as
// NpyDataset, as the examples (first byte of the data even) or as the targets (odd) beside a
// partner file (save_npy) with the row count the input's header announces, and every row is read. Every call may throw cudl::Error; a crash, a sanitizer report, another exception, a
// leak or an allocation beyond -malloc_limit_mb is a finding.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cudl/error.hpp"
#include "fuzz_folder.hpp"
#include "cudl/npy.hpp"

namespace {

namespace fs = std::filesystem;

const fs::path& folder() { return cudl_fuzz::folder("npy"); }

void write(const fs::path& p, const std::string& bytes) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!f) std::abort();
}

// A valid .npy file of `rows` rows: float32 rows × 2 (examples) or int64 labels 0 (targets).
void partner(const fs::path& p, int64_t rows, bool examples) {
  if (examples) {
    const std::vector<float> x(static_cast<size_t>(rows) * 2, 0.0f);
    cudl::save_npy(p.string(), x.data(), {rows, 2});
  } else {
    const std::vector<int64_t> y(static_cast<size_t>(rows), 0);
    cudl::save_npy(p.string(), y.data(), {rows});
  }
}

void read_all(const cudl::NpyDataset& d) {
  std::vector<float> x(static_cast<size_t>(d.example_numel())), y(static_cast<size_t>(d.target_numel()));
  for (int64_t r = 0; r < d.size(); ++r) d.fill(&r, 1, x.data(), y.data());
  (void)d.describe();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size >= 2 && data[0] == 'P' && data[1] == 'K') {
    const fs::path archive = folder() / "input.npz";
    write(archive, std::string(reinterpret_cast<const char*>(data), size));
    try {
      cudl::NpyOptions o;
      o.max_inflated_bytes = 1 << 20;
      const auto d = cudl::NpyDataset::open_npz(archive.string(), o);
      if (d->size() * (d->example_numel() + d->target_numel()) <= (int64_t{1} << 22)) read_all(*d);
    } catch (const cudl::Error&) {
    }
    return 0;
  }
  cudl::NpyHeader h;
  try {
    h = cudl::parse_npy_header(data, size, "input");
  } catch (const cudl::Error&) {
    return 0;
  }
  if (h.shape.empty() || h.shape[0] > 4096) return 0;  // the partner file stays small
  const bool as_targets = size > static_cast<size_t>(h.data_offset) && (data[h.data_offset] & 1) != 0;
  const fs::path input = folder() / "input.npy", other = folder() / "partner.npy";
  write(input, std::string(reinterpret_cast<const char*>(data), size));
  try {
    partner(other, h.shape[0], as_targets);
    const auto d = as_targets ? cudl::NpyDataset::open(other.string(), input.string())
                              : cudl::NpyDataset::open(input.string(), other.string());
    read_all(*d);
  } catch (const cudl::Error&) {
  }
  return 0;
}

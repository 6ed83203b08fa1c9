// libFuzzer harness for the .npy reader (built and run by `run_fuzz.sh npy`). An input is one
// .npy file. The header parser runs on the bytes in memory; then the file is written out and
// opened as NpyDataset, as the examples (first byte of the data even) or as the targets (odd)
// beside a generated partner file with the row count the input's header announces, and every row
// is read. Every call may throw cudl::Error; a crash, a sanitizer report, another exception, a
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
std::string partner(int64_t rows, bool examples) {
  const std::string dict = examples ? "{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(rows) + ", 2), }"
                                    : "{'descr': '<i8', 'fortran_order': False, 'shape': (" + std::to_string(rows) + ",), }";
  std::string header = dict;
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string out = "\x93NUMPY\x01";
  out += '\0';
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  return out + header + std::string(static_cast<size_t>(rows) * 8, '\0');
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
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
  write(other, partner(h.shape[0], as_targets));
  try {
    const auto d = as_targets ? cudl::NpyDataset::open(other.string(), input.string())
                              : cudl::NpyDataset::open(input.string(), other.string());
    std::vector<float> x(static_cast<size_t>(d->example_numel())), y(static_cast<size_t>(d->target_numel()));
    for (int64_t r = 0; r < d->size(); ++r) d->fill(&r, 1, x.data(), y.data());
    (void)d->describe();
  } catch (const cudl::Error&) {
  }
  return 0;
}

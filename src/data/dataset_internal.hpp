#pragma once
// Private to src/data and its tests (not installed): the seams of dataset.cpp and idx.cpp.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cudl/data.hpp"

namespace cudl::detail {

// find_dataset with the last resort as a parameter, so a test can name one that is absent.
DatasetLocation find_dataset_in(const std::string& cli_dir, const std::string& project_root,
                                const std::string& fallback_dir);

// read_idx_header for a file that must be of one kind: `magic` is kIdxImagesMagic or
// kIdxLabelsMagic, and another magic is the readers' "expected IDX magic …, found …" error.
IdxHeader read_idx_header(const std::string& path, uint32_t magic);

// Reads the IDX3 image file at `path` as read_idx_images does (same checks, same errors), but
// hands its payload to `sink` in chunks of at most 64 KiB instead of returning it, so no buffer
// the size of the payload exists. The header must equal `expected` (what an earlier
// read_idx_header found: a file changed in between is an error).
void read_idx_images_into(const std::string& path, const IdxHeader& expected,
                          const std::function<void(const uint8_t* pixels, size_t n)>& sink);

// The payload of an IDX image file, from whichever reader made it.
struct IdxPayload {
  std::unique_ptr<uint8_t[]> whole;  // the whole file inflated at once (header first), or
  std::vector<uint8_t> read;         // the streaming reader's payload
  const uint8_t* data = nullptr;     // count·rows·cols bytes
  size_t size = 0;
};

// The payload of the IDX3 image file at `path`, whose header must equal `expected` (what an
// earlier read_idx_header found). A file that is one gzip member holding exactly that header and
// payload is inflated whole by libdeflate; any other file (plain, several members, damaged, a
// header that changed) is read by read_idx_images, with its checks and errors.
IdxPayload read_idx_images_whole(const std::string& path, const IdxHeader& expected);

// What load_idx_dataset and IdxDataset::load read, as the headers (read first) describe it.
struct IdxPartPlan {
  std::string images_path, labels_path;
  IdxHeader images;
};
struct IdxPlan {
  std::vector<IdxPartPlan> parts;  // train (if present), then t10k
  DatasetShape shape;
};
// Every check of load_idx_dataset that reads only headers (files present, headers valid, counts
// and sizes agreeing, the cap), in the order a user would fix them; errors about the options
// start with `who`.
IdxPlan plan_idx_load(const std::string& dir, const std::string& name, const LoadOptions& options,
                      const std::string& who);

// Rows per chunk when rows are read through a bounded host buffer: about 4 MB of floats, at
// least one row.
inline int64_t chunk_rows(int64_t row_floats) {
  return std::max<int64_t>(1, (int64_t{1} << 20) / std::max<int64_t>(1, row_floats));
}

// The seeded permutation of train_test_split for `rows` rows, after checking the fraction (errors
// start with `who` and call the first n_first rows of the permutation the `side` rows).
std::vector<int64_t> split_permutation(int64_t rows, double fraction, uint64_t seed, int64_t& n_first,
                                       const std::string& who, const std::string& side);

}  // namespace cudl::detail

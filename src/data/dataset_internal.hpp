#pragma once
// Private to src/data and its tests (not installed): the seams of dataset.cpp and idx.cpp.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
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

#pragma once
// Private to src/data and its tests (not installed): the seams of dataset.cpp.
#include <string>

#include "cudl/data.hpp"

namespace cudl::detail {

// find_dataset with the last resort as a parameter, so a test can name one that is absent.
DatasetLocation find_dataset_in(const std::string& cli_dir, const std::string& project_root,
                                const std::string& fallback_dir);

}  // namespace cudl::detail

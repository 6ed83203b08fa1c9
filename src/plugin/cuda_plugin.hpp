#pragma once
// Finding and loading libcudl_cuda.so, the CUDA backend, at run time (see cuda_plugin_abi.hpp).
#include <string>

#include "plugin/cuda_plugin_abi.hpp"

namespace cudl::detail {

struct LoadedCudaPlugin {
  const CudaPluginApi* api = nullptr;  // null when it could not be used
  std::string path;                    // the file tried (empty when none was)
  std::string reason;                  // when api is null: one sentence saying why
};

// Where the plugin is looked for: $CUDL_CUDA_PLUGIN when set, otherwise libcudl_cuda.so in the
// folder libcudl.so was loaded from (so an installed or a build tree finds its own plugin).
std::string cuda_plugin_path();

// The plugin, loaded on the first call (thread-safe) and kept for the life of the process; a
// failure is remembered too. Never throws. In a build without the CUDA backend, never loads.
const LoadedCudaPlugin& cuda_plugin();

// What the plugin loaders share: the folder libcudl.so was loaded from, whether a file exists,
// and the library a dlopen error says is missing ("" when it says something else).
std::string library_folder();
bool file_exists(const std::string& path);
std::string missing_library(const std::string& dlopen_error);

// Loads the plugin at `path` now, without the cache (the tests' way to try a given file).
LoadedCudaPlugin load_cuda_plugin(const std::string& path);

}  // namespace cudl::detail

#pragma once
// The interface between libcudl and libcudl_nccl.so, the NCCL communicator (cuda/
// nccl_communicator.cpp), which libcudl loads with dlopen when make_nccl_communicator is first
// called (src/plugin/nccl_plugin.cpp): neither libcudl nor the CUDA plugin needs NCCL to load.
// As with the CUDA plugin (cuda_plugin_abi.hpp), `abi` and `version` are checked before anything
// else is used.
#include <memory>
#include <string>

#include "cudl/backend.hpp"
#include "cudl/communicator.hpp"

namespace cudl::detail {

inline constexpr int kNcclPluginAbi = 1;  // raise when NcclPluginApi changes
inline constexpr const char* kNcclPluginEntry = "cudl_nccl_plugin_v1";
inline constexpr const char* kNcclPluginFile = "libcudl_nccl.so";

struct NcclPluginApi {
  int abi;              // kNcclPluginAbi of the plugin's build
  const char* version;  // CUDL_VERSION_STRING of the plugin's build
  // Throws cudl::Error (a non-CUDA backend, an NCCL failure naming the call and the rank).
  std::unique_ptr<Communicator> (*make)(Backend& gpu, Communicator& bootstrap);
};

using NcclPluginEntry = const NcclPluginApi* (*)();

}  // namespace cudl::detail

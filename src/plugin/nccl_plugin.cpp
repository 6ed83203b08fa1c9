// Loads libcudl_nccl.so (the NCCL communicator) with dlopen on first use, as cuda_plugin.cpp
// loads the CUDA backend: every way it can fail ends in one sentence a user can act on.
#include <dlfcn.h>

#include <cstdlib>
#include <string>

#include "cudl/communicator.hpp"
#include "cudl/error.hpp"
#include "cudl/version.hpp"
#include "plugin/cuda_plugin.hpp"
#include "plugin/nccl_plugin_abi.hpp"

namespace cudl {
namespace {

struct LoadedNcclPlugin {
  const detail::NcclPluginApi* api = nullptr;
  std::string reason;  // when api is null
};

LoadedNcclPlugin load_nccl_plugin() {
  LoadedNcclPlugin out;
#if !CUDL_HAVE_NCCL
  out.reason = "this build of cudl has no NCCL communicator (it is built with the CUDA backend where the "
               "configure step finds NCCL 2.13 or newer; set NCCL_PATH)";
  return out;
#else
  const char* env = std::getenv("CUDL_NCCL_PLUGIN");
  const std::string path =
      env != nullptr && *env != '\0' ? env : detail::library_folder() + "/" + detail::kNcclPluginFile;
  if (!detail::file_exists(path)) {
    out.reason = "cudl's NCCL communicator is not installed: there is no " + path +
                 " (it is installed beside libcudl.so)";
    return out;
  }
  dlerror();
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* error = dlerror();
    const std::string text = error != nullptr ? error : "unknown dlopen error";
    const std::string missing = detail::missing_library(text);
    out.reason = missing.empty() ? "cudl's NCCL communicator " + path + " cannot be loaded: " + text
                                 : "cudl's NCCL communicator " + path + " cannot be loaded because " + missing +
                                       " is not installed or not on the library path (it needs NCCL and the "
                                       "CUDA backend's libraries)";
    return out;
  }
  auto entry = reinterpret_cast<detail::NcclPluginEntry>(dlsym(handle, detail::kNcclPluginEntry));
  const detail::NcclPluginApi* api = entry != nullptr ? entry() : nullptr;
  if (api == nullptr || api->abi != detail::kNcclPluginAbi || api->version == nullptr ||
      std::string(api->version) != CUDL_VERSION_STRING) {
    dlclose(handle);
    out.reason = path + " is not the NCCL communicator of this libcudl (cudl " CUDL_VERSION_STRING
                        "): install libcudl and libcudl_nccl from the same build";
    return out;
  }
  out.api = api;  // kept loaded for the life of the process
  return out;
#endif
}

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(Backend& gpu, Communicator& bootstrap) {
  static const LoadedNcclPlugin plugin = load_nccl_plugin();
  if (plugin.api == nullptr) throw Error("make_nccl_communicator: " + plugin.reason);
  return plugin.api->make(gpu, bootstrap);
}

}  // namespace cudl

// Loads libcudl_cuda.so with dlopen and checks that it is the CUDA plugin of this very libcudl.
// Every way it can fail (not built, not installed, a CUDA library missing, another cudl's plugin)
// ends in one sentence a user can act on, never in the dynamic loader's own error at startup.
#include "plugin/cuda_plugin.hpp"

#include <dlfcn.h>
#include <sys/stat.h>

#include <cstdlib>

#include "cudl/version.hpp"

#ifndef CUDL_CUDA_PLUGIN_NEEDS
#define CUDL_CUDA_PLUGIN_NEEDS "the CUDA runtime, cuBLAS and cuDNN"
#endif

namespace cudl::detail {

std::string library_folder() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&cuda_plugin_path), &info) == 0 || info.dli_fname == nullptr) return ".";
  const std::string self = info.dli_fname;
  const auto slash = self.rfind('/');
  return slash == std::string::npos ? "." : self.substr(0, slash);
}

bool file_exists(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0;
}

std::string missing_library(const std::string& dlopen_error) {
  const auto colon = dlopen_error.find(": cannot open shared object file");
  if (colon == std::string::npos) return "";
  const auto start = dlopen_error.rfind(' ', colon);
  const auto first = start == std::string::npos ? 0 : start + 1;
  return dlopen_error.substr(first, colon - first);
}

namespace {

// dlopen's message names the library that is missing: "libcudart.so.13: cannot open shared object
// file: No such file or directory". Turns that into advice.
std::string load_failure(const std::string& path, const std::string& error) {
  const std::string missing = missing_library(error);
  if (missing.empty()) return "cudl's CUDA plugin " + path + " cannot be loaded: " + error;
  return "cudl's CUDA plugin " + path + " cannot be loaded because " + missing +
         " is not installed or not on the library path (it needs " CUDL_CUDA_PLUGIN_NEEDS
         "; see ldconfig -p, or set LD_LIBRARY_PATH)";
}

}  // namespace

std::string cuda_plugin_path() {
  if (const char* env = std::getenv("CUDL_CUDA_PLUGIN"); env != nullptr && *env != '\0') return env;
  return library_folder() + "/" + kCudaPluginFile;
}

LoadedCudaPlugin load_cuda_plugin(const std::string& path) {
  LoadedCudaPlugin out;
  out.path = path;
  const bool from_env = std::getenv("CUDL_CUDA_PLUGIN") != nullptr && path == std::getenv("CUDL_CUDA_PLUGIN");
  if (!file_exists(path)) {
    out.reason = from_env ? "the CUDA plugin named by CUDL_CUDA_PLUGIN, " + path + ", does not exist"
                          : "cudl's CUDA plugin is not installed: there is no " + path +
                                " (it is built with cudl's CUDA backend and installed beside libcudl.so)";
    return out;
  }
  dlerror();
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* error = dlerror();
    out.reason = load_failure(path, error != nullptr ? error : "unknown dlopen error");
    return out;
  }
  auto entry = reinterpret_cast<CudaPluginEntry>(dlsym(handle, kCudaPluginEntry));
  if (entry == nullptr) {
    dlclose(handle);
    out.reason = path + " is not a cudl CUDA plugin: it has no " + kCudaPluginEntry + " entry point";
    return out;
  }
  const CudaPluginApi* api = entry();
  if (api == nullptr || api->abi != kCudaPluginAbi || api->version == nullptr ||
      std::string(api->version) != CUDL_VERSION_STRING) {
    const std::string theirs = api == nullptr || api->version == nullptr
                                   ? "an unknown cudl"
                                   : "cudl " + std::string(api->version) + " (plugin interface " +
                                         std::to_string(api->abi) + ")";
    dlclose(handle);
    out.reason = "cudl's CUDA plugin " + path + " belongs to " + theirs + ", but this libcudl is cudl " +
                 CUDL_VERSION_STRING + " (plugin interface " + std::to_string(kCudaPluginAbi) +
                 "): install libcudl and libcudl_cuda from the same build";
    return out;
  }
  // The handle is kept open for the life of the process: backends made by the plugin may live
  // until exit.
  out.api = api;
  return out;
}

const LoadedCudaPlugin& cuda_plugin() {
  static const LoadedCudaPlugin plugin = [] {
#if CUDL_HAVE_CUDA
    return load_cuda_plugin(cuda_plugin_path());
#else
    LoadedCudaPlugin none;
    none.reason =
        "this build of cudl has no CUDA backend: reconfigure with -DCUDL_CUDA=ON on a machine with the CUDA "
        "toolkit (nvcc, cuBLAS, cuDNN 9)";
    return none;
#endif
  }();
  return plugin;
}

}  // namespace cudl::detail

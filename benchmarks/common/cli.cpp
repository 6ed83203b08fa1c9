#include "cli.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "cudl/error.hpp"

namespace bench {

cudl::Device usable_device(const std::string& kind) {
  const cudl::Device device = kind == "gpu" ? cudl::Device::kCuda : cudl::Device::kCpu;
  if (device == cudl::Device::kCuda) {
    const cudl::GpuProbe probe = cudl::probe_gpu();
    if (!probe.usable) throw cudl::Error("cannot use the GPU: " + probe.reason);
  }
  return device;
}

bool json_path_writable(const char* tool, const std::string& path, const char* flag) {
  struct stat st {};
  if (stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {  // the final rename would fail
    std::fprintf(stderr, "%s: cannot write %s file %s: it is a directory\n", tool, flag, path.c_str());
    return false;
  }
  const std::string probe = path + ".tmp";
  std::FILE* f = std::fopen(probe.c_str(), "w");
  if (f == nullptr) {
    std::fprintf(stderr, "%s: cannot write %s file %s: %s\n", tool, flag, path.c_str(), std::strerror(errno));
    return false;
  }
  std::fclose(f);
  std::remove(probe.c_str());
  return true;
}

}  // namespace bench

#pragma once
// A temporary folder of a harness's own (under $TMPDIR, else /tmp), made once per process, for
// the files the loaders take by path. Shared by the harnesses that write files.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace cudl_fuzz {

// The folder cudl_fuzz_<name>_XXXXXX, made on the first call.
inline const std::filesystem::path& folder(const char* name) {
  static const std::filesystem::path dir = [name] {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/cudl_fuzz_" + name + "_XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) std::abort();
    return std::filesystem::path(pattern);
  }();
  return dir;
}

}  // namespace cudl_fuzz

#include "cli.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "cudl/error.hpp"

namespace bench {

double parse_number(const std::string& flag, const std::string& text) {
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || errno != 0 || !std::isfinite(v))
    throw cudl::Error(flag + ": expected a number, found '" + text + "'");
  return v;
}

namespace {

[[noreturn]] void not_whole(const std::string& flag, const std::string& text, const std::string& lo,
                            const std::string& hi) {
  parse_number(flag, text);  // text that is no number at all says so
  throw cudl::Error(flag + ": expected a whole number in [" + lo + ", " + hi + "], found '" + text + "'");
}

// Digits after an optional sign, and nothing else (strtoll alone skips spaces and accepts "+").
bool whole_text(const std::string& text, bool sign) {
  size_t i = sign && !text.empty() && text[0] == '-' ? 1 : 0;
  if (i == text.size()) return false;
  for (; i < text.size(); ++i)
    if (text[i] < '0' || text[i] > '9') return false;
  return true;
}

}  // namespace

int64_t parse_int(const std::string& flag, const std::string& text, int64_t lo, int64_t hi) {
  errno = 0;
  const long long v = whole_text(text, true) ? std::strtoll(text.c_str(), nullptr, 10) : 0;
  if (!whole_text(text, true) || errno == ERANGE || v < lo || v > hi)
    not_whole(flag, text, std::to_string(lo), std::to_string(hi));
  return v;
}

uint64_t parse_uint64(const std::string& flag, const std::string& text) {
  errno = 0;
  const unsigned long long v = whole_text(text, false) ? std::strtoull(text.c_str(), nullptr, 10) : 0;
  if (!whole_text(text, false) || errno == ERANGE)
    not_whole(flag, text, "0", std::to_string(std::numeric_limits<uint64_t>::max()));
  return v;
}

std::string parse_device(const std::string& text) {
  if (text != "cpu" && text != "gpu") throw cudl::Error("--device: expected cpu or gpu, found '" + text + "'");
  return text;
}

cudl::Precision parse_precision(const std::string& text) {
  if (text != "fp32" && text != "tf32") throw cudl::Error("--precision: expected fp32 or tf32, found '" + text + "'");
  return text == "fp32" ? cudl::Precision::kFp32 : cudl::Precision::kTf32;
}

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

bool for_each_flag(int argc, char** argv, bool* help,
                   const std::function<bool(const std::string& flag, const std::string& value)>& handle) {
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      *help = true;
      continue;
    }
    if (i + 1 >= argc) throw cudl::Error(flag == "" ? "empty argument" : flag + ": missing value (see --help)");
    const std::string value = argv[++i];
    if (!handle(flag, value)) throw cudl::Error("unknown option '" + flag + "' (see --help)");
  }
  return *help;
}

}  // namespace bench

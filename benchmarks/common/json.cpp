#include "json.hpp"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <fstream>

#include "cudl/error.hpp"

namespace bench {

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];  // snprintf directly: fmt passes a double, which %x does not read
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string num(double v) { return std::isfinite(v) ? fmt("%.9g", v) : "null"; }

void write_json_file(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    CUDL_REQUIRE(out.good(), "cannot write --json file " + tmp);
    out << text;
    out.close();
    if (out.fail()) {
      std::remove(tmp.c_str());
      throw cudl::Error("error writing --json file " + tmp);
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    std::remove(tmp.c_str());  // never leave the temporary file behind
    throw cudl::Error("cannot rename " + tmp + " to " + path + ": " + why);
  }
}

int save_json(const char* tool, const std::string& path, const std::string& text, int status) {
  try {
    write_json_file(path, text);
  } catch (const cudl::Error& e) {
    std::fprintf(stderr, "%s: %s\n", tool, e.what());
    return 2;
  }
  return status;
}

}  // namespace bench

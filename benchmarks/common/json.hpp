#pragma once
// The pieces of the benchmarks' --json reports: numbers and strings as JSON text, and the file
// written so that an existing report is never left half-written.
#include <cstddef>
#include <string>
#include <vector>

namespace bench {

// One number through a printf format: fmt("%.3f", 1.5) is "1.500". The printed lines use it too.
std::string fmt(const char* f, double v);
// s as a JSON string, quotes included; '"' and '\' escaped, control characters as \u00XX.
std::string quote(const std::string& s);
// v as a JSON number (%.9g); non-finite values (a diverged loss) become null.
std::string num(double v);
// xs as a JSON array of numbers: "[1, 2.5, null]".
template <class T>
std::string array(const std::vector<T>& xs) {
  std::string s = "[";
  for (size_t i = 0; i < xs.size(); ++i) s += (i ? ", " : "") + num(static_cast<double>(xs[i]));
  return s + "]";
}

// Writes text to path + ".tmp", then renames that to path. Throws cudl::Error ("cannot write
// --json file PATH.tmp", "error writing ...", "cannot rename ...") when it cannot.
void write_json_file(const std::string& path, const std::string& text);

// A benchmark main's last step: writes text to path (write_json_file) and returns status; when the
// file cannot be written, prints "TOOL: REASON" on stderr and returns 2.
int save_json(const char* tool, const std::string& path, const std::string& text, int status);

}  // namespace bench

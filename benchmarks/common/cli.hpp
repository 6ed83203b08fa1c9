#pragma once
// The command-line pieces every benchmark program (bench_dbn, bench_vgg) shares: values parsed
// with errors that name the flag, and the checks made before a run: the GPU and the --json path.
#include <cstdint>
#include <functional>
#include <limits>
#include <type_traits>
#include <string>

#include "cudl/device.hpp"

namespace bench {

// text as a finite number; throws cudl::Error "FLAG: expected a number, found 'TEXT'".
double parse_number(const std::string& flag, const std::string& text);
// text as a whole number (decimal digits) in [lo, hi]; throws cudl::Error "FLAG: expected a
// whole number in [LO, HI], found 'TEXT'" (or "expected a number" for text that is none). Never
// narrows: parse_whole<T> checks the range of the type it returns.
int64_t parse_int(const std::string& flag, const std::string& text, int64_t lo, int64_t hi);
uint64_t parse_uint64(const std::string& flag, const std::string& text);
template <typename T>
T parse_whole(const std::string& flag, const std::string& text, T lo, T hi = std::numeric_limits<T>::max()) {
  static_assert(std::is_signed_v<T> && sizeof(T) <= sizeof(int64_t), "parse_uint64 for unsigned values");
  return static_cast<T>(parse_int(flag, text, lo, hi));
}
// --device: "cpu" or "gpu", returned as given; anything else throws cudl::Error.
std::string parse_device(const std::string& text);
// --precision: fp32 or tf32; anything else throws cudl::Error.
cudl::Precision parse_precision(const std::string& text);

// Walks argv as "--flag value" pairs: --help/-h set *help; a flag without a value, or a handler
// that returns false (an unknown flag), throws cudl::Error naming it.
bool for_each_flag(int argc, char** argv, bool* help,
                   const std::function<bool(const std::string& flag, const std::string& value)>& handle);

// The device that --device named ("cpu" or "gpu"). A GPU is checked at once, before any data is
// read or backend made: throws cudl::Error "cannot use the GPU: REASON" when none is usable.
cudl::Device usable_device(const std::string& kind);

// Creates and removes path + ".tmp" (never touching path itself), so that an unwritable output
// path is found before the run it was meant to record. On failure prints "TOOL: cannot write FLAG
// file PATH: REASON" on stderr and returns false.
bool json_path_writable(const char* tool, const std::string& path, const char* flag = "--json");

}  // namespace bench

#pragma once
// The command-line pieces every benchmark program (bench_dbn, bench_vgg) shares: values parsed
// with errors that name the flag, and the checks made before a run: the GPU and the --json path.
#include <cstdint>
#include <functional>
#include <string>

#include "cudl/device.hpp"

namespace bench {

// text as a finite number; throws cudl::Error "FLAG: expected a number, found 'TEXT'".
double parse_number(const std::string& flag, const std::string& text);
// text as a whole number in [lo, hi]; throws cudl::Error "FLAG: expected a whole number ≥ LO,
// found 'TEXT'". hi is each program's sanity bound and is not named in the message.
int64_t parse_int(const std::string& flag, const std::string& text, int64_t lo, double hi);
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

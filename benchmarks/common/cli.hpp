#pragma once
// The checks every benchmark program (bench_dbn, bench_vgg) makes before a run: the GPU and the
// paths it will write. Their command lines: command_line.hpp.
#include <string>

#include "cudl/device.hpp"

namespace bench {

// The device that --device named ("cpu" or "gpu"). A GPU is checked at once, before any data is
// read or backend made: throws cudl::Error "cannot use the GPU: REASON" when none is usable.
cudl::Device usable_device(const std::string& kind);

// Creates and removes path + ".tmp" (never touching path itself), so that an unwritable output
// path is found before the run it was meant to record. On failure prints "TOOL: cannot write FLAG
// file PATH: REASON" on stderr and returns false.
bool json_path_writable(const char* tool, const std::string& path, const char* flag = "--json");

}  // namespace bench

// libFuzzer harness for the safetensors reader (built and run by run_fuzz.sh). Any input must
// either parse into a file whose every tensor can be copied out, or throw cudl::Error: a crash,
// a sanitizer report, another exception type or a leak is a finding.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "cudl/error.hpp"
#include "io/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto file = cudl::io::SafetensorsFile::parse(data, size, "fuzz input");
    // Use it as a checkpoint loader would: every entry, its bytes, the metadata.
    size_t total = 0;
    for (const auto& name : file.names()) {
      const auto& entry = file.entry(name);
      std::vector<uint8_t> out(entry.bytes);
      file.copy_to(name, out.data(), out.size());
      total += entry.bytes;
    }
    if (total > size) __builtin_trap();  // the tensors tile the data section, inside the input
    for (const auto& [key, value] : file.metadata()) total += key.size() + value.size();
  } catch (const cudl::Error&) {
    // A refused file: the expected outcome for almost every input.
  }
  return 0;
}

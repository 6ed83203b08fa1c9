// libFuzzer harness for ImageFolderDataset's decoders (built and run by `run_fuzz.sh image`). An
// input is one image file's bytes (PNG or JPEG, told by its first bytes as the loader tells them):
// it is written as the only image of a one-class folder and opened with options taken from its
// size (channels 0, 1 or 3; refuse or resize to 7×9; header-only or cached), then its row is
// filled. Every call may throw cudl::Error; a crash, a sanitizer report, another exception, a leak
// or an allocation beyond -malloc_limit_mb is a finding.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cudl/error.hpp"
#include "cudl/image_folder.hpp"
#include "fuzz_folder.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace fs = std::filesystem;
  static const fs::path root = [] {
    const fs::path r = cudl_fuzz::folder("image") / "data";
    fs::create_directories(r / "a");
    return r;
  }();
  {
    std::ofstream f(root / "a" / "input.png", std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    if (!f) std::abort();
  }
  cudl::ImageFolderOptions o;
  o.channels = static_cast<int>(size % 3) == 2 ? 3 : static_cast<int>(size % 3);
  if ((size / 3) % 2 == 1) {
    o.height = 7;
    o.width = 9;
    o.resize = cudl::ImageFolderOptions::Resize::kBilinear;
  }
  o.cache = (size / 6) % 2 == 1;
  try {
    const auto d = cudl::ImageFolderDataset::open(root.string(), o);
    std::vector<float> x(static_cast<size_t>(d->example_numel())), y(1);
    const int64_t row = 0;
    d->fill(&row, 1, x.data(), y.data());
    for (const float v : x)
      if (!(v >= 0.0f && v <= 1.0f)) std::abort();  // every value in [0, 1]
    (void)d->describe();
  } catch (const cudl::Error&) {
  }
  return 0;
}

// libFuzzer harness for the CSV reader (built and run by `run_fuzz.sh csv`). An input is three
// option bytes, then the CSV text:
//   byte 0: bits 0-1 header (auto, yes, no, auto), 2-3 missing (refuse, zero, mean, refuse),
//           4-5 targets (auto, classes, values, auto), 6-7 separator (',', ';', '\t', ',');
//   byte 1: bit 7 set: the target by name, kNames[bits 0-2]; else by index (bits 0-3) − 8;
//   byte 2: bits 0-3 classes (0: from the labels); bits 4-6 the ignored column (0: none, 7: the
//           name "id", else the index k − 2); bit 7: written to a file and read with read(),
//           else parsed in memory.
// Every row is filled and checked: no NaN or inf among the examples (the policies replace
// missing cells), labels within [0, classes). cudl::Error is the only exception allowed; a crash,
// a sanitizer report, another exception, a broken check, a leak or an allocation beyond
// -malloc_limit_mb is a finding.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cudl/csv.hpp"
#include "cudl/error.hpp"
#include "fuzz_folder.hpp"

namespace {

const char* const kNames[] = {"y", "label", "species", "price", "x", "a", "", "id"};

cudl::CsvOptions options(const uint8_t* b) {
  cudl::CsvOptions o;
  static const cudl::CsvOptions::Header kHeader[] = {cudl::CsvOptions::Header::kAuto, cudl::CsvOptions::Header::kYes,
                                                     cudl::CsvOptions::Header::kNo, cudl::CsvOptions::Header::kAuto};
  static const cudl::CsvOptions::Missing kMissing[] = {cudl::CsvOptions::Missing::kRefuse, cudl::CsvOptions::Missing::kZero,
                                                       cudl::CsvOptions::Missing::kMean, cudl::CsvOptions::Missing::kRefuse};
  static const cudl::CsvOptions::Targets kTargets[] = {cudl::CsvOptions::Targets::kAuto, cudl::CsvOptions::Targets::kClasses,
                                                       cudl::CsvOptions::Targets::kValues, cudl::CsvOptions::Targets::kAuto};
  static const char kSeparator[] = {',', ';', '\t', ','};
  o.header = kHeader[b[0] & 3];
  o.missing = kMissing[(b[0] >> 2) & 3];
  o.targets = kTargets[(b[0] >> 4) & 3];
  o.separator = kSeparator[(b[0] >> 6) & 3];
  if (b[1] & 0x80)
    o.target = kNames[b[1] & 7];
  else
    o.target = static_cast<int64_t>(b[1] & 15) - 8;
  o.classes = b[2] & 15;
  const int ignore = (b[2] >> 4) & 7;
  if (ignore == 7)
    o.ignore = {"id"};
  else if (ignore > 0)
    o.ignore = {static_cast<int64_t>(ignore) - 2};
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  const cudl::CsvOptions o = options(data);
  const std::string_view text(reinterpret_cast<const char*>(data) + 3, size - 3);
  std::unique_ptr<cudl::CsvDataset> d;
  try {
    if (data[2] & 0x80) {
      const std::filesystem::path path = cudl_fuzz::folder("csv") / "input.csv";
      {
        std::ofstream f(path, std::ios::binary | std::ios::trunc);
        f.write(text.data(), static_cast<std::streamsize>(text.size()));
        if (!f) std::abort();
      }
      d = cudl::CsvDataset::read(path.string(), o);
    } else {
      d = cudl::CsvDataset::parse(text, "input", o);
    }
  } catch (const cudl::Error&) {
    return 0;
  }
  // What was read must be what a Dataset promises.
  const int64_t classes = d->num_classes();
  if (d->size() < 1 || d->example_numel() < 1 || d->target_shape() != (classes > 0 ? cudl::Shape{} : cudl::Shape{1})) std::abort();
  if (!d->class_names().empty() && static_cast<int64_t>(d->class_names().size()) > classes) std::abort();
  if (d->feature_names().size() != static_cast<size_t>(d->example_numel())) std::abort();
  std::vector<float> x(static_cast<size_t>(d->example_numel())), y(1);
  for (int64_t r = 0; r < d->size(); ++r) {
    d->fill(&r, 1, x.data(), y.data());
    for (const float v : x)
      if (!std::isfinite(v)) std::abort();
    if (!std::isfinite(y[0])) std::abort();
    if (classes > 0 && (y[0] < 0.0f || y[0] >= static_cast<float>(classes) || y[0] != std::floor(y[0]))) std::abort();
  }
  (void)d->describe();
  return 0;
}

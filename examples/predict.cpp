// Classifying images with a model saved by cudl (cudl::save_model, bench_dbn --save): loads the
// model on the GPU when there is one, else on the CPU, says what the file holds, and prints the
// first predictions and, given labels, the accuracy.
//
//   predict MODEL IMAGES [LABELS] [--cpu]   (--help: what each is)
//
// Exit status 2 for bad input (a missing or malformed file, images that do not fit the model).
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "command_line.hpp"  // benchmarks/common: the command line of every cudl program (CLI11)
#include "cudl/cudl.hpp"

namespace {

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// Rows of `features` floats from IMAGES, scaled as the model's training data was.
std::vector<float> read_rows(const std::string& path, int64_t features) {
  std::vector<float> x;
  if (ends_with(path, ".f32") || ends_with(path, ".raw")) {
    // Raw float32, read as they lie in the file: this assumes a little-endian host (x86, Arm).
    std::error_code ec;
    const int64_t bytes = static_cast<int64_t>(std::filesystem::file_size(path, ec));
    if (ec) throw cudl::Error(path + ": " + ec.message());
    const int64_t row_bytes = features * static_cast<int64_t>(sizeof(float));
    if (bytes == 0 || bytes % row_bytes != 0)
      throw cudl::Error(path + ": holds " + std::to_string(bytes) + " bytes, not a whole number of rows of " +
                        std::to_string(features) + " float32 features (the model's input)");
    x.resize(static_cast<size_t>(bytes) / sizeof(float));
    std::ifstream in(path, std::ios::binary);
    if (!in.read(reinterpret_cast<char*>(x.data()), bytes)) throw cudl::Error(path + ": read failed");
    return x;
  }
  const cudl::IdxImages images = cudl::read_idx_images(path);
  if (images.rows * images.cols != features)
    throw cudl::Error(path + ": images of " + std::to_string(images.rows) + "×" + std::to_string(images.cols) +
                      " = " + std::to_string(images.rows * images.cols) + " pixels, but the model takes " +
                      std::to_string(features) + " features");
  // The same scaling as cudl's IDX loader (load_idx_dataset) and so bench_dbn and mnist_mlp: a
  // model trained on other scaling (raw bytes, mean/std) gives wrong answers here without an error.
  x.reserve(images.pixels.size());
  for (const uint8_t p : images.pixels) x.push_back(static_cast<float>(p) / 255.f);
  return x;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(3);  // MODEL, IMAGES, LABELS ("": none)
  bool cpu_only = false;
  CLI::App app(R"(Classifies images with a model saved by cudl (cudl::save_model, bench_dbn --save): loads the
model on the GPU when there is one, else on the CPU, says what the file holds, and prints the
first predictions and, given labels, the accuracy.
)",
               "predict");
  bench::setup_app(app, 14);
  app.footer("Exit status: 0 success, 2 bad input (a missing or malformed file, images that do not fit the model).");
  app.add_option("MODEL", args[0], "a model saved by cudl (a .safetensors file)")
      ->type_name("")
      ->required();
  app.add_option("IMAGES", args[1],
                 "an IDX images file (MNIST format, gzipped or not), pixels scaled to [0, 1] by /255;\n"
                 "or, when the name ends in .f32 or .raw, N rows of little-endian float32 features,\n"
                 "used as they are")
      ->type_name("")
      ->required();
  app.add_option("LABELS", args[2], "an IDX labels file, one per image: prints the accuracy")->type_name("");
  app.add_flag("--cpu", cpu_only, "run on the CPU even where a GPU is usable");
  const auto check = [&] {
    const char* const names[] = {"MODEL", "IMAGES", "LABELS"};
    for (size_t i = 0; i < args.size(); ++i)
      if (!args[i].empty()) bench::require_path(names[i], args[i], /*folder=*/false);
  };
  if (const std::optional<int> status = bench::parse_command_line(app, argc, argv, check)) return *status;
  try {
    // 1. What the file says about itself, read before loading anything.
    const cudl::CheckpointInfo info = cudl::inspect_checkpoint(args[0]);
    std::printf("%s: a cudl %s, written by cudl %s at %s\n", args[0].c_str(), info.kind.c_str(),
                info.cudl_version.c_str(), info.saved_at.c_str());
    std::printf("  saved from %s\n  input %s\n", info.saved_from.c_str(), cudl::to_string(info.input_shape).c_str());
    for (size_t i = 0; i < info.layers.size(); ++i) std::printf("  layer %zu: %s\n", i, info.layers[i].c_str());

    // 2. The model, on the GPU if one is usable, else the CPU.
    const bool gpu = !cpu_only && cudl::probe_gpu().usable;
    std::unique_ptr<cudl::Backend> backend = cudl::make_backend(gpu ? cudl::Device::kCuda : cudl::Device::kCpu);
    std::printf("running on %s\n", backend->describe().c_str());
    std::unique_ptr<cudl::Network> net = cudl::load_model(args[0], *backend);
    const int64_t features = cudl::numel(net->input_shape());

    // 3. The images as rows of features (and their labels), then the predicted classes.
    const std::vector<float> rows = read_rows(args[1], features);
    const size_t n = rows.size() / static_cast<size_t>(features);
    std::vector<uint8_t> labels;
    if (!args[2].empty()) {
      labels = cudl::read_idx_labels(args[2], static_cast<int>(cudl::numel(net->output_shape())));
      if (labels.size() != n)
        throw cudl::Error(args[2] + " holds " + std::to_string(labels.size()) + " labels but " + args[1] +
                          " holds " + std::to_string(n) + " images");
    }
    const cudl::Tensor x = cudl::Tensor::from_host(rows, {static_cast<int64_t>(n), features}, *backend);
    const std::vector<int> predicted = cudl::predict(*net, x);

    // 4. The first few predictions and, with labels, the accuracy.
    for (size_t i = 0; i < std::min<size_t>(n, 10); ++i) {
      std::printf("image %zu: class %d", i, predicted[i]);
      if (!labels.empty()) std::printf(" (label %d)", labels[i]);
      std::printf("\n");
    }
    size_t right = 0;
    for (size_t i = 0; i < labels.size(); ++i) right += predicted[i] == labels[i];
    if (!labels.empty()) std::printf("accuracy %.4f (%zu of %zu)\n", static_cast<double>(right) / n, right, n);
    return 0;
  } catch (const cudl::Error& e) {
    std::fprintf(stderr, "predict: %s\n", e.what());
    return 2;
  }
}

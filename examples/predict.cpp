// Classifying images with a model saved by cudl (cudl::save_model, bench_dbn --save): loads the
// model on the GPU when there is one, else on the CPU, says what the file holds, and prints the
// first predictions and, given labels, the accuracy.
//
//   predict MODEL IMAGES [LABELS] [--cpu]
//
// Exit status 2 for bad input (a missing or malformed file, images that do not fit the model).
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "cudl/cudl.hpp"

namespace {

const char* const kUsage =
    "usage: predict MODEL IMAGES [LABELS] [--cpu]\n"
    "  MODEL   a model saved by cudl (a .safetensors file)\n"
    "  IMAGES  an IDX images file (MNIST format, gzipped or not), pixels scaled to [0, 1] by /255;\n"
    "          or, when the name ends in .f32 or .raw, N rows of little-endian float32 features,\n"
    "          used as they are\n"
    "  LABELS  an IDX labels file, one per image: prints the accuracy\n"
    "  --cpu   run on the CPU even where a GPU is usable\n";

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
  std::vector<std::string> args;
  bool cpu_only = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) {
      std::printf("%s", kUsage);
      return 0;
    }
    if (!std::strcmp(argv[i], "--cpu")) {
      cpu_only = true;
    } else if (argv[i][0] != '-') {
      args.push_back(argv[i]);
    } else {
      std::fprintf(stderr, "predict: unknown option '%s'\n%s", argv[i], kUsage);
      return 2;
    }
  }
  if (args.size() < 2 || args.size() > 3) {
    std::fprintf(stderr, "%s", kUsage);
    return 2;
  }
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
    if (args.size() == 3) {
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

// The files the checkpoint end-to-end tests read (tests/CMakeLists.txt), made here so that they
// need no downloaded data: a tiny MLP (16-8-3, ReLU) trained on synthetic 4×4 "images" and saved
// with cudl::save_model, the test images and labels as IDX files, and what cudl saved, as JSON,
// for the Python reader (tests/python/read_checkpoint.py) to compare against.
//
//   checkpoint_fixture DIR   writes into DIR (created if missing):
//     model.safetensors    the model
//     images-idx3-ubyte    20 test images, 4×4, plain IDX3 (magic 0x00000803, big-endian sizes)
//     labels-idx1-ubyte    their labels (0..2), plain IDX1
//     images.f32           the same images as raw little-endian float32 rows, scaled by 1/255
//     images-5x5-idx3-ubyte  3 images of 5×5: 25 features, which the model does not take
//     tensors.json         {"tensors": [{name, shape, values}], "inputs": rows, "outputs": the
//                          model's scores for those rows, computed by cudl}
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cudl/cudl.hpp"

namespace {

constexpr int kSide = 4, kPixels = kSide * kSide, kClasses = 3;

// Image i of a stream: noise everywhere, and a bright region that says the class (top-left
// quadrant, top-right quadrant, bottom half), so that a small MLP learns it in a few epochs.
void make_images(uint64_t stream, int count, std::vector<uint8_t>& pixels, std::vector<uint8_t>& labels) {
  for (int i = 0; i < count; ++i) {
    const int label = i % kClasses;
    labels.push_back(static_cast<uint8_t>(label));
    for (int p = 0; p < kPixels; ++p) {
      const int r = p / kSide, c = p % kSide;
      const bool bright = label == 0 ? (r < 2 && c < 2) : label == 1 ? (r < 2 && c >= 2) : r >= 2;
      const uint32_t noise = cudl::rng::bits(7, stream, static_cast<uint64_t>(i * kPixels + p)).v[0] % 90;
      pixels.push_back(static_cast<uint8_t>(noise + (bright ? 160 : 0)));
    }
  }
}

// Pixels as the training programs and predict scale them: /255 into [0, 1].
std::vector<float> scaled(const std::vector<uint8_t>& pixels) {
  std::vector<float> x;
  for (const uint8_t p : pixels) x.push_back(static_cast<float>(p) / 255.f);
  return x;
}

void put_be32(std::ofstream& out, uint32_t v) {
  const char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
                     static_cast<char>(v)};
  out.write(b, 4);
}

// An uncompressed IDX file: the magic, each dimension as a big-endian u32, then the bytes.
void write_idx(const std::string& path, uint32_t magic, const std::vector<uint32_t>& dims,
               const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  put_be32(out, magic);
  for (const uint32_t d : dims) put_be32(out, d);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw cudl::Error(path + ": write failed");
}

}  // namespace

int main(int argc, char** argv) try {
  if (argc != 2) {
    std::fprintf(stderr, "usage: checkpoint_fixture DIR\n");
    return 2;
  }
  const std::string dir = argv[1];
  std::filesystem::create_directories(dir);
  cudl::CpuBackend cpu(2);

  // Train on 600 images (the test images are another stream of the same kind).
  std::vector<uint8_t> train_pixels, train_labels, test_pixels, test_labels;
  make_images(/*stream=*/1, 600, train_pixels, train_labels);
  make_images(/*stream=*/2, 20, test_pixels, test_labels);
  std::vector<float> train_y(train_labels.begin(), train_labels.end());
  const cudl::Tensor x = cudl::Tensor::from_host(scaled(train_pixels), {600, kPixels}, cpu);
  const cudl::Tensor y = cudl::Tensor::from_host(train_y, {600}, cpu);

  cudl::Network net(cpu, {kPixels});
  net.add(cudl::dense(8, cudl::Activation::kRelu)).add(cudl::dense(kClasses));
  net.initialize(/*seed=*/1, /*weight_stddev=*/0.3f);
  cudl::SoftmaxCrossEntropy loss;
  cudl::AdamOptions adam;
  adam.learn_rate = 1e-2f;
  cudl::Adam opt(net.param_set(), adam);
  cudl::FitOptions fit;
  fit.epochs = 15;
  fit.batch = 32;
  fit.progress = cudl::Progress::kNone;
  cudl::fit(net, loss, opt, x, y, fit);
  cudl::save_model(net, dir + "/model.safetensors");

  write_idx(dir + "/images-idx3-ubyte", cudl::kIdxImagesMagic, {20, kSide, kSide}, test_pixels);
  write_idx(dir + "/labels-idx1-ubyte", cudl::kIdxLabelsMagic, {20}, test_labels);
  write_idx(dir + "/images-5x5-idx3-ubyte", cudl::kIdxImagesMagic, {3, 5, 5}, std::vector<uint8_t>(3 * 25, 128));
  const std::vector<float> test_x = scaled(test_pixels);
  {
    std::ofstream raw(dir + "/images.f32", std::ios::binary);  // little-endian host assumed, as in predict
    raw.write(reinterpret_cast<const char*>(test_x.data()), static_cast<std::streamsize>(test_x.size() * 4));
  }

  // Every tensor the model file should hold, by the names checkpoint.hpp promises. nlohmann
  // writes floats with 17 significant digits, so each value reads back bit for bit.
  nlohmann::json tensors = nlohmann::json::array();
  for (int64_t i = 0; i < net.num_layers(); ++i) {
    for (const auto& [name, t] : net.layer_params(i)) {
      tensors.push_back(
          {{"name", "layers." + std::to_string(i) + "." + name}, {"shape", t.shape()}, {"values", t.to_vector()}});
    }
  }
  // cudl's own scores for the first 5 test images: the reference for the Python forward passes.
  const cudl::Tensor probe = cudl::Tensor::from_host(std::vector<float>(test_x.begin(), test_x.begin() + 5 * kPixels),
                                                     {5, kPixels}, cpu);
  const std::vector<float> scores = net.forward(probe, cudl::Mode::kInfer).to_vector();
  nlohmann::json inputs = nlohmann::json::array(), outputs = nlohmann::json::array();
  for (int r = 0; r < 5; ++r) {
    inputs.push_back(std::vector<float>(test_x.begin() + r * kPixels, test_x.begin() + (r + 1) * kPixels));
    outputs.push_back(std::vector<float>(scores.begin() + r * kClasses, scores.begin() + (r + 1) * kClasses));
  }
  std::ofstream json_out(dir + "/tensors.json");
  json_out << nlohmann::json{{"tensors", tensors}, {"inputs", inputs}, {"outputs", outputs}}.dump(1) << "\n";
  if (!json_out) throw cudl::Error(dir + "/tensors.json: write failed");
  std::printf("checkpoint_fixture: wrote the model, 20 test images and tensors.json to %s\n", dir.c_str());
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "checkpoint_fixture: %s\n", e.what());
  return 1;
}

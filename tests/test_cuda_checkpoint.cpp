// Checkpoints across devices: a model saved on the CPU loads on the GPU and the reverse, the file
// being the same either way (the same tensors, byte for byte, whichever device wrote them), and a
// run checkpointed on one device resumes on the other. Skipped, with the reason, without a GPU.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "cuda_parity.hpp"
#include "cudl/checkpoint.hpp"
#include "cudl/conv_layers.hpp"
#include "cudl/cpu_backend.hpp"
#include "cudl/cuda_backend.hpp"
#include "cudl/device.hpp"
#include "cudl/rng.hpp"
#include "io/safetensors.hpp"
#include "test_support.hpp"

using namespace cudl;
using cudl::testing::TempDir;

namespace {

// The parity fixture's CPU and GPU (skipping without a GPU), and a folder for the files.
class CudaCheckpoint : public CudaParity {
 protected:
  TempDir dir;
};

// A small image network with layer state (BatchNorm's running statistics), trained one step.
std::unique_ptr<Network> image_net(Backend& backend) {
  auto net = std::make_unique<Network>(backend, Shape{1, 8, 8});
  net->add(conv2d(4, 3, Activation::kIdentity, 1, 1))
      .add(batch_norm2d())
      .add(relu())
      .add(max_pool2d(2))
      .add(flatten())
      .add(dense(3));
  net->initialize(5, 0.2f);
  const Tensor x = Tensor::from_host(cudl::testing::uniform_values(21, 4 * 64, -1.0f, 1.0f), {4, 1, 8, 8}, backend);
  Tensor dout = Tensor::from_host(cudl::testing::uniform_values(22, 4 * 3, -1.0f, 1.0f), {4, 3}, backend);
  net->forward(x, Mode::kTrain);
  net->backward(x, dout);
  return net;
}

// Every tensor of a file, by name, as bytes.
std::vector<std::pair<std::string, std::vector<uint8_t>>> tensors_of(const std::string& path) {
  const io::SafetensorsFile f = io::SafetensorsFile::read(path);
  std::vector<std::pair<std::string, std::vector<uint8_t>>> out;
  for (const std::string& name : f.names()) {
    std::vector<uint8_t> bytes(f.entry(name).bytes);
    f.copy_to(name, bytes.data(), bytes.size());
    out.emplace_back(name, std::move(bytes));
  }
  return out;
}

}  // namespace

TEST_F(CudaCheckpoint, TheSameModelSavedFromEitherDeviceIsTheSameFile) {
  std::unique_ptr<Network> on_cpu = image_net(cpu);
  save_model(*on_cpu, dir.str("cpu.safetensors"));
  // The same values on the GPU (copied, not retrained: training differs in rounding).
  std::unique_ptr<Network> on_gpu = load_model(dir.str("cpu.safetensors"), gpu());
  save_model(*on_gpu, dir.str("gpu.safetensors"));
  EXPECT_EQ(tensors_of(dir.str("gpu.safetensors")), tensors_of(dir.str("cpu.safetensors")));
  EXPECT_THAT(inspect_checkpoint(dir.str("gpu.safetensors")).saved_from, ::testing::HasSubstr("cuda"));
  // And back: a GPU-saved model on the CPU computes what the CPU network computes.
  std::unique_ptr<Network> back = load_model(dir.str("gpu.safetensors"), cpu);
  const Tensor x = Tensor::from_host(cudl::testing::uniform_values(23, 5 * 64, -1.0f, 1.0f), {5, 1, 8, 8}, cpu);
  EXPECT_EQ(back->forward(x, Mode::kInfer).to_vector(), on_cpu->forward(x, Mode::kInfer).to_vector());
  const Tensor xg = Tensor::from_host(x.to_vector(), {5, 1, 8, 8}, gpu());
  const std::vector<float> yg = on_gpu->forward(xg, Mode::kInfer).to_vector();
  const std::vector<float> yc = on_cpu->forward(x, Mode::kInfer).to_vector();
  ASSERT_EQ(yg.size(), yc.size());
  for (size_t i = 0; i < yc.size(); ++i) EXPECT_NEAR(yg[i], yc[i], 1e-4f * (1.0f + std::fabs(yc[i]))) << i;
}

TEST_F(CudaCheckpoint, ARunCheckpointedOnTheGpuResumesOnTheCpu) {
  std::vector<float> xv, yv;
  for (int64_t r = 0; r < 512; ++r) {
    yv.push_back(static_cast<float>(r % 2));
    for (int c = 0; c < 8; ++c) {
      const rng::Philox4 b = rng::bits(3, 7, static_cast<uint64_t>(r * 8 + c));
      xv.push_back((r % 2 ? 1.0f : -1.0f) + 0.5f * rng::normal(b.v[0], b.v[1]));
    }
  }
  auto run = [&](Backend& backend, int epochs, const std::string& save, const std::string& resume) {
    const Tensor x = Tensor::from_host(xv, {512, 8}, backend), y = Tensor::from_host(yv, {512}, backend);
    Network net(backend, {8});
    net.add(dense(16, Activation::kRelu)).add(dense(2));
    net.initialize(1, 0.1f);
    const SoftmaxCrossEntropy loss;
    Adam opt(net.param_set(), AdamOptions{});
    FitOptions o;
    o.epochs = epochs;
    o.batch = 32;
    o.progress = Progress::kNone;
    o.checkpoint_path = save;
    o.resume_from = resume;
    const History h = fit(net, loss, opt, x, y, o);
    return std::make_pair(h, net.params().to_vector());
  };
  const auto [gpu_history, gpu_params] = run(gpu(), 2, dir.str("gpu.ckpt"), "");
  const auto [cpu_history, cpu_params] = run(cpu, 3, "", dir.str("gpu.ckpt"));
  ASSERT_EQ(cpu_history.epochs.size(), 3u);
  EXPECT_EQ(cpu_history.epochs[1].loss, gpu_history.epochs[1].loss);  // carried over from the file
  EXPECT_TRUE(std::isfinite(cpu_history.epochs[2].loss));
  EXPECT_LT(cpu_history.epochs[2].loss, cpu_history.epochs[0].loss);
}

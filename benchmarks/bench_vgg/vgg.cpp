#include "vgg.hpp"

#include <cmath>

#include "cudl/conv_layers.hpp"

namespace bench {

const std::vector<int64_t>& vgg16_features() {
  static const std::vector<int64_t> d = {64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0};
  return d;
}

void add_vgg16(cudl::Network& net, int64_t classes, uint64_t dropout_seed) {
  for (int64_t k : vgg16_features()) {
    if (k == 0) {
      net.add(cudl::max_pool2d(2));
    } else {
      net.add(cudl::conv2d(k, 3, cudl::Activation::kRelu, /*stride=*/1, /*padding=*/1));
    }
  }
  net.add(cudl::flatten())
      .add(cudl::dense(4096, cudl::Activation::kRelu))
      .add(cudl::dropout(0.5f, dropout_seed))
      .add(cudl::dense(4096, cudl::Activation::kRelu))
      .add(cudl::dropout(0.5f, dropout_seed + 1))
      .add(cudl::dense(classes));
}

void initialize_he(cudl::Network& net, uint64_t seed) {
  cudl::Backend& backend = net.backend();
  backend.fill(net.params(), 0.0f);  // biases 0; every weight is drawn below
  const int64_t layers = net.num_layers();
  for (int64_t i = 0; i < layers; ++i) {
    cudl::Tensor* w = nullptr;
    int64_t fan_in = 0;
    if (auto* conv = dynamic_cast<cudl::Conv2d*>(&net.layer(i))) {
      w = &conv->weight();  // K×C×R×S
      fan_in = w->size() / w->dim(0);
    } else if (auto* dense = dynamic_cast<cudl::Dense*>(&net.layer(i))) {
      w = &dense->weight();  // D×H
      fan_in = w->dim(0);
    }
    if (w == nullptr) continue;
    const float gain = i + 1 == layers ? 1.0f : 2.0f;
    backend.fill_normal(*w, seed + static_cast<uint64_t>(i) + 1, 0.0f,
                        std::sqrt(gain / static_cast<float>(fan_in)));
  }
}

double vgg16_step_flop(int64_t size, int64_t batch, int64_t classes) {
  const double n = static_cast<double>(batch);
  double flop = 0.0;
  int64_t channels = 3, side = size;
  bool first = true;
  for (int64_t k : vgg16_features()) {
    if (k == 0) {
      side /= 2;
      continue;
    }
    const double product = 2.0 * n * static_cast<double>(k * side * side * channels * 9);
    flop += product * (first ? 2 : 3);  // forward, weight gradient, input gradient
    first = false;
    channels = k;
  }
  const std::vector<int64_t> dense = {channels * side * side, 4096, 4096, classes};
  for (size_t i = 0; i + 1 < dense.size(); ++i)
    flop += 3 * 2.0 * n * static_cast<double>(dense[i]) * static_cast<double>(dense[i + 1]);
  return flop;
}

}  // namespace bench

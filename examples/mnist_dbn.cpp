// A deep belief net in the style of Hinton & Salakhutdinov (2006): a 784-500-500-2000 stack of
// Bernoulli RBMs pretrained greedily with CD-1, unrolled into a sigmoid network with a 10-way
// softmax on top, fine-tuned, and evaluated; the first layer's filters are written as a PNG.
// Usage: mnist_dbn [IDX directory] [pretrain epochs] [fine-tune epochs] [filters.png]
//   (default /usr/share/datasets/fashion-mnist, 2, 3, dbn_filters.png)
#include <cstdio>
#include <cstdlib>
#include <string>

#include "cudl/cudl.hpp"

int main(int argc, char** argv) try {
  const std::string dir = argc > 1 ? argv[1] : "/usr/share/datasets/fashion-mnist";
  const int pretrain_epochs = argc > 2 ? std::atoi(argv[2]) : 2;
  const int finetune_epochs = argc > 3 ? std::atoi(argv[3]) : 3;
  const std::string png = argc > 4 ? argv[4] : "dbn_filters.png";
  cudl::CpuBackend cpu;

  const cudl::Dataset data = cudl::load_idx_dataset(dir, "digits");
  const cudl::Split split = cudl::train_test_split(data, 0.33, /*seed=*/2014);
  const auto x = cudl::Tensor::from_host(split.train.x, {split.train.rows, data.features}, cpu);
  const auto y = cudl::Tensor::from_host(split.train.y, {split.train.rows}, cpu);
  const auto x_test = cudl::Tensor::from_host(split.test.x, {split.test.rows, data.features}, cpu);

  // Pixels in [0, 1] as probabilities of binary units; binary hidden units throughout.
  cudl::DbnConfig config;
  config.first_visible = cudl::Units::kBernoulli;
  config.hidden = cudl::Units::kBernoulli;
  config.top_hidden = cudl::Units::kBernoulli;
  config.learn_rate = 0.1f;
  config.momentum = 0.5f;
  config.l2 = 2e-4f;
  config.weight_stddev = 0.01f;
  cudl::DeepBeliefNet dbn(cpu, {data.features, 500, 500, 2000}, config);
  dbn.pretrain(x, pretrain_epochs, [](int64_t layer, const cudl::RbmEpochReport& e) {
    std::printf("pretrain layer %lld epoch %d: reconstruction error %.3f (%.2f s)\n", static_cast<long long>(layer + 1),
                e.epoch, e.reconstruction_error, e.seconds);
  });
  cudl::save_filter_grid(png, dbn.rbm(0).weights().to_vector(), data.features, 500, 28, 28);
  std::printf("first-layer filters written to %s\n", png.c_str());

  cudl::Network net(cpu, {data.features});
  net.add(cudl::dense(500, cudl::Activation::kSigmoid))
      .add(cudl::dense(500, cudl::Activation::kSigmoid))
      .add(cudl::dense(2000, cudl::Activation::kSigmoid))
      .add(cudl::dense(data.classes));
  net.initialize(/*seed=*/2014, /*weight_stddev=*/0.01f);  // the softmax layer; the rest is copied
  dbn.unroll_into(net);

  cudl::TrainConfig fine_tune;
  fine_tune.learn_rate = 0.1f;
  fine_tune.epochs = finetune_epochs;
  cudl::train(net, x, y, fine_tune, [](const cudl::EpochReport& e) {
    std::printf("fine-tune epoch %d: loss %.4f, training error %.4f, %.2f s\n", e.epoch, e.loss, e.err, e.seconds);
  });
  const auto report = cudl::classification_report(cudl::to_labels(split.test.y), cudl::predict(net, x_test),
                                                  static_cast<int>(data.classes));
  std::printf("%s\ntest accuracy %.4f\n", cudl::format_report(report).c_str(), report.accuracy);
  return 0;
} catch (const cudl::Error& e) {
  std::fprintf(stderr, "mnist_dbn: %s\n", e.what());
  return 1;
}

// A deep belief net in the style of Hinton & Salakhutdinov (2006): a 784-500-500-2000 stack of
// Bernoulli RBMs pretrained greedily with CD-1, unrolled into a sigmoid network with a 10-way
// softmax on top, fine-tuned, and evaluated; the first layer's filters are written as a PNG.
// Usage: mnist_dbn [DIR] [PRETRAIN_EPOCHS] [FINETUNE_EPOCHS] [PNG]
//   (default /usr/share/datasets/fashion-mnist, 2, 3, dbn_filters.png)
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>

#include "command_line.hpp"  // benchmarks/common: the command line of every cudl program (CLI11)
#include "cudl/cudl.hpp"

int main(int argc, char** argv) try {
  std::string dir = "/usr/share/datasets/fashion-mnist";
  int pretrain_epochs = 2;
  int finetune_epochs = 3;
  std::string png = "dbn_filters.png";
  CLI::App app(R"(A deep belief net in the style of Hinton & Salakhutdinov (2006), on the CPU: a 784-500-500-2000
stack of Bernoulli RBMs pretrained greedily with CD-1, unrolled into a sigmoid network with a
10-way softmax on top, fine-tuned and evaluated; the first layer's filters are written as a PNG.
)",
               "mnist_dbn");
  bench::setup_app(app, 21);
  app.footer("Exit status: 0 success, 2 bad input.");
  app.add_option("DIR", dir, "a folder of IDX files (default " + dir + ")")->type_name("");
  std::string pretrain_text, finetune_text;
  app.add_option("PRETRAIN_EPOCHS", pretrain_text, "CD-1 epochs per RBM (default 2)")->type_name("");
  app.add_option("FINETUNE_EPOCHS", finetune_text, "fine-tuning epochs (default 3)")->type_name("");
  app.add_option("PNG", png, "where the first layer's filters go (default " + png + ")")->type_name("");
  // Checked once parsing is done, and only where given (the defaults are the loader's to judge).
  const auto check = [&] {
    if (app.count("DIR") > 0) bench::require_path("DIR", dir, /*folder=*/true);
    if (app.count("PRETRAIN_EPOCHS") > 0)
      pretrain_epochs = bench::parse_whole<int>("PRETRAIN_EPOCHS", pretrain_text, 0);
    if (app.count("FINETUNE_EPOCHS") > 0)
      finetune_epochs = bench::parse_whole<int>("FINETUNE_EPOCHS", finetune_text, 0);
    // The PNG is written after pretraining, minutes later: its folder is checked now.
    const std::string folder = std::filesystem::path(png).parent_path().string();
    if (!folder.empty()) bench::require_path("PNG", folder, /*folder=*/true);
  };
  if (const std::optional<int> status = bench::parse_command_line(app, argc, argv, check)) return *status;

  cudl::CpuBackend cpu;

  const cudl::InMemoryDataset data = cudl::load_idx_dataset(dir, "digits");
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
  return 2;
}

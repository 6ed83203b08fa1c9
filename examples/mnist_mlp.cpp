// Train the 2014 network (784-800-800-10, ReLU) on MNIST or Fashion-MNIST with cudl, in a few
// lines. Usage: mnist_mlp [DIR] [EPOCHS]
//   (default /usr/share/datasets/fashion-mnist, from Debian's dataset-fashion-mnist, 3 epochs)
#include <cstdio>
#include <optional>
#include <string>

#include "command_line.hpp"  // benchmarks/common: the command line of every cudl program (CLI11)
// [guide:mlp]
#include <cudl/cudl.hpp>

int main(int argc, char** argv) try {
  std::string dir = "/usr/share/datasets/fashion-mnist";
  int epochs = 3;
  CLI::App app("Trains the 2014 network (784-800-800-10, ReLU) on MNIST or Fashion-MNIST on the CPU.\n",
               "mnist_mlp");
  bench::setup_app(app, 14);
  app.footer("Exit status: 0 success, 2 bad input.");
  app.add_option("DIR", dir, "a folder of IDX files (default " + dir + ")")->type_name("");
  std::string epochs_text;
  app.add_option("EPOCHS", epochs_text, "training epochs (default 3)")->type_name("");
  // Checked once parsing is done, and only where given (the defaults are the loader's to judge).
  const auto check = [&] {
    if (app.count("DIR") > 0) bench::require_path("DIR", dir, /*folder=*/true);
    if (app.count("EPOCHS") > 0) epochs = bench::parse_whole<int>("EPOCHS", epochs_text, 1);
  };
  if (const std::optional<int> status = bench::parse_command_line(app, argc, argv, check)) return *status;

  cudl::CpuBackend cpu;  // all cores; cudl::make_backend(cudl::Device::kCuda) for a GPU

  // Load, scale to [0, 1] and split 67/33 as sklearn's train_test_split did in 2014.
  const cudl::InMemoryDataset data = cudl::load_idx_dataset(dir, "digits");
  const cudl::Split split = cudl::train_test_split(data, 0.33, /*seed=*/2014);
  const auto x = cudl::Tensor::from_host(split.train.x, {split.train.rows, data.features}, cpu);
  const auto y = cudl::Tensor::from_host(split.train.y, {split.train.rows}, cpu);
  const auto x_test = cudl::Tensor::from_host(split.test.x, {split.test.rows, data.features}, cpu);

  cudl::Network net(cpu, {data.features});
  net.add(cudl::dense(800, cudl::Activation::kRelu))
      .add(cudl::dense(800, cudl::Activation::kRelu))
      .add(cudl::dense(data.classes));
  net.initialize(/*seed=*/2014, /*weight_stddev=*/0.05f);

  cudl::TrainConfig config;  // gdbn's Nesterov SGD, batch 64 drawn with replacement
  config.learn_rate = 0.1f;  // 0.3 (the 2014 value) diverges on Fashion-MNIST
  config.epochs = epochs;
  cudl::train(net, x, y, config, [](const cudl::EpochReport& e) {
    std::printf("epoch %d: loss %.4f, training error %.4f, %.2f s\n", e.epoch, e.loss, e.err, e.seconds);
  });
  // [guide:mlp]

  const auto report = cudl::classification_report(cudl::to_labels(split.test.y), cudl::predict(net, x_test),
                                                  static_cast<int>(data.classes));
  std::printf("%s\ntest accuracy %.4f\n", cudl::format_report(report).c_str(), report.accuracy);
  return 0;
} catch (const cudl::Error& e) {
  std::fprintf(stderr, "mnist_mlp: %s\n", e.what());
  return 2;
}

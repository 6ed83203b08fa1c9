// A LeNet-style convolutional network on MNIST (or Fashion-MNIST), on the CPU or the GPU, with
// the same training loop and report as bench_dbn: per-epoch loss, training error and time, then
// sklearn's classification report on the held-out split.
//
//   conv 5×5 ×20 (ReLU) → max-pool 2×2 → conv 5×5 ×50 (ReLU) → max-pool 2×2 → dense 500 (ReLU)
//   → dropout 0.5 → dense 10                                    (Caffe's LeNet, with dropout)
//
// Usage: mnist_lenet [--device cpu|gpu] [--data DIR] [--epochs N] [--learn-rate X] [--batch N]
//                    [--precision fp32|tf32] [--threads N] [--seed N]
//   --data defaults to bench_dbn's discovery: $CUDL_DATA, data/mnist, then Debian's Fashion-MNIST.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "cudl/cudl.hpp"

namespace {

struct Options {
  cudl::Device device = cudl::Device::kCpu;
  std::string data;
  int epochs = 5;
  float learn_rate = 0.05f;
  int64_t batch = 64;
  cudl::Precision precision = cudl::Precision::kFp32;
  int threads = 0;
  uint64_t seed = 2014;
};

[[noreturn]] void usage(const char* problem) {
  std::fprintf(stderr,
               "mnist_lenet: %s\nusage: mnist_lenet [--device cpu|gpu] [--data DIR] [--epochs N] "
               "[--learn-rate X] [--batch N] [--precision fp32|tf32] [--threads N] [--seed N]\n",
               problem);
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "-h" || flag == "--help") usage("train a LeNet-style network");
    if (i + 1 >= argc) usage(("missing value after " + flag).c_str());
    const std::string value = argv[++i];
    char* end = nullptr;
    if (flag == "--device") {
      if (value != "cpu" && value != "gpu") usage(("--device must be cpu or gpu, got " + value).c_str());
      o.device = value == "gpu" ? cudl::Device::kCuda : cudl::Device::kCpu;
    } else if (flag == "--data") {
      o.data = value;
    } else if (flag == "--precision") {
      if (value != "fp32" && value != "tf32") usage(("--precision must be fp32 or tf32, got " + value).c_str());
      o.precision = value == "tf32" ? cudl::Precision::kTf32 : cudl::Precision::kFp32;
    } else if (flag == "--learn-rate") {
      o.learn_rate = std::strtof(value.c_str(), &end);
      if (*end != '\0' || !(o.learn_rate > 0.0f)) usage(("--learn-rate must be a positive number, got " + value).c_str());
    } else if (flag == "--epochs" || flag == "--batch" || flag == "--threads" || flag == "--seed") {
      const long long n = std::strtoll(value.c_str(), &end, 10);
      if (*end != '\0' || n < (flag == "--threads" ? 0 : 1)) usage((flag + " must be a positive integer, got " + value).c_str());
      if (flag == "--epochs") o.epochs = static_cast<int>(n);
      if (flag == "--batch") o.batch = n;
      if (flag == "--threads") o.threads = static_cast<int>(n);
      if (flag == "--seed") o.seed = static_cast<uint64_t>(n);
    } else {
      usage(("unknown option " + flag).c_str());
    }
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) try {
  const Options o = parse(argc, argv);
  cudl::BackendOptions backend_options;
  backend_options.threads = o.threads;
  backend_options.precision = o.precision;
  std::unique_ptr<cudl::Backend> backend = cudl::make_backend(o.device, backend_options);

  const cudl::DatasetLocation where = cudl::find_dataset(o.data, CUDL_SOURCE_DIR);
  const cudl::Dataset data = cudl::load_idx_dataset(where.dir, where.name);
  const cudl::Split split = cudl::train_test_split(data, 0.33, o.seed);
  cudl::Backend& dev = *backend;
  const auto x = cudl::Tensor::from_host(split.train.x, {split.train.rows, data.features}, dev);
  const auto y = cudl::Tensor::from_host(split.train.y, {split.train.rows}, dev);
  const auto x_test = cudl::Tensor::from_host(split.test.x, {split.test.rows, data.features}, dev);

  cudl::Network net(dev, {1, 28, 28});  // the flat 784-pixel rows are viewed as 1×28×28 images
  net.add(cudl::conv2d(20, 5, cudl::Activation::kRelu))
      .add(cudl::max_pool2d(2))
      .add(cudl::conv2d(50, 5, cudl::Activation::kRelu))
      .add(cudl::max_pool2d(2))
      .add(cudl::flatten())
      .add(cudl::dense(500, cudl::Activation::kRelu))
      .add(cudl::dropout(0.5f, o.seed))
      .add(cudl::dense(data.classes));
  net.initialize(o.seed, /*weight_stddev=*/0.05f);

  std::printf("cudl mnist_lenet | %s from %s (%s) | %lld rows, split %lld train / %lld test | %s\n%s\n",
              data.name.c_str(), where.dir.c_str(), where.reason.c_str(), static_cast<long long>(data.rows),
              static_cast<long long>(split.train.rows), static_cast<long long>(split.test.rows),
              dev.describe().c_str(), net.summary().c_str());

  cudl::TrainConfig config;  // bench_dbn's loop: Nesterov SGD, minibatches drawn with replacement
  config.epochs = o.epochs;
  config.batch = o.batch;
  config.learn_rate = o.learn_rate;
  config.seed = o.seed;
  std::printf("settings: learn rate %g ×%g/epoch, momentum %g, L2 %g, batch %lld, %d epochs, seed %llu\n",
              config.learn_rate, config.decay, config.momentum, config.l2, static_cast<long long>(config.batch),
              config.epochs, static_cast<unsigned long long>(config.seed));
  double train_s = 0.0;
  cudl::train(net, x, y, config, [&](const cudl::EpochReport& e) {
    train_s += e.seconds;
    std::printf("Epoch %d:\n  loss %.6g\n  err  %.6g\n  (%.2fs)\n", e.epoch, e.loss, e.err, e.seconds);
    std::fflush(stdout);
  });

  for (const std::string& plan : cudl::convolution_plans(dev)) std::printf("cuDNN plan: %s\n", plan.c_str());
  const auto report = cudl::classification_report(cudl::to_labels(split.test.y), cudl::predict(net, x_test),
                                                  static_cast<int>(data.classes));
  std::printf("%s\ntest accuracy %.4f | train %.2f s (%.3f s/epoch)\n", cudl::format_report(report).c_str(),
              report.accuracy, train_s, train_s / o.epochs);
  return 0;
} catch (const cudl::Diverged& e) {
  std::fprintf(stderr, "mnist_lenet: %s\n", e.what());
  return 3;
} catch (const cudl::Error& e) {
  std::fprintf(stderr, "mnist_lenet: %s\n", e.what());
  return 1;
}

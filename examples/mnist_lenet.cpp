// A LeNet-style convolutional network on MNIST (or Fashion-MNIST), on the CPU or the GPU, with
// the same training loop and report as bench_dbn: per-epoch loss, training error and time, then
// sklearn's classification report on the held-out split.
//
//   conv 5×5 ×20 (ReLU) → max-pool 2×2 → conv 5×5 ×50 (ReLU) → max-pool 2×2 → dense 500 (ReLU)
//   → dropout 0.5 → dense 10                                    (Caffe's LeNet, with dropout)
//
// Usage: mnist_lenet [--device cpu|gpu] [--data DIR] [--epochs N] [--learn-rate X] [--batch N]
//                    [--precision fp32|tf32|bf16] [--conv-determinism any|deterministic]
//                    [--threads N] [--seed N] [--layers N]   (--help: what each does)
//   --data defaults to bench_dbn's discovery: $CUDL_DATA, data/mnist, then Debian's Fashion-MNIST.
//   --precision bf16 runs the products in bf16 (the GPU's tensor cores; the CPU emulates them, slowly);
//   the settings line says what the backend runs (tf32 on the CPU runs fp32). --conv-determinism
//   deterministic keeps the GPU's convolutions to deterministic cuDNN engines (the header line's
//   backend says so); the plans chosen are printed after training, with their numerical notes.
#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include "command_line.hpp"  // benchmarks/common: the command line of every cudl program (CLI11)
#include "cudl/cudl.hpp"

namespace {

struct Options {
  cudl::Device device = cudl::Device::kCpu;
  std::string data;
  int epochs = 5;
  float learn_rate = 0.05f;
  int64_t batch = 64;
  cudl::Precision precision = cudl::Precision::kFp32;
  cudl::ConvDeterminism conv_determinism = cudl::ConvDeterminism::kAny;
  int threads = 0;
  uint64_t seed = 2014;
  int layers = 0;  // --layers N: N more training steps with each layer timed, after the report
};

// Parses argv into *o; returns the status to exit with when the program stops here (--help,
// --version, a bad command line), as every cudl program does (command_line.hpp).
std::optional<int> parse(int argc, char** argv, Options* out) {
  Options& o = *out;
  CLI::App app(R"(Trains a LeNet-style network on MNIST or Fashion-MNIST, on the CPU or the GPU, with bench_dbn's
training loop and report: conv 5×5 ×20 (ReLU), max-pool 2×2, conv 5×5 ×50 (ReLU), max-pool 2×2,
dense 500 (ReLU), dropout 0.5, dense 10.
)",
               "mnist_lenet");
  bench::setup_app(app, 25);
  app.footer("Exit status: 0 success, 2 bad input or unavailable device, 3 training diverged.");
  using Text = const std::string&;
  bench::add_value(app, "--device", "cpu|gpu", "where to train (default cpu)", [&](Text v) {
    o.device = bench::parse_device(v) == "gpu" ? cudl::Device::kCuda : cudl::Device::kCpu;
  });
  bench::add_value(app, "--data", "DIR",
                   "IDX files of MNIST or Fashion-MNIST (default: $CUDL_DATA, then data/mnist\n"
                   "in the project, then /usr/share/datasets/fashion-mnist)",
                   [&](Text v) { o.data = v; });
  bench::add_value(app, "--epochs", "N", "epochs (default 5)",
                   [&](Text v) { o.epochs = bench::parse_whole<int>("--epochs", v, 1); });
  bench::add_value(app, "--learn-rate", "X", "initial learning rate (default 0.05)", [&](Text v) {
    o.learn_rate = static_cast<float>(bench::parse_number("--learn-rate", v));
    if (o.learn_rate <= 0) throw cudl::Error("--learn-rate: must be positive, found '" + v + "'");
  });
  bench::add_value(app, "--batch", "N", "minibatch size (default 64)",
                   [&](Text v) { o.batch = bench::parse_whole<int64_t>("--batch", v, 1); });
  bench::add_precision(app, &o.precision);
  bench::add_conv_determinism(app, &o.conv_determinism);
  bench::add_value(app, "--threads", "N", "CPU threads (default: all available)",
                   [&](Text v) { o.threads = bench::parse_whole<int>("--threads", v, 0, 4096); });
  bench::add_value(app, "--seed", "N", "seed for the split, initial weights, dropout and minibatches (default 2014)",
                   [&](Text v) { o.seed = bench::parse_uint64("--seed", v); });
  bench::add_value(app, "--layers", "N",
                   "after the report, N more training steps with each layer's forward and backward\n"
                   "timed (Network::set_layer_timing), printed as a per-layer table (default 0: none)",
                   [&](Text v) { o.layers = bench::parse_whole<int>("--layers", v, 0, 100000); });
  return bench::parse_command_line(app, argc, argv);
}

}  // namespace

int main(int argc, char** argv) try {
  Options o;
  if (const std::optional<int> status = parse(argc, argv, &o)) return *status;
  cudl::BackendOptions backend_options;
  backend_options.threads = o.threads;
  backend_options.precision = o.precision;
  backend_options.conv_determinism = o.conv_determinism;
  std::unique_ptr<cudl::Backend> backend = cudl::make_backend(o.device, backend_options);

  // The IDX bytes (inflated whole), split 67/33 as train_test_split would (the same rows and
  // floats), then converted straight into the backend's tensors on several threads.
  const cudl::DatasetLocation where = cudl::find_dataset(o.data, CUDL_SOURCE_DIR);
  const cudl::IdxDataset data = cudl::IdxDataset::load(where.dir, where.name);
  const cudl::DatasetSplit split = cudl::random_split(data, 0.33, o.seed);
  cudl::Backend& dev = *backend;
  const cudl::DeviceData train = cudl::to_device(split.train, dev);
  const cudl::DeviceData test = cudl::to_device(split.valid, dev);
  const cudl::Tensor& x = train.x;
  const cudl::Tensor& y = train.y;

  // [guide:lenet]
  cudl::Network net(dev, {1, 28, 28});  // the flat 784-pixel rows are viewed as 1×28×28 images
  net.add(cudl::conv2d(20, 5, cudl::Activation::kRelu))   // 20 filters of 5×5 (stride 1, padding 0)
      .add(cudl::max_pool2d(2))                           // 2×2 windows, stride 2
      .add(cudl::conv2d(50, 5, cudl::Activation::kRelu))
      .add(cudl::max_pool2d(2))
      .add(cudl::flatten())
      .add(cudl::dense(500, cudl::Activation::kRelu))
      .add(cudl::dropout(0.5f, o.seed))                   // inverted dropout; identity in inference
      .add(cudl::dense(data.num_classes()));
  // [guide:lenet]
  net.initialize(o.seed, /*weight_stddev=*/0.05f);

  std::printf("cudl mnist_lenet | %s from %s (%s) | %lld rows, split %lld train / %lld test | %s\n%s\n",
              data.name().c_str(), where.dir.c_str(), where.reason.c_str(), static_cast<long long>(data.size()),
              static_cast<long long>(split.train.size()), static_cast<long long>(split.valid.size()),
              dev.describe().c_str(), net.summary().c_str());

  cudl::TrainConfig config;  // bench_dbn's loop: Nesterov SGD, minibatches drawn with replacement
  config.epochs = o.epochs;
  config.batch = o.batch;
  config.learn_rate = o.learn_rate;
  config.seed = o.seed;
  std::printf("settings: learn rate %g ×%g/epoch, momentum %g, L2 %g, batch %lld, %d epochs, seed %llu, precision %s\n",
              config.learn_rate, config.decay, config.momentum, config.l2, static_cast<long long>(config.batch),
              config.epochs, static_cast<unsigned long long>(config.seed), cudl::to_string(dev.precision()));
  double train_s = 0.0;
  cudl::train(net, x, y, config, [&](const cudl::EpochReport& e) {
    train_s += e.seconds;
    std::printf("Epoch %d:\n  loss %.6g\n  err  %.6g\n  (%.2fs)\n", e.epoch, e.loss, e.err, e.seconds);
    std::fflush(stdout);
  });

  for (const std::string& plan : cudl::convolution_plans(dev)) std::printf("cuDNN plan: %s\n", plan.c_str());
  const auto report = cudl::classification_report(cudl::to_labels(test.y.to_vector()), cudl::predict(net, test.x),
                                                  static_cast<int>(data.num_classes()));
  std::printf("%s\ntest accuracy %.4f | train %.2f s (%.3f s/epoch)\n", cudl::format_report(report).c_str(),
              report.accuracy, train_s, train_s / o.epochs);

  if (o.layers > 0) {  // where a step's time goes: more steps of plain SGD, each layer timed
    const cudl::Tensor xb = x.rows(0, o.batch), yb = y.rows(0, o.batch);
    cudl::SoftmaxCrossEntropy loss;
    cudl::Sgd sgd(net.param_set(), {config.learn_rate * 0.1f});
    cudl::Trainer trainer(net, loss, sgd);
    const int steps = o.layers;
    // [guide:layers]
    net.set_layer_timing(true);
    for (int i = 0; i < steps; ++i) trainer.step(xb, yb);
    for (const cudl::LayerTime& t : net.layer_times())
      std::printf("%-44s %9.3f %9.3f ms\n", t.layer.c_str(), t.forward_ms / t.forwards, t.backward_ms / t.backwards);
    net.set_layer_timing(false);
    // [guide:layers]
  }
  return 0;
} catch (const cudl::Diverged& e) {
  std::fprintf(stderr, "mnist_lenet: %s\n", e.what());
  return 3;
} catch (const cudl::Error& e) {
  std::fprintf(stderr, "mnist_lenet: %s\n", e.what());
  return 2;
}

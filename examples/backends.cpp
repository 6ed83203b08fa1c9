// The GPU, the CPU and precisions (docs/guide/backends.md): asks whether a GPU is usable (and if
// not, why), makes a backend with BackendOptions (threads, GPU number, precision), builds a small
// network on it and trains it for a few epochs; the same code on either device. Without a GPU it
// runs on the CPU and says why.
//
//   backends [--device auto|cpu|gpu] [--precision fp32|tf32|bf16] [--threads N] [--epochs N]
//            (--help: what each does)
//
// It prints the precision the backend runs (Backend::precision()), which may differ from the one
// asked for: the CPU has no tf32 and runs fp32; bf16 it emulates by rounding (slower, for checking).
//
// Exit status 0 success, 2 bad input or a device that cannot be used (--device gpu without one).
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "command_line.hpp"  // benchmarks/common: the command line of every cudl program (CLI11)
#include <cudl/cudl.hpp>

int main(int argc, char** argv) {
  std::string device = "auto";
  cudl::Precision precision = cudl::Precision::kFp32;
  int threads = 0, epochs = 3;
  CLI::App app(R"(Probes the GPU, makes a backend (the GPU if one is usable, else the CPU, or the device asked
for) with the precision and threads asked for, and trains a small network on synthetic rows there.
)",
               "backends");
  bench::setup_app(app, 27);
  app.footer("Exit status: 0 success, 2 bad input or a device that cannot be used.");
  using Text = const std::string&;
  bench::add_value(app, "--device", "auto|cpu|gpu", "where to train (default auto: the GPU if usable)", [&](Text v) {
    device = v == "auto" ? v : bench::parse_device(v);
  });
  bench::add_precision(app, &precision);
  bench::add_value(app, "--threads", "N", "CPU threads (default 0: all available)",
                   [&](Text v) { threads = bench::parse_whole<int>("--threads", v, 0, 4096); });
  bench::add_value(app, "--epochs", "N", "epochs (default 3)",
                   [&](Text v) { epochs = bench::parse_whole<int>("--epochs", v, 1, 1000); });
  if (const std::optional<int> status = bench::parse_command_line(app, argc, argv)) return *status;
  try {
    // [guide:backend]
    cudl::GpuProbe probe = cudl::probe_gpu();  // usable, and if not, why (one sentence)
    const bool gpu = device == "gpu" || (device == "auto" && probe.usable);
    cudl::BackendOptions o;
    o.precision = precision;  // kFp32 (default) strict; kTf32 GPU only; kBf16 bf16 products (CPU: emulated)
    o.threads = threads;      // the CPU's threads (0: all the process may use); o.gpu: which GPU
    std::unique_ptr<cudl::Backend> backend = cudl::make_backend(gpu ? cudl::Device::kCuda : cudl::Device::kCpu, o);
    cudl::Network net(*backend, {784});
    // [guide:backend]
    std::printf("gpu: %s\nbackend: %s (precision %s)\n", probe.usable ? probe.description.c_str() : probe.reason.c_str(),
                backend->describe().c_str(), cudl::to_string(backend->precision()));

    // The rest is the same code on both devices: 1,024 rows of 784 values, 10 classes (a class's
    // rows are brighter in its own tenth of the features).
    const int64_t rows = 1024;
    std::vector<float> x(static_cast<size_t>(rows * 784)), y(static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r) {
      const int label = static_cast<int>(r % 10);
      y[static_cast<size_t>(r)] = static_cast<float>(label);
      for (int64_t k = 0; k < 784; ++k) {
        const cudl::rng::Philox4 b = cudl::rng::bits(5, static_cast<uint64_t>(k), static_cast<uint64_t>(r));
        x[static_cast<size_t>(r * 784 + k)] = cudl::rng::uniform(b.v[0]) * (k * 10 / 784 == label ? 1.0f : 0.5f);
      }
    }
    const auto tx = cudl::Tensor::from_host(x, {rows, 784}, *backend);
    const auto ty = cudl::Tensor::from_host(y, {rows}, *backend);
    net.add(cudl::dense(128, cudl::Activation::kRelu)).add(cudl::dense(10));
    net.initialize(/*seed=*/1, /*weight_stddev=*/0.05f);
    cudl::AdamOptions adam;
    adam.learn_rate = 1e-3f;
    cudl::Adam opt(net.param_set(), adam);
    cudl::FitOptions fit;
    fit.epochs = epochs;
    fit.progress = cudl::Progress::kNone;
    fit.on_epoch = [](const cudl::EpochReport& e) {
      std::printf("epoch %d: loss %.4f, training error %.4f, %.3f s\n", e.epoch, e.loss, e.err, e.seconds);
    };
    cudl::fit(net, cudl::SoftmaxCrossEntropy(), opt, tx, ty, fit);
    return 0;
  } catch (const cudl::Error& e) {
    std::fprintf(stderr, "backends: %s\n", e.what());
    return 2;
  }
}

// Data-parallel training (docs/guide/several-gpus.md): every rank runs this same program on the
// same data; fit() gives each rank its share of every step's rows and averages the gradients over
// the ranks, so that N ranks × B rows train as one process with batch N·B. On CPUs the gradients
// go through MPI; on GPUs (--device gpu, one per rank) through NCCL, inside the captured step.
//
//   mpirun -np 2 data_parallel [--device cpu|gpu] [--batch N] [--epochs N] [--threads N]
//                              [--max-error X]               (--help: what each does)
//
// Started without a launcher it is one rank. Only rank 0 prints. The data is synthetic (three
// classes of 16 features), so that it runs anywhere in seconds. Exit status 0 success, 2 bad input
// or a device that cannot be used, 3 when the last epoch's training error is above --max-error.
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "command_line.hpp"  // benchmarks/common: the command line of every cudl program (CLI11)
#include <cudl/cudl.hpp>
#include <cudl/mpi.hpp>  // libcudl_mpi (CMake: cudl::mpi)

namespace {

struct Options {
  bool gpu = false;
  int64_t batch = 32;
  int epochs = 5;
  int threads = 1;
  double max_error = 1.0;
};

// The command line, parsed before MPI starts (so that --help needs no launcher); returns the
// status to exit with when the program stops here, as every cudl program does.
std::optional<int> parse(int argc, char** argv, Options* out) {
  Options& o = *out;
  CLI::App app(R"(Trains a small network data-parallel over the ranks an MPI launcher started (mpirun -np N): MPI
between CPUs, NCCL between GPUs (--device gpu, the GPU numbered by the rank's local rank).
)",
               "data_parallel");
  bench::setup_app(app, 19);
  app.footer("Exit status: 0 success, 2 bad input or unusable device, 3 error above --max-error.");
  using Text = const std::string&;
  bench::add_value(app, "--device", "cpu|gpu", "where each rank trains (default cpu)",
                   [&](Text v) { o.gpu = bench::parse_device(v) == "gpu"; });
  bench::add_value(app, "--batch", "N", "rows per step on each rank (default 32)",
                   [&](Text v) { o.batch = bench::parse_whole<int64_t>("--batch", v, 1, 1 << 20); });
  bench::add_value(app, "--epochs", "N", "epochs (default 5)",
                   [&](Text v) { o.epochs = bench::parse_whole<int>("--epochs", v, 1, 1000); });
  bench::add_value(app, "--threads", "N", "CPU threads of each rank (default 1; 0: all available)",
                   [&](Text v) { o.threads = bench::parse_whole<int>("--threads", v, 0, 4096); });
  bench::add_value(app, "--max-error", "X", "exit 3 when the last epoch's training error is above X",
                   [&](Text v) { o.max_error = bench::parse_number("--max-error", v); });
  return bench::parse_command_line(app, argc, argv);
}

// Three classes around three centres in 16 dimensions, with noise; the same rows on every rank.
void make_data(int64_t rows, std::vector<float>& x, std::vector<float>& y) {
  for (int64_t r = 0; r < rows; ++r) {
    const int label = static_cast<int>(r % 3);
    for (int64_t k = 0; k < 16; ++k) {
      const cudl::rng::Philox4 b = cudl::rng::bits(11, static_cast<uint64_t>(k), static_cast<uint64_t>(r));
      x.push_back((k % 3 == label ? 1.0f : 0.0f) + 0.5f * cudl::rng::normal(b.v[0], b.v[1]));
    }
    y.push_back(static_cast<float>(label));
  }
}

}  // namespace

// [guide:ranks]
int main(int argc, char** argv) try {
  Options options;
  if (const std::optional<int> status = parse(argc, argv, &options)) return *status;
  cudl::mpi::Session mpi(&argc, &argv);
  std::unique_ptr<cudl::Communicator> world = mpi.world();
  cudl::BackendOptions bo;
  bo.gpu = world->local_rank();  // one GPU per rank on each machine
  bo.threads = options.threads;
  auto backend = cudl::make_backend(options.gpu ? cudl::Device::kCuda : cudl::Device::kCpu, bo);
  std::unique_ptr<cudl::Communicator> nccl;
  if (options.gpu) nccl = cudl::make_nccl_communicator(*backend, *world);  // GPU tensors over NCCL
  // [guide:ranks]
  const bool root = world->rank() == 0;
  if (root)
    std::printf("ranks %d: %s; %s\n", world->size(), (nccl ? nccl : world)->describe().c_str(),
                backend->describe().c_str());

  std::vector<float> host_x, host_y;
  make_data(3072, host_x, host_y);
  const auto x = cudl::Tensor::from_host(host_x, {3072, 16}, *backend);
  const auto y = cudl::Tensor::from_host(host_y, {3072}, *backend);
  cudl::Network net(*backend, {16});
  net.add(cudl::dense(64, cudl::Activation::kRelu)).add(cudl::dense(3));
  net.initialize(/*seed=*/1, /*weight_stddev=*/0.1f);  // rank 0's parameters are broadcast anyway
  cudl::SoftmaxCrossEntropy loss;                      // mean over the batch
  cudl::AdamOptions adam;
  adam.learn_rate = 1e-2f;
  cudl::Adam opt = cudl::Adam::adamw(net.param_set(), adam);

  // [guide:fit]
  cudl::FitOptions fit_options;
  fit_options.epochs = options.epochs;
  fit_options.batch = options.batch;  // per rank: 4 ranks × 16 = a step of 64
  fit_options.communicator = options.gpu ? nccl.get() : world.get();  // NCCL between GPUs, else MPI
  fit_options.progress = cudl::Progress::kNone;
  fit_options.on_epoch = [&](const cudl::EpochReport& e) {  // global figures, the same on every rank
    if (root) std::printf("epoch %d: %lld steps of %d × %lld rows, loss %.4f, training error %.4f\n", e.epoch,
                          static_cast<long long>(e.steps), world->size(), static_cast<long long>(options.batch),
                          e.loss, e.err);
  };
  cudl::History h = cudl::fit(net, loss, opt, x, y, fit_options);
  // [guide:fit]
  return h.epochs.back().err <= options.max_error ? 0 : 3;
} catch (const cudl::Error& e) {
  std::fprintf(stderr, "data_parallel: %s\n", e.what());
  return 2;
}

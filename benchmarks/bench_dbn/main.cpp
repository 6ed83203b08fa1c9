// bench_dbn: the 2014 nolearn DBN benchmark (784-800-800-10 on MNIST, 10 epochs), on cudl.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <iostream>
#include <optional>

#include "cli.hpp"
#include "clock.hpp"
#include "cudl/cudl.hpp"
#include "json.hpp"
#include "options.hpp"
#include "report.hpp"
#include "timed_communicator.hpp"
#ifdef CUDL_BENCH_MPI
#include "cudl/mpi.hpp"
#endif

namespace {

using bench::Clock;
using bench::since;

constexpr const char* kTool = "bench_dbn";  // the prefix of every error message

// Set by the first SIGINT or SIGTERM (the handler is then reset, so a second one ends the process
// at once); training stops after its current step, and pretraining after its current epoch.
std::atomic<bool> g_stop{false};

void on_signal(int) {
  g_stop.store(true);
  static const char msg[] =
      "\nbench_dbn: stopping after this step (a checkpoint is written with --checkpoint); again to quit now\n";
  const ssize_t ignored = write(STDERR_FILENO, msg, sizeof msg - 1);  // async-signal-safe
  (void)ignored;
}

void install_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESETHAND;  // the next signal takes the default action: exit at once
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

// Thrown when a signal arrives during pretraining, which keeps no checkpoint.
struct Interrupted {};

// gdbn's DBN pretraining: every weight layer an RBM, trained greedily with CD-1, then copied
// into the network that fine-tuning starts from.
// With a communicator of several ranks, each rank trains its share of every minibatch (as in
// fine-tuning), and a stop that reaches one rank stops every rank after the same epoch.
void pretrain(bench::Run& run, cudl::Backend& backend, const cudl::Tensor& x, const cudl::Tensor& x_heldout,
              cudl::Network& net, cudl::Communicator* comm) {
  const auto& opt = run.options;
  cudl::DbnConfig cfg;
  cfg.learn_rate = opt.pretrain_learn_rate > 0 ? opt.pretrain_learn_rate : opt.train.learn_rate;
  cfg.momentum = opt.pretrain_momentum >= 0 ? opt.pretrain_momentum : opt.train.momentum;
  cfg.l2 = opt.train.l2;
  cfg.batch = opt.train.batch;
  cfg.seed = opt.train.seed;
  cfg.launch = opt.train.launch;  // --launch: the RBMs' steps captured (a GPU) or eager
  std::optional<bench::TimedCommunicator> timed;  // times the RBMs' gradient all-reduces
  if (comm != nullptr) {
    timed.emplace(*comm, backend);
    cfg.communicator = &*timed;
  }
  const auto t0 = Clock::now();
  cudl::DeepBeliefNet dbn(backend, opt.layers, cfg);
  for (int64_t i = 0; i < dbn.num_rbms(); ++i) {
    const cudl::RbmConfig& rc = dbn.rbm(i).config();
    run.pretraining.push_back({dbn.rbm(i).visible(), dbn.rbm(i).hidden(),
                               std::string(cudl::to_string(rc.visible)) + "-" + cudl::to_string(rc.hidden), {}});
  }
  int64_t shown = -1;
  dbn.pretrain(x, opt.pretrain_epochs, [&](int64_t layer, const cudl::RbmEpochReport& e) {
    if (layer != shown) std::cout << bench::pretrain_header(static_cast<size_t>(layer), run.pretraining[layer]);
    shown = layer;
    run.pretraining[layer].epochs.push_back(e);
    std::cout << bench::pretrain_line(e) << std::flush;
    double stop = g_stop.load() ? 1.0 : 0.0;
    if (comm != nullptr) comm->all_reduce(&stop, 1, cudl::ReduceOp::kMax);  // every rank's answer
    if (stop != 0.0) throw Interrupted{};
  }, &x_heldout);
  dbn.unroll_into(net);
  run.pretrain_s = since(t0);
  if (timed && timed->measured()) {
    run.pretrain_allreduce_s = timed->seconds();
    run.pretrain_allreduce_calls = timed->calls();
  }
}

#ifndef CUDL_BENCH_MPI
// The number of ranks an MPI launcher started, from the environment (1 when none did).
int launcher_ranks() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"})
    if (const char* v = std::getenv(name)) return std::max(1, std::atoi(v));
  return 1;
}
#endif

// Trains and evaluates; fills run as it goes so a failure still leaves a full record. With a
// communicator of several ranks, each rank trains its share of every minibatch (fit's data
// parallelism) and only rank 0 writes files.
void run_benchmark(bench::Run& run, Clock::time_point start, cudl::Communicator* comm) {
  auto& opt = run.options;
  const bool several = comm != nullptr && comm->size() > 1;
  const bool rank0 = comm == nullptr || comm->rank() == 0;
  if (several) {
    run.ranks = comm->size();
    run.communicator = comm->describe();
  }
  const cudl::Device device = bench::usable_device(opt.device);  // an unusable GPU fails before the data is read
  // Reading the data (the image files inflated whole, two at once) overlaps creating the backend
  // (CUDA context and cuBLAS handle for a GPU); the split is two views, and to_device converts
  // the bytes into the backend's tensors on several threads, so no float copy stays on the host.
  auto t0 = Clock::now();
  run.location = cudl::find_dataset(opt.data, CUDL_SOURCE_DIR);
  // The files' headers give the shape (and check the size cap), so a wrong --layers fails
  // before any payload is read.
  cudl::LoadOptions load_options;
  load_options.max_float_bytes = opt.max_data_mib << 20;
  load_options.cap_name = "--max-data-mib " + std::to_string(opt.max_data_mib);
  const cudl::DatasetShape data = cudl::peek_idx_dataset(run.location.dir, run.location.name, load_options);
  if (opt.layers.front() != data.features)
    throw cudl::Error("--layers: the first size must be the " + std::to_string(data.features) +
                      " input features of " + run.location.name + ", found " + std::to_string(opt.layers.front()));
  if (opt.layers.back() != data.classes)
    throw cudl::Error("--layers: the last size must be the " + std::to_string(data.classes) + " classes of " +
                      run.location.name + ", found " + std::to_string(opt.layers.back()));
  auto loading = std::async(std::launch::async, [&run, &load_options] {
    return cudl::IdxDataset::load(run.location.dir, run.location.name, load_options);
  });
  cudl::BackendOptions backend_options;
  backend_options.threads = opt.threads;
  backend_options.precision = opt.precision;
  if (comm != nullptr) backend_options.gpu = comm->local_rank();  // one GPU per rank on each machine
  std::unique_ptr<cudl::Backend> backend = cudl::make_backend(device, backend_options);
  run.device = backend->describe();
  run.precision = cudl::to_string(backend->precision());
  run.backend_s = since(t0);
  std::optional<cudl::IdxDataset> all(loading.get());
  // train_test_split's rows in its order: the first ceil(test_size · rows) of the permutation test.
  std::optional<cudl::DatasetSplit> split(cudl::random_split(*all, opt.test_size, opt.train.seed));
  if (!opt.learn_rate_given) opt.train.learn_rate = run.location.name == "Fashion-MNIST" ? 0.1f : 0.3f;
  run.rows = data.rows;
  run.features = data.features;
  run.classes = data.classes;
  run.train_rows = split->train.size();
  run.test_rows = split->valid.size();
  const cudl::DeviceData train = cudl::to_device(split->train, *backend);
  const cudl::DeviceData test = cudl::to_device(split->valid, *backend);
  const cudl::Tensor& x = train.x;
  const cudl::Tensor& y = train.y;
  const cudl::Tensor& x_test = test.x;
  const std::vector<float> test_labels = test.y.to_vector();
  split.reset();
  all.reset();  // the bytes: the tensors hold the data now
  backend->synchronize();
  run.load_s = since(t0);

  // On GPUs, NCCL where this build has it (CUDL_HAVE_NCCL; the all-reduce then sits inside the
  // captured step, and pretraining uses it too); else MPI, staged through page-locked host
  // memory. A rank that cannot start NCCL ends the job (the others would wait for it in
  // ncclCommInitRank).
  std::unique_ptr<cudl::Communicator> nccl;
  cudl::Communicator* step_comm = comm;
  if (several && device == cudl::Device::kCuda && CUDL_HAVE_NCCL) {
    try {
      nccl = cudl::make_nccl_communicator(*backend, *comm);
    } catch (const std::exception& e) {
      comm->abort(2, e.what());
    }
    step_comm = nccl.get();
    run.communicator = nccl->describe();
  }

  std::cout << bench::header_line(run) << "\n" << bench::settings_line(run) << "\n" << std::flush;
  cudl::Network net(*backend, {data.features});
  for (size_t i = 1; i < opt.layers.size(); ++i) {
    const bool last = i + 1 == opt.layers.size();
    net.add(cudl::dense(opt.layers[i], last ? cudl::Activation::kIdentity : cudl::Activation::kRelu));
  }
  net.initialize(opt.train.seed, 0.05f);  // gdbn: every weight matrix 0.05·N(0,1), biases 0
  if (opt.pretrain_epochs > 0) {
    try {
      pretrain(run, *backend, x, x_test, net, several ? step_comm : nullptr);  // monitored on the test split
    } catch (const Interrupted&) {
      run.status = "interrupted";
      return;
    }
  }
  if (!opt.resume.empty()) {
    const cudl::CheckpointInfo info = cudl::inspect_checkpoint(opt.resume);
    run.resumed_epochs = info.epoch;
    std::cout << "resuming " << opt.resume << ": " << info.epoch << " epochs done, saved " << info.saved_at
              << " from " << info.saved_from << "\n";
  }

  // The 2014 run (presets::Gdbn2014, what cudl::train runs), through fit for its checkpoints.
  const cudl::SoftmaxCrossEntropy loss = opt.train.loss();
  std::unique_ptr<cudl::GdbnNesterov> optimizer = opt.train.optimizer(net.param_set());
  cudl::ExponentialSchedule schedule = opt.train.schedule();
  cudl::FitOptions fit = opt.train.options();
  fit.on_epoch = [&](const cudl::EpochReport& e) {
    run.epochs.push_back(e);
    std::cout << bench::epoch_block(e) << std::flush;
  };
  fit.checkpoint_path = opt.checkpoint;
  fit.checkpoint_every = opt.checkpoint_every;
  fit.resume_from = opt.resume;
  fit.stop = &g_stop;
  std::optional<bench::TimedCommunicator> timed;  // splits each step into compute and all-reduce
  if (several) {
    timed.emplace(*step_comm, *backend);
    fit.communicator = &*timed;
  }
  t0 = Clock::now();
  try {
    const cudl::History h = cudl::fit(net, loss, *optimizer, x, y, fit, &schedule);
    run.epochs = h.epochs;  // a resumed run's earlier epochs too
    if (h.interrupted) run.status = "interrupted";
  } catch (const cudl::Diverged&) {
    run.train_s = since(t0);
    run.status = "diverged";
    throw;
  }
  run.train_s = since(t0);
  if (timed && timed->measured()) {
    run.allreduce_s = timed->seconds();
    run.allreduce_calls = timed->calls();
  }
  if (run.status == "interrupted") {
    if (!opt.checkpoint.empty()) std::cout << "checkpoint written to " << opt.checkpoint << "\n";
    return;
  }
  if (!opt.save.empty() && rank0) {
    cudl::save_model(net, opt.save);
    std::cout << "model saved to " << opt.save << "\n";
  }

  t0 = Clock::now();
  const std::vector<int> predicted = cudl::predict(net, x_test);
  run.report = cudl::classification_report(cudl::to_labels(test_labels), predicted, static_cast<int>(data.classes));
  run.evaluated = true;
  run.evaluate_s = since(t0);
  run.total_s = since(start);
  std::cout << "\n" << cudl::format_report(run.report) << "\n";
  std::printf("test accuracy %.4f\n", run.report.accuracy);
  std::cout << bench::timing_line(run) << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  const auto start = Clock::now();
  bench::Run run;
  run.date = bench::utc_now();
  if (const std::optional<int> status = bench::parse_options(argc, argv, &run.options)) return *status;
  // Started by mpirun or srun: data-parallel training over MPI where this build has it.
  std::unique_ptr<cudl::Communicator> world;
#ifdef CUDL_BENCH_MPI
  std::optional<cudl::mpi::Session> mpi;
  if (cudl::mpi::launched_by_mpi()) {
    try {
      mpi.emplace(&argc, &argv);
      world = mpi->world();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s: %s\n", kTool, e.what());
      return 2;
    }
  }
#else
  if (launcher_ranks() > 1) {
    std::fprintf(stderr, "%s: started as %d ranks by an MPI launcher, but this build has no MPI (install "
                 "libopenmpi-dev and configure again)\n", kTool, launcher_ranks());
    return 2;
  }
#endif
  const bool rank0 = world == nullptr || world->rank() == 0;
  // Rank 0 prints the report and writes the files; the other ranks train silently.
  if (!rank0 && std::freopen("/dev/null", "w", stdout) == nullptr) return 2;
  if (!rank0) run.options.json.clear();
  // An unwritable output path is found now, not after the training it was meant to record.
  if (!run.options.json.empty() && !bench::json_path_writable(kTool, run.options.json)) return 2;
  if (!run.options.save.empty() && !bench::json_path_writable(kTool, run.options.save, "--save")) return 2;
  if (!run.options.checkpoint.empty() &&
      !bench::json_path_writable(kTool, run.options.checkpoint, "--checkpoint"))
    return 2;
  install_signal_handlers();
  int status = 0;
  try {
    run_benchmark(run, start, world.get());
    if (run.status == "interrupted") status = 130;
  } catch (const cudl::Diverged& e) {
    std::fprintf(stderr, "%s: %s (%s)\n", kTool, e.what(), e.layer > 0 ? "--pretrain-learn-rate" : "--learn-rate");
    run.status = "diverged";
    run.error = e.what();
    status = 3;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", kTool, e.what());
    run.status = "error";
    run.error = e.what();
    status = 2;
  }
  run.total_s = since(start);
  if (run.options.json.empty()) return status;
  return bench::save_json(kTool, run.options.json, bench::to_json(run), status);
}

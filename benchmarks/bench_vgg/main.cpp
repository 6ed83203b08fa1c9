// bench_vgg: VGG16 training throughput (images/s) on the CPU or the GPU, on synthetic data.
// benchmarks/compare_vgg.sh runs it beside benchmarks/peers/vgg_torch.py (the same work in PyTorch).
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <optional>
#include <random>

#include "cli.hpp"
#include "clock.hpp"
#include "cudl/cudl.hpp"
#include "json.hpp"
#include "options.hpp"
#include "report.hpp"
#include "vgg.hpp"

namespace {

using bench::Clock;
using bench::since;

constexpr const char* kTool = "bench_vgg";  // the prefix of every error message

// Builds the network and the synthetic batch, then times warm-up and timed training steps;
// fills run as it goes so that a failure still leaves a record.
void run_benchmark(bench::VggRun& run, Clock::time_point start) {
  const auto& opt = run.options;
  const cudl::Device device = bench::usable_device(opt.device);
  auto t0 = Clock::now();
  cudl::BackendOptions backend_options;
  backend_options.threads = opt.threads;
  backend_options.precision = opt.precision;
  backend_options.conv_determinism = opt.conv_determinism;
  std::unique_ptr<cudl::Backend> backend = cudl::make_backend(device, backend_options);
  cudl::Backend& b = *backend;
  run.device = b.describe();
  run.precision = cudl::to_string(b.precision());
  run.backend_s = since(t0);
  std::cout << bench::header_line(run) << "\n" << bench::data_line() << "\n" << bench::work_line(run) << "\n"
            << std::flush;

  t0 = Clock::now();
  const int64_t n = opt.batch, k = opt.classes;
  cudl::Network net(b, {3, opt.size, opt.size});
  bench::add_vgg16(net, k, opt.seed);
  bench::initialize_he(net, opt.seed);
  run.summary = net.summary();
  run.parameters = net.params().size();
  run.flop_per_step = bench::vgg16_step_flop(opt.size, n, k);
  std::cout << "network: " << run.summary << "\n" << std::flush;

  // The synthetic batch: images x (N×3×S×S) ~ N(0, 1), labels y (N) uniform in [0, K).
  cudl::Tensor x({n, 3, opt.size, opt.size}, b);
  b.fill_normal(x, opt.seed ^ 0x1a6e5, 0.0f, 1.0f);
  std::mt19937_64 gen(opt.seed);
  std::uniform_int_distribution<int64_t> label(0, k - 1);
  std::vector<float> labels(static_cast<size_t>(n));
  for (float& l : labels) l = static_cast<float>(label(gen));
  const cudl::Tensor y = cudl::Tensor::from_host(labels, {n}, b);
  cudl::Tensor dlogits({n, k}, b);
  cudl::Tensor stats = cudl::Tensor::from_host({0.0f, 0.0f, -1.0f, 0.0f}, {cudl::LossStats::kSize}, b);
  // Gradients of the summed loss; the update divides by N (grad_scale), as the 2014 preset does.
  cudl::GdbnNesterov sgd(net.param_set(), {opt.learn_rate, opt.momentum, opt.l2, 1.0f / static_cast<float>(n)});
  sgd.begin();
  cudl::CrossEntropyArgs xent;  // gradients of the summed loss
  b.synchronize();
  run.setup_s = since(t0);

  // One training step, as cudl::train runs it (without its per-step divergence check).
  auto step = [&] {
    const cudl::Tensor& logits = net.forward(x, cudl::Mode::kTrain);
    b.softmax_cross_entropy(logits, y, xent, dlogits, stats);
    net.backward(x, dlogits);
    sgd.step();
  };
  auto timed_step = [&] {
    const auto s0 = Clock::now();
    step();
    b.synchronize();
    return since(s0) * 1e3;
  };

  t0 = Clock::now();
  for (int i = 0; i < opt.warmup; ++i) run.warmup_ms.push_back(timed_step());
  run.warmup_s = since(t0);
  stats.copy_from(std::vector<float>{0.0f, 0.0f, -1.0f, 0.0f});
  b.synchronize();

  t0 = Clock::now();
  for (int i = 0; i < opt.iters; ++i) run.iteration_ms.push_back(timed_step());
  run.timed_s = since(t0);
  const std::vector<float> st = stats.to_vector();  // the timed steps' loss, before any profiled step
  run.mean_loss = st[cudl::LossStats::kLossSum] / static_cast<double>(opt.iters * n);
  if (opt.layers) {  // the per-layer profile, apart from the timed steps it would slow
    net.set_layer_timing(true);
    std::vector<double> layered;
    for (int i = 0; i < opt.iters; ++i) layered.push_back(timed_step());
    run.layers = net.layer_times();
    net.set_layer_timing(false);
    std::sort(layered.begin(), layered.end());
    const size_t m = layered.size();
    run.layered_step_ms = m % 2 ? layered[m / 2] : 0.5 * (layered[m / 2 - 1] + layered[m / 2]);
  }
  run.plans = cudl::convolution_plans(b);
  for (const std::string& plan : run.plans) std::cout << "cuDNN plan: " << plan << "\n";
  run.total_s = since(start);
  std::cout << bench::results_text(run) << bench::layers_text(run) << std::flush;
}

}  // namespace

int main(int argc, char** argv) {
  const auto start = Clock::now();
  bench::VggRun run;
  run.date = bench::utc_now();
  if (const std::optional<int> status = bench::parse_vgg_options(argc, argv, &run.options)) return *status;
  if (!run.options.json.empty() && !bench::json_path_writable(kTool, run.options.json)) return 2;
  int status = 0;
  try {
    run_benchmark(run, start);
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

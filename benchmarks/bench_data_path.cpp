// What streaming a dataset costs (issue 21): the 2014 run (presets::Gdbn2014 through fit) on the
// CPU or the GPU, its training rows fed three ways, in interleaved rounds: resident (drawn from tensors),
// streamed from the same rows in memory (the BatchLoader), and streamed from a memory-mapped .npy
// copy of them (NpyDataset, float32 x and int64 y written to a temporary folder). Prints each
// way's median seconds per epoch and its ratio to resident, and checks that the three trained
// alike (the same loss after the last epoch, bit for bit).
//
// Beside the epochs, every step is timed (fit's on_steps, which the CPU's per-step statistics read
// makes free): a streamed feed adds its cost to every step (a batch's copy, a hand-over between
// threads, its loader threads' share of the cores), while a shared machine's slow spells hit some
// steps of any feed. So the median step of each feed, and its ratio to the resident feed's median
// step in the same round, measure the feed's cost where whole epochs are too noisy to.
//
// On the GPU, a streamed feed uploads each batch on a second stream while the captured step runs:
// its epochs against the resident feed's say how long the GPU waits for data (issue 21's target:
// under 5% of the step).
//
// Usage: bench_data_path [DATA_DIR] [EPOCHS=2] [ROUNDS=3] [THREADS=2] [LOADER_THREADS=2] [DEVICE=cpu|gpu]
//   DATA_DIR: IDX files (default: Debian's Fashion-MNIST), split 0.33 with seed 2014 as bench_dbn.
//   THREADS: the CPU backend's compute threads (on the GPU: unused).
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "cudl/data.hpp"
#include "cudl/device.hpp"
#include "cudl/npy.hpp"
#include "cudl/trainer.hpp"

namespace {

double median(std::vector<double> v) {
  if (v.empty()) return std::numeric_limits<double>::quiet_NaN();
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// A distribution-free interval of about 95% for the median of v (n ≥ 6): the order statistics
// k and n + 1 − k (1-based) with k the largest such that 2·P(Binomial(n, ½) < k) ≤ 0.05.
std::pair<double, double> median_interval(std::vector<double> v) {
  const int n = static_cast<int>(v.size());
  if (n < 6) return {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::quiet_NaN()};
  std::sort(v.begin(), v.end());
  double below = 0.0;  // P(B < k), B ~ Binomial(n, 1/2)
  double term = std::pow(0.5, n);  // P(B = 0)
  int k = 1;
  while (2.0 * (below + term) <= 0.05) {
    below += term;
    term = term * (n - (k - 1)) / k;  // P(B = k) from P(B = k − 1)
    ++k;
  }
  --k;  // the loop stopped at the first k that fails
  return {v[k - 1], v[n - k]};
}

std::string interval_text(const std::vector<double>& paired) {
  const auto [lo, hi] = median_interval(paired);
  if (std::isnan(lo)) return "(6 rounds or more)";
  char text[64];
  std::snprintf(text, sizeof text, "%.3f–%.3f", lo, hi);
  return text;
}

std::vector<double> all_of(const std::vector<std::vector<double>>& rounds) {
  std::vector<double> all;
  for (const auto& r : rounds) all.insert(all.end(), r.begin(), r.end());
  return all;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : "/usr/share/datasets/fashion-mnist";
  const int epochs = argc > 2 ? std::atoi(argv[2]) : 2;
  const int rounds = argc > 3 ? std::atoi(argv[3]) : 3;
  const int threads = argc > 4 ? std::atoi(argv[4]) : 2;
  const int loader_threads = argc > 5 ? std::atoi(argv[5]) : 2;
  const std::string device = argc > 6 ? argv[6] : "cpu";
  if (epochs < 1 || rounds < 1 || threads < 1 || loader_threads < 0 || (device != "cpu" && device != "gpu")) {
    std::fprintf(stderr,
                 "usage: bench_data_path [DATA_DIR] [EPOCHS≥1] [ROUNDS≥1] [THREADS≥1] [LOADER_THREADS≥0] [cpu|gpu]\n");
    return 2;
  }
  try {
    const cudl::Split split = cudl::train_test_split(cudl::load_idx_dataset(dir, "data"), 0.33, 2014);
    const cudl::InMemoryDataset& train = split.train;
    std::string tmp = (std::filesystem::temp_directory_path() / "cudl_bench_npy_XXXXXX").string();
    if (mkdtemp(tmp.data()) == nullptr) throw cudl::Error("mkdtemp failed");
    std::vector<int64_t> labels(train.y.begin(), train.y.end());
    cudl::save_npy(tmp + "/x.npy", train.x.data(), {train.rows, train.features});
    cudl::save_npy(tmp + "/y.npy", labels.data(), {train.rows});
    const auto npy = cudl::NpyDataset::open(tmp + "/x.npy", tmp + "/y.npy");

    cudl::BackendOptions backend_options;
    backend_options.threads = threads;
    const std::unique_ptr<cudl::Backend> backend =
        cudl::make_backend(device == "gpu" ? cudl::Device::kCuda : cudl::Device::kCpu, backend_options);
    struct Way {
      const char* name;
      const cudl::Dataset* data;
      cudl::DataPath path;
      std::vector<double> seconds;
      std::vector<std::vector<double>> step_ms;  // per round: every timed step's milliseconds
      double last_loss = 0;
      std::string how;
    } ways[] = {{"resident (tensors)", &train, cudl::DataPath::kResident, {}, {}, 0, ""},
                {"streamed from memory", &train, cudl::DataPath::kStreamed, {}, {}, 0, ""},
                {"streamed from .npy (mmap)", npy.get(), cudl::DataPath::kStreamed, {}, {}, 0, ""}};
    cudl::presets::Gdbn2014 preset;
    preset.epochs = epochs;
    preset.learn_rate = 0.1f;
    // Round r starts with feed r mod 3, so that no feed always runs first (after a pause, or right
    // after another feed's loader threads) or always last.
    for (int round = 0; round < rounds; ++round)
      for (int k = 0; k < 3; ++k) {
        Way& w = ways[(round + k) % 3];
        cudl::Network net(*backend, {train.features});
        net.add(cudl::dense(800, cudl::Activation::kRelu)).add(cudl::dense(800, cudl::Activation::kRelu)).add(cudl::dense(10));
        net.initialize(2014, 0.05f);
        auto opt = preset.optimizer(net.param_set());
        auto schedule = preset.schedule();
        cudl::FitOptions o = preset.options();
        o.data_path = w.path;
        o.loader_threads = loader_threads;
        // Each step's time: the difference of consecutive reports within an epoch (the last
        // step of an epoch is not reported, nor is the first one's start).
        std::vector<double>& steps = w.step_ms.emplace_back();
        double last = -1;
        int64_t last_step = 0;
        o.every_steps = 1;
        o.on_steps = [&](const cudl::StepReport& r) {
          if (r.step == last_step + 1 && last >= 0) steps.push_back(1e3 * (r.seconds - last));
          last = r.seconds;
          last_step = r.step;
        };
        const cudl::History h = cudl::fit(net, preset.loss(), *opt, *w.data, o, &schedule);
        for (const cudl::EpochReport& e : h.epochs) w.seconds.push_back(e.seconds);
        w.last_loss = h.epochs.back().loss;
        w.how = h.data_path;
      }
    std::filesystem::remove_all(tmp);
    std::printf("%s, %d train rows, 2014 run at learn rate 0.1, %d epochs × %d rounds, %d loader threads\n\n",
                backend->describe().c_str(), static_cast<int>(train.rows), epochs, rounds, loader_threads);
    // Beside the ratio of medians, the median of paired ratios: each epoch against the resident
    // feed's epoch of the same number in the same round, run moments before or after, so that the
    // machine's slow drifts (other guests, frequency) cancel.
    std::printf("| feed | median s/epoch | vs resident | paired: median (range) | ~95%% interval "
                "| loss after epoch %d | path |\n"
                "| --- | ---: | ---: | ---: | ---: | ---: | --- |\n",
                epochs);
    const double base = median(ways[0].seconds);
    bool same = true;
    for (const Way& w : ways) {
      std::vector<double> paired;
      for (size_t i = 0; i < w.seconds.size(); ++i) paired.push_back(w.seconds[i] / ways[0].seconds[i]);
      const auto [lo, hi] = std::minmax_element(paired.begin(), paired.end());
      std::printf("| %s | %.3f | %.3f× | %.3f× (%.3f–%.3f) | %s | %.9g | %s |\n", w.name, median(w.seconds),
                  median(w.seconds) / base, median(paired), *lo, *hi, interval_text(paired).c_str(), w.last_loss,
                  w.how.c_str());
      same = same && w.last_loss == ways[0].last_loss;
    }
    std::printf("\n| feed | steps timed | median step | vs resident | paired by round: median (range) "
                "| ~95%% interval |\n"
                "| --- | ---: | ---: | ---: | ---: | ---: |\n");
    std::vector<double> base_rounds;
    for (const auto& r : ways[0].step_ms) base_rounds.push_back(median(r));
    const double base_step = median(all_of(ways[0].step_ms));
    for (const Way& w : ways) {
      const std::vector<double> all = all_of(w.step_ms);
      std::vector<double> paired;
      for (size_t r = 0; r < w.step_ms.size(); ++r) paired.push_back(median(w.step_ms[r]) / base_rounds[r]);
      const auto [lo, hi] = std::minmax_element(paired.begin(), paired.end());
      std::printf("| %s | %zu | %.3f ms | %.3f× | %.3f× (%.3f–%.3f) | %s |\n", w.name, all.size(), median(all),
                  median(all) / base_step, median(paired), *lo, *hi, interval_text(paired).c_str());
    }
    std::printf("\nthe three trained %s\n", same ? "alike (same loss, bit for bit)" : "DIFFERENTLY");
    return same ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_data_path: %s\n", e.what());
    return 1;
  }
}

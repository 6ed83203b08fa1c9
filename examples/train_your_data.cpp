// Training a network on your own data: in-memory features and labels (std::vector<float>), AdamW,
// a cosine schedule with warm-up, shuffled epochs, a validation split, early stopping and a
// progress bar; on the GPU when there is one, else on the CPU.
//
//   train_your_data [--rows N] [--epochs N] [--cpu] [--min-accuracy X]   (--help: what each does)
//
// Exit status 3 when the best validation accuracy is below X (for the test that runs it), 2 for
// bad input.
//
// The data here is synthetic (three noisy spirals in 2-D, lifted to 16 features) so that the
// program runs anywhere; put your own rows in `features` and `labels` instead.
#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "command_line.hpp"  // benchmarks/common: the command line of every cudl program (CLI11)
#include "cudl/cudl.hpp"

namespace {

// Three interleaved spirals: a problem a linear model cannot solve.
void make_spirals(int64_t rows, std::vector<float>& features, std::vector<float>& labels) {
  constexpr int kFeatures = 16;
  for (int64_t r = 0; r < rows; ++r) {
    const int label = static_cast<int>(r % 3);
    const cudl::rng::Philox4 b = cudl::rng::bits(42, 0, static_cast<uint64_t>(r));
    const float t = cudl::rng::uniform(b.v[0]);  // position along the arm, (0, 1]
    const float angle = 4.0f * t + 2.0944f * static_cast<float>(label) + 0.2f * cudl::rng::normal(b.v[1], b.v[2]);
    const float px = t * std::cos(angle), py = t * std::sin(angle);
    for (int k = 0; k < kFeatures; ++k) {  // smooth features of the 2-D point
      const float f = 1.0f + static_cast<float>(k / 2);
      features.push_back(k % 2 == 0 ? std::sin(f * px) : std::cos(f * py));
    }
    labels.push_back(static_cast<float>(label));
  }
}

}  // namespace

int main(int argc, char** argv) {
  int64_t rows = 30000;
  int epochs = 30;
  bool cpu_only = false;
  double min_accuracy = 0.0;
  CLI::App app(R"(Trains a network on in-memory data (three noisy spirals, lifted to 16 features) with AdamW, a
cosine schedule with warm-up, shuffled epochs, a validation split, early stopping and a progress
bar; on the GPU when there is one, else on the CPU.
)",
               "train_your_data");
  bench::setup_app(app, 22);
  app.footer("Exit status: 0 success, 2 bad input, 3 validation accuracy below --min-accuracy.");
  using Text = const std::string&;
  // At least 10 rows (a tenth is held out for validation), at most 10 million (640 MB of features:
  // a few digits too many would otherwise ask for more memory than the machine has).
  bench::add_value(app, "--rows", "N", "rows of synthetic data (default 30000)",
                   [&](Text v) { rows = bench::parse_whole<int64_t>("--rows", v, 10, 10'000'000); });
  bench::add_value(app, "--epochs", "N", "at most N epochs (default 30; early stopping may end sooner)",
                   [&](Text v) { epochs = bench::parse_whole<int>("--epochs", v, 1); });
  app.add_flag("--cpu", cpu_only, "train on the CPU even where a GPU is usable");
  bench::add_value(app, "--min-accuracy", "X", "exit 3 when the best validation accuracy is below X (default 0)",
                   [&](Text v) {
                     min_accuracy = bench::parse_number("--min-accuracy", v);
                     if (min_accuracy < 0 || min_accuracy > 1)
                       throw cudl::Error("--min-accuracy: must be in [0, 1], found '" + v + "'");
                   });
  if (const std::optional<int> status = bench::parse_command_line(app, argc, argv)) return *status;
  try {
    // 1. Your data, as rows of features and class indices.
    std::vector<float> features, labels;
    make_spirals(rows, features, labels);
    cudl::InMemoryDataset data;
    data.name = "spirals";
    data.rows = rows;
    data.features = 16;
    data.classes = 3;
    data.x = std::move(features);
    data.y = std::move(labels);
    const cudl::Split split = cudl::train_test_split(data, /*test_fraction=*/0.1, /*seed=*/1);

    // 2. A backend: the GPU if one is usable, else the CPU.
    const bool gpu = !cpu_only && cudl::probe_gpu().usable;
    std::unique_ptr<cudl::Backend> backend = cudl::make_backend(gpu ? cudl::Device::kCuda : cudl::Device::kCpu);
    std::printf("%s\n", backend->describe().c_str());
    const cudl::Tensor x = cudl::Tensor::from_host(split.train.x, {split.train.rows, 16}, *backend);
    const cudl::Tensor y = cudl::Tensor::from_host(split.train.y, {split.train.rows}, *backend);
    const cudl::Tensor vx = cudl::Tensor::from_host(split.test.x, {split.test.rows, 16}, *backend);
    const cudl::Tensor vy = cudl::Tensor::from_host(split.test.y, {split.test.rows}, *backend);

    // 3. The network, the loss, the optimizer and the schedule.
    cudl::Network net(*backend, {16});
    net.add(cudl::dense(128, cudl::Activation::kRelu))
        .add(cudl::dense(128, cudl::Activation::kRelu))
        .add(cudl::dense(3));
    net.initialize(/*seed=*/1, /*weight_stddev=*/0.1f);
    cudl::SoftmaxCrossEntropy loss;  // mean over the batch
    cudl::AdamOptions adam;
    adam.learn_rate = 3e-3f;
    adam.weight_decay = 1e-4f;
    cudl::Adam opt = cudl::Adam::adamw(net.param_set(), adam);
    cudl::CosineSchedule schedule(/*warmup_steps=*/200, /*min_factor=*/0.05f);

    // 4. Train: shuffled epochs, validation after each, early stopping, a progress bar.
    cudl::FitOptions fit;
    fit.epochs = epochs;
    fit.batch = 128;
    fit.valid_x = &vx;
    fit.valid_y = &vy;
    fit.early_stopping.patience = 5;
    const cudl::History h = cudl::fit(net, loss, opt, x, y, fit, &schedule);

    const cudl::EpochReport& best = h.epochs[static_cast<size_t>(std::max(h.best_epoch, 1) - 1)];
    std::printf("best epoch %d of %zu%s: validation accuracy %.2f%%\n", best.epoch, h.epochs.size(),
                h.stopped_early ? " (stopped early)" : "", 100.0 * (1.0 - best.valid_err));
    return 1.0 - best.valid_err >= min_accuracy ? 0 : 3;
  } catch (const cudl::Error& e) {
    std::fprintf(stderr, "train_your_data: %s\n", e.what());
    return 2;
  }
}

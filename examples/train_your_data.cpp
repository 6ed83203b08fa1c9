// Training a network on your own data: NumPy arrays (.npy files or an .npz archive, memory-mapped
// and streamed when they are large) or, without them, in-memory rows (std::vector<float>); a
// seeded stratified validation split, per-feature standardisation with the training rows'
// statistics, AdamW, a cosine schedule with warm-up, shuffled epochs, early stopping and a
// progress bar; on the GPU when there is one, else on the CPU.
//
//   train_your_data [--npy X.npy,Y.npy | --npz DATA.npz] [--epochs N] [--cpu] [--min-accuracy X]
//   train_your_data [--rows N] --save-npy DIR      (writes the synthetic rows as DIR/x.npy, DIR/y.npy)
//   (--help: what each does)
//
// Integer labels (one per row) are classes: softmax cross-entropy. Float targets are values:
// mean squared error. Exit status 3 when the best validation accuracy is below X (for the test
// that runs it), 2 for bad input.
//
// Without files the data is synthetic (three noisy spirals in 2-D, lifted to 16 features), so
// that the program runs anywhere; in Python, np.save("x.npy", features); np.save("y.npy", labels)
// gives it yours.
#include <algorithm>
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
  std::string npy, npz, save_dir;
  CLI::App app(R"(Trains a network on NumPy arrays (--npy, --npz) or on in-memory synthetic data (three noisy
spirals, lifted to 16 features) with a stratified validation split, standardised features, AdamW,
a cosine schedule with warm-up, shuffled epochs, early stopping and a progress bar; on the GPU
when there is one, else on the CPU.
)",
               "train_your_data");
  bench::setup_app(app, 22);
  app.footer("Exit status: 0 success, 2 bad input, 3 validation accuracy below --min-accuracy.");
  using Text = const std::string&;
  bench::add_value(app, "--npy", "X.npy,Y.npy", "train on these arrays (np.save): examples, then labels or targets",
                   [&](Text v) { npy = v; });
  bench::add_value(app, "--npz", "DATA.npz", "train on the arrays x and y of this archive (np.savez)",
                   [&](Text v) { npz = v; });
  bench::add_value(app, "--save-npy", "DIR", "write the synthetic rows as DIR/x.npy and DIR/y.npy, then exit",
                   [&](Text v) { save_dir = v; });
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
    if (!npy.empty() + !npz.empty() + !save_dir.empty() > 1)
      throw cudl::Error("--npy, --npz and --save-npy: give one of them at most");
    // 1. Your data: any cudl::Dataset. NumPy files are memory-mapped; the synthetic rows live in
    //    std::vector<float>s.
    std::unique_ptr<cudl::NpyDataset> file;
    cudl::InMemoryDataset synthetic;
    const cudl::Dataset* data = &synthetic;
    if (!npy.empty()) {
      const size_t comma = npy.find(',');
      if (comma == std::string::npos) throw cudl::Error("--npy: expected X.npy,Y.npy, found '" + npy + "'");
      file = cudl::NpyDataset::open(npy.substr(0, comma), npy.substr(comma + 1));
      data = file.get();
    } else if (!npz.empty()) {
      file = cudl::NpyDataset::open_npz(npz);
      data = file.get();
    } else {
      std::vector<float> features, labels;
      make_spirals(rows, features, labels);
      synthetic.name = "spirals";
      synthetic.rows = rows;
      synthetic.features = 16;
      synthetic.classes = 3;
      synthetic.x = std::move(features);
      synthetic.y = std::move(labels);
    }
    if (!save_dir.empty()) {
      std::vector<int64_t> labels(synthetic.y.begin(), synthetic.y.end());
      cudl::save_npy(save_dir + "/x.npy", synthetic.x.data(), {rows, 16});
      cudl::save_npy(save_dir + "/y.npy", labels.data(), {rows});
      std::printf("wrote %s/x.npy and %s/y.npy (%lld rows)\n", save_dir.c_str(), save_dir.c_str(),
                  static_cast<long long>(rows));
      return 0;
    }
    std::printf("data: %s\n", data->describe().c_str());
    const bool classes = data->num_classes() > 0;
    // A tenth held out (each class in proportion), then every feature standardised with the
    //    training rows' mean and deviation: views of the data, nothing copied.
    const cudl::DatasetSplit parts = cudl::random_split(*data, /*valid_fraction=*/0.1, /*seed=*/1, /*stratified=*/classes);
    const cudl::Normalize norm = cudl::Normalize::fit(parts.train);
    const cudl::Transformed train(parts.train, norm), valid(parts.valid, norm);

    // [guide:fit]
    // 2. A backend: the GPU if one is usable, else the CPU.
    const bool gpu = !cpu_only && cudl::probe_gpu().usable;
    std::unique_ptr<cudl::Backend> backend = cudl::make_backend(gpu ? cudl::Device::kCuda : cudl::Device::kCpu);
    std::printf("%s\n", backend->describe().c_str());

    // 3. The network, the loss, the optimizer and the schedule.
    cudl::Network net(*backend, data->example_shape());
    if (data->example_shape().size() > 1) net.add(cudl::flatten());
    net.add(cudl::dense(128, cudl::Activation::kRelu))
        .add(cudl::dense(128, cudl::Activation::kRelu))
        .add(cudl::dense(classes ? data->num_classes() : data->target_numel()));
    net.initialize(/*seed=*/1, /*weight_stddev=*/0.1f);
    std::unique_ptr<cudl::Loss> loss;
    if (classes) {
      loss = std::make_unique<cudl::SoftmaxCrossEntropy>();  // mean over the batch
    } else {
      loss = std::make_unique<cudl::MeanSquaredError>();
    }
    cudl::AdamOptions adam;
    adam.learn_rate = 3e-3f;
    adam.weight_decay = 1e-4f;
    cudl::Adam opt = cudl::Adam::adamw(net.param_set(), adam);
    cudl::CosineSchedule schedule(/*warmup_steps=*/200, /*min_factor=*/0.05f);

    // 4. Train: shuffled epochs, validation after each, early stopping, a progress bar. Data
    //    larger than fit.max_resident_bytes is streamed by background threads instead of being
    //    put on the backend whole; History::data_path says which.
    cudl::FitOptions fit;  // shuffled epochs by default
    fit.epochs = epochs;
    fit.batch = 128;
    fit.validation_data = &valid;
    fit.early_stopping.patience = 5;  // restores the best epoch's weights
    const cudl::History h = cudl::fit(net, *loss, opt, train, fit, &schedule);
    // [guide:fit]
    std::printf("data path: %s\n", h.data_path.c_str());

    const cudl::EpochReport& best = h.epochs[static_cast<size_t>(std::max(h.best_epoch, 1) - 1)];
    if (!classes) {
      std::printf("best epoch %d of %zu%s: validation loss (mean squared error) %.5g\n", best.epoch, h.epochs.size(),
                  h.stopped_early ? " (stopped early)" : "", best.valid_loss);
      return 0;
    }
    std::printf("best epoch %d of %zu%s: validation accuracy %.2f%%\n", best.epoch, h.epochs.size(),
                h.stopped_early ? " (stopped early)" : "", 100.0 * (1.0 - best.valid_err));
    return 1.0 - best.valid_err >= min_accuracy ? 0 : 3;
  } catch (const cudl::Error& e) {
    std::fprintf(stderr, "train_your_data: %s\n", e.what());
    return 2;
  }
}

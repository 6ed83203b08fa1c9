// Training on a CSV file: the features and a target column read by cudl::CsvDataset, a seeded
// validation split (stratified for classes), features standardised with the training rows'
// statistics, a small MLP trained with AdamW and early stopping; then the validation rows
// predicted and scored: a classification report for class targets (names or integer labels), the
// root-mean-square and mean absolute error, in the target's own units, for values.
//
//   train_csv [FILE.csv] [--target COLUMN] [--ignore COLUMN]... [--epochs N] [--cpu]
//             [--min-accuracy X] [--max-rmse X]          (--help: what each does)
//
// Two files ship with it, under examples/data (see its README): iris.csv (150 flowers, 4
// measurements, the species by name: classification; the default) and diabetes.csv (442
// patients, 10 measurements, a disease progression score one year later: regression).
// Exit status 3 when the validation accuracy is below --min-accuracy or the RMSE above
// --max-rmse (for the tests that run it), 2 for bad input.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "command_line.hpp"  // benchmarks/common: the command line of every cudl program (CLI11)
#include "cudl/cudl.hpp"

#ifndef CUDL_EXAMPLE_DATA
#define CUDL_EXAMPLE_DATA "examples/data"
#endif

namespace {

// examples/data/iris.csv of the source tree this was built from, else the installed copy beside
// this program (PREFIX/libexec/cudl/train_csv reads PREFIX/share/cudl/examples/data/iris.csv).
std::string default_file() {
  const std::string built = std::string(CUDL_EXAMPLE_DATA) + "/iris.csv";
  std::error_code ec;
  if (std::filesystem::exists(built, ec)) return built;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return built;
  const std::filesystem::path installed = self.parent_path() / "../../share/cudl/examples/data/iris.csv";
  return std::filesystem::exists(installed, ec) ? installed.lexically_normal().string() : built;
}

}  // namespace

int main(int argc, char** argv) {
  std::string file = default_file();
  std::optional<std::string> target;
  std::vector<std::string> ignore;
  int epochs = 200;
  bool cpu_only = false;
  double min_accuracy = 0.0, max_rmse = INFINITY;
  CLI::App app(R"(Trains a small network on a CSV file: the last column (or --target) is the target, every other
column a feature. Class labels (names or integers 0..K-1) give a classifier, other numbers a
regression. Default file: examples/data/iris.csv.
)",
               "train_csv");
  bench::setup_app(app, 22);
  app.footer("Exit status: 0 success, 2 bad input, 3 below --min-accuracy or above --max-rmse.");
  using Text = const std::string&;
  app.add_option("FILE", file, "the CSV file (default " + file + ")");
  bench::add_value(app, "--target", "COLUMN", "the target column, by header name or 0-based index (default the last)",
                   [&](Text v) { target = v; });
  app.add_option("--ignore", ignore, "a column that is neither feature nor target (an id); may repeat")->type_name("COLUMN");
  bench::add_value(app, "--epochs", "N", "at most N epochs (default 200; early stopping may end sooner)",
                   [&](Text v) { epochs = bench::parse_whole<int>("--epochs", v, 1); });
  app.add_flag("--cpu", cpu_only, "train on the CPU even where a GPU is usable");
  bench::add_value(app, "--min-accuracy", "X", "exit 3 when a classifier's validation accuracy is below X",
                   [&](Text v) { min_accuracy = bench::parse_number("--min-accuracy", v); });
  bench::add_value(app, "--max-rmse", "X", "exit 3 when a regression's validation RMSE is above X",
                   [&](Text v) { max_rmse = bench::parse_number("--max-rmse", v); });
  if (const std::optional<int> status = bench::parse_command_line(app, argc, argv)) return *status;
  try {
    // 1. The file. A column given as digits is an index, anything else a header name.
    const auto column = [](const std::string& v) -> cudl::CsvColumn {
      const bool digits = !v.empty() && std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; });
      return digits ? cudl::CsvColumn(std::stoll(v)) : cudl::CsvColumn(v);
    };
    // [guide:csv]
    cudl::CsvOptions csv;
    if (target) csv.target = column(*target);                             // by name or index; default the last
    for (const std::string& c : ignore) csv.ignore.push_back(column(c));  // columns left out (an id)
    const std::unique_ptr<cudl::CsvDataset> data = cudl::CsvDataset::read(file, csv);
    std::printf("data: %s\n", data->describe().c_str());
    const bool classes = data->num_classes() > 0;

    // 2. A fifth held out (each class in proportion), features standardised with the training
    //    rows' statistics; on the GPU when there is one.
    const cudl::DatasetSplit parts = cudl::random_split(*data, /*valid_fraction=*/0.2, /*seed=*/1, /*stratified=*/classes);
    const cudl::Normalize norm = cudl::Normalize::fit(parts.train);  // per feature; Per::kChannel for C×H×W
    const cudl::Transformed train(parts.train, norm), valid(parts.valid, norm);
    const bool gpu = !cpu_only && cudl::probe_gpu().usable;
    std::unique_ptr<cudl::Backend> backend = cudl::make_backend(gpu ? cudl::Device::kCuda : cudl::Device::kCpu);

    // 3. The network and its loss: class scores and softmax cross-entropy, or one value and the
    //    mean squared error.
    cudl::Network net(*backend, data->example_shape());
    net.add(cudl::dense(32, cudl::Activation::kRelu))
        .add(cudl::dense(32, cudl::Activation::kRelu))
        .add(cudl::dense(classes ? data->num_classes() : 1));
    net.initialize(/*seed=*/1, /*weight_stddev=*/0.1f);
    std::unique_ptr<cudl::Loss> loss;
    if (classes) {
      loss = std::make_unique<cudl::SoftmaxCrossEntropy>();
    } else {
      loss = std::make_unique<cudl::MeanSquaredError>();
    }
    cudl::AdamOptions adam;
    adam.learn_rate = classes ? 1e-2f : 3e-2f;
    adam.weight_decay = 1e-4f;
    cudl::Adam opt = cudl::Adam::adamw(net.param_set(), adam);

    // 4. Train: shuffled epochs of 16 rows, validation after each, the best epoch's weights kept.
    cudl::FitOptions fit;
    fit.epochs = epochs;
    fit.batch = 16;
    fit.validation_data = &valid;
    fit.early_stopping.patience = 20;
    fit.progress = cudl::Progress::kNone;
    const cudl::History h = cudl::fit(net, *loss, opt, train, fit);
    // [guide:csv]
    std::printf("%s; %zu epochs%s, best %d\n", backend->describe().c_str(), h.epochs.size(),
                h.stopped_early ? " (stopped early)" : "", h.best_epoch);

    // 5. The validation rows, predicted.
    const cudl::DeviceData v = cudl::to_device(valid, *backend);
    const std::vector<float> truth = v.y.to_vector();
    if (classes) {
      const std::vector<int> predicted = cudl::predict(net, v.x);
      const cudl::ClassificationReport report =
          cudl::classification_report(cudl::to_labels(truth), predicted, static_cast<int>(data->num_classes()));
      for (size_t k = 0; k < data->class_names().size(); ++k) std::printf("class %zu: %s\n", k, data->class_names()[k].c_str());
      std::printf("%s", cudl::format_report(report).c_str());
      std::printf("validation accuracy %.2f%% (%lld rows)\n", 100.0 * report.accuracy, static_cast<long long>(valid.size()));
      return report.accuracy >= min_accuracy ? 0 : 3;
    }
    const std::vector<float> out = net.forward(v.x, cudl::Mode::kInfer).to_vector();
    double sq = 0, abs = 0, mean = 0, spread = 0;
    for (float t : truth) mean += t / static_cast<double>(truth.size());
    for (size_t i = 0; i < truth.size(); ++i) {
      const double e = static_cast<double>(out[i]) - truth[i];
      sq += e * e;
      abs += std::fabs(e);
      spread += (truth[i] - mean) * (truth[i] - mean);
    }
    const double n = static_cast<double>(truth.size()), rmse = std::sqrt(sq / n);
    std::printf("validation RMSE %.4g, MAE %.4g, R² %.3f (%lld rows; predicting the mean: RMSE %.4g)\n", rmse, abs / n,
                1.0 - sq / spread, static_cast<long long>(valid.size()), std::sqrt(spread / n));
    return rmse <= max_rmse ? 0 : 3;
  } catch (const cudl::Error& e) {
    std::fprintf(stderr, "train_csv: %s\n", e.what());
    return 2;
  }
}

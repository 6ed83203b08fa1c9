// Saving, loading and resuming (docs/guide/saving.md): a model saved with cudl::save_model is
// rebuilt by cudl::load_model or loaded into a network built by hand with cudl::load_weights, and
// gives the same outputs; a checkpointed fit() stopped inside an epoch and resumed ends with the
// same parameters, bit for bit, as the same run left alone.
//
//   save_and_resume [--dir DIR] [--epochs N] [--cpu]     (--help: what each does)
//
// Writes DIR/model.safetensors and DIR/run.ckpt (default DIR: the current folder). The data is
// synthetic (two noisy classes of 8 features), so that it runs anywhere in a second. Exit status
// 0 when both checks hold, 1 when one does not, 2 for bad input.
#include <atomic>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "command_line.hpp"  // benchmarks/common: the command line of every cudl program (CLI11)
#include <cudl/cudl.hpp>

namespace {

constexpr int64_t kRows = 512, kFeatures = 8;

// The architecture, built the same way for every run (load_weights needs the same layers).
std::unique_ptr<cudl::Network> build(cudl::Backend& backend) {
  auto net = std::make_unique<cudl::Network>(backend, cudl::Shape{kFeatures});
  net->add(cudl::dense(32, cudl::Activation::kRelu)).add(cudl::dropout(0.2f)).add(cudl::dense(2));
  net->initialize(/*seed=*/7, /*weight_stddev=*/0.1f);
  return net;
}

// Two classes whose features are shifted apart, with noise: rows × 8 features, labels 0 or 1.
void make_data(std::vector<float>& x, std::vector<float>& y) {
  for (int64_t r = 0; r < kRows; ++r) {
    const int label = static_cast<int>(r % 2);
    for (int64_t k = 0; k < kFeatures; ++k) {
      const cudl::rng::Philox4 b = cudl::rng::bits(3, static_cast<uint64_t>(k), static_cast<uint64_t>(r));
      x.push_back((label == 1 ? 0.5f : -0.5f) + cudl::rng::normal(b.v[0], b.v[1]));
    }
    y.push_back(static_cast<float>(label));
  }
}

// A fit() of `epochs` epochs of AdamW with a cosine schedule: a fresh network, optimizer and
// schedule each time, with what `setup` adds to the options. Returns the final parameters.
struct Run {
  cudl::Backend& backend;
  const cudl::Tensor& x;
  const cudl::Tensor& y;
  int epochs;

  template <typename Setup>
  std::vector<float> operator()(Setup setup, cudl::History* history = nullptr) const {
    const std::unique_ptr<cudl::Network> net = build(backend);
    cudl::AdamOptions adam;
    adam.learn_rate = 1e-2f;
    cudl::Adam opt = cudl::Adam::adamw(net->param_set(), adam);
    cudl::CosineSchedule schedule(/*warmup_steps=*/8, /*min_factor=*/0.1f);
    cudl::FitOptions fit;
    fit.epochs = epochs;
    fit.batch = 32;
    fit.progress = cudl::Progress::kNone;
    setup(fit);
    const cudl::History h = cudl::fit(*net, cudl::SoftmaxCrossEntropy(), opt, x, y, fit, &schedule);
    if (history) *history = h;
    return net->params().to_vector();
  }
};

}  // namespace

int main(int argc, char** argv) {
  std::string dir = ".";
  int epochs = 4;
  bool cpu_only = false;
  CLI::App app(R"(Saves a model and loads it back two ways, then stops a checkpointed training run inside an epoch,
resumes it, and checks that it ends bit for bit as the same run left alone.
)",
               "save_and_resume");
  bench::setup_app(app, 14);
  app.footer("Exit status: 0 both checks hold, 1 one does not, 2 bad input.");
  using Text = const std::string&;
  bench::add_value(app, "--dir", "DIR", "where model.safetensors and run.ckpt go (default: the current folder)",
                   [&](Text v) { dir = v; });
  bench::add_value(app, "--epochs", "N", "epochs of each run, at least 2 (default 4)",
                   [&](Text v) { epochs = bench::parse_whole<int>("--epochs", v, 2, 1000); });
  app.add_flag("--cpu", cpu_only, "train on the CPU even where a GPU is usable");
  const auto check = [&] { bench::require_path("--dir", dir, /*folder=*/true); };
  if (const std::optional<int> status = bench::parse_command_line(app, argc, argv, check)) return *status;
  try {
    const bool gpu = !cpu_only && cudl::probe_gpu().usable;
    std::unique_ptr<cudl::Backend> backend = cudl::make_backend(gpu ? cudl::Device::kCuda : cudl::Device::kCpu);
    std::printf("%s\n", backend->describe().c_str());
    std::vector<float> host_x, host_y;
    make_data(host_x, host_y);
    const auto x = cudl::Tensor::from_host(host_x, {kRows, kFeatures}, *backend);
    const auto y = cudl::Tensor::from_host(host_y, {kRows}, *backend);
    const Run run{*backend, x, y, epochs};
    const std::string model = dir + "/model.safetensors", checkpoint = dir + "/run.ckpt";
    bool ok = true;

    // 1. A model, saved and loaded back: by load_model (the file names the layers) and by
    //    load_weights (into a network built by hand); all three give the same outputs.
    const std::unique_ptr<cudl::Network> net = build(*backend);
    cudl::Sgd sgd(net->param_set(), cudl::SgdOptions{});
    cudl::FitOptions quick;
    quick.epochs = 1;
    quick.progress = cudl::Progress::kNone;
    cudl::fit(*net, cudl::SoftmaxCrossEntropy(), sgd, x, y, quick);
    // [guide:save]
    cudl::save_model(*net, model);                                            // architecture, parameters, layer state
    std::unique_ptr<cudl::Network> net2 = cudl::load_model(model, *backend);  // rebuilt on any backend, CPU or GPU
    std::unique_ptr<cudl::Network> net3 = build(*backend);                    // built by hand, as net was
    cudl::load_weights(*net3, model);                                         // the saved parameters into it
    // [guide:save]
    const std::vector<float> out = net->forward(x, cudl::Mode::kInfer).to_vector();
    const bool loaded = net2->forward(x, cudl::Mode::kInfer).to_vector() == out &&
                        net3->forward(x, cudl::Mode::kInfer).to_vector() == out;
    std::printf("%s: %s gives the same outputs through load_model and load_weights\n", loaded ? "ok" : "FAILED",
                model.c_str());
    ok = ok && loaded;

    // 2. The same run three ways: left alone; checkpointed and stopped after the first step of
    //    epoch 2 (the stop flag is read after every step); resumed from that checkpoint.
    const std::vector<float> straight = run([](cudl::FitOptions&) {});
    std::atomic<bool> stop_flag{false};
    cudl::History stopped;
    run(
        [&](cudl::FitOptions& fit) {
          // [guide:checkpoint]
          fit.checkpoint_path = checkpoint;  // written after every epoch, and when stopped
          fit.stop = &stop_flag;             // a std::atomic<bool>: stop after the current step
          // [guide:checkpoint]
          fit.on_epoch = [&](const cudl::EpochReport& e) { stop_flag = e.epoch == 1; };
        },
        &stopped);
    const cudl::CheckpointInfo info = cudl::inspect_checkpoint(checkpoint);
    std::printf("stopped inside epoch %zu: %s; %s written there (%d epoch%s finished)\n", stopped.epochs.size() + 1,
                stopped.interrupted ? "yes" : "no", checkpoint.c_str(), info.epoch, info.epoch == 1 ? "" : "s");
    cudl::History resumed;
    const std::vector<float> continued = run(
        [&](cudl::FitOptions& fit) {
          // [guide:resume]
          fit.resume_from = checkpoint;  // a fresh network, optimizer and schedule continue the saved run exactly
          // [guide:resume]
        },
        &resumed);
    const bool exact = stopped.interrupted && continued == straight;
    std::printf("%s: stopped and resumed to epoch %zu, the run ends bit for bit as the uninterrupted one\n",
                exact ? "ok" : "FAILED", resumed.epochs.size());
    ok = ok && exact;
    return ok ? 0 : 1;
  } catch (const cudl::Error& e) {
    std::fprintf(stderr, "save_and_resume: %s\n", e.what());
    return 2;
  }
}

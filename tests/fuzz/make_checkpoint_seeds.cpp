// Writes the seed corpus of the checkpoint fuzzer (run_fuzz.sh checkpoint runs it when the corpus
// folder is empty): real cudl files written through the public API from the fuzzer's networks
// (checkpoint_fixture.hpp): each network's model, and checkpoints of short fit() runs on synthetic
// data: Adam with ReduceOnPlateau (validation, early stopping's best parameters) at an epoch's
// end, and the 2014 preset stopped inside an epoch (GdbnNesterov at its look-ahead point).
// Usage: make_checkpoint_seeds DIR
#include <atomic>
#include <cstdio>
#include <string>
#include <vector>

#include "checkpoint_fixture.hpp"
#include "cudl/cpu_backend.hpp"

namespace {

using namespace cudl;

// Two classes, told apart by the sign of the features (deterministic, no RNG needed).
void blobs(int64_t rows, int64_t features, std::vector<float>& x, std::vector<float>& y) {
  x.clear();
  y.clear();
  for (int64_t r = 0; r < rows; ++r) {
    const int label = static_cast<int>(r % 2);
    y.push_back(static_cast<float>(label));
    for (int64_t c = 0; c < features; ++c)
      x.push_back((label ? 1.0f : -1.0f) + 0.3f * static_cast<float>((r * 7 + c * 3) % 11 - 5) / 5.0f);
  }
}

const char* name_of(fuzz::Net which) { return which == fuzz::Net::kDense ? "dense" : "image"; }

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_checkpoint_seeds DIR\n");
    return 2;
  }
  const std::string dir = argv[1];
  CpuBackend cpu(1);
  for (fuzz::Net which : fuzz::kNets) {
    const std::string name = name_of(which);
    const int64_t rows = 64, features = fuzz::features(which);
    std::vector<float> xv, yv;
    blobs(rows, features, xv, yv);
    const Tensor x = Tensor::from_host(xv, {rows, features}, cpu), y = Tensor::from_host(yv, {rows}, cpu);
    blobs(32, features, xv, yv);
    const Tensor vx = Tensor::from_host(xv, {32, features}, cpu), vy = Tensor::from_host(yv, {32}, cpu);

    // The model, as initialised.
    save_model(*fuzz::make_network(which, cpu), dir + "/model_" + name + ".safetensors");

    // Adam + ReduceOnPlateau, 2 epochs of 4 steps, validated, with early stopping's best params.
    {
      auto net = fuzz::make_network(which, cpu);
      auto opt = fuzz::make_adam(*net);
      auto schedule = fuzz::make_plateau();
      const SoftmaxCrossEntropy loss;
      FitOptions o;
      o.epochs = 2;
      o.batch = 16;
      o.progress = Progress::kNone;
      o.valid_x = &vx;
      o.valid_y = &vy;
      o.early_stopping.patience = 5;
      o.checkpoint_path = dir + "/adam_plateau_" + name + ".ckpt";
      fit(*net, loss, *opt, x, y, o, schedule.get());
    }

    // The 2014 preset stopped after the 2nd step of epoch 2: a look-ahead checkpoint.
    {
      auto net = fuzz::make_network(which, cpu);
      const presets::Gdbn2014 p = fuzz::gdbn_preset();
      const SoftmaxCrossEntropy loss = p.loss();
      auto opt = p.optimizer(net->param_set());
      ExponentialSchedule schedule = p.schedule();
      FitOptions o = p.options();
      o.epochs = 3;
      std::atomic<bool> stop{false};
      o.stop = &stop;
      o.every_steps = 1;
      o.on_steps = [&](const StepReport& r) {
        if (r.epoch == 2 && r.step == 1) stop = true;  // fit finishes the next step, then stops
      };
      o.checkpoint_path = dir + "/gdbn2014_stopped_" + name + ".ckpt";
      const History h = fit(*net, loss, *opt, x, y, o, &schedule);
      if (!h.interrupted || h.epochs.size() != 1) {
        std::fprintf(stderr, "make_checkpoint_seeds: the %s run did not stop inside epoch 2\n", name.c_str());
        return 1;
      }
      // The file records the look-ahead point (fit() itself returns with true weights).
      auto back = fuzz::make_network(which, cpu);
      auto opt2 = p.optimizer(back->param_set());
      ExponentialSchedule schedule2 = p.schedule();
      load_checkpoint(o.checkpoint_path, *back, *opt2, &schedule2);
      if (!opt2->in_lookahead()) {
        std::fprintf(stderr, "make_checkpoint_seeds: the %s run's checkpoint is not at a look-ahead point\n",
                     name.c_str());
        return 1;
      }
    }
  }
  return 0;
}

#include "options.hpp"

#include "command_line.hpp"
#include "cudl/error.hpp"

namespace bench {
namespace {

constexpr int kMaxThreads = 4096;  // more CPU threads than any machine this runs on

std::vector<int64_t> parse_layers(const std::string& text) {
  std::vector<int64_t> out;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = text.find_first_of(",-", start);
    const std::string part = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    out.push_back(parse_whole<int64_t>("--layers", part, 1));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (out.size() < 2) throw cudl::Error("--layers: expected at least input and output sizes, e.g. 784,800,800,10");
  return out;
}

}  // namespace

std::optional<int> parse_options(int argc, char** argv, Options* out) {
  Options& o = *out;
  CLI::App app(R"(Reruns the 2014 nolearn DBN benchmark: a 784-800-800-10 ReLU network trained with gdbn's
Nesterov SGD on minibatches drawn with replacement, then sklearn's classification report.
)",
               "bench_dbn");
  setup_app(app, 23);
  app.footer(R"(Ctrl-C or SIGTERM while training finishes the current step, writes the checkpoint (with
--checkpoint) and the --json (status "interrupted"), and exits 130; a second one exits at once.
Exit status: 0 success, 2 bad input or unavailable device, 3 training diverged, 130 interrupted.)");
  using Text = const std::string&;
  add_value(app, "--device", "cpu|gpu", "where to train (default cpu)", [&](Text v) { o.device = parse_device(v); });
  add_precision(app, &o.precision);
  add_value(app, "--launch", "auto|captured|eager",
            "GPU steps, of training and of the RBMs' pretraining: auto runs the fused step\n"
            "(one persistent kernel for many steps) where the GPU backend has it, else as\n"
            "captured (default); captured replays one captured step (a CUDA graph) where\n"
            "the backend and network allow it; eager queues every primitive",
            [&](Text v) {
              if (v != "auto" && v != "captured" && v != "eager")
                throw cudl::Error("--launch: expected auto, captured or eager, found '" + v + "'");
              o.train.launch = v == "auto"       ? cudl::StepLaunch::kAuto
                               : v == "captured" ? cudl::StepLaunch::kCaptured
                                                 : cudl::StepLaunch::kEager;
            });
  add_value(app, "--data", "DIR",
            "IDX files of MNIST or Fashion-MNIST (default: $CUDL_DATA, then data/mnist\n"
            "in the project, then /usr/share/datasets/fashion-mnist)",
            [&](Text v) { o.data = v; });
  add_value(app, "--max-data-mib", "N",
            "refuse data whose images take more than N MiB as floats, before reading\n"
            "them (default 1024; MNIST's 70,000 take 210)",
            [&](Text v) { o.max_data_mib = parse_whole<int64_t>("--max-data-mib", v, 1, int64_t{1} << 40); });
  add_value(app, "--json", "FILE", "also write everything printed, machine-readably", [&](Text v) { o.json = v; });
  add_value(app, "--learn-rate", "X",
            "initial learning rate (default 0.3, the 2014 value, on MNIST; 0.1 on\n"
            "Fashion-MNIST, where 0.3 diverges)",
            [&](Text v) {
              o.train.learn_rate = static_cast<float>(parse_number("--learn-rate", v));
              if (o.train.learn_rate <= 0) throw cudl::Error("--learn-rate: must be positive, found '" + v + "'");
              o.learn_rate_given = true;
            });
  add_value(app, "--decay", "X", "learning-rate factor after each epoch (default 0.9)", [&](Text v) {
    o.train.decay = static_cast<float>(parse_number("--decay", v));
    if (o.train.decay <= 0) throw cudl::Error("--decay: must be positive, found '" + v + "'");
  });
  add_value(app, "--momentum", "X", "Nesterov momentum (default 0.9)", [&](Text v) {
    o.train.momentum = static_cast<float>(parse_number("--momentum", v));
    if (o.train.momentum < 0 || o.train.momentum >= 1)
      throw cudl::Error("--momentum: must be in [0, 1), found '" + v + "'");
  });
  add_value(app, "--l2", "X", "L2 weight cost, weights only (default 1e-4)", [&](Text v) {
    o.train.l2 = static_cast<float>(parse_number("--l2", v));
    if (o.train.l2 < 0) throw cudl::Error("--l2: must be non-negative, found '" + v + "'");
  });
  add_value(app, "--batch", "N", "minibatch size (default 64)",
            [&](Text v) { o.train.batch = parse_whole<int64_t>("--batch", v, 1); });
  add_value(app, "--epochs", "N", "epochs (default 10)",
            [&](Text v) { o.train.epochs = parse_whole<int>("--epochs", v, 0); });
  add_value(app, "--layers", "A,B,...", "layer sizes, input first (default 784,800,800,10)",
            [&](Text v) { o.layers = parse_layers(v); });
  add_value(app, "--test-size", "X", "fraction held out for testing (default 0.33)", [&](Text v) {
    o.test_size = parse_number("--test-size", v);
    if (o.test_size <= 0 || o.test_size >= 1) throw cudl::Error("--test-size: must be in (0, 1), found '" + v + "'");
  });
  add_value(app, "--seed", "N", "seed for the split, initial weights and minibatch draws (default 2014)",
            [&](Text v) { o.train.seed = parse_uint64("--seed", v); });
  add_value(app, "--threads", "N", "CPU threads (default: all available)",
            [&](Text v) { o.threads = parse_whole<int>("--threads", v, 0, kMaxThreads); });
  add_value(app, "--max-loss", "X", "a minibatch mean loss above X counts as divergence (default 100·ln K)",
            [&](Text v) {
              o.train.max_loss = static_cast<float>(parse_number("--max-loss", v));
              if (o.train.max_loss <= 0) throw cudl::Error("--max-loss: must be positive, found '" + v + "'");
            });
  add_value(app, "--pretrain-epochs", "N",
            "first pretrain every weight layer as an RBM for N epochs of CD-1 (gdbn's\n"
            "DBN pretraining: Gaussian visible units, noisy-ReLU hidden units), then\n"
            "fine-tune the unrolled network (default 0: no pretraining, as in 2014)",
            [&](Text v) { o.pretrain_epochs = parse_whole<int>("--pretrain-epochs", v, 0); });
  add_value(app, "--pretrain-learn-rate", "X", "pretraining learning rate (default: the fine-tuning one)",
            [&](Text v) {
              o.pretrain_learn_rate = static_cast<float>(parse_number("--pretrain-learn-rate", v));
              if (o.pretrain_learn_rate <= 0)
                throw cudl::Error("--pretrain-learn-rate: must be positive, found '" + v + "'");
            });
  add_value(app, "--pretrain-momentum", "X", "pretraining momentum (default: the fine-tuning one)", [&](Text v) {
    o.pretrain_momentum = static_cast<float>(parse_number("--pretrain-momentum", v));
    if (o.pretrain_momentum < 0 || o.pretrain_momentum >= 1)
      throw cudl::Error("--pretrain-momentum: must be in [0, 1), found '" + v + "'");
  });
  add_value(app, "--save", "FILE", "save the trained model (safetensors; cudl::load_model reads it)",
            [&](Text v) { o.save = v; });
  add_value(app, "--checkpoint", "FILE",
            "save the run (model, optimizer, position) after every N epochs (below),\n"
            "after the last, and on Ctrl-C / SIGTERM",
            [&](Text v) { o.checkpoint = v; });
  add_value(app, "--checkpoint-every", "N", "epochs between checkpoints (default 1)", [&](Text v) {
    o.checkpoint_every = parse_whole<int>("--checkpoint-every", v, 1);
    o.checkpoint_every_given = true;
  });
  add_value(app, "--resume", "FILE",
            "continue the run saved in FILE (same data and settings); --epochs stays\n"
            "the run's total: --epochs 4 --resume of a 2-epoch checkpoint trains 3 and 4",
            [&](Text v) { o.resume = v; });
  return parse_command_line(app, argc, argv, [&] {
    if (o.checkpoint_every_given && o.checkpoint.empty())
      throw cudl::Error("--checkpoint-every: needs --checkpoint FILE");
    if (!o.resume.empty() && o.pretrain_epochs > 0)
      throw cudl::Error("--resume: the checkpoint holds the pretrained weights; drop --pretrain-epochs");
  });
}

}  // namespace bench

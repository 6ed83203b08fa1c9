#include "options.hpp"

#include "cli.hpp"
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

const char* usage() {
  return R"(usage: bench_dbn [options]
Reruns the 2014 nolearn DBN benchmark: a 784-800-800-10 ReLU network trained with gdbn's
Nesterov SGD on minibatches drawn with replacement, then sklearn's classification report.

  --device cpu|gpu     where to train (default cpu)
  --precision fp32|tf32  GPU products in strict fp32 (default; agrees with the CPU) or on tf32
                       tensor cores
  --launch auto|eager  GPU steps: auto replays one captured step per epoch (a CUDA graph) where
                       the backend and network allow it (default); eager queues every primitive
  --data DIR           IDX files of MNIST or Fashion-MNIST (default: $CUDL_DATA, then data/mnist
                       in the project, then /usr/share/datasets/fashion-mnist)
  --json FILE          also write everything printed, machine-readably
  --learn-rate X       initial learning rate (default 0.3, the 2014 value, on MNIST; 0.1 on
                       Fashion-MNIST, where 0.3 diverges)
  --decay X            learning-rate factor after each epoch (default 0.9)
  --momentum X         Nesterov momentum (default 0.9)
  --l2 X               L2 weight cost, weights only (default 1e-4)
  --batch N            minibatch size (default 64)
  --epochs N           epochs (default 10)
  --layers A,B,...     layer sizes, input first (default 784,800,800,10)
  --test-size X        fraction held out for testing (default 0.33)
  --seed N             seed for the split, initial weights and minibatch draws (default 2014)
  --threads N          CPU threads (default: all available)
  --max-loss X         a minibatch mean loss above X counts as divergence (default 100·ln K)
  --pretrain-epochs N  first pretrain every weight layer as an RBM for N epochs of CD-1 (gdbn's
                       DBN pretraining: Gaussian visible units, noisy-ReLU hidden units), then
                       fine-tune the unrolled network (default 0: no pretraining, as in 2014)
  --pretrain-learn-rate X, --pretrain-momentum X
                       pretraining settings (default: the fine-tuning ones)
  --save FILE          save the trained model (safetensors; cudl::load_model reads it)
  --checkpoint FILE    save the run (model, optimizer, position) after every N epochs (below),
                       after the last, and on Ctrl-C / SIGTERM
  --checkpoint-every N epochs between checkpoints (default 1)
  --resume FILE        continue the run saved in FILE (same data and settings); --epochs stays
                       the run's total: --epochs 4 --resume of a 2-epoch checkpoint trains 3 and 4
  --help               this text
Ctrl-C or SIGTERM while training finishes the current step, writes the checkpoint (with
--checkpoint) and the --json (status "interrupted"), and exits 130; a second one exits at once.
Exit status: 0 success, 2 bad input or unavailable device, 3 training diverged, 130 interrupted.
)";
}

Options parse_options(int argc, char** argv) {
  Options o;
  for_each_flag(argc, argv, &o.help, [&](const std::string& flag, const std::string& v) {
    if (flag == "--device") {
      o.device = parse_device(v);
    } else if (flag == "--precision") {
      o.precision = parse_precision(v);
    } else if (flag == "--launch") {
      if (v != "auto" && v != "eager") throw cudl::Error("--launch: expected auto or eager, found '" + v + "'");
      o.train.launch = v == "auto" ? cudl::StepLaunch::kAuto : cudl::StepLaunch::kEager;
    } else if (flag == "--pretrain-epochs") {
      o.pretrain_epochs = parse_whole<int>(flag, v, 0);
    } else if (flag == "--pretrain-learn-rate") {
      o.pretrain_learn_rate = static_cast<float>(parse_number(flag, v));
      if (o.pretrain_learn_rate <= 0) throw cudl::Error("--pretrain-learn-rate: must be positive, found '" + v + "'");
    } else if (flag == "--pretrain-momentum") {
      o.pretrain_momentum = static_cast<float>(parse_number(flag, v));
      if (o.pretrain_momentum < 0 || o.pretrain_momentum >= 1)
        throw cudl::Error("--pretrain-momentum: must be in [0, 1), found '" + v + "'");
    } else if (flag == "--save") {
      o.save = v;
    } else if (flag == "--checkpoint") {
      o.checkpoint = v;
    } else if (flag == "--checkpoint-every") {
      o.checkpoint_every = parse_whole<int>(flag, v, 1);
      o.checkpoint_every_given = true;
    } else if (flag == "--resume") {
      o.resume = v;
    } else if (flag == "--data") {
      o.data = v;
    } else if (flag == "--json") {
      o.json = v;
    } else if (flag == "--learn-rate") {
      o.train.learn_rate = static_cast<float>(parse_number(flag, v));
      if (o.train.learn_rate <= 0) throw cudl::Error("--learn-rate: must be positive, found '" + v + "'");
      o.learn_rate_given = true;
    } else if (flag == "--decay") {
      o.train.decay = static_cast<float>(parse_number(flag, v));
      if (o.train.decay <= 0) throw cudl::Error("--decay: must be positive, found '" + v + "'");
    } else if (flag == "--momentum") {
      o.train.momentum = static_cast<float>(parse_number(flag, v));
      if (o.train.momentum < 0 || o.train.momentum >= 1)
        throw cudl::Error("--momentum: must be in [0, 1), found '" + v + "'");
    } else if (flag == "--l2") {
      o.train.l2 = static_cast<float>(parse_number(flag, v));
      if (o.train.l2 < 0) throw cudl::Error("--l2: must be non-negative, found '" + v + "'");
    } else if (flag == "--batch") {
      o.train.batch = parse_whole<int64_t>(flag, v, 1);
    } else if (flag == "--epochs") {
      o.train.epochs = parse_whole<int>(flag, v, 0);
    } else if (flag == "--layers") {
      o.layers = parse_layers(v);
    } else if (flag == "--test-size") {
      o.test_size = parse_number(flag, v);
      if (o.test_size <= 0 || o.test_size >= 1) throw cudl::Error("--test-size: must be in (0, 1), found '" + v + "'");
    } else if (flag == "--seed") {
      o.train.seed = parse_uint64(flag, v);
    } else if (flag == "--threads") {
      o.threads = parse_whole<int>(flag, v, 0, kMaxThreads);
    } else if (flag == "--max-loss") {
      o.train.max_loss = static_cast<float>(parse_number(flag, v));
      if (o.train.max_loss <= 0) throw cudl::Error("--max-loss: must be positive, found '" + v + "'");
    } else {
      return false;
    }
    return true;
  });
  if (o.checkpoint_every_given && o.checkpoint.empty())
    throw cudl::Error("--checkpoint-every: needs --checkpoint FILE");
  if (!o.resume.empty() && o.pretrain_epochs > 0)
    throw cudl::Error("--resume: the checkpoint holds the pretrained weights; drop --pretrain-epochs");
  return o;
}

}  // namespace bench

// Models and checkpoints (checkpoint.hpp): every layer type saved and rebuilt, loads that check
// before they change anything, and resumed runs that equal uninterrupted ones bit for bit — at an
// epoch boundary and after a stop inside an epoch — for the 2014 preset and for Adam.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <vector>

#include "cudl/checkpoint.hpp"
#include "cudl/conv_layers.hpp"
#include "cudl/cpu_backend.hpp"
#include "cudl/rng.hpp"
#include "test_support.hpp"

using namespace cudl;
using cudl::testing::Blobs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using cudl::testing::error_of;
using cudl::testing::TempDir;

namespace {


std::unique_ptr<Network> mlp(Backend& backend, bool with_dropout = false) {
  auto net = std::make_unique<Network>(backend, Shape{8});
  net->add(dense(16, Activation::kRelu));
  if (with_dropout) net->add(dropout(0.25f, 99));
  net->add(dense(2));
  net->initialize(1, 0.1f);
  return net;
}

// One image network with every layer type, trained for a step so that BatchNorm's running
// statistics and Dropout's counter have moved from their starting values.
std::unique_ptr<Network> every_layer(Backend& backend) {
  auto net = std::make_unique<Network>(backend, Shape{2, 6, 6});
  Conv2dParams p;
  p.pad_h = 1;
  p.stride_w = 2;
  net->add(conv2d(3, 3, 3, p, Activation::kSigmoid, Bias::kNo))
      .add(batch_norm2d(1e-3f, 0.2f))
      .add(relu())
      .add(max_pool2d(2, 1))
      .add(avg_pool2d(2, 1, 1))
      .add(flatten())
      .add(dropout(0.3f, 7))
      .add(dense(4, Activation::kRelu))
      .add(sigmoid())
      .add(dense(3));
  net->initialize(3, 0.2f);
  const Tensor x = Tensor::from_host(cudl::testing::uniform_values(11, 4 * 72, -1.0f, 1.0f), {4, 2, 6, 6}, backend);
  Tensor dout = Tensor::from_host(cudl::testing::uniform_values(12, 4 * 3, -1.0f, 1.0f), {4, 3}, backend);
  net->forward(x, Mode::kTrain);
  net->backward(x, dout);
  return net;
}

std::vector<float> state_of(Network& net) {
  std::vector<float> all = net.params().to_vector();
  for (int64_t i = 0; i < net.num_layers(); ++i) {
    for (const auto& [name, t] : net.layer(i).state()) {
      const std::vector<float> v = t->to_vector();
      all.insert(all.end(), v.begin(), v.end());
    }
    for (const auto& [name, c] : net.layer(i).counters()) all.push_back(static_cast<float>(*c));
  }
  return all;
}

std::vector<char> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const std::string& path, const std::vector<char>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace

TEST(Checkpoint, AModelOfEveryLayerTypeIsRebuiltExactly) {
  CpuBackend cpu(1);
  TempDir dir;
  std::unique_ptr<Network> net = every_layer(cpu);
  save_model(*net, dir.str("every.safetensors"));
  CpuBackend other(2);
  std::unique_ptr<Network> back = load_model(dir.str("every.safetensors"), other);
  ASSERT_EQ(back->num_layers(), net->num_layers());
  for (int64_t i = 0; i < net->num_layers(); ++i) {
    EXPECT_EQ(back->layer(i).describe(), net->layer(i).describe());
    EXPECT_TRUE(back->layer(i).config() == net->layer(i).config()) << net->layer(i).describe();
  }
  EXPECT_EQ(back->summary(), net->summary());
  EXPECT_EQ(state_of(*back), state_of(*net));
  const Tensor x = Tensor::from_host(cudl::testing::uniform_values(13, 5 * 72, -1.0f, 1.0f), {5, 2, 6, 6}, cpu);
  const Tensor x2 = Tensor::from_host(x.to_vector(), {5, 2, 6, 6}, other);
  EXPECT_EQ(back->forward(x2, Mode::kInfer).to_vector(), net->forward(x, Mode::kInfer).to_vector());

  const CheckpointInfo info = inspect_checkpoint(dir.str("every.safetensors"));
  EXPECT_EQ(info.kind, "model");
  EXPECT_EQ(info.format_version, kCheckpointFormatVersion);
  EXPECT_EQ(info.input_shape, (Shape{2, 6, 6}));
  ASSERT_EQ(info.layers.size(), 10u);
  EXPECT_EQ(info.layers[1], net->layer(1).describe());
  EXPECT_THAT(info.saved_from, HasSubstr("cpu"));
}

TEST(Checkpoint, LoadWeightsNamesTheFirstLayerThatDiffers) {
  CpuBackend cpu(1);
  TempDir dir;
  std::unique_ptr<Network> net = mlp(cpu);
  save_model(*net, dir.str("m.safetensors"));
  Network wider(cpu, {8});
  wider.add(dense(16, Activation::kRelu)).add(dense(3));
  wider.initialize(2, 0.1f);
  const std::vector<float> before = wider.params().to_vector();
  EXPECT_THAT(error_of([&] { load_weights(wider, dir.str("m.safetensors")); }),
              AllOf(HasSubstr("m.safetensors: layer 1"), HasSubstr("the network has Dense(3)"),
                    HasSubstr("the file has Dense(2)")));
  EXPECT_EQ(wider.params().to_vector(), before);  // nothing loaded
  Network other_input(cpu, {9});
  other_input.add(dense(16, Activation::kRelu)).add(dense(2));
  EXPECT_THAT(error_of([&] { load_weights(other_input, dir.str("m.safetensors")); }),
              HasSubstr("saved for input [8], the network takes [9]"));
  // The same layers load.
  std::unique_ptr<Network> same = mlp(cpu);
  same->initialize(9, 0.3f);
  load_weights(*same, dir.str("m.safetensors"));
  EXPECT_EQ(same->params().to_vector(), net->params().to_vector());
}

TEST(Checkpoint, ADamagedFileIsRefusedAndChangesNothing) {
  CpuBackend cpu(1);
  TempDir dir;
  std::unique_ptr<Network> net = mlp(cpu);
  save_model(*net, dir.str("m.safetensors"));
  std::vector<char> bytes = read_bytes(dir.str("m.safetensors"));
  bytes[bytes.size() - 5] ^= 0x10;  // one bit of the last parameter
  write_bytes(dir.str("bad.safetensors"), bytes);
  std::unique_ptr<Network> other = mlp(cpu);
  other->initialize(4, 0.1f);
  const std::vector<float> before = other->params().to_vector();
  EXPECT_THAT(error_of([&] { load_weights(*other, dir.str("bad.safetensors")); }), HasSubstr("CRC"));
  EXPECT_EQ(other->params().to_vector(), before);
  EXPECT_THAT(error_of([&] { load_model(dir.str("missing.safetensors"), cpu); }), HasSubstr("missing.safetensors"));
}

TEST(Checkpoint, ANewerFormatOrAModelFileIsNotResumed) {
  CpuBackend cpu(1);
  TempDir dir;
  std::unique_ptr<Network> net = mlp(cpu);
  save_model(*net, dir.str("m.safetensors"));
  Adam opt(net->param_set(), AdamOptions{});
  EXPECT_THAT(error_of([&] { load_checkpoint(dir.str("m.safetensors"), *net, opt, nullptr); }),
              HasSubstr("a model file, not a checkpoint"));
  // A file claiming format version 2: rewrite the metadata in place (same length, so the
  // header and the offsets stay valid; the CRC covers only the data).
  std::vector<char> bytes = read_bytes(dir.str("m.safetensors"));
  const std::string from = "\"format_version\":\"1\"", to = "\"format_version\":\"2\"";
  auto it = std::search(bytes.begin(), bytes.end(), from.begin(), from.end());
  ASSERT_NE(it, bytes.end());
  std::copy(to.begin(), to.end(), it);
  write_bytes(dir.str("v2.safetensors"), bytes);
  EXPECT_THAT(error_of([&] { load_model(dir.str("v2.safetensors"), cpu); }),
              HasSubstr("format version 2 is newer than this build reads (1)"));
}

namespace {

// A run of `epochs` epochs of a given recipe on the blobs, optionally resumed from `resume`,
// optionally checkpointing to `save`, optionally stopped after `stop_after` steps of the run.
struct TrainingRun {
  enum class Recipe { kGdbn2014, kAdamCosine };
  Recipe recipe;
  int epochs;
  std::string save, resume;
  int64_t stop_after = -1;

  // Returns the network's parameters and state at the end; *steps_run: the steps this process ran.
  std::vector<float> operator()(History* history = nullptr, int64_t* steps_run = nullptr) const {
    CpuBackend cpu(2);
    const Blobs data(640);
    const Tensor x = Tensor::from_host(data.x, {640, 8}, cpu), y = Tensor::from_host(data.y, {640}, cpu);
    const Blobs valid(128, 9);
    const Tensor vx = Tensor::from_host(valid.x, {128, 8}, cpu), vy = Tensor::from_host(valid.y, {128}, cpu);
    std::unique_ptr<Network> net = mlp(cpu, recipe == Recipe::kAdamCosine);
    std::atomic<bool> stop{false};
    int64_t steps_seen = 0;
    auto configure = [&](FitOptions& o) {
      o.epochs = epochs;
      o.progress = Progress::kNone;
      o.checkpoint_path = save;
      o.resume_from = resume;
      o.stop = &stop;
      o.every_steps = 1;
      o.on_steps = [&](const StepReport&) {
        if (++steps_seen == stop_after) stop = true;
      };
      o.on_epoch = [&](const EpochReport&) { ++steps_seen; };  // on_steps skips an epoch's last step
    };
    History h;
    if (recipe == Recipe::kGdbn2014) {
      presets::Gdbn2014 p;
      const SoftmaxCrossEntropy loss = p.loss();
      std::unique_ptr<GdbnNesterov> opt = p.optimizer(net->param_set());
      ExponentialSchedule schedule = p.schedule();
      FitOptions o = p.options();
      configure(o);
      h = fit(*net, loss, *opt, x, y, o, &schedule);
    } else {
      const SoftmaxCrossEntropy loss;
      AdamOptions a;
      a.learn_rate = 0.01f;
      a.weight_decay = 0.01f;
      Adam opt = Adam::adamw(net->param_set(), a);
      CosineSchedule schedule(7, 0.1f, /*total_steps=*/80);  // the 4-epoch run's, however long this one is
      FitOptions o;
      o.batch = 32;
      o.seed = 3;
      o.valid_x = &vx;
      o.valid_y = &vy;
      o.early_stopping.patience = 50;
      configure(o);
      h = fit(*net, loss, opt, x, y, o, &schedule);
    }
    if (history != nullptr) *history = h;
    if (steps_run != nullptr) *steps_run = steps_seen;
    return state_of(*net);
  }
};

void expect_same_history(const History& a, const History& b) {
  ASSERT_EQ(a.epochs.size(), b.epochs.size());
  for (size_t i = 0; i < a.epochs.size(); ++i) {
    EXPECT_EQ(a.epochs[i].loss, b.epochs[i].loss) << "epoch " << i + 1;
    EXPECT_EQ(a.epochs[i].err, b.epochs[i].err) << "epoch " << i + 1;
    EXPECT_EQ(a.epochs[i].learn_rate, b.epochs[i].learn_rate) << "epoch " << i + 1;
    EXPECT_EQ(a.epochs[i].valid_loss, b.epochs[i].valid_loss) << "epoch " << i + 1;
  }
}

class Resume : public ::testing::TestWithParam<TrainingRun::Recipe> {};

}  // namespace

TEST_P(Resume, TwoEpochsSavedThenTwoMoreEqualFourBitForBit) {
  TempDir dir;
  History whole, first, second;
  const std::vector<float> straight = TrainingRun{GetParam(), 4, "", ""}(&whole);
  TrainingRun{GetParam(), 2, dir.str("run.ckpt"), ""}(&first);
  EXPECT_EQ(inspect_checkpoint(dir.str("run.ckpt")).epoch, 2);
  int64_t steps_run = 0;
  const std::vector<float> resumed = TrainingRun{GetParam(), 4, "", dir.str("run.ckpt")}(&second, &steps_run);
  EXPECT_EQ(steps_run, GetParam() == TrainingRun::Recipe::kGdbn2014 ? 20 : 40);  // epochs 3 and 4 only
  EXPECT_EQ(resumed, straight);
  expect_same_history(second, whole);
  EXPECT_FALSE(second.interrupted);
}

TEST_P(Resume, AStopInsideAnEpochLosesNothing) {
  TempDir dir;
  History whole, stopped, second;
  const std::vector<float> straight = TrainingRun{GetParam(), 3, "", ""}(&whole);
  // 640 rows: 10 steps per epoch (batch 64) or 20 (batch 32); on_steps runs after every step but
  // an epoch's last, and the stop takes effect after the next step: inside epoch 2 either way.
  const int64_t stop_after = GetParam() == TrainingRun::Recipe::kGdbn2014 ? 13 : 25;
  const std::vector<float> at_stop = TrainingRun{GetParam(), 3, dir.str("run.ckpt"), "", stop_after}(&stopped);
  EXPECT_TRUE(stopped.interrupted);
  ASSERT_EQ(stopped.epochs.size(), 1u);  // the finished epochs only
  // The stopped network holds true weights, and so does the checkpoint's model part.
  CpuBackend cpu(1);
  std::unique_ptr<Network> model = load_model(dir.str("run.ckpt"), cpu);
  EXPECT_EQ(model->params().to_vector(),
            std::vector<float>(at_stop.begin(), at_stop.begin() + model->params().size()));
  int64_t steps_run = 0;
  const std::vector<float> resumed = TrainingRun{GetParam(), 3, "", dir.str("run.ckpt")}(&second, &steps_run);
  EXPECT_EQ(steps_run, GetParam() == TrainingRun::Recipe::kGdbn2014 ? 30 - 14 : 60 - 26);  // from the stop on
  EXPECT_EQ(resumed, straight);
  expect_same_history(second, whole);
}

std::string recipe_name(const ::testing::TestParamInfo<TrainingRun::Recipe>& p) {
  return p.param == TrainingRun::Recipe::kGdbn2014 ? "Gdbn2014" : "AdamCosineDropout";
}
INSTANTIATE_TEST_SUITE_P(Recipes, Resume,
                         ::testing::Values(TrainingRun::Recipe::kGdbn2014, TrainingRun::Recipe::kAdamCosine),
                         recipe_name);

TEST(Checkpoint, AResumeOfAnotherRunIsRefusedNamingTheDifference) {
  TempDir dir;
  TrainingRun{TrainingRun::Recipe::kGdbn2014, 1, dir.str("run.ckpt"), ""}();
  CpuBackend cpu(1);
  const Blobs data(640);
  const Tensor x = Tensor::from_host(data.x, {640, 8}, cpu), y = Tensor::from_host(data.y, {640}, cpu);
  std::unique_ptr<Network> net = mlp(cpu);
  presets::Gdbn2014 p;
  const SoftmaxCrossEntropy loss = p.loss();
  std::unique_ptr<GdbnNesterov> gdbn = p.optimizer(net->param_set());
  ExponentialSchedule schedule = p.schedule();
  FitOptions o = p.options();
  o.resume_from = dir.str("run.ckpt");
  o.batch = 32;
  EXPECT_THAT(error_of([&] { fit(*net, loss, *gdbn, x, y, o, &schedule); }),
              HasSubstr("saved by a run with batch 64, this run has 32"));
  o.batch = 64;
  Adam adam(net->param_set(), AdamOptions{});
  EXPECT_THAT(error_of([&] { fit(*net, loss, adam, x, y, o, &schedule); }),
              HasSubstr("saved with optimizer gdbn-nesterov, this run uses adam"));
  ExponentialSchedule other(0.5f);
  EXPECT_THAT(error_of([&] { fit(*net, loss, *gdbn, x, y, o, &other); }),
              HasSubstr("saved with 'exponential ×0.9 per epoch', this run has 'exponential ×0.5 per epoch'"));
  o.resume_from = dir.str("nowhere.ckpt");
  EXPECT_THAT(error_of([&] { fit(*net, loss, *gdbn, x, y, o, &schedule); }), HasSubstr("nowhere.ckpt"));
}

TEST(Checkpoint, ReduceOnPlateauKeepsItsState) {
  CpuBackend cpu(1);
  Tensor w = Tensor::from_host({1.0f}, {1}, cpu), g = Tensor::from_host({0.0f}, {1}, cpu);
  Sgd opt(ParamSet{&w, &g, 0}, SgdOptions{});
  ReduceOnPlateau a(0.5f, 1), b(0.5f, 1);
  a.begin_epoch(opt, 1, 9, 1);
  for (double m : {1.0, 2.0, 3.0, 4.0}) a.end_epoch(m);
  b.set_state(a.state());
  EXPECT_EQ(b.state(), a.state());
  EXPECT_EQ(b.rate(), a.rate());
  EXPECT_THAT(error_of([&] { b.set_state({{"velocity", 1.0}}); }), HasSubstr("unknown state 'velocity'"));
  ConstantSchedule c;
  EXPECT_THAT(error_of([&] { c.set_state({{"rate", 1.0}}); }), HasSubstr("keeps no state"));
}

// Every optimizer's state travels: SGD with and without its momentum buffer (absent when the
// momentum is 0), Adam with amsgrad's extra moment.
TEST(Checkpoint, EveryOptimizersStateRoundTrips) {
  TempDir dir;
  CpuBackend cpu(1);
  const Blobs data(256);
  const Tensor x = Tensor::from_host(data.x, {256, 8}, cpu), y = Tensor::from_host(data.y, {256}, cpu);
  const SoftmaxCrossEntropy loss;
  auto check = [&](auto make, const char* what) {
    std::vector<float> straight, resumed;
    for (int pass = 0; pass < 2; ++pass) {
      std::unique_ptr<Network> net = mlp(cpu);
      auto opt = make(net->param_set());
      FitOptions o;
      o.progress = Progress::kNone;
      o.batch = 32;
      if (pass == 0) {
        o.epochs = 3;
        fit(*net, loss, opt, x, y, o);
        straight = net->params().to_vector();
      } else {
        o.epochs = 1;
        o.checkpoint_path = dir.str("opt.ckpt");
        fit(*net, loss, opt, x, y, o);
        std::unique_ptr<Network> fresh = mlp(cpu);
        auto opt2 = make(fresh->param_set());
        o.epochs = 3;
        o.checkpoint_path.clear();
        o.resume_from = dir.str("opt.ckpt");
        fit(*fresh, loss, opt2, x, y, o);
        resumed = fresh->params().to_vector();
      }
    }
    EXPECT_EQ(resumed, straight) << what;
  };
  check([](ParamSet p) { return Sgd(p, SgdOptions{}); }, "sgd");
  check([](ParamSet p) {
    SgdOptions s;
    s.momentum = 0.9f;
    s.nesterov = true;
    s.weight_decay = 1e-3f;
    return Sgd(p, s);
  }, "sgd with nesterov momentum");
  check([](ParamSet p) {
    AdamOptions a;
    a.amsgrad = true;
    return Adam(p, a);
  }, "adam with amsgrad");
}

namespace {

// Rewrites text in a file's JSON header (the metadata), fixing the header's length: the data and
// its CRC are untouched, so only the metadata checks can refuse the result.
void rewrite_header(const std::string& path, const std::string& from, const std::string& to) {
  std::vector<char> b = read_bytes(path);
  uint64_t n = 0;
  std::memcpy(&n, b.data(), 8);
  std::string header(b.begin() + 8, b.begin() + 8 + static_cast<std::ptrdiff_t>(n));
  const size_t at = header.find(from);
  ASSERT_NE(at, std::string::npos) << from;
  header.replace(at, from.size(), to);
  n = header.size();
  std::vector<char> out(8);
  std::memcpy(out.data(), &n, 8);
  out.insert(out.end(), header.begin(), header.end());
  out.insert(out.end(), b.begin() + 8 + static_cast<std::ptrdiff_t>(header.size() - to.size() + from.size()), b.end());
  write_bytes(path, out);
}

}  // namespace

// Found by the checkpoint fuzzer: values checked only when applied (the saved learning rate, the
// schedule's state) let a refused checkpoint change the network first; and a run of another
// batch size was refused only after loading. Every refusal now leaves everything as it was.
TEST(Checkpoint, ARefusedCheckpointChangesNothing) {
  TempDir dir;
  CpuBackend cpu(1);
  const Blobs data(256);
  const Tensor x = Tensor::from_host(data.x, {256, 8}, cpu), y = Tensor::from_host(data.y, {256}, cpu);
  const SoftmaxCrossEntropy loss;
  {
    std::unique_ptr<Network> net = mlp(cpu);
    Adam opt(net->param_set(), AdamOptions{});
    ReduceOnPlateau plateau(0.5f, 1);
    FitOptions o;
    o.epochs = 1;
    o.batch = 32;
    o.progress = Progress::kNone;
    o.checkpoint_path = dir.str("run.ckpt");
    fit(*net, loss, opt, x, y, o, &plateau);
  }
  const std::vector<char> good = read_bytes(dir.str("run.ckpt"));
  std::unique_ptr<Network> net = mlp(cpu);
  net->initialize(42, 0.3f);
  Adam opt(net->param_set(), AdamOptions{});
  ReduceOnPlateau plateau(0.5f, 1);
  const std::vector<float> before = net->params().to_vector();
  auto refused = [&](const std::string& from, const std::string& to, const std::string& why) {
    write_bytes(dir.str("bad.ckpt"), good);
    rewrite_header(dir.str("bad.ckpt"), from, to);
    EXPECT_THAT(error_of([&] { load_checkpoint(dir.str("bad.ckpt"), *net, opt, &plateau); }), HasSubstr(why)) << to;
    EXPECT_EQ(net->params().to_vector(), before) << to;
    EXPECT_EQ(read_counter(opt.step_count()), 0u) << to;
  };
  refused("\\\"bad_epochs\\\":0.0", "\\\"bad_epochs\\\":0.5", "must be a count");
  refused("\\\"bad_epochs\\\":0.0", "\\\"velocity\\\":0.0", "unknown state 'velocity'");
  refused("\\\"learning_rate\\\":", "\\\"learning_rate\\\":-", "is not a learning rate");
  // A resume of another run is refused before anything is loaded, too.
  FitOptions o;
  o.epochs = 2;
  o.batch = 64;
  o.progress = Progress::kNone;
  o.resume_from = dir.str("run.ckpt");
  EXPECT_THAT(error_of([&] { fit(*net, loss, opt, x, y, o, &plateau); }), HasSubstr("batch 32, this run has 64"));
  EXPECT_EQ(net->params().to_vector(), before);
}

// Found by the fuzzer: a model file whose architecture describes a layer of 10^12 units (and does
// not hold its weights) made load_model allocate and fill terabytes before finding out.
TEST(Checkpoint, AModelFileCannotMakeTheLoaderAllocateMoreThanItHolds) {
  TempDir dir;
  CpuBackend cpu(1);
  std::unique_ptr<Network> net = mlp(cpu);
  save_model(*net, dir.str("m.safetensors"));
  rewrite_header(dir.str("m.safetensors"), "\\\"units\\\":\\\"2\\\"", "\\\"units\\\":\\\"1000000000000\\\"");
  EXPECT_THAT(error_of([&] { load_model(dir.str("m.safetensors"), cpu); }),
              AllOf(HasSubstr("layer 1 Dense(1000000000000) weight"), HasSubstr("expected F32 [16, 1000000000000]")));
}

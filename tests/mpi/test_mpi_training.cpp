// Data-parallel training with real MPI ranks (issue 15): run by ctest as
//   mpirun -np 2 test_mpi_training
// (mpi_world.hpp says how the tests keep the ranks in step). Each rank also trains the
// one-process reference itself, so the comparisons need no data from another rank.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "cudl/conv_layers.hpp"
#include "cudl/cpu_backend.hpp"
#include "cudl/trainer.hpp"
#include "nn/data_parallel.hpp"
#include "mpi/mpi_world.hpp"
#include "test_support.hpp"

using namespace cudl;
using cudl::testing::Blobs;
using ::testing::HasSubstr;

namespace {

using cudl::testing::max_abs_diff;
using cudl::testing::world;

// 8-16-2, with dropout after the hidden layer when `drop` > 0.
std::unique_ptr<Network> make_net(Backend& backend, uint64_t seed, float drop = 0.0f) {
  auto net = std::make_unique<Network>(backend, Shape{8});
  net->add(dense(16, Activation::kRelu));
  if (drop > 0.0f) net->add(dropout(drop, 21));
  net->add(dense(2));
  net->initialize(seed, 0.3f);
  return net;
}

struct Result {
  std::vector<float> params;
  History history;
};

// The 2014 preset (summed loss, grad_scale 1/batch, draws with replacement) on Blobs, with
// `batch` rows per step on each rank of `comm` (none: one process).
Result gdbn2014(int64_t batch, Communicator* comm, int epochs = 3) {
  CpuBackend cpu(1);
  const Blobs data(512);
  const Tensor x = data.x_on(cpu), y = data.y_on(cpu);
  auto net = make_net(cpu, 3);
  presets::Gdbn2014 preset;
  preset.batch = batch;
  preset.learn_rate = 0.05f;
  preset.epochs = epochs;
  const SoftmaxCrossEntropy loss = preset.loss();
  auto opt = preset.optimizer(net->param_set());
  ExponentialSchedule schedule = preset.schedule();
  FitOptions o = preset.options();
  o.communicator = comm;
  Result r;
  r.history = fit(*net, loss, *opt, x, y, o, &schedule);
  r.params = net->params().to_vector();
  return r;
}

// Adam, mean loss, shuffled epochs; dropout when `drop` > 0.
Result adam(int64_t batch, Communicator* comm, float drop = 0.0f) {
  CpuBackend cpu(1);
  const Blobs data(512);
  const Tensor x = data.x_on(cpu), y = data.y_on(cpu);
  auto net = make_net(cpu, 4, drop);
  const SoftmaxCrossEntropy loss(Reduction::kMean);
  AdamOptions ao;
  ao.learn_rate = 0.01f;
  Adam opt(net->param_set(), ao);
  FitOptions o;
  o.epochs = 3;
  o.batch = batch;
  o.sampling = Sampling::kShuffle;
  o.seed = 9;
  o.progress = Progress::kNone;
  o.launch = StepLaunch::kEager;
  o.communicator = comm;
  Result r;
  r.history = fit(*net, loss, opt, x, y, o);
  r.params = net->params().to_vector();
  return r;
}

void expect_same_training(const Result& one, const Result& two) {
  // The same rows in the same steps; only the order of the gradient's sums differs (each rank
  // sums 32 rows, then the ranks' sums are added), so the parameters agree to float rounding.
  EXPECT_LT(max_abs_diff(one.params, two.params), 2e-5);
  ASSERT_EQ(one.history.epochs.size(), two.history.epochs.size());
  for (size_t e = 0; e < one.history.epochs.size(); ++e) {
    const EpochReport& a = one.history.epochs[e];
    const EpochReport& b = two.history.epochs[e];
    EXPECT_EQ(a.steps, b.steps) << "epoch " << e + 1;
    EXPECT_EQ(a.samples, b.samples) << "epoch " << e + 1;
    EXPECT_NEAR(a.loss, b.loss, 1e-5 * std::max(1.0, a.loss)) << "epoch " << e + 1;
    EXPECT_DOUBLE_EQ(a.err, b.err) << "epoch " << e + 1;
  }
}

}  // namespace

TEST(MpiCommunicator, SeesTwoRanksAndReducesTensorsAndHostValues) {
  EXPECT_EQ(world().size(), 2);
  EXPECT_THAT(world().describe(), HasSubstr("2 ranks"));
  CpuBackend cpu(1);
  const float r = static_cast<float>(world().rank());
  Tensor sum = Tensor::from_host({r, 10 + r, -r}, {3}, cpu);
  world().all_reduce(sum, ReduceOp::kSum);
  Tensor low = Tensor::from_host({r, 10 + r, -r}, {3}, cpu);
  world().all_reduce(low, ReduceOp::kMin);
  Tensor mean = Tensor::from_host({2 * r, 4.0f}, {2}, cpu);
  world().all_reduce_mean(mean);
  Tensor b = Tensor::from_host({r + 5, r + 6}, {2}, cpu);
  world().broadcast(b, 1);
  double host[2] = {r, -r};
  world().all_reduce(host, 2, ReduceOp::kMax);
  EXPECT_EQ(sum.to_vector(), (std::vector<float>{1, 21, -1}));
  EXPECT_EQ(low.to_vector(), (std::vector<float>{0, 10, -1}));
  EXPECT_EQ(mean.to_vector(), (std::vector<float>{1, 4}));
  EXPECT_EQ(b.to_vector(), (std::vector<float>{6, 7}));
  EXPECT_EQ(host[0], 1.0);
  EXPECT_EQ(host[1], 0.0);
  try {
    world().broadcast(b, 2);
    ADD_FAILURE() << "a root outside the ranks was accepted";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("root 2 is not a rank of 2"));
  }
}

namespace {
// A CPU backend that says it is a GPU: the communicator must stage its tensors through
// host_staging (one buffer, reused), copying each tensor out once and back once per call.
class StagedGpu : public CpuBackend {
 public:
  StagedGpu() : CpuBackend(1) {}
  Device device() const override { return Device::kCuda; }
  void* host_staging(std::size_t bytes) override {
    void* p = CpuBackend::host_staging(bytes);
    buffers.push_back(p);
    return p;
  }
  void copy_to_host(const void* src, void* host_dst, std::size_t bytes) override {
    downloads += host_dst == (buffers.empty() ? nullptr : buffers.back()) ? 1 : 0;
    CpuBackend::copy_to_host(src, host_dst, bytes);
  }
  void copy_from_host(const void* host_src, void* dst, std::size_t bytes) override {
    uploads += host_src == (buffers.empty() ? nullptr : buffers.back()) ? 1 : 0;
    CpuBackend::copy_from_host(host_src, dst, bytes);
  }
  std::vector<void*> buffers;
  int downloads = 0, uploads = 0;
};
}  // namespace

TEST(MpiCommunicator, StagesGpuTensorsInTheBackendsReusedHostBuffer) {
  EXPECT_THAT(world().describe(), HasSubstr("GPU tensors staged through the backend's page-locked host buffer"));
  StagedGpu gpu;
  const float r = static_cast<float>(world().rank());
  std::vector<float> values(3000, 1.0f + r);
  Tensor t = Tensor::from_host(values, {1000, 3}, gpu);
  world().all_reduce(t, ReduceOp::kSum);
  EXPECT_EQ(t.to_vector(), std::vector<float>(3000, 3.0f));
  Tensor part = t.rows(10, 20);  // a view: staged from its own first element
  world().broadcast(part, 1);
  world().all_reduce(t, ReduceOp::kMax);
  EXPECT_EQ(t.to_vector(), std::vector<float>(3000, 3.0f));
  ASSERT_EQ(gpu.buffers.size(), 3u);
  EXPECT_EQ(gpu.buffers[0], gpu.buffers[1]);
  EXPECT_EQ(gpu.buffers[1], gpu.buffers[2]);
  EXPECT_EQ(gpu.downloads, 3);
  EXPECT_EQ(gpu.uploads, 3);
}

TEST(DataParallel, TwoRanksOfHalfTheBatchTrainAsOneProcessOfTheWholeBatchGdbn2014) {
  const Result one = gdbn2014(64, nullptr);
  const Result two = gdbn2014(32, &world());
  expect_same_training(one, two);
  EXPECT_EQ(two.history.epochs.front().steps, 512 / 64);
}

TEST(DataParallel, TwoRanksOfHalfTheBatchTrainAsOneProcessOfTheWholeBatchAdam) {
  const Result one = adam(64, nullptr);
  const Result two = adam(32, &world());
  expect_same_training(one, two);
}

TEST(DataParallel, TwoRanksOfHalfTheBatchDrawTheDropoutMasksOfOneProcessOfTheWholeBatch) {
  // Each rank draws its rows' share of the global batch's masks (Network::set_shares): without
  // it, both ranks would draw the first half's masks, and the runs would part.
  const Result one = adam(64, nullptr, 0.3f);
  const Result two = adam(32, &world(), 0.3f);
  expect_same_training(one, two);
}

namespace {
// The identity, counting the rows it sees in inference.
class CountsInferredRows final : public Layer {
 public:
  explicit CountsInferredRows(int64_t* rows) : rows_(rows) {}
  std::string describe() const override { return "CountsInferredRows"; }
  Shape output_shape(const Shape& input) const override { return input; }
  void forward(Backend&, const Tensor& x, Tensor& y, Mode mode) override {
    if (mode == Mode::kInfer) *rows_ += x.dim(0);
    y.copy_from(x);
  }
  void backward(Backend&, const Tensor&, const Tensor&, Tensor& dy, Tensor* dx) override {
    if (dx != nullptr) dx->copy_from(dy);
  }

 private:
  int64_t* rows_;
};
}  // namespace

TEST(DataParallel, EachRankEvaluatesItsShareOfTheBatchesAndEveryRankGetsTheWholeFigures) {
  CpuBackend cpu(1);
  const Blobs data(200);  // 7 batches of 32 (the last of 8 rows): 3 on rank 0, 4 on rank 1
  const Tensor x = data.x_on(cpu), y = data.y_on(cpu);
  int64_t seen = 0;
  Network net(cpu, {8});
  net.add(std::make_unique<CountsInferredRows>(&seen)).add(dense(16, Activation::kRelu)).add(dense(2));
  net.initialize(7, 0.3f);
  const SoftmaxCrossEntropy loss;
  Sgd opt(net.param_set(), SgdOptions{});
  Trainer alone(net, loss, opt);
  const auto [loss_alone, err_alone] = alone.evaluate(x, y, 32);
  EXPECT_EQ(seen, 200);
  Trainer shared(net, loss, opt);
  shared.set_communicator(&world());
  seen = 0;
  const auto [loss_shared, err_shared] = shared.evaluate(x, y, 32);
  EXPECT_EQ(seen, world().rank() == 0 ? 96 : 104);
  EXPECT_NEAR(loss_shared, loss_alone, 1e-6 * loss_alone);
  EXPECT_EQ(err_shared, err_alone);
  // Fewer batches than ranks: rank 0 evaluates none, and still gets the figures.
  seen = 0;
  const auto [loss_few, err_few] = shared.evaluate(x.rows(0, 20), y.rows(0, 20), 32);
  EXPECT_EQ(seen, world().rank() == 0 ? 0 : 20);
  const auto [loss_few_alone, err_few_alone] = alone.evaluate(x.rows(0, 20), y.rows(0, 20), 32);
  EXPECT_NEAR(loss_few, loss_few_alone, 1e-6 * loss_few_alone);
  EXPECT_EQ(err_few, err_few_alone);
}

TEST(DataParallel, Rank0sParametersAreBroadcastFirst) {
  CpuBackend cpu(1);
  const Blobs data(128);
  const Tensor x = data.x_on(cpu), y = data.y_on(cpu);
  auto net = make_net(cpu, 100 + world().rank());  // every rank its own initial parameters
  auto rank0 = make_net(cpu, 100);
  const SoftmaxCrossEntropy loss;
  Sgd opt(net->param_set(), SgdOptions{});
  FitOptions o;
  o.epochs = 0;  // nothing but the broadcast
  o.communicator = &world();
  o.progress = Progress::kNone;
  fit(*net, loss, opt, x, y, o);
  EXPECT_EQ(net->params().to_vector(), rank0->params().to_vector());
}

TEST(DataParallel, ADriftIsAnErrorNamingTheRank) {
  CpuBackend cpu(1);
  auto net = make_net(cpu, 5);
  if (world().rank() == 1) {
    std::vector<float> p = net->params().to_vector();
    p[3] += 1e-6f;
    net->params().copy_from(p);
  }
  std::string message;
  try {
    detail::require_same_parameters(world(), *net, 7);
  } catch (const Error& e) {
    message = e.what();
  }
  EXPECT_THAT(message, HasSubstr("after epoch 7 the parameters of rank 1 differ from rank 0's"));
}

TEST(DataParallel, AStopOnOneRankStopsEveryRankAtTheSameEpoch) {
  CpuBackend cpu(1);
  const Blobs data(256);
  const Tensor x = data.x_on(cpu), y = data.y_on(cpu);
  auto net = make_net(cpu, 6);
  const SoftmaxCrossEntropy loss;
  Sgd opt(net->param_set(), SgdOptions{});
  std::atomic<bool> stop{false};
  FitOptions o;
  o.epochs = 5;
  o.batch = 16;
  o.communicator = &world();
  o.progress = Progress::kNone;
  o.stop = &stop;
  o.on_epoch = [&](const EpochReport& e) {
    if (e.epoch == 2 && world().rank() == 1) stop = true;  // rank 0's flag stays false
  };
  const History h = fit(*net, loss, opt, x, y, o);
  EXPECT_TRUE(h.interrupted);
  EXPECT_EQ(h.epochs.size(), 2u);
}

TEST(DataParallel, AResumedRunEqualsTheUninterruptedOneAndNeedsAsManyRanks) {
  // Every rank names the same file: rank 0's process id, broadcast.
  double pid = static_cast<double>(::getpid());
  world().broadcast(&pid, 1, 0);
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("cudl_mpi_resume_" + std::to_string(static_cast<long>(pid)) + ".safetensors"))
                               .string();
  const Result straight = gdbn2014(32, &world(), 4);
  Result resumed;
  {
    CpuBackend cpu(1);
    const Blobs data(512);
    const Tensor x = data.x_on(cpu), y = data.y_on(cpu);
    presets::Gdbn2014 preset;
    preset.batch = 32;
    preset.learn_rate = 0.05f;
    preset.epochs = 4;
    const SoftmaxCrossEntropy loss = preset.loss();
    for (int part = 0; part < 2; ++part) {  // 2 epochs and a checkpoint, then a fresh process's resume
      auto net = make_net(cpu, 3);
      auto opt = preset.optimizer(net->param_set());
      ExponentialSchedule schedule = preset.schedule();
      FitOptions o = preset.options();
      o.communicator = &world();
      o.epochs = part == 0 ? 2 : 4;
      o.checkpoint_path = path;
      if (part == 1) o.resume_from = path;
      resumed.history = fit(*net, loss, *opt, x, y, o, &schedule);
      resumed.params = net->params().to_vector();
      world().barrier();  // rank 0 has written the file before anyone reads it
    }
  }
  // The 2-rank checkpoint, resumed by one process: refused, naming both counts.
  std::string refused;
  {
    CpuBackend cpu(1);
    const Blobs data(512);
    const Tensor x = data.x_on(cpu), y = data.y_on(cpu);
    auto net = make_net(cpu, 3);
    presets::Gdbn2014 preset;
    preset.batch = 32;
    preset.learn_rate = 0.05f;
    preset.epochs = 4;
    const SoftmaxCrossEntropy loss = preset.loss();
    auto opt = preset.optimizer(net->param_set());
    ExponentialSchedule schedule = preset.schedule();
    FitOptions o = preset.options();  // the same run in one process: no communicator
    o.resume_from = path;
    try {
      fit(*net, loss, *opt, x, y, o, &schedule);
    } catch (const Error& e) {
      refused = e.what();
    }
  }
  world().barrier();
  if (world().rank() == 0) std::filesystem::remove(path);
  EXPECT_EQ(resumed.params, straight.params);  // bit for bit
  EXPECT_EQ(resumed.history.epochs.size(), 4u);
  EXPECT_THAT(refused, HasSubstr("it was saved by a run with ranks 2, this run has 1"));
}

TEST(DataParallel, ARunStoppedInsideAnEpochResumesExactly) {
  double pid = static_cast<double>(::getpid());
  world().broadcast(&pid, 1, 0);
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("cudl_mpi_stop_" + std::to_string(static_cast<long>(pid)) + ".safetensors"))
                               .string();
  const Result straight = gdbn2014(32, &world(), 4);
  Result resumed;
  bool interrupted = false;
  {
    CpuBackend cpu(1);
    const Blobs data(512);
    const Tensor x = data.x_on(cpu), y = data.y_on(cpu);
    presets::Gdbn2014 preset;
    preset.batch = 32;
    preset.learn_rate = 0.05f;
    preset.epochs = 4;
    const SoftmaxCrossEntropy loss = preset.loss();
    for (int part = 0; part < 2; ++part) {
      auto net = make_net(cpu, 3);
      auto opt = preset.optimizer(net->param_set());
      ExponentialSchedule schedule = preset.schedule();
      std::atomic<bool> stop{false};
      FitOptions o = preset.options();
      o.communicator = &world();
      o.checkpoint_path = path;
      o.stop = &stop;
      if (part == 0) {  // rank 1 alone asks to stop, at step 3 of epoch 2; every rank stops at step 4
        o.every_steps = 3;
        o.on_steps = [&](const StepReport& s) {
          if (s.epoch == 2 && s.step == 3 && world().rank() == 1) stop = true;
        };
      } else {
        o.resume_from = path;
      }
      const History h = fit(*net, loss, *opt, x, y, o, &schedule);
      if (part == 0) interrupted = h.interrupted && h.epochs.size() == 1;
      resumed.history = h;
      resumed.params = net->params().to_vector();
      world().barrier();
    }
  }
  world().barrier();
  if (world().rank() == 0) std::filesystem::remove(path);
  EXPECT_TRUE(interrupted);
  EXPECT_EQ(resumed.params, straight.params);  // bit for bit
  ASSERT_EQ(resumed.history.epochs.size(), straight.history.epochs.size());
  for (size_t e = 0; e < straight.history.epochs.size(); ++e) {
    EXPECT_EQ(resumed.history.epochs[e].loss, straight.history.epochs[e].loss) << "epoch " << e + 1;
    EXPECT_EQ(resumed.history.epochs[e].err, straight.history.epochs[e].err) << "epoch " << e + 1;
  }
}

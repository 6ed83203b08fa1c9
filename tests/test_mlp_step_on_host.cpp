// The persistent training step (cuda/mlp_step_plan.hpp, cuda/mlp_step_kernel.cuh) without a GPU:
// - its host emulation trains as the CPU backend's fit() does (the 2014 preset), to float
//   summation order, so the fused phases compute the library step's arithmetic;
// - the kernel's CUDA source, compiled here as C++ with stand-ins for CUDA's built-ins
//   (host_cuda.hpp), runs a whole grid at once on CPU threads (every block's 256 threads, real
//   block barriers, the grid barrier's own atomics) and gives the emulation's bits: the draw,
//   the phases' products, the loss, the fused updates, the counters and stats, for several grids.
// What it cannot check is the GPU's memory model and speed: test_cuda_mlp_step does, on a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "cudl/cudl.hpp"
#include "mlp_step_problem.hpp"
#include "tolerance.hpp"

#include "host_cuda.hpp"
#define CUDL_ROWS_GEMM_BLOCK_ONLY
#include "rows_gemm_kernel.cuh"
#include "mlp_step_kernel.cuh"

namespace {

using namespace cudl::cuda;
using namespace cudl::testing::mlp;
using cudl::Activation;
namespace ms = cudl::cuda::mlp_step;

// Runs the kernel's grid on the host: all `blocks` blocks at once, each as kThreads CPU threads
// with its own shared memory and barrier. Returns the tickets and barrier words after the launch.
struct HostLaunch {
  std::vector<int> tickets;
  unsigned barrier[2] = {0, 0};
};
void launch_on_host(Args p, int blocks, HostLaunch& scratch) {
  std::vector<float> partials(static_cast<size_t>(mlp_step::partial_floats(p)), std::nanf(""));
  if (scratch.tickets.empty()) scratch.tickets.assign(static_cast<size_t>(mlp_step::max_tiles(p)), 0);
  p.partials = partials.data();
  p.tickets = scratch.tickets.data();
  p.barrier = scratch.barrier;
  std::vector<mlp_step::Smem> smem(static_cast<size_t>(blocks));
  std::vector<std::unique_ptr<host_cuda::Barrier>> barriers;
  for (int b = 0; b < blocks; ++b) barriers.push_back(std::make_unique<host_cuda::Barrier>(rows_gemm::kThreads));
  std::vector<std::thread> threads;
  threads.reserve(static_cast<size_t>(blocks * rows_gemm::kThreads));
  for (int b = 0; b < blocks; ++b)
    for (unsigned t = 0; t < static_cast<unsigned>(rows_gemm::kThreads); ++t)
      threads.emplace_back([&, b, t] {
        host_cuda::threadIdx = {t, 0, 0};
        host_cuda::block_barrier = barriers[static_cast<size_t>(b)].get();
        mlp_step::run_steps(p, smem[static_cast<size_t>(b)], b, blocks);
      });
  for (std::thread& th : threads) th.join();
}

struct Case {
  std::vector<int64_t> sizes;
  std::vector<Activation> acts;
  int64_t batch;
  int blocks;
  int64_t steps;
  float max_loss;
  bool shuffled = false;  // the epoch's permutation, from its start (draw = 2 epochs of rows)
};

TEST(MlpStepOnHost, KernelGivesTheEmulationsBitsOnEveryGrid) {
  const Activation relu = Activation::kRelu, sig = Activation::kSigmoid, id = Activation::kIdentity;
  const Case cases[] = {
      {{37, 70, 33, 10}, {relu, relu, id}, 20, 3, 2, 100.0f},  // the 2014 shape, small: several slices
      {{50, 65, 7}, {sig, id}, 70, 4, 2, 100.0f},              // two row tiles, ragged; sigmoid's gradient
      {{30, 5}, {id}, 9, 1, 3, 100.0f},                        // one layer, one block: the barrier alone
      {{20, 40, 40, 40, 3}, {id, relu, relu, id}, 64, 5, 1, 0.5f},  // four layers; the batch diverges
      {{37, 70, 33, 10}, {relu, relu, id}, 20, 3, 1, 100.0f, true},  // shuffled draws
  };
  uint64_t seed = 1;
  for (const Case& c : cases) {
    Problem kernel(c.sizes, c.acts, c.batch, 3 * c.batch + 1, seed += 10);
    if (c.shuffled) kernel.draw = 2 * static_cast<uint64_t>(kernel.rows);  // epoch 2's permutation from its start
    Problem emulated = kernel;
    Args pk = kernel.args(c.blocks), pe = emulated.args(c.blocks);
    pk.steps = pe.steps = c.steps;
    pk.shuffled = pe.shuffled = c.shuffled;
    pk.loss.max_loss = pe.loss.max_loss = c.max_loss;
    ASSERT_EQ(mlp_step::refusal(pk), "");
    HostLaunch scratch;
    launch_on_host(pk, c.blocks, scratch);
    launch_on_host(pk, c.blocks, scratch);  // a second launch reuses the tickets and the barrier
    mlp_step::emulate(pe);
    mlp_step::emulate(pe);
    const std::string what = std::to_string(c.sizes.size() - 1) + " layers, batch " + std::to_string(c.batch) +
                             (c.shuffled ? ", shuffled" : "") +
                             ", " + std::to_string(c.blocks) + " blocks";
    expect_same_state(kernel, emulated, what);
    for (int t : scratch.tickets) EXPECT_EQ(t, 0) << what << ": a ticket was left set";
    EXPECT_EQ(scratch.barrier[0], 0u) << what << ": the barrier's arrivals were not reset";
    EXPECT_EQ(scratch.barrier[1], static_cast<unsigned>(2 * c.steps * (2 * (c.sizes.size() - 1) + 2)))
        << what << ": barriers per step";
    if (c.max_loss < 1.0f) {
      EXPECT_EQ(kernel.stats[2], 7.0f) << what << ": the first diverging step is recorded";
    } else {
      EXPECT_TRUE(kernel.gradients_written()) << what << ": the last step's gradients were not stored";
    }
  }
}

// A profiled launch (Args::phase_ns) times every phase on block 0 and computes the same bits.
TEST(MlpStepOnHost, AProfiledLaunchTimesEachPhaseAndComputesTheSame) {
  const Activation relu = Activation::kRelu, id = Activation::kIdentity;
  Problem kernel({21, 40, 12, 4}, {relu, relu, id}, 24, 50, 3);
  Problem emulated = kernel;
  Args pk = kernel.args(3), pe = emulated.args(3);
  pk.steps = pe.steps = 2;
  std::vector<unsigned long long> ns(static_cast<size_t>(ms::phases(3)) + 1, 0);
  pk.phase_ns = ns.data();
  HostLaunch scratch;
  launch_on_host(pk, 3, scratch);
  ms::emulate(pe);
  expect_same_state(kernel, emulated, "profiled");
  for (int p = 0; p < ms::phases(3); ++p) EXPECT_GT(ns[static_cast<size_t>(p)], 0u) << "phase " << p;
  EXPECT_EQ(ns.back(), 0u) << "only phases(layers) counters are written";
}

TEST(MlpStepPlan, RefusesWhatItCannotRun) {
  Problem p({10, 8, 3}, {Activation::kRelu, Activation::kIdentity}, 16, 40, 1);
  Args a = p.args(4);
  EXPECT_EQ(mlp_step::refusal(a), "");
  Args top = a;
  top.layer[1].act = Activation::kRelu;
  EXPECT_NE(mlp_step::refusal(top).find("top layer is not linear"), std::string::npos);
  Args chain = a;
  chain.layer[1].in = 9;
  EXPECT_NE(mlp_step::refusal(chain).find("layer 1's input"), std::string::npos);
  Args big = a;
  big.batch = mlp_step::kMaxBatch + 1;
  EXPECT_NE(mlp_step::refusal(big).find("batch"), std::string::npos);
  Args none = a;
  none.layers = 0;
  EXPECT_NE(mlp_step::refusal(none).find("0 layers"), std::string::npos);
}

// Backend::fused_mlp_steps' arguments: a layer's gradients both stored or neither.
TEST(MlpStepPlan, RefusesOneGradientBufferWithoutTheOther) {
  Problem p({10, 8, 3}, {Activation::kRelu, Activation::kIdentity}, 16, 40, 1);
  std::vector<cudl::FusedMlpLayer> layers(2);
  for (size_t i = 0; i < 2; ++i) {
    cudl::FusedMlpLayer& l = layers[i];
    l.in = p.sizes[i];
    l.out = p.sizes[i + 1];
    l.act = p.acts[i];
    l.w = p.w[i].data();
    l.b = p.b[i].data();
    l.vw = p.vw[i].data();
    l.vb = p.vb[i].data();
  }
  cudl::FusedMlpArgs f;
  f.layers = layers.data();
  f.num_layers = 2;
  f.batch = p.batch;
  f.rows = p.rows;
  EXPECT_EQ(mlp_step::refusal(f), "");
  layers[1].gw = p.gw[1].data();
  EXPECT_EQ(mlp_step::refusal(f), "layer 1 has a buffer for one of its gradients but not the other");
  layers[1].gb = p.gb[1].data();
  EXPECT_EQ(mlp_step::refusal(f), "");
}

// The emulation against the CPU backend's fit() with the 2014 preset: same initial weights, same
// draws (the counter at epoch 1's start is 0), same learning rate; they differ only in the order
// of the products' sums.
TEST(MlpStepEmulation, TrainsAsTheCpuBackendsFitWithThe2014Preset) {
  using namespace cudl;
  const std::vector<int64_t> sizes{40, 64, 48, 10};
  const int64_t batch = 32, steps = 6, rows = batch * steps;
  Problem p(sizes, {Activation::kRelu, Activation::kRelu, Activation::kIdentity}, batch, rows, 5);
  CpuBackend cpu(1);
  Network net(cpu, {sizes[0]});
  net.add(dense(sizes[1], Activation::kRelu)).add(dense(sizes[2], Activation::kRelu)).add(dense(sizes[3]));
  net.initialize(3, 0.1f);
  for (int i = 0; i < 3; ++i) {  // the network's initial weights into the emulation; velocities zero
    const auto params = net.layer_params(i);
    p.w[static_cast<size_t>(i)] = params[0].second.to_vector();
    p.b[static_cast<size_t>(i)] = params[1].second.to_vector();
    std::fill(p.vw[static_cast<size_t>(i)].begin(), p.vw[static_cast<size_t>(i)].end(), 0.0f);
    std::fill(p.vb[static_cast<size_t>(i)].begin(), p.vb[static_cast<size_t>(i)].end(), 0.0f);
  }
  TrainConfig cfg;
  cfg.epochs = 1;
  cfg.batch = batch;
  cfg.learn_rate = 0.1f;
  const Tensor x = Tensor::from_host(p.x, {rows, sizes[0]}, cpu), y = Tensor::from_host(p.y, {rows}, cpu);
  const auto reports = train(net, x, y, cfg);
  ASSERT_EQ(reports.size(), 1u);

  p.lr = cfg.learn_rate;
  p.draw = 0;
  p.step = 0;
  Args a = p.args(8);
  a.seed = cfg.seed;
  a.momentum = cfg.momentum;
  a.l2 = cfg.l2;
  a.grad_scale = 1.0f / static_cast<float>(batch);
  a.loss.max_loss = 100.0f * std::log(10.0f);
  a.steps = steps;
  mlp_step::emulate(a);
  EXPECT_NEAR(p.stats[0] / static_cast<double>(rows), reports[0].loss, 1e-5 * reports[0].loss);
  EXPECT_NEAR(p.stats[1] / static_cast<double>(rows), reports[0].err, 1e-12);
  for (int i = 0; i < 3; ++i) {  // fit() ends at W = w − μv (GdbnNesterov::end)
    std::vector<float> w = p.w[static_cast<size_t>(i)], bias = p.b[static_cast<size_t>(i)];
    for (size_t k = 0; k < w.size(); ++k) w[k] -= cfg.momentum * p.vw[static_cast<size_t>(i)][k];
    for (size_t k = 0; k < bias.size(); ++k) bias[k] -= cfg.momentum * p.vb[static_cast<size_t>(i)][k];
    const auto params = net.layer_params(i);
    cudl::testing::expect_all_close(w, params[0].second.to_vector(), 1e-6, 1e-4, "W" + std::to_string(i));
    cudl::testing::expect_all_close(bias, params[1].second.to_vector(), 1e-6, 1e-4, "b" + std::to_string(i));
  }
  // The last step's gradients, where fit() leaves them: the network's gradient tensor, laid out as
  // its parameters.
  const std::vector<float> all = net.grads().to_vector();
  for (int i = 0; i < 3; ++i) {
    const auto params = net.layer_params(i);
    const int64_t w_at = params[0].second.data() - net.params().data();
    const int64_t b_at = params[1].second.data() - net.params().data();
    const std::vector<float> gw(all.begin() + w_at, all.begin() + w_at + params[0].second.size());
    const std::vector<float> gb(all.begin() + b_at, all.begin() + b_at + params[1].second.size());
    const std::string layer = std::to_string(i);
    cudl::testing::expect_all_close(p.gw[static_cast<size_t>(i)], gw, 1e-6, 1e-4, "W" + layer + "'s gradient");
    cudl::testing::expect_all_close(p.gb[static_cast<size_t>(i)], gb, 1e-6, 1e-4, "b" + layer + "'s gradient");
  }
}

}  // namespace

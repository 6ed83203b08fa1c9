#pragma once
// The 2014 training step as one persistent kernel (issue 17, step 3; docs/design/gpu-step.md):
// an MLP of Dense layers (any activations below a linear top layer), softmax cross-entropy,
// gdbn's Nesterov momentum, minibatches drawn (with replacement, or an epoch's permutation) from
// resident data. Each step is
// a sequence of phases separated by grid-wide barriers, on blocks that stay resident:
//
//   draw      xb, yb ← the batch's rows (as Backend::sample_rows or shuffled_rows)
//   forward i a_i ← act_i(a_{i−1}·W_i + b_i), i = 0 .. L−1 (a_{−1} = xb): rows_gemm's split-K tiles
//   loss      softmax cross-entropy of a_{L−1} per row; its gradient overwrites a_{L−1}; stats
//   back i    i = L−1 .. 0: dz_{i−1} ← (dz_i·W_iᵀ) ⊙ act'_{i−1}(a_{i−1}) when i ≥ 1, and the step
//             of layer i + 1 (i < L−1) and, in the last phase, of layer 0: W ← Nesterov(xᵀ·dz)
//             and b ← Nesterov(Σ_rows dz) in the gradient's own tiles (one slice over the batch),
//             so no gradient is written (but by a launch's last step, into gw and gb where
//             given). A layer steps one phase after its W was last read.
//
// That is 2L + 2 barriers per step (8 for 784-800-800-10) instead of ~13 graph nodes. This
// header is plain C++: the arguments, the products of each phase (used by the kernel,
// mlp_step_kernel.cuh, and by `emulate`), the eligibility check, and `emulate`, the kernel's
// arithmetic in the kernel's order on the host, so that a GPU test can require its bits and a
// host test can run the kernel's own source on CPU threads against it.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "cudl/fused_mlp.hpp"
#include "formulas/loss_rules.hpp"
#include "formulas/unit_rules.hpp"
#include "rows_gemm_plan.hpp"

namespace cudl::cuda::mlp_step {

constexpr int kMaxLayers = 8;
constexpr int64_t kMaxBatch = rows_gemm::kMaxOneSliceK;  // the weight gradients' k is the batch, one slice
constexpr int kLossThreads = rows_gemm::kThreads;        // the loss phase: one block, rows r ≡ t (mod 256)

struct LayerArgs {
  int64_t in = 0, out = 0;
  Activation act = Activation::kIdentity;  // the top layer's must be kIdentity (its outputs are the logits)
  float* w = nullptr;   // in × out (Dense's [in, out]), at the look-ahead point
  float* b = nullptr;   // out
  float* vw = nullptr;  // the velocities, in w's and b's layouts
  float* vb = nullptr;
  float* gw = nullptr;  // where not null (with gb): the last step of a launch stores the gradients
  float* gb = nullptr;
  float* a = nullptr;   // batch × out: the output; the top layer's becomes the logits' gradient
  float* dz = nullptr;  // batch × out: ∂L/∂z of a hidden layer (unused for the top layer)
  rows_gemm::Split forward, backward, update;  // set by plan()
};

struct Args {
  int layers = 0;
  LayerArgs layer[kMaxLayers];
  int64_t batch = 0;
  const float* x = nullptr;  // rows × layer[0].in, resident
  const float* y = nullptr;  // rows class indices
  int64_t rows = 0;
  uint64_t seed = 0;
  bool shuffled = false;     // the draws: batch_row()
  uint64_t* draw = nullptr;  // step s of a launch draws from *draw + s·batch on (batch_row); += steps·batch
  uint64_t* step = nullptr;  // the step number recorded by a diverging batch; += steps
  uint64_t* updates = nullptr;  // the optimizer's step count (may be null); += steps
  float* xb = nullptr;       // batch × layer[0].in
  float* yb = nullptr;       // batch
  float* stats = nullptr;    // LossStats, added to
  CrossEntropyArgs loss;     // grad_scale and max_loss (the step comes from `step`)
  const float* lr = nullptr;  // read once per launch
  float momentum = 0.0f, grad_scale = 1.0f, l2 = 0.0f;  // GdbnNesterovOptions (l2 on the weights)
  int64_t steps = 1;          // per launch
  float* partials = nullptr;  // partial_floats() floats
  int* tickets = nullptr;     // max_tiles() ints, zero (and zero again after every launch)
  unsigned* barrier = nullptr;  // 2: arrivals and generation, zero before the first launch
  // For profiles, where not null: phases(layers) counters, to which block 0 adds each phase's
  // time in nanoseconds (from the end of one grid barrier to the end of the next) over the steps.
  unsigned long long* phase_ns = nullptr;
};

// The phases of a step: the draw, `layers` forward, the loss, `layers` backward.
CUDL_HD int phases(int layers) { return 2 * layers + 2; }

// One product of a phase: rows_gemm's arguments (A, B, C, epilogue) and its split.
struct Product {
  rows_gemm::KernelArgs args;
  rows_gemm::Split split;
};

// Row b of the batch whose first draw is `first`: with replacement, drawn_row(seed, first + b)
// (Backend::sample_rows); shuffled, position first mod R + b of epoch first / R's permutation
// (Backend::shuffled_rows), or −1 past the epoch's end (its row is NaN, as shuffled_rows' on a GPU).
CUDL_HD int64_t batch_row(const Args& a, uint64_t first, int64_t b) {
  if (!a.shuffled) return formulas::drawn_row(a.seed, first + static_cast<uint64_t>(b), a.rows);
  return formulas::shuffled_row(a.seed, first, b, a.rows);
}

// Copies row `row` of the data (or NaN where row < 0) into batch row b, element by element from
// `from` in steps of `stride` (a block's threads share the copy), the label by the caller.
CUDL_HD void copy_row(const Args& a, int64_t row, int64_t b, int64_t from, int64_t stride) {
  const int64_t features = a.layer[0].in;
  for (int64_t c = from; c < features; c += stride)
    a.xb[b * features + c] = row >= 0 ? a.x[row * features + c] : NAN;
}

CUDL_HD const float* input_of(const Args& a, int i) { return i == 0 ? a.xb : a.layer[i - 1].a; }
CUDL_HD float* dz_of(const Args& a, int i) { return i == a.layers - 1 ? a.layer[i].a : a.layer[i].dz; }

// The product op(A)·op(B) of m×n outputs over k, split as `split`, with the step's scratch; its
// outputs to be set by the caller.
CUDL_HD Product product(const Args& a, const rows_gemm::Split& split, bool ta, bool tb, int64_t m, int64_t n,
                        int64_t k, const float* lhs, int64_t lda, const float* rhs, int64_t ldb) {
  Product p{};
  p.split = split;
  rows_gemm::KernelArgs& g = p.args;
  g.ta = ta;
  g.tb = tb;
  g.m = m;
  g.n = n;
  g.k = k;
  g.a = lhs;
  g.lda = lda;
  g.b = rhs;
  g.ldb = ldb;
  g.split_k = split.split_k;
  g.splits = split.splits;
  g.partials = a.partials;
  g.tickets = a.tickets;
  return p;
}

// a_i ← act_i(a_{i−1}·W_i + b_i).
CUDL_HD Product forward_product(const Args& a, int i) {
  const LayerArgs& l = a.layer[i];
  Product p = product(a, l.forward, false, false, a.batch, l.out, l.in, input_of(a, i), l.in, l.w, l.out);
  rows_gemm::Outputs& o = p.args.out;
  o.epilogue = rows_gemm::Epilogue::kBiasAct;
  o.c = l.a;
  o.ldc = l.out;
  o.bias = l.b;
  o.act = l.act;
  return p;
}

// dz_{i−1} ← (dz_i·W_iᵀ) ⊙ act'_{i−1}(a_{i−1}), i ≥ 1.
CUDL_HD Product backward_product(const Args& a, int i) {
  const LayerArgs& l = a.layer[i];
  const LayerArgs& below = a.layer[i - 1];
  Product p = product(a, l.backward, false, true, a.batch, l.in, l.out, dz_of(a, i), l.out, l.w, l.out);
  rows_gemm::Outputs& o = p.args.out;
  o.epilogue = rows_gemm::Epilogue::kActBackward;
  o.c = below.dz;
  o.ldc = l.in;
  o.y = below.a;
  o.act = below.act;
  return p;
}

// Layer i's step: W_i, V_i from g = a_{i−1}ᵀ·dz_i, and b_i, its velocities from Σ_rows dz_i (one
// slice over the batch); with `grads`, the gradients stored too (where the layer has gw, gb).
CUDL_HD Product update_product(const Args& a, int i, float rate, bool grads) {
  const LayerArgs& l = a.layer[i];
  Product p = product(a, l.update, true, false, l.in, l.out, a.batch, input_of(a, i), l.in, dz_of(a, i), l.out);
  rows_gemm::Outputs& o = p.args.out;
  o.epilogue = rows_gemm::Epilogue::kUpdate;
  o.c = l.w;
  o.ldc = l.out;
  o.v = l.vw;
  o.sums = l.b;
  o.sums_v = l.vb;
  o.update = rows_gemm::Nesterov{rate, a.momentum, a.grad_scale, a.l2};
  if (grads) {
    o.g = l.gw;
    o.sums_g = l.gb;
  }
  return p;
}

// The products of backward phase i (L−1 ≥ i ≥ 0), at most two, into p; returns their number.
// `grads`: the launch's last step, which stores the gradients.
CUDL_HD int backward_phase(const Args& a, int i, float rate, bool grads, Product* p) {
  int n = 0;
  if (i >= 1) p[n++] = backward_product(a, i);
  if (i + 1 < a.layers) p[n++] = update_product(a, i + 1, rate, grads);
  if (i == 0) p[n++] = update_product(a, 0, rate, grads);
  return n;
}

// The kernel's arguments for Backend::fused_mlp_steps' (num_layers in [1, kMaxLayers]), without
// the batch buffers (xb, yb, the layers' a and dz) and the scratch.
inline Args from_fused(const FusedMlpArgs& f) {
  Args a;
  a.layers = f.num_layers;
  for (int i = 0; i < f.num_layers; ++i) {
    const FusedMlpLayer& l = f.layers[i];
    LayerArgs& k = a.layer[i];
    k.in = l.in;
    k.out = l.out;
    k.act = l.act;
    k.w = l.w;
    k.b = l.b;
    k.vw = l.vw;
    k.vb = l.vb;
    k.gw = l.gw;
    k.gb = l.gb;
  }
  a.batch = f.batch;
  a.shuffled = f.shuffled;
  a.x = f.x;
  a.y = f.y;
  a.rows = f.rows;
  a.seed = f.seed;
  a.draw = f.draw;
  a.step = f.step;
  a.updates = f.updates;
  a.stats = f.stats;
  a.loss = f.loss;
  a.lr = f.lr;
  a.momentum = f.update.momentum;
  a.grad_scale = f.update.grad_scale;
  a.l2 = f.update.l2;
  a.steps = f.steps;
  return a;
}

// Why the kernel cannot run `a` (empty when it can): the shapes' limits, the chain of layers, the
// top layer's activation. Checked before plan().
inline std::string refusal(const Args& a) {
  if (a.layers < 1 || a.layers > kMaxLayers)
    return std::to_string(a.layers) + " layers (1 to " + std::to_string(kMaxLayers) + ")";
  if (a.batch < 1 || a.batch > kMaxBatch) return "a batch of " + std::to_string(a.batch) + " rows";
  if (a.rows < 1 || a.rows > int64_t{0xffffffff})
    return std::to_string(a.rows) + " rows (the draws take 1 to 2^32 - 1)";
  for (int i = 0; i < a.layers; ++i) {
    const LayerArgs& l = a.layer[i];
    if (l.in < 1 || l.out < 1) return "layer " + std::to_string(i) + " is empty";
    if (i > 0 && l.in != a.layer[i - 1].out) return "layer " + std::to_string(i) + "'s input is not the layer below";
    auto tiles = [](int64_t m, int64_t n) {
      using namespace rows_gemm;
      return ((m + kTileRows - 1) / kTileRows) * ((n + kTileCols - 1) / kTileCols);
    };
    if (std::max({tiles(a.batch, l.out), tiles(a.batch, l.in), tiles(l.in, l.out)}) > rows_gemm::kMaxTiles)
      return "layer " + std::to_string(i) + " has too many tiles";
  }
  if (a.layer[a.layers - 1].act != Activation::kIdentity) return "the top layer is not linear (its outputs are logits)";
  return {};
}

// Why the kernel cannot run Backend::fused_mlp_steps' `f` (empty when it can): its layers (and
// their buffers), then refusal(from_fused(f)): the shapes, the batch and the rows.
inline std::string refusal(const FusedMlpArgs& f) {
  if (f.num_layers < 1 || f.num_layers > kMaxLayers || f.layers == nullptr)
    return std::to_string(f.num_layers) + " layers (the fused step takes 1 to " + std::to_string(kMaxLayers) + ")";
  for (int i = 0; i < f.num_layers; ++i) {
    const FusedMlpLayer& l = f.layers[i];
    if (l.w == nullptr || l.b == nullptr || l.vw == nullptr || l.vb == nullptr)
      return "layer " + std::to_string(i) + " lacks a parameter or velocity buffer";
    if ((l.gw == nullptr) != (l.gb == nullptr))
      return "layer " + std::to_string(i) + " has a buffer for one of its gradients but not the other";
  }
  return refusal(from_fused(f));
}

// What a launch of `f` lacks (empty when nothing): the data, the counters, the statistics, the
// learning rate, a step to run.
inline std::string missing(const FusedMlpArgs& f) {
  if (f.x == nullptr || f.y == nullptr) return "the data";
  if (f.draw == nullptr || f.step == nullptr) return "the draw or step counter";
  if (f.stats == nullptr || f.lr == nullptr) return "the statistics or the learning rate";
  if (f.steps < 1) return "a step to run (" + std::to_string(f.steps) + " steps)";
  return {};
}

// The floats of a step's batch buffers (xb, yb, each layer's a and dz), and `a` pointed at them
// in `buf`, in that order.
inline int64_t batch_floats(const Args& a) {
  int64_t floats = a.batch * (a.layer[0].in + 1);
  for (int i = 0; i < a.layers; ++i) floats += 2 * a.batch * a.layer[i].out;
  return floats;
}
inline void place_batch_buffers(Args& a, float* buf) {
  a.xb = buf;
  buf += a.batch * a.layer[0].in;
  a.yb = buf;
  buf += a.batch;
  for (int i = 0; i < a.layers; ++i) {
    a.layer[i].a = buf;
    buf += a.batch * a.layer[i].out;
    a.layer[i].dz = buf;
    buf += a.batch * a.layer[i].out;
  }
}

// The splits for a grid of `blocks` resident blocks: each batch product (forward, backward) in
// about `blocks` work items, each weight gradient in one slice over the batch.
inline void plan(Args& a, int blocks) {
  const int half = std::max(1, blocks / 2);  // split_for aims at two blocks per multiprocessor
  for (int i = 0; i < a.layers; ++i) {
    LayerArgs& l = a.layer[i];
    l.forward = rows_gemm::split_for(a.batch, l.out, l.in, half);
    l.backward = rows_gemm::split_for(a.batch, l.in, l.out, half);
    l.update = rows_gemm::split_for(l.in, l.out, a.batch, half, /*one_slice=*/true);
  }
}

// The scratch the kernel needs (after plan()): partial sums and tickets.
inline int64_t partial_floats(const Args& a) {
  int64_t most = 0;
  for (int i = 0; i < a.layers; ++i) {
    const LayerArgs& l = a.layer[i];
    if (l.forward.splits > 1) most = std::max(most, l.forward.splits * a.batch * l.out);
    if (i > 0 && l.backward.splits > 1) most = std::max(most, l.backward.splits * a.batch * l.in);
  }
  return most;
}
inline int64_t max_tiles(const Args& a) {
  int64_t most = 1;
  for (int i = 0; i < a.layers; ++i) most = std::max({most, a.layer[i].forward.tiles(), a.layer[i].backward.tiles()});
  return most;
}

// The kernel's result on the host, in the kernel's order: `steps` steps on the buffers `a` points
// to (host memory), the counters and stats updated as the kernel updates them. For tests.
inline void emulate(const Args& a) {
  const float rate = *a.lr;
  const uint64_t draw0 = *a.draw, step0 = *a.step;
  const int64_t classes = a.layer[a.layers - 1].out;
  auto run = [](const Product& p) {
    const rows_gemm::KernelArgs& k = p.args;
    rows_gemm::emulate(k.ta, k.tb, k.m, k.n, k.k, k.a, k.lda, k.b, k.ldb, p.split, k.out);
  };
  for (int64_t s = 0; s < a.steps; ++s) {
    for (int64_t b = 0; b < a.batch; ++b) {
      const int64_t row = batch_row(a, draw0 + static_cast<uint64_t>(s * a.batch), b);
      copy_row(a, row, b, 0, 1);
      a.yb[b] = row >= 0 ? a.y[row] : NAN;
    }
    for (int i = 0; i < a.layers; ++i) run(forward_product(a, i));
    double part[kLossThreads] = {};
    int64_t errs[kLossThreads] = {};
    float* logits = a.layer[a.layers - 1].a;
    for (int64_t r = 0; r < a.batch; ++r) {
      const formulas::RowCrossEntropy row = formulas::softmax_xent_row(
          logits + r * classes, logits + r * classes, classes, formulas::class_index(a.yb[r], classes),
          a.loss.grad_scale);
      part[r % kLossThreads] += row.loss;
      errs[r % kLossThreads] += row.error;
    }
    for (int half = kLossThreads / 2; half > 0; half /= 2)
      for (int t = 0; t < half; ++t) {
        part[t] += part[t + half];
        errs[t] += errs[t + half];
      }
    formulas::add_elementwise_stats(a.stats, part[0], errs[0], a.batch, 1, a.loss.max_loss,
                                    static_cast<int64_t>(step0) + s);
    for (int i = a.layers - 1; i >= 0; --i) {
      Product p[2];
      const int n = backward_phase(a, i, rate, s == a.steps - 1, p);
      for (int q = 0; q < n; ++q) run(p[q]);
    }
  }
  *a.draw = draw0 + static_cast<uint64_t>(a.steps * a.batch);
  *a.step = step0 + static_cast<uint64_t>(a.steps);
  if (a.updates != nullptr) *a.updates += static_cast<uint64_t>(a.steps);
}

}  // namespace cudl::cuda::mlp_step

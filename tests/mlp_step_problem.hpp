#pragma once
// What the persistent training step's tests share (test_mlp_step_on_host, test_cuda_mlp_step): a
// network's state and a dataset in host memory with the mlp_step::Args that point into them, and
// the bitwise comparison of two such states.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "mlp_step_plan.hpp"
#include "test_support.hpp"

namespace cudl::testing::mlp {

using cuda::mlp_step::Args;

inline std::vector<float> uniform(uint64_t seed, int64_t n, float lo, float hi) {
  return uniform_values(seed, n, lo, hi);
}

// A network's state and a dataset in host memory, with the Args that point into them.
struct Problem {
  std::vector<int64_t> sizes;
  std::vector<Activation> acts;
  int64_t batch = 0, rows = 0;
  std::vector<float> x, y, xb, yb, stats{0.0f, 0.0f, -1.0f, 0.0f};
  std::vector<std::vector<float>> w, b, vw, vb, a, dz;
  std::vector<std::vector<float>> gw, gb;  // the last step's gradients: NaN until written
  uint64_t draw = 0, step = 0;
  float lr = 0.05f;

  Problem(std::vector<int64_t> sizes_, std::vector<Activation> acts_, int64_t batch_, int64_t rows_, uint64_t seed)
      : sizes(std::move(sizes_)), acts(std::move(acts_)), batch(batch_), rows(rows_) {
    const int64_t classes = sizes.back();
    x = uniform(seed, rows * sizes[0], -1.0f, 1.0f);
    for (int64_t r = 0; r < rows; ++r) y.push_back(static_cast<float>((r * 7 + static_cast<int64_t>(seed)) % classes));
    xb.assign(static_cast<size_t>(batch * sizes[0]), 0.0f);
    yb.assign(static_cast<size_t>(batch), 0.0f);
    for (size_t i = 0; i + 1 < sizes.size(); ++i) {
      const float scale = 1.0f / std::sqrt(static_cast<float>(sizes[i]));
      w.push_back(uniform(seed + 10 * i + 1, sizes[i] * sizes[i + 1], -scale, scale));
      b.push_back(uniform(seed + 10 * i + 2, sizes[i + 1], -0.1f, 0.1f));
      vw.push_back(uniform(seed + 10 * i + 3, sizes[i] * sizes[i + 1], -0.01f, 0.01f));
      vb.push_back(uniform(seed + 10 * i + 4, sizes[i + 1], -0.01f, 0.01f));
      a.emplace_back(static_cast<size_t>(batch * sizes[i + 1]), std::nanf(""));
      dz.emplace_back(static_cast<size_t>(batch * sizes[i + 1]), std::nanf(""));
      gw.emplace_back(static_cast<size_t>(sizes[i] * sizes[i + 1]), std::nanf(""));
      gb.emplace_back(static_cast<size_t>(sizes[i + 1]), std::nanf(""));
    }
    draw = 1000 + seed;
    step = 7;
  }

  Args args(int blocks) {
    Args p;
    p.layers = static_cast<int>(sizes.size()) - 1;
    for (int i = 0; i < p.layers; ++i) {
      cuda::mlp_step::LayerArgs& l = p.layer[i];
      l.in = sizes[static_cast<size_t>(i)];
      l.out = sizes[static_cast<size_t>(i) + 1];
      l.act = acts[static_cast<size_t>(i)];
      l.w = w[static_cast<size_t>(i)].data();
      l.b = b[static_cast<size_t>(i)].data();
      l.vw = vw[static_cast<size_t>(i)].data();
      l.vb = vb[static_cast<size_t>(i)].data();
      l.a = a[static_cast<size_t>(i)].data();
      l.dz = dz[static_cast<size_t>(i)].data();
      l.gw = gw[static_cast<size_t>(i)].data();
      l.gb = gb[static_cast<size_t>(i)].data();
    }
    p.batch = batch;
    p.x = x.data();
    p.y = y.data();
    p.rows = rows;
    p.seed = 99;
    p.draw = &draw;
    p.step = &step;
    p.xb = xb.data();
    p.yb = yb.data();
    p.stats = stats.data();
    p.loss.grad_scale = 1.0f;
    p.loss.max_loss = 100.0f;
    p.lr = &lr;
    p.momentum = 0.9f;
    p.grad_scale = 1.0f / static_cast<float>(batch);
    p.l2 = 1e-4f;
    cuda::mlp_step::plan(p, blocks);
    return p;
  }

  // Whether every layer's gradients were written, and are finite.
  bool gradients_written() const {
    for (const auto* g : {&gw, &gb})
      for (const std::vector<float>& layer : *g)
        for (float v : layer)
          if (!std::isfinite(v)) return false;
    return true;
  }
};

// `a` with every pointer p replaced by f(p) (e.g. the device copy of the host buffer p).
template <typename F>
Args remap(Args a, const F& f) {
  for (int i = 0; i < a.layers; ++i) {
    cuda::mlp_step::LayerArgs& l = a.layer[i];
    l.w = f(l.w);
    l.b = f(l.b);
    l.vw = f(l.vw);
    l.vb = f(l.vb);
    l.a = f(l.a);
    l.dz = f(l.dz);
    if (l.gw != nullptr) l.gw = f(l.gw);
    if (l.gb != nullptr) l.gb = f(l.gb);
  }
  a.x = f(const_cast<float*>(a.x));
  a.y = f(const_cast<float*>(a.y));
  a.xb = f(a.xb);
  a.yb = f(a.yb);
  a.stats = f(a.stats);
  a.lr = f(const_cast<float*>(a.lr));
  a.draw = f(a.draw);
  a.step = f(a.step);
  return a;
}

inline bool same_bits(const std::vector<float>& u, const std::vector<float>& v, std::string* where) {
  if (u.size() != v.size()) {
    *where = "sizes differ";
    return false;
  }
  for (size_t i = 0; i < u.size(); ++i)
    if (std::memcmp(&u[i], &v[i], sizeof(float)) != 0) {
      *where = "element " + std::to_string(i) + ": " + std::to_string(u[i]) + " vs " + std::to_string(v[i]);
      return false;
    }
  return true;
}

inline void expect_same_state(const Problem& kernel, const Problem& emulated, const std::string& what) {
  std::string where;
  for (size_t i = 0; i < kernel.w.size(); ++i) {
    const std::string layer = what + ", layer " + std::to_string(i);
    EXPECT_TRUE(same_bits(kernel.w[i], emulated.w[i], &where)) << layer << " W " << where;
    EXPECT_TRUE(same_bits(kernel.b[i], emulated.b[i], &where)) << layer << " b " << where;
    EXPECT_TRUE(same_bits(kernel.vw[i], emulated.vw[i], &where)) << layer << " V " << where;
    EXPECT_TRUE(same_bits(kernel.vb[i], emulated.vb[i], &where)) << layer << " vb " << where;
    EXPECT_TRUE(same_bits(kernel.a[i], emulated.a[i], &where)) << layer << " output " << where;
    EXPECT_TRUE(same_bits(kernel.gw[i], emulated.gw[i], &where)) << layer << " W's gradient " << where;
    EXPECT_TRUE(same_bits(kernel.gb[i], emulated.gb[i], &where)) << layer << " b's gradient " << where;
    if (i + 1 < kernel.w.size()) {
      EXPECT_TRUE(same_bits(kernel.dz[i], emulated.dz[i], &where)) << layer << " dz " << where;
    }
  }
  EXPECT_TRUE(same_bits(kernel.xb, emulated.xb, &where)) << what << " xb " << where;
  EXPECT_TRUE(same_bits(kernel.yb, emulated.yb, &where)) << what << " yb " << where;
  EXPECT_TRUE(same_bits(kernel.stats, emulated.stats, &where)) << what << " stats " << where;
  EXPECT_EQ(kernel.draw, emulated.draw) << what;
  EXPECT_EQ(kernel.step, emulated.step) << what;
}

}  // namespace cudl::testing::mlp

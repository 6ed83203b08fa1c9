#pragma once
// The networks, optimizers and schedules that the checkpoint fuzzer (fuzz_checkpoint.cpp) loads
// files into and that its seeds (make_checkpoint_seeds.cpp) are written from, kept in one place so
// that the seeds load: a dense network with dropout (a layer counter) and a small image network
// with conv2d, batch_norm2d (layer state), max_pool2d, flatten and dense; each trained with Adam
// and ReduceOnPlateau, or with the 2014 preset (GdbnNesterov, whose mid-epoch checkpoints carry
// optimizer.lookahead_params, and its exponential schedule).
#include <memory>

#include "cudl/checkpoint.hpp"
#include "cudl/conv_layers.hpp"
#include "cudl/network.hpp"
#include "cudl/optimizer.hpp"
#include "cudl/schedule.hpp"
#include "cudl/trainer.hpp"

namespace cudl::fuzz {

enum class Net { kDense, kImage };
constexpr Net kNets[] = {Net::kDense, Net::kImage};

// input {8}: dense(16, relu), dropout(0.25), dense(2).
// input {1, 6, 6}: conv2d(2, 3×3) → [2, 4, 4], batch_norm2d, max_pool2d(2) → [2, 2, 2], flatten, dense(2).
inline std::unique_ptr<Network> make_network(Net which, Backend& backend) {
  std::unique_ptr<Network> net;
  if (which == Net::kDense) {
    net = std::make_unique<Network>(backend, Shape{8});
    net->add(dense(16, Activation::kRelu)).add(dropout(0.25f, 99)).add(dense(2));
  } else {
    net = std::make_unique<Network>(backend, Shape{1, 6, 6});
    net->add(conv2d(2, 3, Activation::kRelu))
        .add(batch_norm2d(1e-3f, 0.2f))
        .add(max_pool2d(2))
        .add(flatten())
        .add(dense(2));
  }
  net->initialize(7, 0.1f);
  return net;
}

inline int64_t features(Net which) { return which == Net::kDense ? 8 : 36; }

// Adam and ReduceOnPlateau.
inline std::unique_ptr<Adam> make_adam(Network& net) {
  AdamOptions o;
  o.learn_rate = 0.01f;
  return std::make_unique<Adam>(net.param_set(), o);
}
inline std::unique_ptr<ReduceOnPlateau> make_plateau() { return std::make_unique<ReduceOnPlateau>(0.5f, 1); }

// The 2014 preset with a small batch (its optimizer's grad_scale follows the batch).
inline presets::Gdbn2014 gdbn_preset() {
  presets::Gdbn2014 p;
  p.batch = 16;
  return p;
}

}  // namespace cudl::fuzz

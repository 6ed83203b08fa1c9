// Sgd, Adam and AdamW against PyTorch's documented algorithms run in numpy float32
// (scripts/reference/optim_reference.py, whose output is tests/optim_reference.hpp), 5 steps on
// fixed gradients, weight decay on the decayed prefix only.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cudl/cpu_backend.hpp"
#include "cudl/optimizer.hpp"
#include "optim_reference.hpp"
#include "tolerance.hpp"

using namespace cudl;
using cudl::testing::expect_all_close;
namespace ref = cudl::testing::optim_reference;

namespace {

// The reference's parameter set: P values, their gradients, the first kDecayed of them weights.
struct Params {
  explicit Params(Backend& backend)
      : params(Tensor::from_host(row(ref::kInitial), {ref::kParams}, backend)),
        grads(Tensor::from_host(std::vector<float>(ref::kParams, 0.0f), {ref::kParams}, backend)),
        set{&params, &grads, ref::kDecayed} {}
  static std::vector<float> row(const float (&values)[ref::kParams]) { return {values, values + ref::kParams}; }
  Tensor params, grads;
  ParamSet set;
};

std::vector<float> row(const float (&values)[ref::kParams]) { return Params::row(values); }

// A few float ulps (tolerance.hpp's rule): the reference rounds after every operation, the
// compiler may fuse a multiply and an add.
constexpr double kAbs = 1e-7, kRel = 5e-7;

}  // namespace

TEST(Sgd, MatchesPyTorchsDocumentedAlgorithm) {
  for (const ref::SgdCase& c : ref::kSgd) {
    CpuBackend cpu(1);
    Params p(cpu);
    Sgd opt(p.set, {c.lr, c.momentum, c.dampening, c.nesterov, c.weight_decay});
    for (int t = 0; t < ref::kSteps; ++t) {
      p.grads.copy_from(row(ref::kGrads[t]));
      opt.step();
      expect_all_close(p.params.to_vector(), row(c.w[t]), kAbs, kRel,
                       std::string("sgd ") + c.name + " step " + std::to_string(t + 1));
    }
    if (c.momentum != 0.0f)
      expect_all_close(opt.state()[0].second->to_vector(), row(c.momentum_buffer), kAbs, kRel,
                       std::string("sgd ") + c.name + " momentum_buffer");
  }
}


TEST(Adam, MatchesPyTorchsDocumentedAlgorithm) {
  for (const ref::AdamCase& c : ref::kAdam) {
    CpuBackend cpu(1);
    Params p(cpu);
    AdamOptions o;
    o.learn_rate = c.lr;
    o.beta1 = c.beta1;
    o.beta2 = c.beta2;
    o.eps = c.eps;
    o.weight_decay = c.weight_decay;
    o.amsgrad = c.amsgrad;
    Adam opt(p.set, o, c.decoupled ? Adam::Decay::kDecoupled : Adam::Decay::kL2);
    const std::string what = std::string("adam ") + c.name;
    for (int t = 0; t < ref::kSteps; ++t) {
      p.grads.copy_from(row(ref::kGrads[t]));
      opt.step();
      expect_all_close(p.params.to_vector(), row(c.w[t]), kAbs, kRel, what + " step " + std::to_string(t + 1));
    }
    const auto s = opt.state();
    expect_all_close(s[0].second->to_vector(), row(c.exp_avg), kAbs, kRel, what + " exp_avg");
    expect_all_close(s[1].second->to_vector(), row(c.exp_avg_sq), kAbs, kRel, what + " exp_avg_sq");
    if (c.amsgrad) expect_all_close(s[2].second->to_vector(), row(c.max_exp_avg_sq), kAbs, kRel, what + " max");
  }
}

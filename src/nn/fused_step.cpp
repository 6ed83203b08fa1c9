#include "nn/fused_step.hpp"

#include <cmath>
#include <cstdint>
#include <string>

#include "cudl/layers.hpp"

namespace cudl::detail {

FusedStep fused_step(Network& net, const Loss& loss, Optimizer& opt, int64_t batch, Tensor& step, Tensor& stats) {
  FusedStep f;
  const auto* xent = dynamic_cast<const SoftmaxCrossEntropy*>(&loss);
  auto* nesterov = dynamic_cast<GdbnNesterov*>(&opt);
  if (xent == nullptr) return {"the loss is " + loss.name() + ", not softmax cross-entropy", {}, {}};
  if (nesterov == nullptr) return {"the optimizer is " + opt.name() + ", not gdbn's Nesterov momentum", {}, {}};
  if (!nesterov->active()) return {"the optimizer is not at its look-ahead point (begin())", {}, {}};
  if (!net.capturable())
    return {"the network cannot be captured (a layer says so, or it is timing its layers)", {}, {}};
  Tensor* velocity = nullptr;
  for (auto& [name, t] : nesterov->state())
    if (name == "velocity") velocity = t;
  Tensor& params = net.params();
  Tensor& grads = net.grads();  // the launch's last step leaves its gradients here, as an unfused step
  if (velocity == nullptr || velocity->size() != params.size())
    return {"the optimizer's velocities are not the network's parameters", {}, {}};
  int64_t weights = 0;
  for (int64_t i = 0; i < net.num_layers(); ++i) {
    auto* dense = dynamic_cast<Dense*>(&net.layer(i));
    if (dense == nullptr)
      return {"layer " + std::to_string(i) + " is " + net.layer(i).describe() + ", not Dense", {}, {}};
    Tensor& w = dense->weight();
    Tensor& b = dense->bias();
    FusedMlpLayer l;
    l.in = w.dim(0);
    l.out = w.dim(1);
    l.act = dense->activation();
    l.w = w.data();
    l.b = b.data();
    l.vw = velocity->data() + (w.data() - params.data());
    l.vb = velocity->data() + (b.data() - params.data());
    l.gw = grads.data() + (w.data() - params.data());
    l.gb = grads.data() + (b.data() - params.data());
    f.layers.push_back(l);
    weights += w.size();
  }
  if (f.layers.empty()) return {"the network has no layers", {}, {}};
  if (net.decayed_params() != weights) return {"the decayed parameters are not exactly the weights", {}, {}};
  const ParamSet& updated = opt.params();
  if (updated.params != &params || updated.decayed != weights)
    return {"the optimizer does not update exactly this network's parameters, its weights decayed", {}, {}};
  const int64_t classes = f.layers.back().out;
  if (classes < 2) return {"the network has one output, not class scores", {}, {}};
  FusedMlpArgs& a = f.args;
  a.num_layers = static_cast<int>(f.layers.size());
  a.batch = batch;
  a.step = reinterpret_cast<uint64_t*>(step.data());
  a.updates = reinterpret_cast<uint64_t*>(opt.step_count().data());
  a.stats = stats.data();
  a.loss = xent->args(batch, classes);
  a.lr = opt.learning_rate().data();
  a.update.momentum = nesterov->options().momentum;
  a.update.grad_scale = nesterov->options().grad_scale;
  a.update.l2 = nesterov->options().l2;
  a.update.decayed = weights;
  return f;
}

FusedStep fused_epoch(Network& net, const Loss& loss, Optimizer& opt, const Schedule* schedule, StepLaunch launch,
                      bool several_processes, const EpochSource& data, int64_t batch, Tensor& step, Tensor& stats) {
  Backend& backend = net.backend();
  FusedStep f;
  if (launch != StepLaunch::kAuto) f.why = "StepLaunch asks for captured or eager steps";
  else if (several_processes) f.why = "a communicator all-reduces each step's gradient";
  else if (data.loader != nullptr || !data.target_row.empty()) f.why = "the data is streamed or has target rows";
  else if (&data.x->backend() != &backend || &data.y->backend() != &backend)
    f.why = "the data is not on the network's backend";
  else if (schedule != nullptr && schedule->per_step()) f.why = "the schedule moves the rate every step";
  else f = fused_step(net, loss, opt, batch, step, stats);
  if (!f.why.empty()) return f;
  f.args.layers = f.layers.data();
  f.args.x = data.x->data();
  f.args.y = data.y->data();
  f.args.rows = data.rows;
  f.why = backend.fused_mlp_refusal(f.args);
  return f;
}

}  // namespace cudl::detail

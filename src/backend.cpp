// The checked front half of every Backend primitive: shapes and devices are validated here,
// once, so CpuBackend and CudaBackend implement only the arithmetic.
#include "cudl/backend.hpp"
#include "cudl/fused_mlp.hpp"

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <string>

#include "backend_checks.hpp"
#include "cudl/error.hpp"

namespace cudl {

using detail::counter_bits;
using detail::require_counter;
using detail::require_on;
using detail::require_rank;
using detail::require_same_size;
using detail::require_shape;
using detail::require_update;

const char* to_string(Precision precision) {
  switch (precision) {
    case Precision::kFp32: return "fp32";
    case Precision::kTf32: return "tf32";
    case Precision::kBf16: return "bf16";
  }
  return "unknown";
}

const char* to_string(Activation act) {
  switch (act) {
    case Activation::kIdentity: return "identity";
    case Activation::kRelu: return "relu";
    case Activation::kSigmoid: return "sigmoid";
  }
  return "?";
}

const char* to_string(Units units) {
  switch (units) {
    case Units::kBernoulli: return "bernoulli";
    case Units::kGaussian: return "gaussian";
    case Units::kNoisyRelu: return "noisy-relu";
  }
  return "?";
}


void Backend::fill(Tensor& x, float value) {
  require_on(*this, x, "fill", "x");
  do_fill(x.data(), x.size(), value);
}

void Backend::fill_normal(Tensor& x, uint64_t seed, float mean, float stddev) {
  require_on(*this, x, "fill_normal", "x");
  do_fill_normal(x.data(), x.size(), seed, mean, stddev);
}

void Backend::bias_activation(Tensor& y, const Tensor& bias, Activation act) {
  const char* op = "bias_activation";
  require_on(*this, y, op, "y");
  require_on(*this, bias, op, "bias");
  require_rank(y, 2, op, "y");
  require_shape(bias, {y.dim(1)}, op, "bias");
  do_bias_activation(y.data(), bias.data(), y.dim(0), y.dim(1), act);
}

void Backend::activation(Tensor& y, Activation act) {
  require_on(*this, y, "activation", "y");
  do_activation(y.data(), y.size(), act);
}

void Backend::activation_backward(Tensor& dy, const Tensor& y, Activation act) {
  const char* op = "activation_backward";
  require_on(*this, dy, op, "dy");
  require_on(*this, y, op, "y");
  require_shape(dy, y.shape(), op, "dy");
  do_activation_backward(dy.data(), y.data(), y.size(), act);
}

void Backend::sum_rows(float alpha, const Tensor& x, float beta, Tensor& out) {
  const char* op = "sum_rows";
  require_on(*this, x, op, "x");
  require_on(*this, out, op, "out");
  require_rank(x, 2, op, "x");
  require_shape(out, {x.dim(1)}, op, "out");
  do_sum_rows(alpha, x.data(), x.dim(0), x.dim(1), beta, out.data());
}

double Backend::squared_distance(const Tensor& a, const Tensor& b) {
  require_on(*this, a, "squared_distance", "a");
  require_on(*this, b, "squared_distance", "b");
  require_same_size(a, b, "squared_distance", "a", "b");
  double out = 0.0;
  do_squared_distance(a.data(), b.data(), a.size(), &out);
  return out;
}

namespace {

void require_softmax(const Backend& backend, const Tensor& logits, const Tensor& labels, const Tensor& dlogits,
                     const Tensor& stats) {
  const char* op = "softmax_cross_entropy";
  require_on(backend, logits, op, "logits");
  require_on(backend, labels, op, "labels");
  require_on(backend, dlogits, op, "dlogits");
  require_on(backend, stats, op, "stats");
  require_rank(logits, 2, op, "logits");
  require_shape(labels, {logits.dim(0)}, op, "labels");
  require_shape(dlogits, logits.shape(), op, "dlogits");
  require_shape(stats, {LossStats::kSize}, op, "stats");
}

void require_sample_rows(const Backend& backend, const Tensor& x, const Tensor& y, const Tensor& bx, const Tensor& by) {
  const char* op = "sample_rows";
  require_on(backend, x, op, "x");
  require_on(backend, y, op, "y");
  require_on(backend, bx, op, "bx");
  require_on(backend, by, op, "by");
  require_rank(x, 2, op, "x");
  CUDL_REQUIRE(x.dim(0) > 0, "sample_rows: the data has no rows");
  CUDL_REQUIRE(x.dim(0) <= 0xFFFFFFFFll, "sample_rows: more than 2^32 rows");
  CUDL_REQUIRE((y.rank() == 1 || (y.rank() == 2 && y.dim(1) >= 1)) && y.dim(0) == x.dim(0),
               std::string(op) + ": y expected shape [" + std::to_string(x.dim(0)) + "] (class indices) or [" +
                   std::to_string(x.dim(0)) + ", T] with T ≥ 1 (target rows), found " + to_string(y.shape()));
  require_rank(bx, 2, op, "bx");
  require_shape(bx, {bx.dim(0), x.dim(1)}, op, "bx");
  Shape by_shape = y.shape();
  by_shape[0] = bx.dim(0);
  require_shape(by, by_shape, op, "by");
}

// The values per row of y (1 for class indices).
int64_t target_cols(const Tensor& y) { return y.rank() == 1 ? 1 : y.dim(1); }

void require_elementwise_loss(const Backend& backend, const Tensor& pred, const Tensor& target, const Tensor& step,
                              const Tensor& dpred, const Tensor& stats, const char* op) {
  require_on(backend, pred, op, "prediction");
  require_on(backend, target, op, "targets");
  require_on(backend, dpred, op, "gradient");
  require_on(backend, stats, op, "stats");
  require_rank(pred, 2, op, "prediction");
  CUDL_REQUIRE(pred.dim(1) >= 1, std::string(op) + ": the prediction " + to_string(pred.shape()) +
                                     " has no values per sample");
  require_shape(target, pred.shape(), op, "targets");
  require_shape(dpred, pred.shape(), op, "gradient");
  require_shape(stats, {LossStats::kSize}, op, "stats");
  require_counter(backend, step, op);
}

}  // namespace

void Backend::softmax_cross_entropy(const Tensor& logits, const Tensor& labels, const CrossEntropyArgs& args,
                                    Tensor& dlogits, Tensor& stats) {
  require_softmax(*this, logits, labels, dlogits, stats);
  do_softmax_cross_entropy(logits.data(), labels.data(), logits.dim(0), logits.dim(1), args, nullptr,
                           dlogits.data(), stats.data());
}

void Backend::softmax_cross_entropy(const Tensor& logits, const Tensor& labels, const CrossEntropyArgs& args,
                                    const Tensor& step, Tensor& dlogits, Tensor& stats) {
  require_softmax(*this, logits, labels, dlogits, stats);
  require_counter(*this, step, "softmax_cross_entropy");
  do_softmax_cross_entropy(logits.data(), labels.data(), logits.dim(0), logits.dim(1), args, counter_bits(step),
                           dlogits.data(), stats.data());
}

void Backend::argmax_rows(const Tensor& x, Tensor& out) {
  const char* op = "argmax_rows";
  require_on(*this, x, op, "x");
  require_on(*this, out, op, "out");
  require_rank(x, 2, op, "x");
  require_shape(out, {x.dim(0)}, op, "out");
  do_argmax_rows(x.data(), x.dim(0), x.dim(1), out.data());
}

void Backend::sample_rows(const Tensor& x, const Tensor& y, uint64_t seed, uint64_t first_draw, Tensor& bx,
                          Tensor& by) {
  require_sample_rows(*this, x, y, bx, by);
  do_sample_rows(x.data(), y.data(), x.dim(0), x.dim(1), target_cols(y), seed, first_draw, nullptr, bx.data(),
                 by.data(), bx.dim(0));
}

void Backend::sample_rows(const Tensor& x, const Tensor& y, uint64_t seed, const Tensor& first_draw, Tensor& bx,
                          Tensor& by) {
  require_sample_rows(*this, x, y, bx, by);
  require_counter(*this, first_draw, "sample_rows");
  do_sample_rows(x.data(), y.data(), x.dim(0), x.dim(1), target_cols(y), seed, 0, counter_bits(first_draw),
                 bx.data(), by.data(), bx.dim(0));
}

void Backend::cosine_learning_rate(const CosineArgs& args, const Tensor& step, Tensor& lr) {
  require_counter(*this, step, "cosine_learning_rate");
  require_on(*this, lr, "cosine_learning_rate", "lr");
  require_shape(lr, {1}, "cosine_learning_rate", "lr");
  CUDL_REQUIRE(std::isfinite(args.base) && args.base >= 0.0f && args.warmup_steps >= 0 && args.total_steps >= 1 &&
                   args.min_factor >= 0.0f && args.min_factor <= 1.0f,
               "cosine_learning_rate: expected base ≥ 0, warm-up ≥ 0, total ≥ 1 and min_factor in [0, 1]");
  do_cosine_learning_rate(args, counter_bits(step), lr.data());
}

void Backend::shuffled_rows(const Tensor& x, const Tensor& y, uint64_t seed, const Tensor& position, Tensor& bx,
                            Tensor& by) {
  require_sample_rows(*this, x, y, bx, by);
  require_counter(*this, position, "shuffled_rows");
  CUDL_REQUIRE(bx.dim(0) <= x.dim(0), "shuffled_rows: a batch of " + std::to_string(bx.dim(0)) +
                                          " rows cannot be drawn without replacement from " +
                                          std::to_string(x.dim(0)));
  do_shuffled_rows(x.data(), y.data(), x.dim(0), x.dim(1), target_cols(y), seed, counter_bits(position), bx.data(),
                   by.data(), bx.dim(0));
}

void Backend::mean_squared_error(const Tensor& pred, const Tensor& target, const ElementwiseLossArgs& args,
                                 const Tensor& step, Tensor& dpred, Tensor& stats) {
  require_elementwise_loss(*this, pred, target, step, dpred, stats, "mean_squared_error");
  do_mean_squared_error(pred.data(), target.data(), pred.dim(0), pred.dim(1), args, counter_bits(step), dpred.data(),
                        stats.data());
}

void Backend::binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& targets,
                                               const ElementwiseLossArgs& args, const Tensor& step, Tensor& dlogits,
                                               Tensor& stats) {
  require_elementwise_loss(*this, logits, targets, step, dlogits, stats, "binary_cross_entropy_with_logits");
  do_binary_cross_entropy_with_logits(logits.data(), targets.data(), logits.dim(0), logits.dim(1), args,
                                      counter_bits(step), dlogits.data(), stats.data());
}

// ---- counters and capture ----

Tensor make_counter(Backend& backend, uint64_t value) {
  Tensor counter({2}, backend);
  backend.set_counter(counter, value);
  return counter;
}

uint64_t read_counter(const Tensor& counter) {
  CUDL_REQUIRE(counter.shape() == Shape{2}, "read_counter: expected a counter (shape [2], from make_counter), found " +
                                                to_string(counter.shape()));
  uint64_t value = 0;
  counter.backend().copy_to_host(counter.data(), &value, sizeof value);
  return value;
}

void Backend::set_counter(Tensor& counter, uint64_t value) {
  require_counter(*this, counter, "set_counter");
  copy_from_host(&value, counter.data(), sizeof value);
}

void Backend::add_to_counter(Tensor& counter, uint64_t delta) {
  require_counter(*this, counter, "add_to_counter");
  do_add_to_counter(reinterpret_cast<uint64_t*>(counter.data()), delta);
}

// ---- uploads: the synchronous defaults (every queue is the caller's thread) ----

std::unique_ptr<Backend::Event> Backend::create_event() { return std::make_unique<Event>(); }
void Backend::record(Event&, Queue) {}
void Backend::wait(Queue, const Event&) {}
void Backend::host_wait(const Event&) {}

namespace {
struct HostTimeMark : Backend::TimeMark {
  std::chrono::steady_clock::time_point when;
  bool set = false;
};
const HostTimeMark& host_mark(const Backend::TimeMark& m) {
  const auto* h = dynamic_cast<const HostTimeMark*>(&m);
  CUDL_REQUIRE(h != nullptr, "elapsed_ms: a time mark of another backend");
  CUDL_REQUIRE(h->set, "elapsed_ms: a time mark that was never set (Backend::mark)");
  return *h;
}
}  // namespace

std::unique_ptr<Backend::TimeMark> Backend::create_time_mark() { return std::make_unique<HostTimeMark>(); }

void Backend::mark(TimeMark& m) {
  auto* h = dynamic_cast<HostTimeMark*>(&m);
  CUDL_REQUIRE(h != nullptr, "mark: a time mark of another backend");
  h->when = std::chrono::steady_clock::now();
  h->set = true;
}

double Backend::elapsed_ms(const TimeMark& from, const TimeMark& to) {
  return std::chrono::duration<double, std::milli>(host_mark(to).when - host_mark(from).when).count();
}

void* Backend::allocate_host(std::size_t bytes) {
  if (bytes == 0) return nullptr;
  // Whole cache lines, as the batch buffers are read with vector loads.
  void* p = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
  CUDL_REQUIRE(p != nullptr, "out of host memory allocating " + std::to_string(bytes) + " bytes");
  return p;
}

void Backend::deallocate_host(void* ptr) noexcept { std::free(ptr); }

void Backend::upload_async(const void* host_src, void* dst, std::size_t bytes) { copy_from_host(host_src, dst, bytes); }

void Backend::FreeHost::operator()(void* p) const noexcept { std::free(p); }

void* Backend::host_staging(std::size_t bytes) {
  if (bytes == 0) return nullptr;
  if (bytes > staging_bytes_) {
    const std::size_t rounded = (bytes + 63) / 64 * 64;
    staging_.reset();  // the old buffer first: the peak is the new one alone
    staging_bytes_ = 0;
    staging_.reset(std::aligned_alloc(64, rounded));
    CUDL_REQUIRE(staging_ != nullptr, "out of host memory allocating a staging buffer of " + std::to_string(bytes) +
                                          " bytes");
    staging_bytes_ = rounded;
  }
  return staging_.get();
}

void Backend::begin_capture() {
  detail::fail(__FILE__, __LINE__, describe() + " cannot capture work (can_capture() is false)");
}

std::unique_ptr<Captured> Backend::end_capture() {
  detail::fail(__FILE__, __LINE__, describe() + " cannot capture work (can_capture() is false)");
}

std::string Backend::fused_mlp_refusal(const FusedMlpArgs&) { return describe() + " has no fused training step"; }

void Backend::fused_mlp_steps(const FusedMlpArgs& args) {
  const std::string why = fused_mlp_refusal(args);
  detail::fail(__FILE__, __LINE__, "fused_mlp_steps: " + (why.empty() ? describe() + " did not run them" : why));
}

namespace {
void require_bias_activation_sample(const Backend& b, const Tensor& y, const Tensor& bias, const Tensor& states) {
  const char* op = "bias_activation_sample";
  require_on(b, y, op, "y");
  require_on(b, bias, op, "bias");
  require_on(b, states, op, "states");
  require_rank(y, 2, op, "y");
  require_shape(bias, {y.dim(1)}, op, "bias");
  require_shape(states, y.shape(), op, "states");
}
}  // namespace

void Backend::bias_activation_sample(Tensor& y, const Tensor& bias, Activation act, Units units, uint64_t seed,
                                     uint64_t counter, Tensor& states) {
  require_bias_activation_sample(*this, y, bias, states);
  do_bias_activation_sample(y.data(), bias.data(), y.dim(0), y.dim(1), act, units, seed, nullptr, counter,
                            states.data());
}

void Backend::bias_activation_sample(Tensor& y, const Tensor& bias, Activation act, Units units, uint64_t seed,
                                     const Tensor& counter, uint64_t offset, Tensor& states) {
  require_bias_activation_sample(*this, y, bias, states);
  require_counter(*this, counter, "bias_activation_sample");
  do_bias_activation_sample(y.data(), bias.data(), y.dim(0), y.dim(1), act, units, seed, counter_bits(counter), offset,
                            states.data());
}

void Backend::sample_units(const Tensor& means, Units units, uint64_t seed, uint64_t counter, Tensor& out) {
  require_on(*this, means, "sample_units", "means");
  require_on(*this, out, "sample_units", "out");
  require_same_size(means, out, "sample_units", "means", "out");
  do_sample_units(means.data(), means.size(), units, seed, counter, out.data());
}

void Backend::axpy(float alpha, const Tensor& x, Tensor& y) {
  require_on(*this, x, "axpy", "x");
  require_on(*this, y, "axpy", "y");
  require_same_size(x, y, "axpy", "x", "y");
  do_axpy(alpha, x.data(), y.data(), y.size());
}

// ---- the optimizers' updates ----

namespace {

void require_learning_rate(const Backend& backend, const Tensor& lr, const char* op) {
  require_on(backend, lr, op, "lr");
  require_shape(lr, {1}, op, "lr (the learning rate: one float)");
}

// An optional state tensor: when `used`, of w's size on this backend.
float* optional_state(const Backend& backend, const Tensor& w, Tensor& state, bool used, const char* op,
                      const char* name, const char* when) {
  if (!used) return nullptr;
  CUDL_REQUIRE(!state.empty(), std::string(op) + ": " + when + " needs " + name + " (" + std::to_string(w.size()) +
                                   " elements), found an empty tensor");
  require_on(backend, state, op, name);
  require_same_size(w, state, op, "w", name);
  return state.data();
}

}  // namespace

void Backend::momentum_step(Tensor& w, Tensor& v, const Tensor& g, const Tensor& lr, const MomentumArgs& args) {
  const char* op = "momentum_step";
  require_update(*this, w, v, g, args.decayed, op);
  require_learning_rate(*this, lr, op);
  do_momentum_step(w.data(), v.data(), g.data(), w.size(), lr.data(), args);
}

void Backend::nesterov_step(Tensor& w, Tensor& v, const Tensor& g, const Tensor& lr, const NesterovArgs& args) {
  const char* op = "nesterov_step";
  require_update(*this, w, v, g, args.decayed, op);
  require_learning_rate(*this, lr, op);
  do_nesterov_step(w.data(), v.data(), g.data(), w.size(), lr.data(), args);
}

void Backend::sgd_step(Tensor& w, Tensor& buf, const Tensor& g, const Tensor& lr, const Tensor& step,
                       const SgdArgs& args) {
  const char* op = "sgd_step";
  require_on(*this, w, op, "w");
  require_on(*this, g, op, "g");
  require_same_size(w, g, op, "w", "g");
  CUDL_REQUIRE(args.decayed >= 0 && args.decayed <= w.size(), std::string(op) + ": decayed count " +
                                                                  std::to_string(args.decayed) + " outside [0, " +
                                                                  std::to_string(w.size()) + "]");
  require_learning_rate(*this, lr, op);
  require_counter(*this, step, op);
  float* b = optional_state(*this, w, buf, args.momentum != 0.0f, op, "buf", "momentum ≠ 0");
  do_sgd_step(w.data(), b, g.data(), w.size(), lr.data(), counter_bits(step), args);
}

void Backend::adam_step(Tensor& w, Tensor& m, Tensor& v, Tensor& vmax, const Tensor& g, const Tensor& lr,
                        const Tensor& step, const AdamArgs& args) {
  const char* op = "adam_step";
  require_update(*this, w, m, g, args.decayed, op, "m");
  require_on(*this, v, op, "v");
  require_same_size(w, v, op, "w", "v");
  require_learning_rate(*this, lr, op);
  require_counter(*this, step, op);
  float* vm = optional_state(*this, w, vmax, args.amsgrad, op, "vmax", "amsgrad");
  do_adam_step(w.data(), m.data(), v.data(), vm, g.data(), w.size(), lr.data(), counter_bits(step), args);
}

}  // namespace cudl

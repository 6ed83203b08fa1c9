#pragma once
/// @file
/// Backend: every numeric primitive of cudl, once. CpuBackend (Eigen and our AVX2 GEMM) and
/// CudaBackend (cuBLAS, cuDNN, our kernels) implement the protected do_* members; the public
/// members check shapes and devices once, here, and then dispatch. Layers, the loss and the
/// optimizer are written against this interface only.
///
/// Dimension letters: N batch rows, D input features, H output features, K classes,
/// P parameters. All tensors are row-major. No primitive synchronises with the host except
/// the explicit transfers (Tensor::to_vector and friends) and synchronize(): a whole training
/// step can be queued on a GPU stream and captured as a CUDA graph.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "cudl/backend_args.hpp"
#include "cudl/precision.hpp"
#include "cudl/tensor.hpp"

namespace cudl {

/// Whether gemm uses an operand as stored (kNo) or transposed (kYes).
enum class Trans { kNo, kYes };
/// The elementwise function of a layer's output: identity, max(0, x) or 1 / (1 + e^−x).
enum class Activation { kIdentity, kRelu, kSigmoid };
/// "identity", "relu" or "sigmoid".
const char* to_string(Activation act);

/// Stochastic units, sampled from their means (RBMs). Element i uses Philox draw
/// bits(seed, kStreamUnits, counter + i), so CPU and GPU draw the same samples.
enum class Units {
  kBernoulli,  ///< state = 1 if uniform ≤ mean else 0 (mean is a probability)
  kGaussian,   ///< state = mean + N(0, 1)
  kNoisyRelu,  ///< gdbn's noisy rectified unit: mean = max(0, x); state = max(0, mean + sqrt(σ(mean))·N(0, 1))
};
/// "bernoulli", "gaussian" or "noisy-relu".
const char* to_string(Units units);

// ---- convolution and pooling (NCHW) ----
// Dimension letters: N batch, C input channels, H×W input size, K output channels (filters),
// R×S filter size, P×Q output size.

/// Output size along one axis of a convolution or pooling window (floor mode, as cuDNN and
/// PyTorch compute it): (in + 2·pad − dilation·(kernel − 1) − 1) / stride + 1; ≤ 0 when the
/// window does not fit.
int64_t window_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad, int64_t dilation);

/// Strides, padding and dilation of a 2-D cross-correlation (what cuDNN and PyTorch call
/// convolution): x (N×C×H×W) ⋆ w (K×C×R×S) gives y (N×K×P×Q), with
/// P = window_output_size(H, R, stride_h, pad_h, dilation_h), Q likewise.
struct Conv2dParams {
  /// Step of the window, in input cells.
  ///@{
  int64_t stride_h = 1, stride_w = 1;
  ///@}
  /// Zero padding on both sides.
  ///@{
  int64_t pad_h = 0, pad_w = 0;
  ///@}
  /// Spacing of the filter's taps (1: adjacent).
  ///@{
  int64_t dilation_h = 1, dilation_w = 1;
  ///@}
};

/// A convolution with every size resolved (the Backend's public members fill it in from the
/// tensors, after checking them).
struct Conv2dShape {
  /// Input: N, C, H, W.
  ///@{
  int64_t n = 0, c = 0, h = 0, w = 0;
  ///@}
  /// Filters: K, R, S (each of C channels).
  ///@{
  int64_t k = 0, r = 0, s = 0;
  ///@}
  /// Output: P, Q.
  ///@{
  int64_t p = 0, q = 0;
  ///@}
  Conv2dParams params;                 ///< strides, padding, dilation
};

/// What a pooling window computes.
enum class PoolMode {
  kMax,      ///< the largest input in the window (padding cells never win)
  kAverage,  ///< the window's sum / (window_h · window_w): padding cells count as zeros, as in
             ///< PyTorch's default count_include_pad=True
};
/// "max" or "average".
const char* to_string(PoolMode mode);

/// A 2-D pooling window (NCHW): y (N×C×P×Q) from x (N×C×H×W), P and Q from window_output_size
/// with dilation 1.
struct Pool2dParams {
  PoolMode mode = PoolMode::kMax;      ///< max or average
  /// Window size.
  ///@{
  int64_t window_h = 2, window_w = 2;
  ///@}
  /// Step of the window.
  ///@{
  int64_t stride_h = 2, stride_w = 2;
  ///@}
  /// Padding on both sides: at most half the window, as in PyTorch.
  ///@{
  int64_t pad_h = 0, pad_w = 0;
  ///@}
};

/// A pooling with every size resolved (filled in by Backend's public members).
struct Pool2dShape {
  /// Input: N, C, H, W.
  ///@{
  int64_t n = 0, c = 0, h = 0, w = 0;
  ///@}
  /// Output: P, Q.
  ///@{
  int64_t p = 0, q = 0;
  ///@}
  Pool2dParams params;                 ///< the window
};

/// Arguments of batch normalisation over every dimension of x (N×C×...) but the channel,
/// dimension 1: each channel's statistics are taken over its M = N·(positions) values.
struct BatchNormArgs {
  float epsilon = 1e-5f;   ///< added to the variance
  float momentum = 0.1f;   ///< running ← (1 − momentum)·running + momentum·batch (PyTorch's convention)
};

class Backend;
struct FusedMlpArgs;  // fused_mlp.hpp

/// A 64-bit counter in a backend's memory: a tensor of shape [2] holding the bits of one uint64.
/// Arguments that change from step to step (the first minibatch draw, the step number) are read
/// from counters by the primitives' counter overloads, so that one captured step (a CUDA graph)
/// can be replayed step after step while the counters advance on the device.
Tensor make_counter(Backend& backend, uint64_t value = 0);
/// The counter's value (waits for the backend's queued work). Throws Error when `counter` is
/// not of shape [2].
uint64_t read_counter(const Tensor& counter);

/// Work recorded once and replayed (a CUDA graph on the GPU): see Backend::begin_capture.
class Captured {
 public:
  virtual ~Captured() = default;
  /// Queues the recorded primitives again, with the tensors and arguments they were recorded with
  /// (counters are read when the work runs).
  virtual void replay() = 0;
};

/// Every numeric primitive of cudl on one device: memory, transfers, and the checked
/// primitives that layers, losses and optimizers are written against.
///
/// The public primitives check their arguments before any work is queued and throw Error naming
/// the primitive and the tensor when one is empty, lives on another backend instance (move it
/// with Tensor::to()), or has the wrong rank or shape; arguments out of range (a dropout
/// probability outside [0, 1), a decayed count outside [0, P]) are refused the same way. Work is
/// queued in call order: CpuBackend runs each call before returning; CudaBackend queues it on its
/// stream and returns at once, so only explicit transfers and synchronize() wait for it, and an
/// error in queued GPU work may be reported (as Error) by a later call. Not thread-safe: use one
/// backend, and the tensors on it, from one thread at a time.
class Backend {
 public:
  virtual ~Backend() = default;
  Backend() = default;
  Backend(const Backend&) = delete;
  Backend& operator=(const Backend&) = delete;

  /// Where this backend's memory and work are: Device::kCpu or Device::kCuda.
  virtual Device device() const = 0;
  /// One line for reports, e.g. "cpu: AMD EPYC (2 threads)".
  virtual std::string describe() const = 0;
  /// The arithmetic this backend's products run in (kFp32 unless constructed otherwise).
  virtual Precision precision() const { return Precision::kFp32; }

  // ---- memory (bytes; pointers are in this backend's memory space) ----
  /// `bytes` of this backend's memory (device memory on the GPU), uninitialised. Throws Error
  /// when the allocation fails.
  virtual void* allocate(std::size_t bytes) = 0;
  /// Frees memory from allocate(); null is ignored.
  virtual void deallocate(void* ptr) noexcept = 0;
  /// Copies `bytes` from this backend's memory to host memory, after the work queued before it.
  virtual void copy_to_host(const void* src, void* host_dst, std::size_t bytes) = 0;
  /// Copies `bytes` from host memory into this backend's memory, in queue order.
  virtual void copy_from_host(const void* host_src, void* dst, std::size_t bytes) = 0;
  /// Copies `bytes` within this backend's memory, queued like a primitive.
  virtual void copy(const void* src, void* dst, std::size_t bytes) = 0;
  /// Blocks until all queued work has run (nothing to wait for on the CPU).
  virtual void synchronize() = 0;

  // ---- uploads that overlap the computation (the streamed data path of fit) ----
  /// A backend's two queues. kCompute is where every primitive and copy above runs in the order
  /// it was called; kCopy is for host-to-device uploads that run while the computation goes on.
  /// An Event marks a point in one queue; the other queue, or the host, can wait for it. On a
  /// backend whose work runs as it is called (CpuBackend), uploads are plain copies and every
  /// wait returns at once. None of these may be called while capturing.
  enum class Queue {
    kCompute,  ///< the primitives, in call order
    kCopy      ///< host-to-device uploads (upload_async)
  };
  /// A point in one of the queues (record), which a queue or the host can wait for. CudaBackend:
  /// a CUDA event; CpuBackend: nothing to wait for.
  class Event {
   public:
    virtual ~Event() = default;
  };
  /// A new event, not yet recorded (waiting for it returns at once).
  virtual std::unique_ptr<Event> create_event();
  /// Marks what `queue` holds now: the event is passed once all of it has run.
  virtual void record(Event& event, Queue queue);
  /// Work queued on `queue` after this call starts only once `event` (as last recorded) is passed.
  virtual void wait(Queue queue, const Event& event);
  /// Blocks the calling thread until `event` (as last recorded) is passed.
  virtual void host_wait(const Event& event);

  // ---- timing the compute queue (Network::set_layer_timing, profiles) ----
  /// A point in the compute queue whose time can be read once it is passed. CudaBackend: a CUDA
  /// event made for timing, so a GPU's time is measured, whatever the host does meanwhile; the
  /// default (CpuBackend): the host's clock at mark(), since such a backend has run everything
  /// queued before mark() returns.
  class TimeMark {
   public:
    virtual ~TimeMark() = default;
  };
  /// A new mark, not yet set.
  virtual std::unique_ptr<TimeMark> create_time_mark();
  /// Sets `m` to what the compute queue holds now. Throws Error while capturing.
  virtual void mark(TimeMark& m);
  /// Milliseconds of the compute queue from `from` to `to`, both set by mark() (`from` first);
  /// waits until both are passed. Throws Error when either was never set.
  virtual double elapsed_ms(const TimeMark& from, const TimeMark& to);
  /// Whether uploads run concurrently with the computation (CudaBackend: yes; CpuBackend: no).
  virtual bool async_uploads() const { return false; }
  /// Host memory that uploads read at full speed (CudaBackend: page-locked); nullptr for 0 bytes.
  /// Throws Error when none is left. Freed with deallocate_host.
  virtual void* allocate_host(std::size_t bytes);
  /// Frees memory from allocate_host; null is ignored.
  virtual void deallocate_host(void* ptr) noexcept;
  /// Queues a copy of `bytes` from host memory to `dst` on kCopy. The host memory (best from
  /// allocate_host) must stay unchanged until an event recorded on kCopy after this call is passed.
  virtual void upload_async(const void* host_src, void* dst, std::size_t bytes);
  /// Host memory of at least `bytes`, owned by this backend and reused, for moving a tensor
  /// through the host and back within one call (MpiCommunicator stages GPU tensors in it): a call
  /// may grow it and return another pointer, which ends the use of the earlier one; nullptr for 0
  /// bytes. Throws Error when none is left. CudaBackend: page-locked (as allocate_host), so copies
  /// to and from the device run at full speed; this default: plain host memory. Freed with the
  /// backend.
  virtual void* host_staging(std::size_t bytes);

  // ---- primitives (checked here, implemented by do_*) ----
  /// x ← value everywhere.
  void fill(Tensor& x, float value);
  /// x(i) ← mean + stddev · normal(seed, i): counter-based, identical on every backend.
  void fill_normal(Tensor& x, uint64_t seed, float mean, float stddev);
  /// C(M×N) ← alpha · op(A) · op(B) + beta · C, with op(A) M×K and op(B) K×N (2-D tensors).
  void gemm(float alpha, const Tensor& a, Trans ta, const Tensor& b, Trans tb, float beta, Tensor& c);
  /// C(M×N) ← (alpha · op(A) · op(B)) ⊙ act'(·), where y (M×N) = act(z) is a forward output: gemm
  /// with beta 0, then activation_backward(c, y, act), in one call so that a backend can leave out
  /// the columns the derivative zeroes for every row (ReLU units silent for the whole batch: Dense's
  /// input gradient when the layer below is a ReLU). The CPU computes only the other columns, with
  /// the same bits as the two calls; a backend without its own form runs the two calls.
  void gemm_activation_backward(float alpha, const Tensor& a, Trans ta, const Tensor& b, Trans tb, Tensor& c,
                                const Tensor& y, Activation act);
  /// C(M×N) ← act(alpha · op(A) · op(B) + bias(N)), the bias added to every row: gemm with beta 0,
  /// then bias_activation(c, bias, act), in one call so that a backend can do both in the
  /// product's epilogue (CudaBackend: a cuBLASLt epilogue for the identity and ReLU in kFp32 and
  /// kTf32). Dense's forward pass. A backend without its own form runs the two calls, with their bits.
  void gemm_bias_activation(float alpha, const Tensor& a, Trans ta, const Tensor& b, Trans tb, const Tensor& bias,
                            Activation act, Tensor& c);
  /// C(M×N) ← alpha · op(A) · B + beta · C (B K×N, not transposed) and sums(N) ← sum_alpha ·
  /// Σ_k B(k, :) + sum_beta · sums: gemm, then sum_rows(sum_alpha, b, sum_beta, sums), in one call
  /// so that a backend can add B's rows while it streams them through the product. A layer's weight
  /// and bias gradients (gW = xᵀ·dz, gb = Σ_n dz); an RBM's. Where a_sums is given (then ta must be
  /// Trans::kYes: A is K×M), also a_sums(M) ← sum_alpha · Σ_k A(k, :) + sum_beta · a_sums,
  /// sum_rows of A (an RBM's visible-bias gradient). A backend without its own form runs the
  /// calls, with their bits.
  void gemm_sum_rows(float alpha, const Tensor& a, Trans ta, const Tensor& b, float beta, Tensor& c, float sum_alpha,
                     float sum_beta, Tensor& sums, Tensor* a_sums = nullptr);
  /// y(N×H) ← act(y + bias(H)) row by row.
  void bias_activation(Tensor& y, const Tensor& bias, Activation act);
  /// y(N×H) ← act(y) elementwise.
  void activation(Tensor& y, Activation act);
  /// dy(N×H) ← dy ⊙ act'(·), where y = act(z) is the forward output (ReLU: y > 0; sigmoid: y(1−y)).
  void activation_backward(Tensor& dy, const Tensor& y, Activation act);
  /// out(H) ← alpha · Σ_n x(n, :) + beta · out.
  void sum_rows(float alpha, const Tensor& x, float beta, Tensor& out);
  /// Σ_i (a_i − b_i)² over the elements of a and b (the same number), summed in double on the
  /// backend in a fixed order (the same bits at every call and thread count) and read back: it
  /// waits for the queued work, so not while capturing. What a monitor needs (an RBM's
  /// reconstruction error) without copying the tensors to the host.
  double squared_distance(const Tensor& a, const Tensor& b);
  /// Softmax cross-entropy of logits(N×K) against labels(N, class indices stored as floats).
  /// Writes dlogits(N×K) = grad_scale·(softmax − onehot) (may alias logits) and adds the batch's
  /// summed loss and error count to stats (LossStats layout); records divergence there.
  void softmax_cross_entropy(const Tensor& logits, const Tensor& labels, const CrossEntropyArgs& args,
                             Tensor& dlogits, Tensor& stats);
  /// out(N) ← argmax of each row of x(N×K), as a float class index (first maximum on ties).
  void argmax_rows(const Tensor& x, Tensor& out);
  /// Draws bx.rows() rows of (x, y) uniformly with replacement: row b of the batch is
  /// row rng::below(bits(seed, stream 0, first_draw + b)[0], x.rows()) of the data.
  /// x(R×D), bx(B×D); y(R) and by(B) (class indices), or y(R×T) and by(B×T) (target rows).
  void sample_rows(const Tensor& x, const Tensor& y, uint64_t seed, uint64_t first_draw, Tensor& bx, Tensor& by);
  /// Fused activation and sampling (RBM up/down passes): y(N×H) ← act(y + bias) — the units'
  /// means — and states(N×H) ← a sample of `units` with those means, in one pass; the draws are
  /// those of sample_units(y, units, seed, counter, states).
  void bias_activation_sample(Tensor& y, const Tensor& bias, Activation act, Units units, uint64_t seed,
                              uint64_t counter, Tensor& states);
  /// bias_activation_sample with the first draw read from a counter tensor (make_counter) when
  /// the work runs, plus `offset` (modulo 2^64), so that a captured RBM step draws fresh samples at
  /// each replay while the counter advances on the device.
  void bias_activation_sample(Tensor& y, const Tensor& bias, Activation act, Units units, uint64_t seed,
                              const Tensor& counter, uint64_t offset, Tensor& states);
  /// out ← a sample of `units` with the given means (same number of elements; may alias means).
  void sample_units(const Tensor& means, Units units, uint64_t seed, uint64_t counter, Tensor& out);
  /// gdbn's RBM update (its CDStep): momentum that averages the gradient, and weight decay applied
  /// to the weights directly, with f = 1 − momentum:
  ///
  ///     v ← momentum·v − f·lr·grad_scale·g;  w ← w·(1 − f·lr·l2) + v   on the first `decayed` elements,
  ///     the same without the decay on the rest.
  ///
  /// w, v and g hold P elements each; lr is a one-float tensor read when the work runs.
  void momentum_step(Tensor& w, Tensor& v, const Tensor& g, const Tensor& lr, const MomentumArgs& args);
  /// y ← y + alpha·x (same number of elements).
  void axpy(float alpha, const Tensor& x, Tensor& y);
  // The optimizers' updates (NesterovArgs, SgdArgs, AdamArgs): w, g and each state tensor of P
  // elements, lr a one-float tensor read when the work runs, step a counter (make_counter).
  /// gdbn's Nesterov step (formula: NesterovArgs): w, v (the velocity) and g of P elements, lr a
  /// one-float tensor read when the work runs.
  void nesterov_step(Tensor& w, Tensor& v, const Tensor& g, const Tensor& lr, const NesterovArgs& args);
  /// PyTorch's SGD step (formula: SgdArgs): w, g and buf (the momentum buffer; ignored, and may be
  /// empty, when momentum = 0) of P elements, lr a one-float tensor read when the work runs, step
  /// a counter (make_counter) that is 0 on the first step.
  void sgd_step(Tensor& w, Tensor& buf, const Tensor& g, const Tensor& lr, const Tensor& step, const SgdArgs& args);
  /// PyTorch's Adam or AdamW step (formula: AdamArgs): w, g, the moments m and v and their
  /// running maximum vmax (ignored, and may be empty, unless amsgrad) of P elements, lr a one-float
  /// tensor read when the work runs, step a counter (make_counter) holding t ≥ 1 (this step's
  /// number).
  void adam_step(Tensor& w, Tensor& m, Tensor& v, Tensor& vmax, const Tensor& g, const Tensor& lr, const Tensor& step,
                 const AdamArgs& args);

  // ---- convolution, pooling, dropout (NCHW; see Conv2dParams for the letters) ----
  /// y(N×K×P×Q) ← x(N×C×H×W) ⋆ w(K×C×R×S).
  void conv2d_forward(const Tensor& x, const Tensor& w, const Conv2dParams& params, Tensor& y);
  /// dx(N×C×H×W) ← ∂L/∂x given dy = ∂L/∂y (overwrites dx).
  void conv2d_backward_data(const Tensor& dy, const Tensor& w, const Conv2dParams& params, Tensor& dx);
  /// dw(K×C×R×S) ← ∂L/∂w given x and dy (overwrites dw).
  void conv2d_backward_filter(const Tensor& x, const Tensor& dy, const Conv2dParams& params, Tensor& dw);
  /// y(N×C×...) ← act(y + bias(C)), the bias broadcast over every position of channel c.
  void channel_bias_activation(Tensor& y, const Tensor& bias, Activation act);
  /// out(C) ← alpha · Σ over n and positions of x(N×C×...) + beta · out (the bias gradient).
  void sum_channels(float alpha, const Tensor& x, float beta, Tensor& out);
  /// y(N×C×P×Q) ← max or average of each window of x(N×C×H×W).
  void pool2d_forward(const Tensor& x, const Pool2dParams& params, Tensor& y);
  /// dx(N×C×H×W) ← ∂L/∂x given the forward's x and y and dy = ∂L/∂y (overwrites dx). Max pooling
  /// routes each window's gradient to its first maximum in row-major order.
  void pool2d_backward(const Tensor& x, const Tensor& y, const Tensor& dy, const Pool2dParams& params,
                       Tensor& dx);
  /// Inverted dropout: y(i) ← x(i) / (1 − drop) if element i is kept, else 0. Element i is kept
  /// when rng::uniform(bits(seed, kStreamDropout, counter + i)[0]) > drop, so the same call on dy
  /// (same seed and counter) is the backward pass. y may alias x. Throws Error unless 0 ≤ drop < 1.
  void dropout(const Tensor& x, float drop, uint64_t seed, uint64_t counter, Tensor& y);
  /// dropout with the counter read from a counter tensor (make_counter) when the work runs, plus
  /// `offset` (modulo 2^64: an offset of 0 − n reads the value n draws back), so that a captured
  /// step draws fresh masks at each replay while the counter advances on the device.
  void dropout(const Tensor& x, float drop, uint64_t seed, const Tensor& counter, uint64_t offset, Tensor& y);
  /// Training-mode batch normalisation of x (N×C×...): per channel, the batch mean μ and biased
  /// variance σ², s = 1/sqrt(σ² + ε), y ← γ·(x − μ)·s + β; saved (2×C) ← rows μ and s for the
  /// backward pass; running_mean and running_var (C) move towards μ and the unbiased variance.
  void batch_norm_train(const Tensor& x, const Tensor& gamma, const Tensor& beta, const BatchNormArgs& args,
                        Tensor& running_mean, Tensor& running_var, Tensor& saved, Tensor& y);
  /// Inference-mode batch normalisation: y ← γ·(x − running_mean)/sqrt(running_var + ε) + β.
  void batch_norm_infer(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                        const Tensor& running_var, float epsilon, Tensor& y);
  /// The gradients of batch_norm_train, from its x and saved statistics and dy: with
  /// x̂ = (x − μ)·s, dbeta ← Σ dy, dgamma ← Σ dy·x̂ (per channel, overwritten) and
  /// dx ← γ·s/M·(M·dy − dbeta − x̂·dgamma). dx may alias dy.
  void batch_norm_backward(const Tensor& x, const Tensor& dy, const Tensor& gamma, const Tensor& saved, Tensor& dx,
                           Tensor& dgamma, Tensor& dbeta);

  // ---- counters and capture (see make_counter) ----
  /// counter ← value (a host transfer: not while capturing).
  void set_counter(Tensor& counter, uint64_t value);
  /// counter ← counter + delta, queued like any primitive.
  void add_to_counter(Tensor& counter, uint64_t delta);
  /// sample_rows with the first draw read from a counter when the work runs.
  void sample_rows(const Tensor& x, const Tensor& y, uint64_t seed, const Tensor& first_draw, Tensor& bx, Tensor& by);
  /// lr (1 value) ← CosineSchedule's rate for step t, t the counter's value when the work runs.
  void cosine_learning_rate(const CosineArgs& args, const Tensor& step, Tensor& lr);
  /// Shuffled epochs without replacement: with the R rows of x (R × F) and y (R, or R × T), and t
  /// the counter's value when the work runs, row b of the batch (bx: B × F; by: B, or B × T) is row
  /// rng::permuted(seed, e, p + b, R) where e = t / R and p = t mod R (p + B ≤ R is required; the
  /// caller advances the counter by B per step and to the next multiple of R per epoch). So one
  /// captured step serves every epoch, each with its own permutation.
  void shuffled_rows(const Tensor& x, const Tensor& y, uint64_t seed, const Tensor& position, Tensor& bx, Tensor& by);
  /// softmax_cross_entropy with the step number (args.step) read from a counter when the work runs.
  void softmax_cross_entropy(const Tensor& logits, const Tensor& labels, const CrossEntropyArgs& args,
                             const Tensor& step, Tensor& dlogits, Tensor& stats);
  /// Mean squared error of a prediction (N × D) against targets of the same shape: loss
  /// Σ_d (p − t)² / D per sample; dpred = grad_scale·2(p − t)/D; no errors counted.
  ///
  /// The elementwise losses (this and binary_cross_entropy_with_logits) are each fused with their
  /// gradient (dpred may alias pred) and the batch's statistics: stats += Σ per-sample losses,
  /// each sample's loss being the mean over its D elements, so that loss_sum / N is PyTorch's
  /// reduction='mean' over all N·D elements; divergence (the batch's mean per-sample loss not
  /// finite or above args.max_loss) is recorded with the step counter's value when the work runs.
  /// Targets are checked for shape only: a NaN target makes the loss NaN, which the divergence
  /// check reports.
  void mean_squared_error(const Tensor& pred, const Tensor& target, const ElementwiseLossArgs& args,
                          const Tensor& step, Tensor& dpred, Tensor& stats);
  /// Binary cross-entropy of logits x against targets t in [0, 1] (multi-label): loss
  /// Σ_d (max(x, 0) − x·t + log1p(exp(−|x|))) / D per sample (PyTorch's BCEWithLogitsLoss);
  /// dlogits = grad_scale·(σ(x) − t)/D; errors += (elements where (x > 0) ≠ (t > 0.5)) / D, so a
  /// sample adds the fraction of its labels it gets wrong. Shapes, statistics and divergence as
  /// for mean_squared_error.
  void binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& targets, const ElementwiseLossArgs& args,
                                        const Tensor& step, Tensor& dlogits, Tensor& stats);
  /// Whether begin_capture works here (CudaBackend: yes; CpuBackend: no).
  virtual bool can_capture() const { return false; }
  /// Between begin_capture() and end_capture() the primitives are recorded, not run: no host
  /// transfer, synchronisation or allocation is allowed (allocate every tensor first), and every
  /// argument is frozen except what counters hold. end_capture() returns the recorded work.
  /// Throws Error on a backend that cannot capture (CpuBackend).
  virtual void begin_capture();
  /// Ends the recording begun by begin_capture() and returns it, ready to replay. Throws Error on
  /// a backend that cannot capture.
  virtual std::unique_ptr<Captured> end_capture();
  /// Why fused_mlp_steps cannot run `args` here (fused_mlp.hpp), or empty when it can. This
  /// default: the backend has no fused training step (CpuBackend).
  virtual std::string fused_mlp_refusal(const FusedMlpArgs& args);
  /// Queues args.steps steps of an MLP's training as one piece of work (fused_mlp.hpp says what
  /// they compute). Throws Error naming the reason where fused_mlp_refusal gives one.
  virtual void fused_mlp_steps(const FusedMlpArgs& args);

 protected:
#define CUDL_BACKEND_PRIMITIVE(name, params) virtual void name params = 0;
#include "cudl/backend_primitives.inc"
#undef CUDL_BACKEND_PRIMITIVE
  /// gemm_activation_backward's hook, arguments checked; c and y are m×n with row stride n. This
  /// default runs do_gemm (beta 0) and do_activation_backward; a backend overrides it to fuse them.
  virtual void do_gemm_activation_backward(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, float alpha,
                                           const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
                                           const float* y, Activation act);
  /// gemm_bias_activation's hook, arguments checked; c is m×n with row stride n, bias holds n
  /// floats. This default runs do_gemm (beta 0) and do_bias_activation; a backend overrides it to
  /// fuse them.
  virtual void do_gemm_bias_activation(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, float alpha,
                                       const float* a, int64_t lda, const float* b, int64_t ldb, const float* bias,
                                       Activation act, float* c);
  /// gemm_sum_rows' hook, arguments checked; B is k×n with row stride n, C m×n with row stride
  /// ldc, sums n floats, a_sums null or m floats (then ta is kYes and lda m). This default runs
  /// do_gemm and do_sum_rows (then do_sum_rows of A); a backend overrides it to fuse them.
  virtual void do_gemm_sum_rows(Trans ta, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                                const float* b, float beta, float* c, int64_t ldc, float sum_alpha, float sum_beta,
                                float* sums, float* a_sums);

 private:
  struct FreeHost {
    void operator()(void* p) const noexcept;
  };
  std::unique_ptr<void, FreeHost> staging_;  // host_staging's default buffer
  std::size_t staging_bytes_ = 0;
};

}  // namespace cudl

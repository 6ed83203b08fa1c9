// cuDNN graph-API convolutions: see cudnn_conv.hpp. Compiled by the host compiler (no kernels).
#include "cudnn_conv.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <utility>

#include "check.hpp"
#include "cudnn_graph.hpp"
#include "kernels.hpp"
#include "parse_number.hpp"

namespace cudl::cuda {
namespace {

// The execution plan takes the handle through an attribute that cuDNN 9.x marks deprecated in
// its newest releases (in favour of device-property descriptors, added in 9.8); it remains
// supported, and is what every 9.x release accepts.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
constexpr cudnnBackendAttributeName_t kPlanHandle = CUDNN_ATTR_EXECUTION_PLAN_HANDLE;
#pragma GCC diagnostic pop

bool verbose() {
  const char* v = std::getenv("CUDL_CUDNN_VERBOSE");
  return v != nullptr && std::strcmp(v, "0") != 0 && *v != '\0';
}

// Queues one execution of `plan` on the three tensors; returns cuDNN's status.
cudnnStatus_t execute(cudnnHandle_t handle, const Descriptor& plan, const void* x, const void* w, const void* y,
                      void* workspace) {
  const int64_t uids[3] = {kUidX, kUidW, kUidY};
  void* ptrs[3] = {const_cast<void*>(x), const_cast<void*>(w), const_cast<void*>(y)};
  Descriptor pack(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
  pack.set(CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, 3, uids)
      .set(CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, 3, ptrs)
      .set(CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &workspace);
  pack.finalize();
  return cudnnBackendExecute(handle, plan.get(), pack.get());
}

bool autotune_enabled() {
  const char* v = std::getenv("CUDL_CUDNN_AUTOTUNE");
  return v == nullptr || std::strcmp(v, "0") != 0;
}

// A whole number from the environment variable `name`: `fallback` when it is unset or empty, an
// Error naming the variable when it is not a number in [lo, hi].
int64_t env_whole(const char* name, int64_t fallback, int64_t lo, int64_t hi) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  const int64_t n = detail::parse_i64(v, name);
  CUDL_REQUIRE(n >= lo && n <= hi, std::string(name) + " must be from " + std::to_string(lo) + " to " +
                                       std::to_string(hi) + ", not " + v);
  return n;
}

// How many candidates a search makes plans of and times: CUDL_CUDNN_CANDIDATES, else 32 (and past
// the first 8, only within search_budget_ms). PyTorch's cudnn.benchmark times every configuration
// listed; the slow candidates are timed once (worth_more_runs).
size_t max_candidates() { return static_cast<size_t>(env_whole("CUDL_CUDNN_CANDIDATES", 32, 1, 1000)); }

// How long one search may go on making and timing candidates past the first kAlwaysTried, in
// milliseconds: CUDL_CUDNN_SEARCH_MS, else 1500 (0: no limit). Some engines compile their kernels
// when their plan is made (cuDNN's runtime-compilation note), which can take a large part of a
// second each; the limit keeps a network's first step to seconds per shape whatever cuDNN lists.
constexpr size_t kAlwaysTried = 8;  // cudl's search before it took the whole list
double search_budget_ms() { return static_cast<double>(env_whole("CUDL_CUDNN_SEARCH_MS", 1500, 0, 86400000)); }

// A stream-ordered device buffer for the planning step alone (freed in stream order).
class DeviceScratch {
 public:
  DeviceScratch() = default;
  DeviceScratch(cudaStream_t stream, size_t bytes) : stream_(stream) {
    CUDL_CUDA_CHECK(cudaMallocAsync(&p_, bytes, stream));
  }
  DeviceScratch(DeviceScratch&& o) noexcept : p_(std::exchange(o.p_, nullptr)), stream_(o.stream_) {}
  DeviceScratch& operator=(DeviceScratch&& o) noexcept {
    std::swap(p_, o.p_);
    std::swap(stream_, o.stream_);
    return *this;
  }
  ~DeviceScratch() {
    if (p_ != nullptr) cudaFreeAsync(p_, stream_);
  }
  void* get() const { return p_; }

 private:
  void* p_ = nullptr;
  cudaStream_t stream_ = nullptr;
};
constexpr int64_t kMaxWorkspace = int64_t{1} << 30;  // plans needing more than 1 GiB are skipped

}  // namespace

struct ConvPlans::Plan {
  // The operation graph and the engine configuration the plan was made from: cuDNN's plan refers
  // to them, so they live exactly as long as it (members are destroyed in reverse order).
  std::shared_ptr<const ConvGraph> graph;
  Descriptor config{CUDNN_BACKEND_ENGINECFG_DESCRIPTOR};
  Descriptor plan{CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR};
  EngineNotes engine;
  int64_t workspace = 0;
  int candidates = 0;
  std::string text;
};

ConvPlans::ConvPlans(cudnnHandle_t handle, cudaStream_t stream, Precision precision, ConvSearch search,
                     ConvDeterminism determinism, std::function<void*(std::size_t)> workspace)
    : handle_(handle),
      stream_(stream),
      precision_(precision),
      search_(search),
      determinism_(determinism),
      workspace_(std::move(workspace)) {}

ConvPlans::~ConvPlans() = default;

ConvPlans::Plan& ConvPlans::plan_for(ConvOp op, const Conv2dShape& s, const void* x, const void* w,
                                     const void* y) {
  const Conv2dParams& p = s.params;
  const cudnnDataType_t type = tensor_type(precision_);
  std::vector<int64_t> key{static_cast<int64_t>(op), static_cast<int64_t>(type), s.n, s.c, s.h, s.w, s.k, s.r, s.s,
                           p.stride_h, p.stride_w, p.pad_h, p.pad_w, p.dilation_h, p.dilation_w,
                           alignment(x), alignment(w), alignment(y)};
  auto found = plans_.find(key);
  if (found != plans_.end()) return *found->second;
  const auto began = std::chrono::steady_clock::now();  // the plan line says how long choosing took
  const double budget_ms = search_budget_ms();
  bool cut = false;  // the search stopped at its budget
  auto over_budget = [&] {
    return budget_ms > 0.0 &&
           std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - began).count() > budget_ms;
  };

  const std::string what = std::string(to_string(op)) + " " + shape_text(s) +
                           (precision_ == Precision::kFp32 ? "" : std::string(", ") + to_string(precision_));
  // Choosing a plan runs the candidates and waits for them, which a stream capture forbids: the
  // plan of every shape (and pointer alignment) a captured step uses is made in an eager step.
  CUDL_REQUIRE(!capturing(stream_), "cuDNN: no plan yet for the " + what +
                                        " while capturing: run the step once eagerly first, with the same shapes "
                                        "and buffers");
  std::shared_ptr<const ConvGraph> built;
  try {
    built = std::make_shared<const ConvGraph>(
        convolution_graph(op, s, type, alignment(x), alignment(w), alignment(y), handle_));
  } catch (const Error& e) {
    throw Error("cuDNN cannot build the operation graph of the " + what + ": " + e.what());
  }
  const Descriptor& graph = built->graph();
  const bool loud = verbose();

  // Candidates, as PyTorch's cudnn.benchmark takes them: every configuration of the heuristics'
  // list (mode A) and of cuDNN's fallback list, in that order, that the policy admits, each
  // configuration (engine and knob choices) once (admitted_configurations in conv_engines.hpp),
  // finalized into execution plans (a configuration may not support this shape after all:
  // skipped), up to max_candidates(). CUDL_CUDNN_VERBOSE=1 prints every configuration listed, in
  // the form of tests/data/cudnn_engines/ ("cudl: cuDNN <what>: mode A lists engine 17 [fft]").
  struct Listing {
    std::vector<Descriptor> configs;
    std::vector<EngineNotes> notes;
  };
  auto list = [&](std::initializer_list<cudnnBackendHeurMode_t> modes, bool print) {
    Listing out;
    for (cudnnBackendHeurMode_t heur : modes) {
      for (Descriptor& config : heuristic_configs(graph, heur)) {
        out.notes.push_back(engine_notes(config));
        out.configs.push_back(std::move(config));
        if (!print) continue;
        const char* why = rejection(out.notes.back(), EnginePolicy{precision_, determinism_, Transforms::kAllowed});
        std::fprintf(stderr, "cudl: cuDNN %s: %s lists %s%s%s\n", what.c_str(),
                     heur == CUDNN_HEUR_MODE_A ? "mode A" : "fallback", engine_text(out.notes.back()).c_str(),
                     why ? ": rejected, " : "", why ? why : "");
      }
    }
    return out;
  };
  std::map<std::string, int> rejected;  // reason -> configurations rejected for it
  // Plans of a listing's admitted configurations, at most `most`; rejections counted in `counted`.
  auto plans_of = [&](Listing& from, Transforms transforms, size_t most, std::map<std::string, int>* counted) {
    std::vector<std::unique_ptr<Plan>> made;
    const EnginePolicy policy{precision_, determinism_, transforms};
    for (size_t i : admitted_configurations(from.notes, policy, counted)) {
      if (made.size() >= most) break;
      if (counted != nullptr && made.size() >= kAlwaysTried && over_budget()) {
        cut = true;
        break;
      }
      auto candidate = std::make_unique<Plan>();
      candidate->graph = built;
      candidate->config = std::move(from.configs[i]);
      candidate->engine = from.notes[i];
      cudnnBackendDescriptor_t cfg = candidate->config.get();
      candidate->plan.set(kPlanHandle, CUDNN_TYPE_HANDLE, 1, &handle_)
          .set(CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &cfg);
      // A configuration that does not support this shape after all, or wants too much workspace,
      // is counted with the policy's rejections (the error below lists them) and named when loud.
      const cudnnStatus_t finalized = candidate->plan.try_finalize();
      if (finalized != CUDNN_STATUS_SUCCESS) {
        if (counted) ++(*counted)["its plan cannot be made"];
        if (loud)
          std::fprintf(stderr, "cudl: cuDNN %s: %s: no plan: %s\n", what.c_str(),
                       engine_text(candidate->engine).c_str(), cudnn_status_text(finalized).c_str());
        continue;
      }
      int64_t count = 0;
      CUDL_CUDNN_CHECK(cudnnBackendGetAttribute(candidate->plan.get(), CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE,
                                                CUDNN_TYPE_INT64, 1, &count, &candidate->workspace));
      if (candidate->workspace > kMaxWorkspace) {
        if (counted) ++(*counted)["workspace over 1 GiB"];
        continue;
      }
      made.push_back(std::move(candidate));
    }
    return made;
  };
  Listing listing = list({CUDNN_HEUR_MODE_A, CUDNN_HEUR_MODE_FALLBACK}, loud);
  std::vector<std::unique_ptr<Plan>> candidates = plans_of(listing, Transforms::kAllowed, max_candidates(), &rejected);
  const std::string turned_down = rejected_text(rejected);
  // "fp32", "bf16 deterministic", ...: the engines this backend may use, for its errors.
  const std::string kind = std::string(to_string(precision_)) +
                           (determinism_ == ConvDeterminism::kDeterministic ? " deterministic" : "");
  CUDL_REQUIRE(!candidates.empty(), "cuDNN has no " + kind + " engine for the " + what +
                                        " (rejected: " + (turned_down.empty() ? "none" : turned_down) + ")");

  const bool timed = candidates.size() > 1 && autotune_enabled();
  const bool precise = search_ == ConvSearch::kPrecise;
  // kPrecise: every candidate's output is compared with that of a reference engine (the first of
  // cuDNN's fallback list without FFT or Winograd notes that the policy admits); one further than
  // `tolerance` from it, normwise, is never chosen, whatever its notes say. Needs the output's
  // element count. In bf16
  // every output element is rounded to bf16 (8 significant bits): two engines whose fp32 sums
  // differ in their last bits round an element to neighbouring bf16 values where the sum lies near
  // a rounding boundary, one bf16 ulp apart, at most 2^-7 ≈ 7.8e-3 of the element. Even if every
  // element tipped that is within 1e-2 normwise, yet a missing filter tap (~20%) or a wrong index
  // is far outside it.
  const double tolerance = precision_ == Precision::kFp32 ? 1e-4 : precision_ == Precision::kTf32 ? 5e-3 : 1e-2;
  std::unique_ptr<Plan> reference;  // listed anew: the candidates hold the listing's configurations
  const void* out = op == ConvOp::kForward ? y : op == ConvOp::kBackwardData ? x : w;
  const int64_t out_count = op == ConvOp::kForward        ? s.n * s.k * s.p * s.q
                            : op == ConvOp::kBackwardData ? s.n * s.c * s.h * s.w
                                                          : s.k * s.c * s.r * s.s;
  const bool bf16 = type == CUDNN_DATA_BFLOAT16;
  const size_t out_bytes = (bf16 ? sizeof(__nv_bfloat16) : sizeof(float)) * static_cast<size_t>(out_count);
  DeviceScratch ref_out, sums;
  if (precise) {
    Listing fallback = list({CUDNN_HEUR_MODE_FALLBACK}, false);
    std::vector<std::unique_ptr<Plan>> refs = plans_of(fallback, Transforms::kRejected, 1, nullptr);
    if (refs.empty()) {
      Listing heuristics = list({CUDNN_HEUR_MODE_A}, false);
      refs = plans_of(heuristics, Transforms::kRejected, 1, nullptr);
    }
    CUDL_REQUIRE(!refs.empty(), "cuDNN has no " + kind + " engine without FFT or Winograd notes to check the " +
                                    what + " against (ConvSearch::kPrecise)");
    reference = std::move(refs.front());
    ref_out = DeviceScratch(stream_, out_bytes);
    sums = DeviceScratch(stream_, 2 * sizeof(double));
    CUDL_CUDNN_CHECK(execute(handle_, reference->plan, x, w, y,
                             workspace_(static_cast<std::size_t>(reference->workspace))));
    CUDL_CUDA_CHECK(cudaMemcpyAsync(ref_out.get(), out, out_bytes, cudaMemcpyDeviceToDevice, stream_));
  }
  // ‖candidate's output − reference's‖ / ‖reference's‖, after the candidate has just run.
  auto deviation = [&]() {
    CUDL_CUDA_CHECK(cudaMemsetAsync(sums.get(), 0, 2 * sizeof(double), stream_));
    if (bf16) {
      normwise_difference(stream_, static_cast<const __nv_bfloat16*>(out),
                          static_cast<const __nv_bfloat16*>(ref_out.get()), out_count,
                          static_cast<double*>(sums.get()));
    } else {
      normwise_difference(stream_, static_cast<const float*>(out), static_cast<const float*>(ref_out.get()), out_count,
                          static_cast<double*>(sums.get()));
    }
    double host[2] = {0.0, 0.0};
    CUDL_CUDA_CHECK(cudaMemcpyAsync(host, sums.get(), sizeof(host), cudaMemcpyDeviceToHost, stream_));
    CUDL_CUDA_CHECK(cudaStreamSynchronize(stream_));
    return host[1] > 0.0 ? std::sqrt(host[0] / host[1]) : std::sqrt(host[0]);
  };

  // Time each candidate on the real tensors (one warm-up run, then the best of three, or of one
  // when the first is over twice the fastest so far) where timing is on; otherwise take them in
  // the heuristics' order. Under kPrecise skip the ones that disagree with the reference.
  struct TimingEvent {  // destroyed on every path out, errors included
    cudaEvent_t event = nullptr;
    TimingEvent() { CUDL_CUDA_CHECK(cudaEventCreate(&event)); }
    ~TimingEvent() { cudaEventDestroy(event); }
    TimingEvent(const TimingEvent&) = delete;
    TimingEvent& operator=(const TimingEvent&) = delete;
  };
  const TimingEvent start_event, stop_event;
  cudaEvent_t start = start_event.event, stop = stop_event.event;
  size_t best = candidates.size();
  float best_ms = std::numeric_limits<float>::infinity();
  std::string off_text;  // the candidates kPrecise turned down, with their deviations
  size_t tried = 0;       // the candidates run (the budget may stop the search before the last)
  for (size_t i = 0; i < candidates.size(); ++i) {
    if (timed && i >= kAlwaysTried && over_budget()) {
      cut = true;
      break;
    }
    tried = i + 1;
    float ms = std::numeric_limits<float>::infinity();
    const int reps = timed ? 4 : 1;
    bool ran = true;
    for (int rep = 0; rep < reps; ++rep) {
      void* ws = nullptr;
      try {
        ws = workspace_(static_cast<std::size_t>(candidates[i]->workspace));
      } catch (const Error& e) {  // e.g. out of GPU memory for this engine's workspace: try the others
        if (loud) std::fprintf(stderr, "cudl: cuDNN %s: %s skipped: %s\n", what.c_str(),
                               engine_text(candidates[i]->engine).c_str(), e.what());
        ran = false;
        break;
      }
      CUDL_CUDA_CHECK(cudaEventRecord(start, stream_));
      const cudnnStatus_t status = execute(handle_, candidates[i]->plan, x, w, y, ws);
      CUDL_CUDA_CHECK(cudaEventRecord(stop, stream_));
      CUDL_CUDA_CHECK(cudaEventSynchronize(stop));
      if (status != CUDNN_STATUS_SUCCESS) {  // this engine cannot run here after all
        ran = false;
        break;
      }
      float elapsed = 0.0f;
      CUDL_CUDA_CHECK(cudaEventElapsedTime(&elapsed, start, stop));
      if (rep > 0 || reps == 1) ms = std::min(ms, elapsed);
      if (rep == 1 && !worth_more_runs(ms, best_ms)) break;  // far slower than the fastest: cannot win
    }
    if (!ran) continue;
    double dev = -1.0;
    if (precise) dev = deviation();
    const bool agrees = !precise || dev <= tolerance;
    if (loud) {
      std::fprintf(stderr, "cudl: cuDNN %s: %s, workspace %lld B: %.4f ms", what.c_str(),
                   engine_text(candidates[i]->engine).c_str(), static_cast<long long>(candidates[i]->workspace),
                   static_cast<double>(ms));
      if (precise)
        std::fprintf(stderr, ", %.3g from engine %lld%s", dev, static_cast<long long>(reference->engine.engine),
                     agrees ? "" : " (too far)");
      std::fprintf(stderr, "\n");
    }
    if (!agrees) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "engine %lld %.2g", static_cast<long long>(candidates[i]->engine.engine), dev);
      off_text += (off_text.empty() ? "" : ", ") + std::string(buf);
      continue;
    }
    if (best == candidates.size() || ms < best_ms) {
      best_ms = ms;
      best = i;
    }
    if (!timed) break;  // the heuristics' first (that agrees) is the choice
  }

  std::unique_ptr<Plan> chosen;
  std::string how;
  if (best < candidates.size()) {
    chosen = std::move(candidates[best]);
    how = timed ? "fastest of " + std::to_string(tried) : "heuristics' first of " + std::to_string(candidates.size());
  } else {
    CUDL_REQUIRE(precise, std::string("no cuDNN engine could execute the ") + what);
    chosen = std::move(reference);  // every candidate disagreed with it, or none ran
    how = "the reference: no candidate of " + std::to_string(tried) + " agreed";
  }
  if (precise) {
    char buf[48];
    std::snprintf(buf, sizeof buf, "%.0e", tolerance);
    how += std::string(", checked within ") + buf + " of engine " +
           std::to_string(reference ? reference->engine.engine : chosen->engine.engine);
    if (!off_text.empty()) how += "; too far: " + off_text;
  }
  char took[96];
  std::snprintf(took, sizeof took, ", chosen in %.0f ms%s",
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - began).count(),
                cut ? " (the search's budget, CUDL_CUDNN_SEARCH_MS, stopped it)" : "");
  how += took;
  chosen->candidates = static_cast<int>(candidates.size());
  chosen->text = plan_line(what, chosen->engine, how, chosen->workspace, rejected);
  if (loud) std::fprintf(stderr, "cudl: cuDNN chose %s\n", chosen->text.c_str());
  return *plans_.emplace(std::move(key), std::move(chosen)).first->second;
}

void ConvPlans::run(ConvOp op, const Conv2dShape& shape, const void* x, const void* w, const void* y) {
  Plan& plan = plan_for(op, shape, x, w, y);
  void* ws = workspace_(static_cast<std::size_t>(plan.workspace));
  const cudnnStatus_t status = execute(handle_, plan.plan, x, w, y, ws);
  if (status != CUDNN_STATUS_SUCCESS) {  // named with the operation, its shape and precision, and the engine
    fail_status("cudnnBackendExecute", __FILE__, __LINE__, cudnn_status_text(status) + " (" + plan.text + ")");
  }
}

std::vector<std::string> ConvPlans::describe() const {
  std::vector<std::string> lines;
  for (const auto& [key, plan] : plans_) lines.push_back(plan->text);
  return lines;
}

}  // namespace cudl::cuda

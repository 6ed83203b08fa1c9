// cuDNN graph-API convolutions: see cudnn_conv.hpp. Compiled by the host compiler (no kernels).
#include "cudnn_conv.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "check.hpp"
#include "cudnn_graph.hpp"

namespace cudl::cuda {
namespace {

// The execution plan takes the handle through an attribute that cuDNN 9.x marks deprecated in
// its newest releases (in favour of device-property descriptors, added in 9.8); it remains
// supported, and is what every 9.x release accepts.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
constexpr cudnnBackendAttributeName_t kPlanHandle = CUDNN_ATTR_EXECUTION_PLAN_HANDLE;
#pragma GCC diagnostic pop

// The numerical notes of a configuration's engine (CUDNN_NUMERICAL_NOTE_*).
std::vector<cudnnBackendNumericalNote_t> numerical_notes(const Descriptor& config) {
  Descriptor engine(CUDNN_BACKEND_ENGINE_DESCRIPTOR);
  int64_t count = 0;
  CUDL_CUDNN_CHECK(cudnnBackendGetAttribute(config.get(), CUDNN_ATTR_ENGINECFG_ENGINE,
                                            CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &count, engine.ptr()));
  cudnnBackendNumericalNote_t notes[CUDNN_NUMERICAL_NOTE_TYPE_COUNT];
  CUDL_CUDNN_CHECK(cudnnBackendGetAttribute(engine.get(), CUDNN_ATTR_ENGINE_NUMERICAL_NOTE, CUDNN_TYPE_NUMERICAL_NOTE,
                                            CUDNN_NUMERICAL_NOTE_TYPE_COUNT, &count, notes));
  return std::vector<cudnnBackendNumericalNote_t>(notes, notes + std::min<int64_t>(count, CUDNN_NUMERICAL_NOTE_TYPE_COUNT));
}

bool has(const std::vector<cudnnBackendNumericalNote_t>& notes, cudnnBackendNumericalNote_t wanted) {
  return std::find(notes.begin(), notes.end(), wanted) != notes.end();
}

const char* note_name(cudnnBackendNumericalNote_t note) {
  switch (note) {
    case CUDNN_NUMERICAL_NOTE_TENSOR_CORE: return "tensor-core";
    case CUDNN_NUMERICAL_NOTE_DOWN_CONVERT_INPUTS: return "down-convert-inputs";
    case CUDNN_NUMERICAL_NOTE_REDUCED_PRECISION_REDUCTION: return "reduced-precision-reduction";
    case CUDNN_NUMERICAL_NOTE_FFT: return "fft";
    case CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC: return "nondeterministic";
    case CUDNN_NUMERICAL_NOTE_WINOGRAD: return "winograd";
    case CUDNN_NUMERICAL_NOTE_WINOGRAD_TILE_4x4: return "winograd-4x4";
    case CUDNN_NUMERICAL_NOTE_WINOGRAD_TILE_6x6: return "winograd-6x6";
    case CUDNN_NUMERICAL_NOTE_WINOGRAD_TILE_13x13: return "winograd-13x13";
    case CUDNN_NUMERICAL_NOTE_STRICT_NAN_PROP: return "strict-nan-prop";
    default: return "note-?";
  }
}

// "[winograd, winograd-4x4]", or "[no numerical notes]".
std::string notes_text(const std::vector<cudnnBackendNumericalNote_t>& notes) {
  if (notes.empty()) return "[no numerical notes]";
  std::string text = "[";
  for (size_t i = 0; i < notes.size(); ++i) text += (i ? ", " : "") + std::string(note_name(notes[i]));
  return text + "]";
}

bool transforms(const std::vector<cudnnBackendNumericalNote_t>& notes) {
  return has(notes, CUDNN_NUMERICAL_NOTE_FFT) || has(notes, CUDNN_NUMERICAL_NOTE_WINOGRAD) ||
         has(notes, CUDNN_NUMERICAL_NOTE_WINOGRAD_TILE_4x4) || has(notes, CUDNN_NUMERICAL_NOTE_WINOGRAD_TILE_6x6) ||
         has(notes, CUDNN_NUMERICAL_NOTE_WINOGRAD_TILE_13x13);
}

// Why an engine is not allowed under this policy, or nullptr. Like PyTorch: inputs are never
// down-converted (e.g. fp32 to fp16) and reductions never run in reduced precision, in fp32 or in
// tf32; tensor cores (TF32 for float data) only in tf32; FFT and Winograd engines only when
// transforms are allowed.
const char* rejection(const std::vector<cudnnBackendNumericalNote_t>& notes, Precision precision,
                      bool allow_transforms) {
  if (has(notes, CUDNN_NUMERICAL_NOTE_DOWN_CONVERT_INPUTS)) return "down-convert-inputs";
  if (has(notes, CUDNN_NUMERICAL_NOTE_REDUCED_PRECISION_REDUCTION)) return "reduced-precision-reduction";
  if (precision == Precision::kFp32 && has(notes, CUDNN_NUMERICAL_NOTE_TENSOR_CORE)) return "tensor-core";
  if (!allow_transforms && transforms(notes)) return "fft/winograd";
  return nullptr;
}

bool verbose() {
  const char* v = std::getenv("CUDL_CUDNN_VERBOSE");
  return v != nullptr && std::strcmp(v, "0") != 0 && *v != '\0';
}

int64_t engine_index(const Descriptor& config) {
  Descriptor engine(CUDNN_BACKEND_ENGINE_DESCRIPTOR);
  int64_t count = 0, index = -1;
  CUDL_CUDNN_CHECK(cudnnBackendGetAttribute(config.get(), CUDNN_ATTR_ENGINECFG_ENGINE,
                                            CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &count, engine.ptr()));
  CUDL_CUDNN_CHECK(cudnnBackendGetAttribute(engine.get(), CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64, 1, &count,
                                            &index));
  return index;
}

// The engine configurations cuDNN's heuristics propose for `graph`, best first.
std::vector<Descriptor> heuristic_configs(const Descriptor& graph, cudnnBackendHeurMode_t mode) {
  Descriptor heur(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
  heur.set_descriptor(CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, graph)
      .set(CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode);
  if (heur.try_finalize() != CUDNN_STATUS_SUCCESS) return {};
  int64_t count = 0;
  CUDL_CUDNN_CHECK(cudnnBackendGetAttribute(heur.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR,
                                            0, &count, nullptr));
  std::vector<Descriptor> configs;
  std::vector<cudnnBackendDescriptor_t> raw;
  for (int64_t i = 0; i < count; ++i) {
    configs.emplace_back(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR);
    raw.push_back(configs.back().get());
  }
  int64_t returned = 0;
  if (count > 0) {
    CUDL_CUDNN_CHECK(cudnnBackendGetAttribute(heur.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                              CUDNN_TYPE_BACKEND_DESCRIPTOR, count, &returned, raw.data()));
  }
  while (static_cast<int64_t>(configs.size()) > std::min(returned, count)) configs.pop_back();
  return configs;
}

// Queues one execution of `plan` on the three tensors; returns cuDNN's status.
cudnnStatus_t execute(cudnnHandle_t handle, const Descriptor& plan, const float* x, const float* w, const float* y,
                      void* workspace) {
  const int64_t uids[3] = {kUidX, kUidW, kUidY};
  void* ptrs[3] = {const_cast<float*>(x), const_cast<float*>(w), const_cast<float*>(y)};
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

constexpr size_t kMaxCandidates = 8;
constexpr int64_t kMaxWorkspace = int64_t{1} << 30;  // plans needing more than 1 GiB are skipped

}  // namespace

struct ConvPlans::Plan {
  // The operation graph and the engine configuration the plan was made from: cuDNN's plan refers
  // to them, so they live exactly as long as it (members are destroyed in reverse order).
  std::shared_ptr<const ConvGraph> graph;
  Descriptor config{CUDNN_BACKEND_ENGINECFG_DESCRIPTOR};
  Descriptor plan{CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR};
  std::vector<cudnnBackendNumericalNote_t> notes;
  int64_t workspace = 0;
  int64_t engine = -1;
  int candidates = 0;
  std::string text;
};

ConvPlans::ConvPlans(cudnnHandle_t handle, cudaStream_t stream, Precision precision, ConvSearch search,
                     std::function<void*(std::size_t)> workspace)
    : handle_(handle),
      stream_(stream),
      precision_(precision),
      search_(search),
      workspace_(std::move(workspace)) {}

ConvPlans::~ConvPlans() = default;

ConvPlans::Plan& ConvPlans::plan_for(ConvOp op, const Conv2dShape& s, const float* x, const float* w,
                                     const float* y) {
  const Conv2dParams& p = s.params;
  std::vector<int64_t> key{static_cast<int64_t>(op), s.n, s.c, s.h, s.w, s.k, s.r, s.s, p.stride_h, p.stride_w,
                           p.pad_h, p.pad_w, p.dilation_h, p.dilation_w, alignment(x), alignment(w), alignment(y)};
  auto found = plans_.find(key);
  if (found != plans_.end()) return *found->second;

  const auto built = std::make_shared<const ConvGraph>(
      convolution_graph(op, s, alignment(x), alignment(w), alignment(y), handle_));
  const Descriptor& graph = built->graph();
  const bool loud = verbose();
  const std::string what = std::string(to_string(op)) + " " + shape_text(s);

  // Candidates: the heuristics' list, then the fallback list, filtered by precision, each
  // finalized into an execution plan (an engine may not support this shape: skipped).
  std::vector<std::unique_ptr<Plan>> candidates;
  std::map<std::string, int> rejected;  // reason -> engines rejected for it
  for (cudnnBackendHeurMode_t heur : {CUDNN_HEUR_MODE_A, CUDNN_HEUR_MODE_FALLBACK}) {
    for (Descriptor& config : heuristic_configs(graph, heur)) {
      if (candidates.size() >= kMaxCandidates) break;
      const int64_t index = engine_index(config);
      std::vector<cudnnBackendNumericalNote_t> notes = numerical_notes(config);
      if (const char* why = rejection(notes, precision_, search_ == ConvSearch::kFastest)) {
        ++rejected[why];
        if (loud) std::fprintf(stderr, "cudl: cuDNN %s: engine %lld %s rejected (%s)\n", what.c_str(),
                               static_cast<long long>(index), notes_text(notes).c_str(), why);
        continue;
      }
      bool duplicate = false;
      for (const auto& c : candidates) duplicate = duplicate || c->engine == index;
      if (duplicate) continue;
      auto candidate = std::make_unique<Plan>();
      candidate->graph = built;
      candidate->config = std::move(config);
      candidate->notes = std::move(notes);
      cudnnBackendDescriptor_t cfg = candidate->config.get();
      candidate->plan.set(kPlanHandle, CUDNN_TYPE_HANDLE, 1, &handle_)
          .set(CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &cfg);
      if (candidate->plan.try_finalize() != CUDNN_STATUS_SUCCESS) continue;
      int64_t count = 0;
      CUDL_CUDNN_CHECK(cudnnBackendGetAttribute(candidate->plan.get(), CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE,
                                                CUDNN_TYPE_INT64, 1, &count, &candidate->workspace));
      if (candidate->workspace > kMaxWorkspace) continue;
      candidate->engine = index;
      candidates.push_back(std::move(candidate));
    }
    if (!candidates.empty()) break;
  }
  std::string rejected_text;
  for (const auto& [why, n] : rejected)
    rejected_text += (rejected_text.empty() ? "" : ", ") + std::to_string(n) + " " + why;
  CUDL_REQUIRE(!candidates.empty(), std::string("cuDNN has no ") + to_string(precision_) + " engine for the " + what +
                                        " (rejected: " + (rejected_text.empty() ? "none" : rejected_text) + ")");

  size_t best = 0;
  const bool tuned = candidates.size() > 1 && search_ == ConvSearch::kFastest && autotune_enabled();
  if (tuned) {
    // Time each candidate on the real tensors: one warm-up run, then the best of three.
    cudaEvent_t start = nullptr, stop = nullptr;
    CUDL_CUDA_CHECK(cudaEventCreate(&start));
    CUDL_CUDA_CHECK(cudaEventCreate(&stop));
    float best_ms = std::numeric_limits<float>::infinity();
    for (size_t i = 0; i < candidates.size(); ++i) {
      float ms = std::numeric_limits<float>::infinity();
      for (int rep = 0; rep < 4; ++rep) {
        void* ws = workspace_(static_cast<std::size_t>(candidates[i]->workspace));
        CUDL_CUDA_CHECK(cudaEventRecord(start, stream_));
        const cudnnStatus_t status = execute(handle_, candidates[i]->plan, x, w, y, ws);
        CUDL_CUDA_CHECK(cudaEventRecord(stop, stream_));
        CUDL_CUDA_CHECK(cudaEventSynchronize(stop));
        if (status != CUDNN_STATUS_SUCCESS) break;  // this engine cannot run here after all
        float elapsed = 0.0f;
        CUDL_CUDA_CHECK(cudaEventElapsedTime(&elapsed, start, stop));
        if (rep > 0) ms = std::min(ms, elapsed);
      }
      if (loud) std::fprintf(stderr, "cudl: cuDNN %s: engine %lld %s workspace %lld B: %.4f ms\n", what.c_str(),
                             static_cast<long long>(candidates[i]->engine), notes_text(candidates[i]->notes).c_str(),
                             static_cast<long long>(candidates[i]->workspace), static_cast<double>(ms));
      if (ms < best_ms) {
        best_ms = ms;
        best = i;
      }
    }
    CUDL_CUDA_CHECK(cudaEventDestroy(start));
    CUDL_CUDA_CHECK(cudaEventDestroy(stop));
    CUDL_REQUIRE(best_ms < std::numeric_limits<float>::infinity(),
                 std::string("no cuDNN engine could execute the ") + what);
  }
  std::unique_ptr<Plan> chosen = std::move(candidates[best]);
  chosen->candidates = static_cast<int>(candidates.size());
  chosen->text = what + ": engine " + std::to_string(chosen->engine) + " " + notes_text(chosen->notes) +
                 (tuned ? " (fastest of " + std::to_string(candidates.size()) + ")"
                        : " (heuristics' first of " + std::to_string(candidates.size()) + ")") +
                 ", workspace " + std::to_string(chosen->workspace) + " B" +
                 (rejected_text.empty() ? "" : "; rejected " + rejected_text);
  if (loud) std::fprintf(stderr, "cudl: cuDNN chose %s\n", chosen->text.c_str());
  return *plans_.emplace(std::move(key), std::move(chosen)).first->second;
}

void ConvPlans::run(ConvOp op, const Conv2dShape& shape, const float* x, const float* w, const float* y) {
  Plan& plan = plan_for(op, shape, x, w, y);
  void* ws = workspace_(static_cast<std::size_t>(plan.workspace));
  CUDL_CUDNN_CHECK(execute(handle_, plan.plan, x, w, y, ws));
}

std::vector<std::string> ConvPlans::describe() const {
  std::vector<std::string> lines;
  for (const auto& [key, plan] : plans_) lines.push_back(plan->text);
  return lines;
}

}  // namespace cudl::cuda

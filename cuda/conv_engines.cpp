// cuDNN engines as data: see conv_engines.hpp. No cuDNN call here, only its enumerations (those
// added after cuDNN 9.0 named where the headers have them; any other prints as its number).
#include "conv_engines.hpp"

#include <algorithm>

namespace cudl::cuda {
namespace {

bool has(const EngineNotes& engine, cudnnBackendNumericalNote_t note) {
  return std::find(engine.numerical.begin(), engine.numerical.end(), note) != engine.numerical.end();
}

bool winograd(const EngineNotes& engine) {
  return has(engine, CUDNN_NUMERICAL_NOTE_WINOGRAD) || has(engine, CUDNN_NUMERICAL_NOTE_WINOGRAD_TILE_4x4) ||
         has(engine, CUDNN_NUMERICAL_NOTE_WINOGRAD_TILE_6x6) || has(engine, CUDNN_NUMERICAL_NOTE_WINOGRAD_TILE_13x13);
}

// "[a, b]", or `none` for an empty list.
template <typename Note>
std::string list_text(const std::vector<Note>& notes, const char* none) {
  if (notes.empty()) return none;
  std::string text = "[";
  for (size_t i = 0; i < notes.size(); ++i) text += (i ? ", " : "") + note_name(notes[i]);
  return text + "]";
}

}  // namespace

const char* rejection(const EngineNotes& engine, const EnginePolicy& policy) {
  const bool deterministic = policy.determinism == ConvDeterminism::kDeterministic;
  const bool transforms = policy.transforms == Transforms::kAllowed && !deterministic;
  if (has(engine, CUDNN_NUMERICAL_NOTE_DOWN_CONVERT_INPUTS)) return "down-convert-inputs";
  if (has(engine, CUDNN_NUMERICAL_NOTE_REDUCED_PRECISION_REDUCTION)) return "reduced-precision-reduction";
  if (policy.precision == Precision::kFp32 && has(engine, CUDNN_NUMERICAL_NOTE_TENSOR_CORE)) return "tensor-core";
  if (deterministic && has(engine, CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC)) return "nondeterministic";
  if (!transforms && has(engine, CUDNN_NUMERICAL_NOTE_FFT)) return "fft";
  if (!transforms && winograd(engine)) return "winograd";
  return nullptr;
}

bool same_configuration(const EngineNotes& a, const EngineNotes& b) {
  if (a.engine != b.engine) return false;
  return !(a.knobs_read && b.knobs_read) || a.knobs == b.knobs;
}

std::vector<size_t> admitted_configurations(const std::vector<EngineNotes>& listed, const EnginePolicy& policy,
                                            std::map<std::string, int>* rejected) {
  std::vector<size_t> kept;
  for (size_t i = 0; i < listed.size(); ++i) {
    bool repeat = false;
    for (size_t j = 0; j < i && !repeat; ++j) repeat = same_configuration(listed[j], listed[i]);
    if (repeat) continue;
    if (const char* why = rejection(listed[i], policy)) {
      if (rejected != nullptr) ++(*rejected)[why];
      continue;
    }
    kept.push_back(i);
  }
  return kept;
}

bool worth_more_runs(float ms, float best_ms) { return !(ms > 2.0f * best_ms); }

std::string note_name(cudnnBackendNumericalNote_t note) {
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
#if CUDNN_VERSION >= 90100
    case CUDNN_NUMERICAL_NOTE_STRICT_NAN_PROP: return "strict-nan-prop";
#endif
    default: return "note-" + std::to_string(static_cast<int>(note));
  }
}

std::string note_name(cudnnBackendBehaviorNote_t note) {
  switch (note) {
    case CUDNN_BEHAVIOR_NOTE_RUNTIME_COMPILATION: return "runtime-compilation";
    case CUDNN_BEHAVIOR_NOTE_REQUIRES_FILTER_INT8x32_REORDER: return "requires-filter-int8x32-reorder";
    case CUDNN_BEHAVIOR_NOTE_REQUIRES_BIAS_INT8x32_REORDER: return "requires-bias-int8x32-reorder";
#if CUDNN_VERSION >= 90500
    case CUDNN_BEHAVIOR_NOTE_SUPPORTS_CUDA_GRAPH_NATIVE_API: return "supports-cuda-graph-native-api";
#endif
#if CUDNN_VERSION >= 91500
    case CUDNN_BEHAVIOR_NOTE_CUBLASLT_DEPENDENCY: return "cublaslt-dependency";
#endif
    default: return "behaviour-" + std::to_string(static_cast<int>(note));
  }
}

std::string engine_text(const EngineNotes& engine) {
  std::string text =
      "engine " + std::to_string(engine.engine) + " " + list_text(engine.numerical, "[no numerical notes]");
  if (!engine.behaviour.empty()) text += " behaviour " + list_text(engine.behaviour, "");
  if (!engine.knobs.empty()) {
    text += " knobs [";
    for (size_t i = 0; i < engine.knobs.size(); ++i)
      text += (i ? ", " : "") + std::to_string(engine.knobs[i].first) + "=" + std::to_string(engine.knobs[i].second);
    text += "]";
  }
  return text;
}

std::string rejected_text(const std::map<std::string, int>& rejected) {
  std::string text;
  for (const auto& [why, n] : rejected) text += (text.empty() ? "" : ", ") + std::to_string(n) + " " + why;
  return text;
}

std::string plan_line(const std::string& what, const EngineNotes& engine, const std::string& how, int64_t workspace,
                      const std::map<std::string, int>& rejected) {
  const std::string turned_down = rejected_text(rejected);
  return what + ": " + engine_text(engine) + " (" + how + "), workspace " + std::to_string(workspace) + " B" +
         (turned_down.empty() ? "" : "; rejected " + turned_down);
}

}  // namespace cudl::cuda

#pragma once
// Which cuDNN engines a convolution may use, decided on plain data: an engine is its global index
// and the notes cuDNN attaches to it (cudnn_conv.cpp reads them from the heuristics' engine
// configurations). Pure functions, no cuDNN call, so that the selection is tested on the host over
// engine lists written as text (tests/test_conv_engines.cpp, tests/data/cudnn_engines/).
#include <cudnn.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "cudl/backend.hpp"
#include "cudl/device.hpp"

namespace cudl::cuda {

// One engine configuration as cuDNN's heuristics propose it.
struct EngineNotes {
  int64_t engine = -1;                                // CUDNN_ATTR_ENGINE_GLOBAL_INDEX
  std::vector<cudnnBackendNumericalNote_t> numerical;  // CUDNN_ATTR_ENGINE_NUMERICAL_NOTE, in cuDNN's order
  std::vector<cudnnBackendBehaviorNote_t> behaviour;   // CUDNN_ATTR_ENGINE_BEHAVIOR_NOTE, in cuDNN's order
  // The configuration's knob choices (CUDNN_ATTR_ENGINECFG_KNOB_CHOICES: knob type, value), in
  // cuDNN's order: cuDNN lists an engine once per knob setting (tile sizes, split-K, stages, ...),
  // and the settings of one engine can differ in speed several times over. knobs_read is false
  // where they could not be read (or, in a list file, were not written).
  std::vector<std::pair<int64_t, int64_t>> knobs;
  bool knobs_read = false;
};

// Whether FFT and Winograd engines (fewer multiplications, another rounding error than the direct
// sum's) may be used: every search admits them as candidates; ConvSearch::kPrecise's reference
// engine, which the candidates are checked against, is chosen without them.
enum class Transforms { kAllowed, kRejected };

// What a convolution's engine must satisfy.
struct EnginePolicy {
  Precision precision = Precision::kFp32;
  ConvDeterminism determinism = ConvDeterminism::kAny;
  Transforms transforms = Transforms::kAllowed;
};

// Why `engine` is not admitted under `policy`, as the name of the first note that rules it out
// (note_name: "down-convert-inputs", "reduced-precision-reduction", "tensor-core",
// "nondeterministic", "fft", "winograd"; every Winograd tile note counts as "winograd"), or nullptr
// when it is admitted. As PyTorch: inputs are never down-converted and reductions never run in
// reduced precision, whatever the precision; tensor cores (TF32 on float data, bf16 on bf16 data)
// only in kTf32 and kBf16. ConvDeterminism::kDeterministic also rejects nondeterministic, FFT and
// Winograd engines, as Transforms::kRejected rejects the last two. Behaviour notes play no part:
// cuDNN 9's (runtime compilation, INT8x32 reorders, native CUDA-graph support, a cuBLASLt
// dependency) say nothing of the arithmetic or its determinism.
const char* rejection(const EngineNotes& engine, const EnginePolicy& policy);

// Whether two configurations are one: the same engine with the same knob choices. Where either's
// knobs were not read, the engine alone decides.
bool same_configuration(const EngineNotes& a, const EngineNotes& b);

// The configurations a search may make plans of, as indices into `listed`, in its order (the
// heuristics' list, then cuDNN's fallback list, as PyTorch's cudnn.benchmark takes them): those
// `policy` admits, each configuration once (same_configuration). When `rejected` is given it
// counts the others by their rejection() reason; repeats are not counted.
std::vector<size_t> admitted_configurations(const std::vector<EngineNotes>& listed, const EnginePolicy& policy,
                                            std::map<std::string, int>* rejected);

// Whether a candidate whose first timed run took `ms` is timed twice more, the fastest candidate
// so far having taken `best_ms` (each measured after a warm-up run): not when it took more than
// twice as long, which no timing noise of a GPU explains, so that a wide search spends its time
// on the candidates that can win.
bool worth_more_runs(float ms, float best_ms);

// "tensor-core", "down-convert-inputs", "reduced-precision-reduction", "fft", "nondeterministic",
// "winograd", "winograd-4x4", "winograd-6x6", "winograd-13x13", "strict-nan-prop"; "note-N" for a
// note this cuDNN's headers do not name.
std::string note_name(cudnnBackendNumericalNote_t note);
// "runtime-compilation", "requires-filter-int8x32-reorder", "requires-bias-int8x32-reorder",
// "supports-cuda-graph-native-api", "cublaslt-dependency"; "behaviour-N" for one not named here.
std::string note_name(cudnnBackendBehaviorNote_t note);

// "engine 17 [winograd, winograd-4x4]", "engine 0 [no numerical notes]", with
// " behaviour [runtime-compilation]" after it when there are behaviour notes and " knobs [2=3,
// 14=4]" (knob type = value, cuDNN's cudnnBackendKnobType_t numbers) when the configuration has
// knob choices: how plan lines, the verbose listing and the engine-list files
// (tests/data/cudnn_engines/README.md) name a configuration.
std::string engine_text(const EngineNotes& engine);

// The engines rejected while planning, reason (rejection()) → how many: "3 tensor-core, 1 fft"
// (reasons in alphabetical order), or "" when none was.
std::string rejected_text(const std::map<std::string, int>& rejected);

// One line of ConvPlans::describe(): "<what>: engine 12 [tensor-core] (<how>), workspace 0 B",
// then "; rejected 3 tensor-core, 1 fft" when any engine was rejected.
std::string plan_line(const std::string& what, const EngineNotes& engine, const std::string& how, int64_t workspace,
                      const std::map<std::string, int>& rejected);

}  // namespace cudl::cuda

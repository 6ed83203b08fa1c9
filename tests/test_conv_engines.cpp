// cudl's choice of cuDNN engines, as data (cuda/conv_engines.hpp), on the host: the filter over
// engine lists written as text (tests/data/cudnn_engines/, format in its README.md), hand-worked
// single engines, and the text plan lines give. No GPU, no cuDNN call: only its enumerations.
#include <cudnn.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "conv_engines.hpp"
#include "cudl/device.hpp"

using namespace cudl;
using cudl::cuda::EngineNotes;
using cudl::cuda::EnginePolicy;
using cudl::cuda::Transforms;

namespace {

namespace fs = std::filesystem;

// A note's value from the name note_name() gives it (cuDNN's values are small integers; a name
// cudl does not know, "note-12", is its number).
template <typename Note>
Note note_named(const std::string& name, const std::string& where) {
  for (int v = 0; v < 64; ++v)
    if (cuda::note_name(static_cast<Note>(v)) == name) return static_cast<Note>(v);
  ADD_FAILURE() << where << ": no note is named '" << name << "'";
  return static_cast<Note>(0);
}

// "a, b" → {a, b}; "no numerical notes" → {}.
template <typename Note>
std::vector<Note> notes_named(const std::string& list, const std::string& where) {
  std::vector<Note> out;
  if (list == "no numerical notes") return out;
  std::stringstream in(list);
  for (std::string name; std::getline(in, name, ',');) {
    name.erase(0, name.find_first_not_of(' '));
    out.push_back(note_named<Note>(name, where));
  }
  return out;
}

// One mode of the filter, as keep lines name it: "fp32 any transforms".
struct Mode {
  EnginePolicy policy;
  std::string name;
};

std::vector<Mode> every_mode() {
  std::vector<Mode> modes;
  for (Precision p : {Precision::kFp32, Precision::kTf32, Precision::kBf16})
    for (ConvDeterminism d : {ConvDeterminism::kAny, ConvDeterminism::kDeterministic})
      for (Transforms t : {Transforms::kAllowed, Transforms::kRejected})
        modes.push_back({{p, d, t},
                         std::string(to_string(p)) + " " + to_string(d) +
                             (t == Transforms::kAllowed ? " transforms" : " no-transforms")});
  return modes;
}

// One list file: its engines, and its keep lines (mode name → engine indices kept, in order).
struct EngineList {
  std::string path;
  bool hand_written = false;
  std::vector<EngineNotes> engines;
  std::vector<std::string> lines;  // the engine lines as written
  std::map<std::string, std::vector<int64_t>> keep;
};

EngineNotes parse_engine(const std::string& line, const std::string& where) {
  // engine 17 [a, b] behaviour [c]
  EngineNotes e;
  const size_t open = line.find(" ["), close = line.find(']', open);
  if (open == std::string::npos || close == std::string::npos) {
    ADD_FAILURE() << where << ": expected 'engine N [notes]', found '" << line << "'";
    return e;
  }
  e.engine = std::stoll(line.substr(7, open - 7));
  e.numerical = notes_named<cudnnBackendNumericalNote_t>(line.substr(open + 2, close - open - 2), where);
  std::string rest = line.substr(close + 1);
  // " behaviour [a, b]", then " knobs [2=3, 14=4]", each optional.
  auto part = [&](const std::string& prefix) {
    if (rest.rfind(prefix, 0) != 0) return std::string();
    const size_t end = rest.find(']');
    EXPECT_NE(end, std::string::npos) << where << ": '" << rest << "'";
    const std::string inside = rest.substr(prefix.size(), end - prefix.size());
    rest = end == std::string::npos ? "" : rest.substr(end + 1);
    return inside;
  };
  if (const std::string b = part(" behaviour ["); !b.empty())
    e.behaviour = notes_named<cudnnBackendBehaviorNote_t>(b, where);
  if (const std::string k = part(" knobs ["); !k.empty()) {
    std::stringstream in(k);
    for (std::string choice; std::getline(in, choice, ',');) {
      int64_t type = -1, value = 0;
      char eq = 0;
      std::stringstream one(choice);
      EXPECT_TRUE(one >> type >> eq >> value && eq == '=') << where << ": a knob '" << choice << "'";
      e.knobs.emplace_back(type, value);
    }
    e.knobs_read = true;
  }
  EXPECT_EQ(rest, "") << where << ": after the notes";
  return e;
}

EngineList read_list(const fs::path& path) {
  EngineList list;
  list.path = path.string();
  list.hand_written = path.filename().string().rfind("hand-", 0) == 0;
  std::ifstream in(path);
  EXPECT_TRUE(in) << path;
  int number = 0;
  for (std::string line; std::getline(in, line);) {
    const std::string where = list.path + ":" + std::to_string(++number);
    if (line.empty() || line[0] == '#') continue;
    if (line.rfind("engine ", 0) == 0) {
      list.engines.push_back(parse_engine(line, where));
      list.lines.push_back(line);
    } else if (line.rfind("keep ", 0) == 0 && line.find(':') != std::string::npos) {
      const size_t colon = line.find(':');
      std::vector<int64_t>& ids = list.keep[line.substr(5, colon - 5)];
      std::stringstream rest(line.substr(colon + 1));
      for (int64_t id; rest >> id;) ids.push_back(id);
    } else {
      ADD_FAILURE() << where << ": neither a comment, an engine nor a keep line: '" << line << "'";
    }
  }
  return list;
}

// Every list under tests/data/cudnn_engines/, and under $CUDL_CUDNN_ENGINE_LISTS when set (lists
// just recorded on a GPU).
std::vector<EngineList> every_list() {
  std::vector<fs::path> roots{fs::path(CUDL_SOURCE_DIR) / "tests/data/cudnn_engines"};
  if (const char* more = std::getenv("CUDL_CUDNN_ENGINE_LISTS"); more != nullptr && *more != '\0')
    roots.emplace_back(more);
  std::vector<fs::path> paths;
  for (const fs::path& root : roots) {
    if (!fs::is_directory(root)) {
      ADD_FAILURE() << root << " is not a folder";
      continue;
    }
    for (const auto& entry : fs::recursive_directory_iterator(root))
      if (entry.is_regular_file() && entry.path().extension() == ".txt") paths.push_back(entry.path());
  }
  std::sort(paths.begin(), paths.end());
  std::vector<EngineList> lists;
  for (const fs::path& p : paths) lists.push_back(read_list(p));
  return lists;
}

std::vector<int64_t> kept(const std::vector<EngineNotes>& engines, const EnginePolicy& policy) {
  std::vector<int64_t> ids;
  for (const EngineNotes& e : engines)
    if (cuda::rejection(e, policy) == nullptr) ids.push_back(e.engine);
  return ids;
}

// The rule, stated apart from the code: the notes that rule an engine out in each mode.
std::set<cudnnBackendNumericalNote_t> forbidden(const EnginePolicy& p) {
  std::set<cudnnBackendNumericalNote_t> notes{CUDNN_NUMERICAL_NOTE_DOWN_CONVERT_INPUTS,
                                              CUDNN_NUMERICAL_NOTE_REDUCED_PRECISION_REDUCTION};
  if (p.precision == Precision::kFp32) notes.insert(CUDNN_NUMERICAL_NOTE_TENSOR_CORE);
  if (p.determinism == ConvDeterminism::kDeterministic) notes.insert(CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC);
  if (p.determinism == ConvDeterminism::kDeterministic || p.transforms == Transforms::kRejected)
    notes.insert({CUDNN_NUMERICAL_NOTE_FFT, CUDNN_NUMERICAL_NOTE_WINOGRAD, CUDNN_NUMERICAL_NOTE_WINOGRAD_TILE_4x4,
                  CUDNN_NUMERICAL_NOTE_WINOGRAD_TILE_6x6, CUDNN_NUMERICAL_NOTE_WINOGRAD_TILE_13x13});
  return notes;
}

EngineNotes engine(int64_t id, std::vector<cudnnBackendNumericalNote_t> notes,
                   std::vector<cudnnBackendBehaviorNote_t> behaviour = {}) {
  EngineNotes e;
  e.engine = id;
  e.numerical = std::move(notes);
  e.behaviour = std::move(behaviour);
  return e;
}

const char* why(const EngineNotes& e, Precision p, ConvDeterminism d = ConvDeterminism::kAny,
                Transforms t = Transforms::kAllowed) {
  const char* reason = cuda::rejection(e, {p, d, t});
  return reason == nullptr ? "admitted" : reason;
}

}  // namespace

TEST(ConvEngines, ListsParseAndPrintAsCudlPrintsThem) {
  const std::vector<EngineList> lists = every_list();
  ASSERT_GE(lists.size(), 3u) << "the hand-written lists are missing";
  for (const EngineList& list : lists) {
    EXPECT_FALSE(list.engines.empty()) << list.path;
    for (size_t i = 0; i < list.engines.size(); ++i) EXPECT_EQ(cuda::engine_text(list.engines[i]), list.lines[i]);
  }
}

// The keep lines: what the filter must keep in each mode, in cuDNN's order, as worked out by hand.
TEST(ConvEngines, EachListKeepsWhatItsKeepLinesSay) {
  for (const EngineList& list : every_list()) {
    if (list.hand_written) {
      EXPECT_EQ(list.keep.size(), every_mode().size()) << list.path << ": every mode";
    }
    for (const Mode& mode : every_mode()) {
      const auto want = list.keep.find(mode.name);
      if (want != list.keep.end()) {
        EXPECT_EQ(kept(list.engines, mode.policy), want->second) << list.path << ": keep " << mode.name;
      }
    }
    for (const auto& [name, ids] : list.keep) {
      bool known = false;
      for (const Mode& mode : every_mode()) known = known || mode.name == name;
      EXPECT_TRUE(known) << list.path << ": no mode is called '" << name << "'";
    }
  }
}

// Recorded lists carry no keep lines: every list is checked against the rule as stated above.
TEST(ConvEngines, EachListKeepsExactlyTheEnginesWithoutAForbiddenNote) {
  for (const EngineList& list : every_list())
    for (const Mode& mode : every_mode()) {
      const std::set<cudnnBackendNumericalNote_t> no = forbidden(mode.policy);
      std::vector<int64_t> want;
      for (const EngineNotes& e : list.engines)
        if (std::none_of(e.numerical.begin(), e.numerical.end(), [&](auto n) { return no.count(n) > 0; }))
          want.push_back(e.engine);
      EXPECT_EQ(kept(list.engines, mode.policy), want) << list.path << ": " << mode.name;
    }
}

// Between them the hand-written lists carry every numerical note, each alone or with others.
TEST(ConvEngines, HandWrittenListsCoverEveryNumericalNote) {
  std::set<int> seen;
  for (const EngineList& list : every_list())
    if (list.hand_written)
      for (const EngineNotes& e : list.engines)
        for (cudnnBackendNumericalNote_t n : e.numerical) seen.insert(n);
  for (int n = 0; n < CUDNN_NUMERICAL_NOTE_TYPE_COUNT; ++n)
    EXPECT_EQ(seen.count(n), 1u) << cuda::note_name(static_cast<cudnnBackendNumericalNote_t>(n));
}

TEST(ConvEngines, RejectionNamesTheFirstNoteThatRulesAnEngineOut) {
  const EngineNotes plain = engine(0, {});
  const EngineNotes tensor = engine(1, {CUDNN_NUMERICAL_NOTE_TENSOR_CORE});
  const EngineNotes down = engine(2, {CUDNN_NUMERICAL_NOTE_TENSOR_CORE, CUDNN_NUMERICAL_NOTE_DOWN_CONVERT_INPUTS});
  const EngineNotes reduced = engine(3, {CUDNN_NUMERICAL_NOTE_REDUCED_PRECISION_REDUCTION});
  const EngineNotes fft = engine(4, {CUDNN_NUMERICAL_NOTE_FFT});
  const EngineNotes tile = engine(5, {CUDNN_NUMERICAL_NOTE_WINOGRAD_TILE_6x6});
  const EngineNotes racy = engine(6, {CUDNN_NUMERICAL_NOTE_TENSOR_CORE, CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC});
  const EngineNotes nan = engine(7, {CUDNN_NUMERICAL_NOTE_STRICT_NAN_PROP}, {CUDNN_BEHAVIOR_NOTE_RUNTIME_COMPILATION});
  const auto kDet = ConvDeterminism::kDeterministic;
  for (Precision p : {Precision::kFp32, Precision::kTf32, Precision::kBf16}) {
    EXPECT_STREQ(why(plain, p, kDet, Transforms::kRejected), "admitted");
    EXPECT_STREQ(why(nan, p, kDet, Transforms::kRejected), "admitted");  // behaviour notes play no part
    EXPECT_STREQ(why(down, p), "down-convert-inputs");
    EXPECT_STREQ(why(reduced, p), "reduced-precision-reduction");
    EXPECT_STREQ(why(fft, p), "admitted");
    EXPECT_STREQ(why(fft, p, ConvDeterminism::kAny, Transforms::kRejected), "fft");
    EXPECT_STREQ(why(fft, p, kDet), "fft");
    EXPECT_STREQ(why(tile, p), "admitted");
    EXPECT_STREQ(why(tile, p, kDet), "winograd");  // a tile note alone is Winograd
  }
  EXPECT_STREQ(why(tensor, Precision::kFp32), "tensor-core");
  EXPECT_STREQ(why(tensor, Precision::kTf32, kDet, Transforms::kRejected), "admitted");
  EXPECT_STREQ(why(tensor, Precision::kBf16, kDet, Transforms::kRejected), "admitted");
  EXPECT_STREQ(why(racy, Precision::kFp32, kDet), "tensor-core");  // the first reason that applies
  EXPECT_STREQ(why(racy, Precision::kTf32), "admitted");
  EXPECT_STREQ(why(racy, Precision::kTf32, kDet), "nondeterministic");
  EXPECT_STREQ(why(racy, Precision::kBf16, kDet), "nondeterministic");
}

// Plan lines (ConvPlans::describe, bench_vgg's report) say which arithmetic ran: every numerical
// note, Winograd's tile and nondeterminism included, the behaviour notes, and what was rejected.
TEST(ConvEngines, PlanLinesNameEveryNoteOfTheEngine) {
  const EngineNotes e = engine(57,
                               {CUDNN_NUMERICAL_NOTE_TENSOR_CORE, CUDNN_NUMERICAL_NOTE_WINOGRAD,
                                CUDNN_NUMERICAL_NOTE_WINOGRAD_TILE_4x4, CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC},
                               {CUDNN_BEHAVIOR_NOTE_RUNTIME_COMPILATION});
  EXPECT_EQ(cuda::plan_line("forward 2×3×8×8 ⋆ 4×3×3×3 (stride 1×1, padding 1×1, dilation 1×1), tf32", e,
                            "fastest of 5", 4096, {{"fft", 1}, {"down-convert-inputs", 2}}),
            "forward 2×3×8×8 ⋆ 4×3×3×3 (stride 1×1, padding 1×1, dilation 1×1), tf32: engine 57 [tensor-core, "
            "winograd, winograd-4x4, nondeterministic] behaviour [runtime-compilation] (fastest of 5), workspace "
            "4096 B; rejected 2 down-convert-inputs, 1 fft");
  EXPECT_EQ(cuda::plan_line("backward-filter x", engine(17, {}), "heuristics' first of 1", 0, {}),
            "backward-filter x: engine 17 [no numerical notes] (heuristics' first of 1), workspace 0 B");
  EXPECT_EQ(cuda::engine_text(engine(9, {CUDNN_NUMERICAL_NOTE_WINOGRAD_TILE_13x13, CUDNN_NUMERICAL_NOTE_FFT})),
            "engine 9 [winograd-13x13, fft]");
}

// What a search makes plans of: mode A's list, then the fallback list, each configuration (engine
// and knob choices) once, in order; rejections counted by reason, repeats not counted.
TEST(ConvEngines, ASearchTakesEachAdmittedConfigurationOnceInTheOrderListed) {
  auto with_knobs = [](EngineNotes e, std::vector<std::pair<int64_t, int64_t>> knobs) {
    e.knobs = std::move(knobs);
    e.knobs_read = true;
    return e;
  };
  const EngineNotes plain = engine(0, {}), fft = engine(18, {CUDNN_NUMERICAL_NOTE_FFT});
  const EngineNotes tc = engine(5, {CUDNN_NUMERICAL_NOTE_TENSOR_CORE});
  const std::vector<EngineNotes> listed{
      with_knobs(engine(7, {}), {{2, 3}, {14, 4}}),  // 0: mode A
      with_knobs(tc, {{2, 1}}),                       // 1
      with_knobs(engine(7, {}), {{2, 4}, {14, 4}}),  // 2: engine 7 with another tile: a candidate
      with_knobs(tc, {{2, 1}}),                       // 3: a repeat of 1
      fft,                                            // 4: knobs unread
      // the fallback list
      with_knobs(engine(7, {}), {{2, 3}, {14, 4}}),  // 5: a repeat of 0
      plain,                                          // 6
      fft,                                            // 7: a repeat of 4 (the engine alone decides)
      with_knobs(engine(0, {}), {{1, 0}}),           // 8: engine 0 again; 6's knobs unread: a repeat
  };
  std::map<std::string, int> rejected;
  EXPECT_EQ(cuda::admitted_configurations(listed, {Precision::kTf32}, &rejected), (std::vector<size_t>{0, 1, 2, 4, 6}));
  EXPECT_TRUE(rejected.empty());
  EXPECT_EQ(cuda::admitted_configurations(listed, {Precision::kFp32}, &rejected), (std::vector<size_t>{0, 2, 4, 6}));
  EXPECT_EQ(rejected, (std::map<std::string, int>{{"tensor-core", 1}}));
  rejected.clear();
  EXPECT_EQ(cuda::admitted_configurations(listed, {Precision::kFp32, ConvDeterminism::kAny, Transforms::kRejected},
                                          &rejected),
            (std::vector<size_t>{0, 2, 6}));
  EXPECT_EQ(rejected, (std::map<std::string, int>{{"fft", 1}, {"tensor-core", 1}}));
  EXPECT_EQ(cuda::admitted_configurations(listed, {Precision::kBf16}, nullptr), (std::vector<size_t>{0, 1, 2, 4, 6}));
  EXPECT_TRUE(cuda::admitted_configurations({}, {Precision::kFp32}, &rejected).empty());

  EXPECT_TRUE(cuda::same_configuration(listed[0], listed[5]));
  EXPECT_FALSE(cuda::same_configuration(listed[0], listed[2]));
  EXPECT_FALSE(cuda::same_configuration(listed[0], listed[6]));  // another engine
  EXPECT_TRUE(cuda::same_configuration(listed[6], listed[8]));
  EXPECT_EQ(cuda::engine_text(listed[2]), "engine 7 [no numerical notes] knobs [2=4, 14=4]");
  EXPECT_EQ(cuda::engine_text(with_knobs(engine(3, {CUDNN_NUMERICAL_NOTE_TENSOR_CORE},
                                                {CUDNN_BEHAVIOR_NOTE_RUNTIME_COMPILATION}),
                                         {{24, 17}})),
            "engine 3 [tensor-core] behaviour [runtime-compilation] knobs [24=17]");
}

// A candidate is timed three times unless its first timed run is over twice the fastest so far.
TEST(ConvEngines, OnlyCandidatesThatCanWinAreTimedAgain) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_TRUE(cuda::worth_more_runs(13.9f, inf));  // the first candidate
  EXPECT_TRUE(cuda::worth_more_runs(1.0f, 2.0f));
  EXPECT_TRUE(cuda::worth_more_runs(4.0f, 2.0f));
  EXPECT_FALSE(cuda::worth_more_runs(4.01f, 2.0f));
  EXPECT_FALSE(cuda::worth_more_runs(13.9f, 1.6f));
}

TEST(ConvEngines, EveryNoteHasItsOwnName) {
  std::set<std::string> names;
  for (int n = 0; n < CUDNN_NUMERICAL_NOTE_TYPE_COUNT; ++n)
    names.insert(cuda::note_name(static_cast<cudnnBackendNumericalNote_t>(n)));
  for (int n = 0; n < CUDNN_BEHAVIOR_NOTE_TYPE_COUNT; ++n)
    names.insert(cuda::note_name(static_cast<cudnnBackendBehaviorNote_t>(n)));
  EXPECT_EQ(names.size(), static_cast<size_t>(CUDNN_NUMERICAL_NOTE_TYPE_COUNT + CUDNN_BEHAVIOR_NOTE_TYPE_COUNT));
  for (const std::string& name : names) EXPECT_THAT(name, ::testing::Not(::testing::StartsWith("note-"))) << name;
  for (const std::string& name : names) EXPECT_THAT(name, ::testing::Not(::testing::StartsWith("behaviour-")));
  EXPECT_EQ(cuda::note_name(static_cast<cudnnBackendNumericalNote_t>(40)), "note-40");  // a later cuDNN's
  EXPECT_STREQ(to_string(ConvDeterminism::kDeterministic), "deterministic");
  EXPECT_STREQ(to_string(ConvDeterminism::kAny), "any");
}

// libFuzzer harness for the whole checkpoint loader (built and run by `run_fuzz.sh checkpoint`).
// Each input is a file's bytes, written to one temporary file and passed, in turn, to
// inspect_checkpoint, load_model (CpuBackend(1)), load_weights into the two networks of
// checkpoint_fixture.hpp, and load_checkpoint into each of them with Adam + ReduceOnPlateau and
// with the 2014 preset's GdbnNesterov + ExponentialSchedule. Each may throw cudl::Error (a refused
// file); anything else is a finding: another exception type escaping, a crash, a sanitizer
// report, a leak, a timeout, an allocation over -malloc_limit_mb (load_model must see that a file
// lacks a huge layer's tensors before it allocates them). And the loader's promise is
// checked: a load that throws has changed nothing — the network's parameters, layer state and
// counters, the optimizer's state, learning rate and look-ahead flag, the schedule's state —
// else __builtin_trap(). A model that load_model returns must run a forward pass.
//
// The networks are built once; each input starts from their initial values (restored only after
// a load changed them) and from fresh optimizers and schedules, so an input's outcome does not
// depend on the inputs before it.
//
// A custom mutator keeps most mutants past the format layer's length and CRC checks, where the
// loader's own checks are: it splits a file into header JSON and data and mutates one part (the
// header as text, 10%; one metadata value as text, 20%; one to three values inside a metadata JSON
// document — the architecture, the fit state, … — 50%; the data's bytes in place, 15%), then
// writes the header length and the cudl.crc32 back as they must be; 5% of mutants stay plain byte
// mutations of the whole file. A broken file is mostly swapped for a recent valid one before
// mutating, else the corpus fills up with broken files (each refusal is new coverage).
//
// CUDL_FUZZ_VERBOSE=1 prints every refusal (for running single inputs).
#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "checkpoint_fixture.hpp"
#include "cudl/cpu_backend.hpp"
#include "cudl/error.hpp"
#include "io/checkpoint_json.hpp"
#include "checkpoint_mutator.hpp"
#include "io/safetensors.hpp"

extern "C" size_t LLVMFuzzerMutate(uint8_t* data, size_t size, size_t max_size);

namespace {

using namespace cudl;
using nlohmann::json;

// ---------------------------------------------------------------------------------------------
// The file the loaders read.

// The file is created with mkstemp in $TMPDIR (else /dev/shm, else /tmp) and unlinked at once,
// so that no run leaves one behind (libFuzzer ends a run at a finding with _Exit, past atexit);
// the loaders open it by the path /proc/self/fd/N, which names the open file. Without /proc, the
// file keeps its name and is removed at exit.
std::string g_path;
int g_fd = -1;
bool g_unlink_at_exit = false;

void remove_file() {
  if (g_unlink_at_exit) ::unlink(g_path.c_str());
}

void create_file() {
  std::string dir = "/dev/shm";
  if (const char* t = std::getenv("TMPDIR"); t != nullptr && *t != '\0') dir = t;
  if (::access(dir.c_str(), W_OK) != 0) dir = "/tmp";
  std::string name = dir + "/cudl-fuzz-checkpoint-XXXXXX";
  std::vector<char> buf(name.begin(), name.end());
  buf.push_back('\0');
  g_fd = ::mkstemp(buf.data());
  if (g_fd < 0) {
    std::perror("fuzz_checkpoint: mkstemp");
    std::abort();
  }
  const std::string proc = "/proc/self/fd/" + std::to_string(g_fd);
  if (::access(proc.c_str(), R_OK) == 0 && ::unlink(buf.data()) == 0) {
    g_path = proc;
  } else {
    g_path = buf.data();
    g_unlink_at_exit = true;
    std::atexit(remove_file);
  }
}

void write_file(const uint8_t* data, size_t size) {
  size_t done = 0;
  while (done < size) {
    const ssize_t n = ::pwrite(g_fd, data + done, size - done, static_cast<off_t>(done));
    if (n <= 0) {
      std::perror("fuzz_checkpoint: pwrite");
      std::abort();
    }
    done += static_cast<size_t>(n);
  }
  if (::ftruncate(g_fd, static_cast<off_t>(size)) != 0) {
    std::perror("fuzz_checkpoint: ftruncate");
    std::abort();
  }
}

// ---------------------------------------------------------------------------------------------
// Snapshots: everything a failed load must leave as it was, compared bit for bit (NaN included).

struct NetState {
  std::vector<float> params;
  std::vector<std::vector<float>> state;  // every layer's state tensors, in order
  std::vector<uint64_t> counters;
  bool operator==(const NetState& o) const {
    auto same = [](const std::vector<float>& a, const std::vector<float>& b) {
      return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
    };
    if (!same(params, o.params) || state.size() != o.state.size() || counters != o.counters) return false;
    for (size_t i = 0; i < state.size(); ++i)
      if (!same(state[i], o.state[i])) return false;
    return true;
  }
};

NetState snapshot(Network& net) {
  NetState s;
  s.params = net.params().to_vector();
  for (int64_t i = 0; i < net.num_layers(); ++i) {
    for (const auto& [name, t] : net.layer(i).state()) s.state.push_back(t->to_vector());
    for (const auto& [name, c] : net.layer(i).counters()) s.counters.push_back(*c);
  }
  return s;
}

void restore(Network& net, const NetState& s) {
  net.params().copy_from(s.params);
  size_t t = 0, c = 0;
  for (int64_t i = 0; i < net.num_layers(); ++i) {
    for (const auto& [name, tensor] : net.layer(i).state()) tensor->copy_from(s.state.at(t++));
    for (const auto& [name, counter] : net.layer(i).counters()) *counter = s.counters.at(c++);
  }
}

struct OptState {
  std::vector<std::vector<uint32_t>> tensors;  // float bits; the step counter as its value
  uint32_t learning_rate = 0;
  bool lookahead = false;
  std::vector<std::pair<std::string, uint64_t>> schedule;  // values as double bits
  bool operator==(const OptState& o) const {
    return tensors == o.tensors && learning_rate == o.learning_rate && lookahead == o.lookahead &&
           schedule == o.schedule;
  }
};

uint32_t bits(float v) {
  uint32_t b;
  std::memcpy(&b, &v, sizeof b);
  return b;
}

OptState snapshot(Optimizer& opt, const Schedule& schedule) {
  OptState s;
  for (const auto& [name, t] : opt.state()) {
    if (name == "step") {
      const uint64_t v = read_counter(*t);
      s.tensors.push_back({static_cast<uint32_t>(v), static_cast<uint32_t>(v >> 32)});
    } else {
      std::vector<uint32_t> b;
      for (float v : t->to_vector()) b.push_back(bits(v));
      s.tensors.push_back(std::move(b));
    }
  }
  s.learning_rate = bits(opt.current_learning_rate());
  s.lookahead = opt.in_lookahead();
  for (const auto& [key, value] : schedule.state()) {
    uint64_t b;
    std::memcpy(&b, &value, sizeof b);
    s.schedule.emplace_back(key, b);
  }
  return s;
}

// CUDL_FUZZ_VERBOSE=1: every refusal's message on stderr (for running single inputs).
bool g_verbose = false;
void refused(const char* who, const Error& e) {
  if (g_verbose) std::fprintf(stderr, "fuzz_checkpoint: %s refused: %s\n", who, e.what());
}

[[noreturn]] void finding(const char* what) {
  std::fprintf(stderr, "fuzz_checkpoint: FINDING: %s\n", what);
  std::fflush(stderr);
  __builtin_trap();
}

// ---------------------------------------------------------------------------------------------
// The networks the files are loaded into, and what the run saw.

struct Target {
  fuzz::Net which;
  std::unique_ptr<Network> net;
  NetState initial;
  bool dirty = false;  // a load changed it since it was last restored
};

struct Stats {
  uint64_t inputs = 0, formatted = 0, inspected = 0, models = 0, weights = 0, checkpoints = 0, lookahead = 0;
};

CpuBackend* g_cpu = nullptr;
std::vector<Target>* g_targets = nullptr;
Stats g_stats;

// At exit: how far the inputs got (every load of each kind that returned, summed over networks).
void print_stats() {
  auto n = [](uint64_t v) { return static_cast<unsigned long long>(v); };
  std::fprintf(stderr,
               "fuzz_checkpoint: %llu inputs, %llu valid safetensors; accepted by inspect_checkpoint %llu, "
               "load_model %llu, load_weights %llu, load_checkpoint %llu (%llu at a look-ahead point)\n",
               n(g_stats.inputs), n(g_stats.formatted), n(g_stats.inspected), n(g_stats.models), n(g_stats.weights),
               n(g_stats.checkpoints), n(g_stats.lookahead));
}

// The input shape of the network a file's architecture describes, read without building it
// (known: false when the architecture is refused).
struct Architecture {
  bool known = false;
  Shape input;
};

Architecture architecture_of(const io::SafetensorsFile& file) {
  Architecture a;
  try {
    const auto it = file.metadata().find("architecture");
    if (it == file.metadata().end()) return a;
    a.input = detail::network_from_json(detail::parse_json(it->second, "architecture"), *g_cpu, "fuzz input")
                  ->input_shape();
    a.known = true;
  } catch (const Error&) {
  }
  return a;
}

// A network load_model returned runs: a forward pass of two zero rows, when small enough to be
// quick (every activation and parameter counted).
void run_loaded(Network& net) {
  int64_t total = net.params().size();
  Shape shape = net.input_shape();
  for (int64_t i = 0; i < net.num_layers(); ++i) {
    shape = net.layer(i).output_shape(shape);
    total += numel(shape);
    if (total > (int64_t{1} << 16)) return;
  }
  const int64_t features = numel(net.input_shape());
  const Tensor x =
      Tensor::from_host(std::vector<float>(static_cast<size_t>(2 * features), 0.0f), {2, features}, *g_cpu);
  try {
    const std::vector<float> y = net.forward(x, Mode::kInfer).to_vector();
    if (static_cast<int64_t>(y.size()) != 2 * numel(net.output_shape())) finding("load_model: wrong output size");
  } catch (const Error& e) {
    std::fprintf(stderr, "fuzz_checkpoint: forward: %s\n", e.what());
    finding("a network load_model returned cannot run a forward pass");
  }
}

void prepare(Target& t) {
  if (t.dirty) {
    restore(*t.net, t.initial);
    t.dirty = false;
  }
}

void load_weights_into(Target& t) {
  prepare(t);
  try {
    load_weights(*t.net, g_path);
    ++g_stats.weights;
    t.dirty = true;
  } catch (const Error& e) {
    refused("load_weights", e);
    if (snapshot(*t.net) == t.initial) return;
    std::fprintf(stderr, "fuzz_checkpoint: load_weights: %s\n", e.what());
    finding("a failed load_weights changed the network");
  }
}

template <typename Opt, typename Sched>
void load_checkpoint_into(Target& t, Opt& opt, Sched& schedule) {
  prepare(t);
  const OptState before = snapshot(opt, schedule);
  try {
    load_checkpoint(g_path, *t.net, opt, &schedule);
    ++g_stats.checkpoints;
    if (opt.in_lookahead()) ++g_stats.lookahead;
    t.dirty = true;
  } catch (const Error& e) {
    refused("load_checkpoint", e);
    const bool net_same = snapshot(*t.net) == t.initial, opt_same = snapshot(opt, schedule) == before;
    if (net_same && opt_same) return;
    std::fprintf(stderr, "fuzz_checkpoint: load_checkpoint: %s\n", e.what());
    finding(!net_same ? "a failed load_checkpoint changed the network"
                      : "a failed load_checkpoint changed the optimizer or the schedule");
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  (void)argc;
  (void)argv;
  create_file();
  if (const char* v = std::getenv("CUDL_FUZZ_VERBOSE"); v != nullptr && std::strcmp(v, "1") == 0) g_verbose = true;
  g_cpu = new CpuBackend(1);
  g_targets = new std::vector<Target>();
  for (fuzz::Net which : fuzz::kNets) {
    Target t{which, fuzz::make_network(which, *g_cpu), {}, false};
    t.initial = snapshot(*t.net);
    g_targets->push_back(std::move(t));
  }
  std::atexit(print_stats);
  return 0;
}

extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size, unsigned int seed) {
  return cudl_fuzz_mutator::mutate_file(data, size, max_size, seed);
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ++g_stats.inputs;
  write_file(data, size);

  // The format layer's verdict, in memory. Every loader reads its file with
  // SafetensorsFile::read, which runs the same checks (from_bytes) on the same bytes: a file
  // refused here is refused by each of them with this error before anything else, so one
  // path-based call checks that and the seven others would only repeat it.
  std::optional<io::SafetensorsFile> file;
  try {
    file.emplace(io::SafetensorsFile::parse(data, size, "fuzz input"));
    ++g_stats.formatted;
    cudl_fuzz_mutator::remember_valid(data, size);
  } catch (const Error&) {
  }

  try {
    const CheckpointInfo info = inspect_checkpoint(g_path);
    if (!file) finding("inspect_checkpoint accepted a file that SafetensorsFile::parse refuses");
    if (info.kind != "model" && info.kind != "checkpoint") finding("inspect_checkpoint: an unknown kind");
    if (info.format_version < 1 || info.format_version > kCheckpointFormatVersion)
      finding("inspect_checkpoint: a format version out of range");
    ++g_stats.inspected;
  } catch (const Error& e) {
    refused("inspect_checkpoint", e);
  }
  if (!file) return 0;

  try {
    const std::unique_ptr<Network> net = load_model(g_path, *g_cpu);
    ++g_stats.models;
    run_loaded(*net);
  } catch (const Error& e) {
    refused("load_model", e);
  }

  const Architecture arch = architecture_of(*file);

  for (Target& t : *g_targets) {
    load_weights_into(t);
    // A file saved for another input shape: every load into this network stops at
    // require_architecture's input check, or before it at checks that do not depend on the
    // network (made by the loads into the other one); load_weights has shown that it does.
    if (arch.known && arch.input != t.net->input_shape()) continue;
    {
      const auto adam = fuzz::make_adam(*t.net);
      const auto plateau = fuzz::make_plateau();
      load_checkpoint_into(t, *adam, *plateau);
    }
    {
      const presets::Gdbn2014 p = fuzz::gdbn_preset();
      const auto gdbn = p.optimizer(t.net->param_set());
      ExponentialSchedule schedule = p.schedule();
      load_checkpoint_into(t, *gdbn, schedule);
    }
  }
  return 0;
}

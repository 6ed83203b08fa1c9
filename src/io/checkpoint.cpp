// Models and checkpoints as safetensors files (docs/design/checkpoints.md): what goes in a file
// and how it is checked against a network before anything is loaded. The format layer is
// io/safetensors.cpp; the JSON of the metadata (architecture, optimizer, schedule, run) is
// nlohmann-json's, kept private to the library.
#include "cudl/checkpoint.hpp"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstring>
#include <deque>
#include <ctime>
#include <map>

#include "io/checkpoint_json.hpp"
#include "io/safetensors.hpp"
#include "nn/layer_factory.hpp"

#ifndef CUDL_VERSION_STRING
#error "CUDL_VERSION_STRING is defined by src/CMakeLists.txt"
#endif

namespace cudl {
namespace {

using nlohmann::json;
using io::DType;

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string layer_name(int64_t i, const std::string& name) { return "layers." + std::to_string(i) + "." + name; }

// Host copies of tensors to be written, with the views that point into them.
class Writer {
 public:
  void f32(const std::string& name, const Tensor& t) {
    floats_.push_back(t.to_vector());
    views_.push_back({name, DType::kF32, t.shape(), floats_.back().data()});
  }
  void f32(const std::string& name, std::vector<float> values) {
    const int64_t n = static_cast<int64_t>(values.size());
    floats_.push_back(std::move(values));
    views_.push_back({name, DType::kF32, {n}, floats_.back().data()});
  }
  void u64(const std::string& name, uint64_t value) {
    integers_.push_back(value);
    views_.push_back({name, DType::kU64, {1}, &integers_.back()});
  }
  void write(const std::string& path, const std::map<std::string, std::string>& metadata) const {
    io::write_safetensors(path, views_, metadata);
  }

 private:
  std::deque<std::vector<float>> floats_;  // deques: adding never moves what views point to
  std::deque<uint64_t> integers_;
  std::vector<io::TensorView> views_;
};

// The model part of a file: each layer's parameters and state, and its metadata.
void add_model(Writer& w, std::map<std::string, std::string>& meta, Network& net, const char* kind) {
  CUDL_REQUIRE(net.num_layers() > 0, "save: the network has no layers");
  json counters = json::object();
  for (int64_t i = 0; i < net.num_layers(); ++i) {
    for (const auto& [name, view] : net.layer_params(i)) w.f32(layer_name(i, name), view);
    for (const auto& [name, tensor] : net.layer(i).state()) w.f32(layer_name(i, name), *tensor);
    json c = json::object();
    for (const auto& [name, value] : net.layer(i).counters()) c[name] = std::to_string(*value);
    if (!c.empty()) counters[std::to_string(i)] = c;
  }
  meta["format"] = "cudl";
  meta["format_version"] = std::to_string(kCheckpointFormatVersion);
  meta["kind"] = kind;
  meta["cudl_version"] = CUDL_VERSION_STRING;
  meta["saved_from"] = net.backend().describe();
  meta["saved_at"] = utc_now();
  meta["architecture"] = detail::architecture_json(net).dump();
  meta["layer_counters"] = counters.dump();
}

// A file read and checked to be one of ours, of a version this build reads.
struct File {
  io::SafetensorsFile st;
  json architecture;
  std::string kind;
  int version = 0;
};

File open_file(const std::string& path) {
  File f{io::SafetensorsFile::read(path), {}, {}, 0};
  const auto& meta = f.st.metadata();
  auto get = [&](const char* key) -> const std::string& {
    const auto it = meta.find(key);
    CUDL_REQUIRE(it != meta.end(), path + ": not a cudl model or checkpoint (its metadata has no '" + key + "')");
    return it->second;
  };
  CUDL_REQUIRE(get("format") == "cudl", path + ": not a cudl file (format '" + get("format") + "')");
  f.version = detail::parse_int(get("format_version"), path + ": format_version");
  CUDL_REQUIRE(f.version >= 1 && f.version <= kCheckpointFormatVersion,
               path + ": format version " + std::to_string(f.version) + " is newer than this build reads (" +
                   std::to_string(kCheckpointFormatVersion) + "): saved by cudl " +
                   (meta.count("cudl_version") ? meta.at("cudl_version") : std::string("?")));
  f.kind = get("kind");
  CUDL_REQUIRE(f.kind == "model" || f.kind == "checkpoint", path + ": unknown kind '" + f.kind + "'");
  f.architecture = detail::parse_json(get("architecture"), path + ": architecture");
  return f;
}

// A tensor of the file with exactly this dtype and shape, or an Error saying what was found.
void require_tensor(const File& f, const std::string& name, DType dtype, const Shape& shape, const std::string& who) {
  CUDL_REQUIRE(f.st.contains(name), f.st.source() + ": no tensor '" + name + "' (" + who + ")");
  const auto& e = f.st.entry(name);
  CUDL_REQUIRE(e.dtype == dtype && e.shape == shape,
               f.st.source() + ": " + who + ": expected " + io::dtype_name(dtype) + " " + to_string(shape) +
                   ", found " + io::dtype_name(e.dtype) + " " + to_string(e.shape));
}

std::vector<float> floats(const File& f, const std::string& name) {
  std::vector<float> v(f.st.entry(name).bytes / sizeof(float));
  f.st.copy_to(name, v.data(), v.size() * sizeof(float));
  return v;
}

uint64_t integer(const File& f, const std::string& name) {
  uint64_t v = 0;
  f.st.copy_to(name, &v, sizeof v);
  return v;
}

// What loading the model part into net will do, every check done first (apply() changes net).
struct ModelLoad {
  std::vector<std::pair<Tensor, std::vector<float>>> tensors;
  std::vector<std::pair<uint64_t*, uint64_t>> counters;
  void apply() {
    for (auto& [t, values] : tensors) t.copy_from(values);
    for (auto& [p, value] : counters) *p = value;
  }
};

ModelLoad check_model(const File& f, Network& net) {
  detail::require_architecture(f.architecture, net, f.st.source());
  const json counters = detail::parse_json(f.st.metadata().count("layer_counters") ? f.st.metadata().at("layer_counters")
                                                                                   : std::string("{}"),
                                           f.st.source() + ": layer_counters");
  ModelLoad load;
  for (int64_t i = 0; i < net.num_layers(); ++i) {
    const std::string who = "layer " + std::to_string(i) + " " + net.layer(i).describe();
    for (auto& [name, view] : net.layer_params(i)) {
      require_tensor(f, layer_name(i, name), DType::kF32, view.shape(), who + " " + name);
      load.tensors.emplace_back(std::move(view), floats(f, layer_name(i, name)));
    }
    for (const auto& [name, tensor] : net.layer(i).state()) {
      require_tensor(f, layer_name(i, name), DType::kF32, tensor->shape(), who + " " + name);
      load.tensors.emplace_back(tensor->slice(0, tensor->shape()), floats(f, layer_name(i, name)));
    }
    for (const auto& [name, p] : net.layer(i).counters()) {
      const std::string key = std::to_string(i);
      CUDL_REQUIRE(counters.contains(key) && counters[key].contains(name) && counters[key][name].is_string(),
                   f.st.source() + ": " + who + ": no saved '" + name + "'");
      load.counters.emplace_back(p, detail::parse_u64(counters[key][name].get<std::string>(),
                                                      f.st.source() + ": " + who + " " + name));
    }
  }
  return load;
}

void load_model_part(const File& f, Network& net) {
  ModelLoad load = check_model(f, net);
  load.apply();
}

}  // namespace

void save_model(Network& net, const std::string& path) {
  Writer w;
  std::map<std::string, std::string> meta;
  add_model(w, meta, net, "model");
  w.write(path, meta);
}

std::unique_ptr<Network> load_model(const std::string& path, Backend& backend) {
  const File f = open_file(path);
  std::unique_ptr<Network> net = detail::network_from_json(f.architecture, backend, path);
  // Every parameter's tensor must be in the file, with its shape, before the network allocates
  // them: the memory a file can make us allocate is then bounded by the file's own size (a file
  // describing a layer of 10^12 units, without its 4 TB of weights, is refused here).
  Shape shape = net->input_shape();
  for (int64_t i = 0; i < net->num_layers(); ++i) {
    const Layer& layer = net->layer(i);
    for (const ParamSpec& spec : layer.param_specs(shape))
      require_tensor(f, layer_name(i, spec.name), DType::kF32, spec.shape,
                     "layer " + std::to_string(i) + " " + layer.describe() + " " + spec.name);
    shape = layer.output_shape(shape);
  }
  net->initialize(0, 0.0f);  // builds it; every value is then loaded
  load_model_part(f, *net);
  return net;
}

void load_weights(Network& net, const std::string& path) {
  const File f = open_file(path);
  load_model_part(f, net);
}

void save_checkpoint(const std::string& path, Network& net, Optimizer& opt, const Schedule* schedule,
                     const FitState& state) {
  CUDL_REQUIRE(&opt.params().params->backend() == &net.backend() && opt.params().params->size() == net.params().size(),
               "save_checkpoint: the optimizer does not update this network's parameters");
  Writer w;
  std::map<std::string, std::string> meta;
  const bool lookahead = opt.in_lookahead();
  std::vector<float> lookahead_params;
  if (lookahead) {  // the model part holds the true weights; the look-ahead ones travel aside
    lookahead_params = net.params().to_vector();
    opt.end();
  }
  try {
    add_model(w, meta, net, "checkpoint");
  } catch (...) {
    if (lookahead) {
      net.params().copy_from(lookahead_params);
      opt.assume_lookahead(true);
    }
    throw;
  }
  if (lookahead) {
    net.params().copy_from(lookahead_params);  // exactly as it was: no end()/begin() round trip
    opt.assume_lookahead(true);
    w.f32("optimizer.lookahead_params", std::move(lookahead_params));
  }
  json o = {{"name", opt.name()},
            {"learning_rate", static_cast<double>(opt.current_learning_rate())},
            {"base_learning_rate", static_cast<double>(opt.base_learning_rate())},
            {"lookahead", lookahead},
            {"state", json::array()}};
  for (const auto& [name, tensor] : opt.state()) {
    o["state"].push_back(name);
    if (name == "step") {
      w.u64("optimizer.step", read_counter(*tensor));
    } else {
      w.f32("optimizer." + name, *tensor);
    }
  }
  meta["optimizer"] = o.dump();
  meta["schedule"] = detail::schedule_json(schedule).dump();
  meta["fit"] = detail::fit_state_json(state).dump();
  if (!state.best_params.empty()) w.f32("fit.best_params", state.best_params);
  w.write(path, meta);
}

FitState load_checkpoint(const std::string& path, Network& net, Optimizer& opt, Schedule* schedule) {
  return detail::load_checkpoint_if(path, net, opt, schedule, {});
}

namespace detail {

FitState load_checkpoint_if(const std::string& path, Network& net, Optimizer& opt, Schedule* schedule,
                            const std::function<void(const FitState&)>& accept) {
  const File f = open_file(path);
  CUDL_REQUIRE(f.kind == "checkpoint", path + ": a model file, not a checkpoint: it holds no optimizer or run "
                                              "state (load it with load_model or load_weights)");
  const auto& meta = f.st.metadata();
  CUDL_REQUIRE(meta.count("optimizer") && meta.count("fit") && meta.count("schedule"),
               path + ": a checkpoint without optimizer, schedule or fit metadata");
  ModelLoad model = check_model(f, net);
  // The optimizer: the same type over the same parameters, with every state tensor present.
  const json o = detail::parse_json(meta.at("optimizer"), path + ": optimizer");
  const std::string saved_name = detail::get<std::string>(o, "name", path + ": optimizer");
  CUDL_REQUIRE(saved_name == opt.name(),
               path + ": saved with optimizer " + saved_name + ", this run uses " + opt.name());
  std::vector<std::pair<Tensor*, std::vector<float>>> opt_tensors;
  uint64_t step = 0;
  for (const auto& [name, tensor] : opt.state()) {
    if (name == "step") {
      require_tensor(f, "optimizer.step", DType::kU64, {1}, "optimizer step count");
      step = integer(f, "optimizer.step");
    } else {
      require_tensor(f, "optimizer." + name, DType::kF32, tensor->shape(), opt.name() + " state " + name);
      opt_tensors.emplace_back(tensor, floats(f, "optimizer." + name));
    }
  }
  const bool lookahead = detail::get<bool>(o, "lookahead", path + ": optimizer");
  std::vector<float> lookahead_params;
  if (lookahead) {
    require_tensor(f, "optimizer.lookahead_params", DType::kF32, net.params().shape(), "look-ahead parameters");
    lookahead_params = floats(f, "optimizer.lookahead_params");
  }
  const double saved_rate = detail::get<double>(o, "learning_rate", path + ": optimizer");
  CUDL_REQUIRE(std::isfinite(saved_rate) && saved_rate >= 0.0 && saved_rate <= 3.4e38,
               path + ": optimizer: the learning rate " + std::to_string(saved_rate) + " is not a learning rate");
  const float learning_rate = static_cast<float>(saved_rate);
  // The schedule and the run's position.
  const auto schedule_state = detail::check_schedule(detail::parse_json(meta.at("schedule"), path + ": schedule"),
                                                     schedule, path);
  if (schedule != nullptr) schedule->check_state(schedule_state);
  FitState state = detail::fit_state_from_json(detail::parse_json(meta.at("fit"), path + ": fit"), path);
  if (f.st.contains("fit.best_params")) {
    require_tensor(f, "fit.best_params", DType::kF32, net.params().shape(), "early stopping's best parameters");
    state.best_params = floats(f, "fit.best_params");
  }
  if (accept) accept(state);
  // Everything checked: now change the network, the optimizer and the schedule.
  opt.assume_lookahead(false);
  model.apply();
  for (auto& [tensor, values] : opt_tensors) tensor->copy_from(values);
  for (const auto& [name, tensor] : opt.state())
    if (name == "step") net.backend().set_counter(*tensor, step);
  if (lookahead) {
    net.params().copy_from(lookahead_params);
    opt.assume_lookahead(true);
  }
  opt.set_learning_rate(learning_rate);
  if (schedule != nullptr) schedule->set_state(schedule_state);
  return state;
}

}  // namespace detail

CheckpointInfo inspect_checkpoint(const std::string& path) {
  const File f = open_file(path);
  const auto& meta = f.st.metadata();
  CheckpointInfo info;
  info.kind = f.kind;
  info.format_version = f.version;
  auto value = [&](const char* key) { return meta.count(key) ? meta.at(key) : std::string(); };
  info.cudl_version = value("cudl_version");
  info.saved_from = value("saved_from");
  info.saved_at = value("saved_at");
  detail::describe_architecture(f.architecture, path, info.input_shape, info.layers);
  if (f.kind == "checkpoint" && meta.count("optimizer") && meta.count("fit")) {
    info.optimizer = detail::get<std::string>(detail::parse_json(meta.at("optimizer"), path + ": optimizer"), "name",
                                              path + ": optimizer");
    info.epoch = detail::fit_state_from_json(detail::parse_json(meta.at("fit"), path + ": fit"), path).epoch;
  }
  return info;
}

}  // namespace cudl

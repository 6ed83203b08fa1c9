#include "io/checkpoint_json.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "nn/layer_factory.hpp"

namespace cudl::detail {
namespace {

using nlohmann::json;

// JSON has no NaN or infinity: they are written as null and read back as NaN / the default.
json number(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

double number_or(const json& j, const char* key, double missing, const std::string& what) {
  if (!j.contains(key) || j.at(key).is_null()) return missing;
  return get<double>(j, key, what);
}

LayerConfig config_of(const json& layer, const std::string& what) {
  LayerConfig c;
  c.type = get<std::string>(layer, "type", what);
  CUDL_REQUIRE(layer.contains("settings") && layer.at("settings").is_object(), what + ": no settings object");
  for (const auto& [key, value] : layer.at("settings").items()) {
    CUDL_REQUIRE(value.is_string(), what + ": setting '" + key + "' is not a string");
    c.settings.emplace_back(key, value.get<std::string>());
  }
  return c;
}

// Settings compared as sets of pairs: the file keeps them sorted by key, a layer in its order.
bool same_config(LayerConfig a, LayerConfig b) {
  std::sort(a.settings.begin(), a.settings.end());
  std::sort(b.settings.begin(), b.settings.end());
  return a == b;
}

const json& layers_of(const json& arch, const std::string& path) {
  CUDL_REQUIRE(arch.is_object() && arch.contains("layers") && arch.at("layers").is_array() &&
                   !arch.at("layers").empty(),
               path + ": the architecture lists no layers");
  return arch.at("layers");
}

Shape input_of(const json& arch, const std::string& path) {
  CUDL_REQUIRE(arch.contains("input_shape") && arch.at("input_shape").is_array(),
               path + ": the architecture has no input_shape");
  Shape s;
  for (const json& d : arch.at("input_shape")) {
    CUDL_REQUIRE(d.is_number_integer() && d.get<int64_t>() > 0, path + ": input_shape holds a non-positive size");
    s.push_back(d.get<int64_t>());
  }
  return s;
}

std::string layer_what(const std::string& path, size_t i) { return path + ": layer " + std::to_string(i); }

}  // namespace

json parse_json(const std::string& text, const std::string& what) {
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    throw Error(what + ": malformed JSON: " + e.what());
  }
}

int parse_int(const std::string& text, const std::string& what) {
  const int64_t v = parse_i64(text, what);
  CUDL_REQUIRE(v >= std::numeric_limits<int>::min() && v <= std::numeric_limits<int>::max(),
               what + ": out of range: '" + text + "'");
  return static_cast<int>(v);
}

json architecture_json(Network& net) {
  json layers = json::array();
  for (int64_t i = 0; i < net.num_layers(); ++i) {
    const LayerConfig c = net.layer(i).config();
    json settings = json::object();
    for (const auto& [key, value] : c.settings) settings[key] = value;
    layers.push_back({{"type", c.type}, {"describe", net.layer(i).describe()}, {"settings", settings}});
  }
  return {{"input_shape", net.input_shape()}, {"layers", layers}};
}

void require_architecture(const json& arch, Network& net, const std::string& path) {
  const Shape input = input_of(arch, path);
  CUDL_REQUIRE(input == net.input_shape(), path + ": saved for input " + to_string(input) + ", the network takes " +
                                               to_string(net.input_shape()));
  const json& layers = layers_of(arch, path);
  CUDL_REQUIRE(static_cast<int64_t>(layers.size()) == net.num_layers(),
               path + ": saved with " + std::to_string(layers.size()) + " layers, the network has " +
                   std::to_string(net.num_layers()));
  for (size_t i = 0; i < layers.size(); ++i) {
    const std::string what = layer_what(path, i);
    const LayerConfig saved = config_of(layers[i], what);
    const LayerConfig mine = net.layer(static_cast<int64_t>(i)).config();
    const std::string described = layers[i].contains("describe") && layers[i]["describe"].is_string()
                                      ? layers[i]["describe"].get<std::string>()
                                      : saved.type;
    // A layer of a user's own type (no config) is matched by its description.
    const bool same = saved.type.empty() && mine.type.empty()
                          ? described == net.layer(static_cast<int64_t>(i)).describe()
                          : same_config(saved, mine);
    CUDL_REQUIRE(same, what + ": the network has " + net.layer(static_cast<int64_t>(i)).describe() +
                           ", the file has " + described);
  }
}

std::unique_ptr<Network> network_from_json(const json& arch, Backend& backend, const std::string& path) {
  auto net = std::make_unique<Network>(backend, input_of(arch, path));
  const json& layers = layers_of(arch, path);
  for (size_t i = 0; i < layers.size(); ++i) {
    const std::string what = layer_what(path, i);
    try {
      net->add(make_layer(config_of(layers[i], what)));
    } catch (const Error& e) {
      throw Error(what + ": " + e.what());
    }
  }
  return net;
}

void describe_architecture(const json& arch, const std::string& path, Shape& input, std::vector<std::string>& layers) {
  input = input_of(arch, path);
  layers.clear();
  for (const json& l : layers_of(arch, path))
    layers.push_back(l.contains("describe") && l["describe"].is_string() ? l["describe"].get<std::string>() : "?");
}

json schedule_json(const Schedule* schedule) {
  if (schedule == nullptr) return nullptr;
  json state = json::object();
  for (const auto& [key, value] : schedule->state()) state[key] = number(value);
  return {{"describe", schedule->describe()}, {"state", state}};
}

std::vector<std::pair<std::string, double>> check_schedule(const json& saved, const Schedule* schedule,
                                                           const std::string& path) {
  const std::string what = path + ": schedule";
  if (saved.is_null()) {
    CUDL_REQUIRE(schedule == nullptr, what + ": saved without a schedule, this run has " + schedule->describe());
    return {};
  }
  const std::string described = get<std::string>(saved, "describe", what);
  CUDL_REQUIRE(schedule != nullptr, what + ": saved with schedule '" + described + "', this run has none");
  CUDL_REQUIRE(described == schedule->describe(),
               what + ": saved with '" + described + "', this run has '" + schedule->describe() + "'");
  std::vector<std::pair<std::string, double>> state;
  if (saved.contains("state") && saved.at("state").is_object())
    for (const auto& [key, value] : saved.at("state").items())
      state.emplace_back(key, value.is_null() ? std::numeric_limits<double>::quiet_NaN()
                                              : get<double>(saved.at("state"), key.c_str(), what));
  return state;
}

json fit_state_json(const FitState& s) {
  json history = json::array();
  for (const EpochReport& r : s.history) {
    history.push_back({{"epoch", r.epoch},
                       {"steps", r.steps},
                       {"samples", r.samples},
                       {"loss", number(r.loss)},
                       {"err", number(r.err)},
                       {"seconds", number(r.seconds)},
                       {"learn_rate", number(r.learn_rate)},
                       {"captured", r.captured},
                       {"validated", r.validated},
                       {"valid_loss", number(r.valid_loss)},
                       {"valid_err", number(r.valid_err)},
                       {"valid_seconds", number(r.valid_seconds)}});
  }
  json stats = json::array();
  for (float v : s.epoch_stats) stats.push_back(number(v));
  return {{"epoch", s.epoch},
          {"step", s.step},
          {"rows", s.rows},
          {"batch", s.batch},
          {"sampling", s.sampling == Sampling::kShuffle ? "shuffle" : "with-replacement"},
          {"seed", std::to_string(s.seed)},
          {"ranks", s.ranks},
          {"epoch_stats", stats},
          {"epoch_seconds", number(s.epoch_seconds)},
          {"epoch_learn_rate", number(s.epoch_learn_rate)},
          {"stopped_early", s.stopped_early},
          {"best_epoch", s.best_epoch},
          {"best_valid_loss", number(s.best_valid_loss)},
          {"since_best", s.since_best},
          {"history", history}};
}

FitState fit_state_from_json(const json& j, const std::string& path) {
  const std::string what = path + ": fit";
  FitState s;
  s.epoch = get<int>(j, "epoch", what);
  s.step = get<int64_t>(j, "step", what);
  s.rows = get<int64_t>(j, "rows", what);
  s.batch = get<int64_t>(j, "batch", what);
  CUDL_REQUIRE(s.epoch >= 0 && s.step >= 0 && s.rows >= 1 && s.batch >= 1 && s.step <= s.rows / s.batch,
               what + ": epoch, step, rows or batch out of range");
  const std::string sampling = get<std::string>(j, "sampling", what);
  CUDL_REQUIRE(sampling == "shuffle" || sampling == "with-replacement", what + ": unknown sampling '" + sampling + "'");
  s.sampling = sampling == "shuffle" ? Sampling::kShuffle : Sampling::kWithReplacement;
  s.seed = parse_u64(get<std::string>(j, "seed", what), what + " seed");
  // Data-parallel ranks (absent in files from before data-parallel training: one).
  const int64_t ranks = j.contains("ranks") ? get<int64_t>(j, "ranks", what) : 1;
  CUDL_REQUIRE(ranks >= 1 && ranks <= (1 << 24) && s.step <= s.rows / s.batch / ranks,
               what + ": ranks " + std::to_string(ranks) +
                   " out of range (1 to 2^24, with at most rows / (batch · ranks) steps done)");
  s.ranks = static_cast<int>(ranks);
  if (j.contains("epoch_stats") && j.at("epoch_stats").is_array()) {
    for (const json& v : j.at("epoch_stats")) {
      CUDL_REQUIRE(v.is_number() || v.is_null(), what + ": epoch_stats holds a non-number");
      s.epoch_stats.push_back(v.is_null() ? std::numeric_limits<float>::quiet_NaN() : v.get<float>());
    }
  }
  CUDL_REQUIRE(s.step == 0 || s.epoch_stats.size() == static_cast<size_t>(LossStats::kSize) * s.ranks,
               what + ": a run stopped inside an epoch needs its " + std::to_string(LossStats::kSize) +
                   " epoch statistics" + (s.ranks > 1 ? " for each of its " + std::to_string(s.ranks) + " ranks" : ""));
  s.epoch_seconds = number_or(j, "epoch_seconds", 0.0, what);
  s.epoch_learn_rate = static_cast<float>(number_or(j, "epoch_learn_rate", 0.0, what));
  s.stopped_early = get<bool>(j, "stopped_early", what);
  s.best_epoch = get<int>(j, "best_epoch", what);
  s.best_valid_loss = number_or(j, "best_valid_loss", std::numeric_limits<double>::infinity(), what);
  s.since_best = get<int>(j, "since_best", what);
  CUDL_REQUIRE(j.contains("history") && j.at("history").is_array(), what + ": no history");
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (const json& h : j.at("history")) {
    const std::string w = what + " history";
    EpochReport r;
    r.epoch = get<int>(h, "epoch", w);
    r.steps = get<int64_t>(h, "steps", w);
    r.samples = get<int64_t>(h, "samples", w);
    r.loss = number_or(h, "loss", nan, w);
    r.err = number_or(h, "err", nan, w);
    r.seconds = number_or(h, "seconds", 0.0, w);
    r.learn_rate = static_cast<float>(number_or(h, "learn_rate", nan, w));
    r.captured = get<bool>(h, "captured", w);
    r.validated = get<bool>(h, "validated", w);
    r.valid_loss = number_or(h, "valid_loss", nan, w);
    r.valid_err = number_or(h, "valid_err", nan, w);
    r.valid_seconds = number_or(h, "valid_seconds", 0.0, w);
    s.history.push_back(r);
  }
  CUDL_REQUIRE(static_cast<int>(s.history.size()) == s.epoch,
               what + ": " + std::to_string(s.history.size()) + " epoch reports for " + std::to_string(s.epoch) +
                   " finished epochs");
  return s;
}

}  // namespace cudl::detail

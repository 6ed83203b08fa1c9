#pragma once
// The JSON in a checkpoint's metadata (docs/design/checkpoints.md): the architecture, the
// schedule and the run's position (FitState), to and from nlohmann::json, each read checked
// and named in its errors. Internal to the library (src/io/checkpoint.cpp).
#include <nlohmann/json.hpp>

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cudl/error.hpp"
#include "cudl/network.hpp"
#include "cudl/schedule.hpp"
#include "cudl/trainer.hpp"
#include "parse_number.hpp"

namespace cudl::detail {

// Parses text as JSON; an Error names `what` and the parser's complaint.
nlohmann::json parse_json(const std::string& text, const std::string& what);
// A decimal int; an Error names `what` and the text (parse_u64 and the others: parse_number.hpp).
int parse_int(const std::string& text, const std::string& what);

// j[key] as a T; an Error names `what`, the key and the JSON type found.
template <typename T>
T get(const nlohmann::json& j, const char* key, const std::string& what) {
  CUDL_REQUIRE(j.is_object() && j.contains(key), what + ": missing '" + key + "'");
  const nlohmann::json& v = j.at(key);
  if constexpr (std::is_same_v<T, bool>) {
    CUDL_REQUIRE(v.is_boolean(), what + ": '" + key + "' is not true or false");
  } else if constexpr (std::is_same_v<T, std::string>) {
    CUDL_REQUIRE(v.is_string(), what + ": '" + key + "' is not a string");
  } else if constexpr (std::is_floating_point_v<T>) {
    CUDL_REQUIRE(v.is_number(), what + ": '" + key + "' is not a number");
  } else {
    CUDL_REQUIRE(v.is_number_integer(), what + ": '" + key + "' is not an integer");
  }
  return v.get<T>();
}

// {"input_shape": [...], "layers": [{"type", "describe", "settings": {...}}, ...]}
nlohmann::json architecture_json(Network& net);
// Throws naming the first difference (input shape, layer count, or a layer: the network's
// description against the file's) when `arch` does not describe net's layers.
void require_architecture(const nlohmann::json& arch, Network& net, const std::string& path);
// A network of the described layers on `backend` (not yet initialised).
std::unique_ptr<Network> network_from_json(const nlohmann::json& arch, Backend& backend, const std::string& path);
void describe_architecture(const nlohmann::json& arch, const std::string& path, Shape& input,
                           std::vector<std::string>& layers);

// null without a schedule, else {"describe", "state": {name: value}}.
nlohmann::json schedule_json(const Schedule* schedule);
// The saved schedule's state for `schedule`, after checking that the file's schedule is the
// same one (or that neither run has one).
std::vector<std::pair<std::string, double>> check_schedule(const nlohmann::json& saved, const Schedule* schedule,
                                                           const std::string& path);

nlohmann::json fit_state_json(const FitState& state);

// load_checkpoint, with `accept` (when set) called on the saved FitState after every check of the
// file and before anything is loaded: fit() refuses there a checkpoint of another run, so that a
// refused resume leaves the network and optimizer as they were.
FitState load_checkpoint_if(const std::string& path, Network& net, Optimizer& opt, Schedule* schedule,
                            const std::function<void(const FitState&)>& accept);
// Everything but best_params (a tensor of the file).
FitState fit_state_from_json(const nlohmann::json& j, const std::string& path);

}  // namespace cudl::detail

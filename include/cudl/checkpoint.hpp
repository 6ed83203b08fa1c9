#pragma once
// Saving and loading models and training runs (docs/design/checkpoints.md). A file is
// safetensors: readable from Python (the `safetensors` package, or numpy in a few lines) and
// loadable into PyTorch. Tensors are stored under stable names:
//   layers.{i}.{param}   each layer's parameters (Dense "weight" is in × out, "bias"; Conv2d
//                        "weight" K×C×R×S, "bias"; BatchNorm2d "gamma", "beta")
//   layers.{i}.{state}   layer state (BatchNorm2d "running_mean", "running_var")
//   optimizer.{name}     the optimizer's state (Optimizer::state(); checkpoints only)
//   fit.best_params      early stopping's best parameters (checkpoints only, when kept)
// and the architecture, the optimizer's and schedule's settings, the run's position and
// provenance go in the header's metadata, with a CRC-32 of the data.
//
// Writes are atomic (a temporary file renamed over the target): a failed or interrupted save
// leaves the previous file as it was. Loads validate the whole file, and that it fits the
// network, before changing anything: an Error names the file and the problem (which layer,
// expected and found shapes), and the network and optimizer are then unchanged.
//
//   cudl::save_model(net, "digits.safetensors");
//   std::unique_ptr<cudl::Network> net = cudl::load_model("digits.safetensors", backend);
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cudl/backend.hpp"
#include "cudl/network.hpp"
#include "cudl/optimizer.hpp"
#include "cudl/schedule.hpp"
#include "cudl/trainer.hpp"

namespace cudl {

// The version of the file layout this build writes; it reads files of this version or older.
constexpr int kCheckpointFormatVersion = 1;

// A model: the architecture, every parameter and each layer's state. The network must be built
// (initialize() or a forward); a network whose optimizer is at a look-ahead point (inside a
// GdbnNesterov run) should be saved through save_checkpoint, which stores the true weights.
void save_model(Network& net, const std::string& path);
// A network built from a model or checkpoint file on `backend`, holding the saved parameters and
// layer state. Throws for a layer type this build does not know, or a layer of a user's own type.
std::unique_ptr<Network> load_model(const std::string& path, Backend& backend);
// Loads a model or checkpoint file's parameters and layer state into `net`, which must have the
// same layers (an Error names the first that differs and the expected and found shapes).
void load_weights(Network& net, const std::string& path);

// A training run: the model (true weights), the optimizer's state, the schedule's state (when
// given) and where the run stands. fit() writes and reads these (FitOptions::checkpoint_path,
// resume_from); a loop of one's own may call them directly.
void save_checkpoint(const std::string& path, Network& net, Optimizer& opt, const Schedule* schedule,
                     const FitState& state);
// Loads a checkpoint written by save_checkpoint into net, opt (the same optimizer type, over
// the same number of parameters) and schedule (the same schedule; null if none was saved), and
// returns where the run stood.
FitState load_checkpoint(const std::string& path, Network& net, Optimizer& opt, Schedule* schedule);

// What a file says about itself, read without loading it.
struct CheckpointInfo {
  std::string kind;          // "model" or "checkpoint"
  int format_version = 0;
  std::string cudl_version;  // of the build that wrote it
  std::string saved_from;    // Backend::describe() of the network's backend
  std::string saved_at;      // UTC, ISO 8601
  Shape input_shape;
  std::vector<std::string> layers;  // each layer's description, e.g. "Dense(800, relu)"
  std::string optimizer;     // name (checkpoints)
  int epoch = 0;             // epochs finished (checkpoints)
};
CheckpointInfo inspect_checkpoint(const std::string& path);

}  // namespace cudl

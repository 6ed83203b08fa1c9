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

/// The version of the file layout this build writes; it reads files of this version or older.
constexpr int kCheckpointFormatVersion = 1;

/// Saves a model: the architecture, every parameter and each layer's state, to `path`.
///
/// The network must be built (initialize() or a forward); a network whose optimizer is at a
/// look-ahead point (inside a GdbnNesterov run) should be saved through save_checkpoint, which
/// stores the true weights. On a GPU backend the tensors are copied to the host (a
/// synchronisation). Throws Error when the network has no layers, and naming the file when it
/// cannot be written (the previous file is then left as it was).
void save_model(Network& net, const std::string& path);
/// A network built from a model or checkpoint file on `backend`, holding the saved parameters and
/// layer state. Throws Error naming the file for a layer type this build does not know, a layer of
/// a user's own type, and for a file that is not a valid cudl model or checkpoint.
std::unique_ptr<Network> load_model(const std::string& path, Backend& backend);
/// Loads a model or checkpoint file's parameters and layer state into `net`, which must have the
/// same layers (an Error names the first that differs and the expected and found shapes).
void load_weights(Network& net, const std::string& path);

/// Saves a training run: the model (true weights), the optimizer's state, the schedule's state
/// (when given) and where the run stands.
///
/// fit() writes and reads these (FitOptions::checkpoint_path, resume_from); a loop of one's own
/// may call them directly. Throws Error when `opt` does not update `net`'s parameters, and as
/// save_model does.
void save_checkpoint(const std::string& path, Network& net, Optimizer& opt, const Schedule* schedule,
                     const FitState& state);
/// Loads a checkpoint written by save_checkpoint into net, opt (the same optimizer type, over
/// the same number of parameters) and schedule (the same schedule; null if none was saved), and
/// returns where the run stood. Throws Error naming the file, changing nothing, for a model file, a
/// checkpoint of another optimizer or schedule, or one that does not fit `net`.
FitState load_checkpoint(const std::string& path, Network& net, Optimizer& opt, Schedule* schedule);

/// What a file says about itself, read without loading it.
struct CheckpointInfo {
  std::string kind;          ///< "model" or "checkpoint".
  int format_version = 0;    ///< The file layout's version (≤ kCheckpointFormatVersion).
  std::string cudl_version;  ///< The cudl version of the build that wrote it.
  std::string saved_from;    ///< Backend::describe() of the network's backend.
  std::string saved_at;      ///< When: UTC, ISO 8601.
  Shape input_shape;         ///< The network's per-sample input shape.
  std::vector<std::string> layers;  ///< Each layer's description, e.g. "Dense(800, relu)".
  std::string optimizer;     ///< The optimizer's name (checkpoints; empty for a model).
  int epoch = 0;             ///< Epochs finished (checkpoints; 0 for a model).
};
/// Reads a model or checkpoint file's header (its metadata), not its tensors. Throws Error naming
/// the file when it is not a cudl file of a version this build reads.
CheckpointInfo inspect_checkpoint(const std::string& path);

}  // namespace cudl

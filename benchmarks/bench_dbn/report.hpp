#pragma once
// What bench_dbn prints and writes to --json.
#include <string>
#include <vector>

#include "cudl/data.hpp"
#include "cudl/metrics.hpp"
#include "cudl/rbm.hpp"
#include "cudl/trainer.hpp"
#include "options.hpp"

namespace bench {

struct PretrainedLayer {
  int64_t visible = 0, hidden = 0;
  std::string units;  // "gaussian-noisy-relu", ...
  std::vector<cudl::RbmEpochReport> epochs;
};

struct Run {
  Options options;
  cudl::DatasetLocation location;
  int64_t rows = 0, train_rows = 0, test_rows = 0, features = 0, classes = 0;
  std::string device;         // backend description
  std::string precision;      // the arithmetic it runs (Backend::precision()); empty before it exists
  int ranks = 1;              // data-parallel ranks (mpirun -np N)
  std::string communicator;   // Communicator::describe() with several ranks
  double allreduce_s = -1;    // rank 0's time in the gradient all-reduces (< 0: not measured)
  int64_t allreduce_calls = 0;
  std::string date;           // ISO 8601, UTC
  std::vector<PretrainedLayer> pretraining;
  double pretrain_s = 0;
  double pretrain_allreduce_s = -1;  // the same for the RBMs' gradients during pretraining
  int64_t pretrain_allreduce_calls = 0;
  std::vector<cudl::EpochReport> epochs;  // every epoch of the run, a resumed run's earlier ones too
  int resumed_epochs = 0;                 // epochs the --resume checkpoint had finished
  bool evaluated = false;
  cudl::ClassificationReport report;
  double backend_s = 0;  // creating the backend, overlapped with loading
  double load_s = 0, train_s = 0, evaluate_s = 0, total_s = 0;  // load: until the data is on the device
  std::string status = "ok";  // ok | diverged | error | interrupted
  std::string error;
};

std::string header_line(const Run& run);
std::string settings_line(const Run& run);
std::string epoch_block(const cudl::EpochReport& e);  // nolearn's "Epoch k:" block
std::string pretrain_header(size_t layer, const PretrainedLayer& p);
std::string pretrain_line(const cudl::RbmEpochReport& e);
std::string timing_line(const Run& run);
double median_epoch_seconds(const Run& run);
// The run as the --json report (main writes it with save_json).
std::string to_json(const Run& run);

}  // namespace bench

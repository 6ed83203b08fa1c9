#pragma once
// What bench_vgg prints and writes to --json. vgg_torch.py writes the same fields.
#include <string>
#include <vector>

#include "cudl/network.hpp"
#include "options.hpp"

namespace bench {

struct VggRun {
  VggOptions options;
  std::string date;            // ISO 8601, UTC
  std::string device;          // the backend's description
  std::string precision;       // the arithmetic it runs (Backend::precision()); empty before it exists
  std::string summary;         // Network::summary()
  std::vector<std::string> plans;  // the GPU's cuDNN convolution plans (cudl::convolution_plans)
  int64_t parameters = 0;
  double flop_per_step = 0;    // vgg16_step_flop
  std::vector<double> warmup_ms, iteration_ms;
  // --layers: each layer's mean forward and backward ms per step (Network::layer_times), and the
  // median of those steps' times (the layers' marks make them slightly slower than the timed ones).
  std::vector<cudl::LayerTime> layers;
  double layered_step_ms = 0;
  double mean_loss = 0;        // mean cross-entropy over the timed steps' samples
  double backend_s = 0, setup_s = 0, warmup_s = 0, timed_s = 0, total_s = 0;
  std::string status = "ok";   // ok | error
  std::string error;
};

// Summary statistics of the timed iterations.
struct Throughput {
  double median_ms = 0, mean_ms = 0, min_ms = 0, max_ms = 0;
  double median_images_s = 0, mean_images_s = 0;  // batch / median time; batch / mean time
};
Throughput throughput(const VggRun& run);

std::string header_line(const VggRun& run);
std::string data_line();
std::string work_line(const VggRun& run);
std::string results_text(const VggRun& run);  // iteration times, throughput, arithmetic, loss, timing
// --layers: one line per layer (mean ms per step forward, backward, both, share of the step), then
// the rest of the step (loss, update, and the time between layers); empty without it.
std::string layers_text(const VggRun& run);
// The run as the --json report (main writes it with save_json).
std::string to_json(const VggRun& run);

}  // namespace bench

#include "report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <sstream>

#include "json.hpp"

namespace bench {
namespace {

std::string list_ms(const std::vector<double>& xs) {
  std::string s;
  for (size_t i = 0; i < xs.size(); ++i) s += (i ? " " : "") + fmt("%.1f", xs[i]);
  return s;
}

double median(std::vector<double> xs) {
  if (xs.empty()) return 0.0;
  std::sort(xs.begin(), xs.end());
  const size_t n = xs.size();
  return n % 2 ? xs[n / 2] : 0.5 * (xs[n / 2 - 1] + xs[n / 2]);
}

}  // namespace

Throughput throughput(const VggRun& r) {
  Throughput t;
  const auto& ms = r.iteration_ms;
  if (ms.empty()) return t;
  const double batch = static_cast<double>(r.options.batch);
  t.median_ms = median(ms);
  t.mean_ms = std::accumulate(ms.begin(), ms.end(), 0.0) / static_cast<double>(ms.size());
  t.min_ms = *std::min_element(ms.begin(), ms.end());
  t.max_ms = *std::max_element(ms.begin(), ms.end());
  t.median_images_s = batch / (t.median_ms * 1e-3);
  t.mean_images_s = batch / (t.mean_ms * 1e-3);
  return t;
}

std::string header_line(const VggRun& r) {
  const auto& o = r.options;
  return "cudl bench_vgg | VGG16 (configuration D) on 3×" + std::to_string(o.size) + "×" + std::to_string(o.size) +
         " images, " + std::to_string(o.classes) + " classes | batch " + std::to_string(o.batch) + " | " + r.device;
}

std::string data_line() {
  return "data: synthetic (one batch of N(0, 1) images and uniform random labels, made once on the device; "
         "no input pipeline is timed)";
}

std::string work_line(const VggRun& r) {
  const auto& o = r.options;
  return "work per iteration: forward, softmax cross-entropy, backward, GdbnNesterov update (learn rate " +
         fmt("%g", o.learn_rate) + ", momentum " + fmt("%g", o.momentum) + ", L2 " + fmt("%g", o.l2) +
         "); the backend is synchronised before each clock read; " + std::to_string(o.warmup) + " warm-up + " +
         std::to_string(o.iters) + " timed iterations, precision " + r.precision;
}

std::string results_text(const VggRun& r) {
  const Throughput t = throughput(r);
  std::string s;
  s += "warm-up ms: " + list_ms(r.warmup_ms) + "\n";
  s += "iteration ms: " + list_ms(r.iteration_ms) + "\n";
  s += "throughput: median " + fmt("%.1f", t.median_images_s) + " images/s (" + fmt("%.2f", t.median_ms) +
       " ms/iteration), mean " + fmt("%.1f", t.mean_images_s) + " images/s (" + fmt("%.2f", t.mean_ms) +
       " ms/iteration); min " + fmt("%.2f", t.min_ms) + " ms, max " + fmt("%.2f", t.max_ms) + " ms\n";
  s += "arithmetic: " + fmt("%.2f", r.flop_per_step * 1e-9) +
       " GFLOP per iteration (convolution and dense products, forward and backward), " +
       fmt("%.1f", t.median_ms > 0 ? r.flop_per_step / (t.median_ms * 1e-3) * 1e-9 : 0.0) +
       " GFLOP/s at the median\n";
  s += "mean loss over the timed iterations " + fmt("%.4f", r.mean_loss) + " (ln K = " +
       fmt("%.4f", std::log(static_cast<double>(r.options.classes))) + ")\n";
  s += "timing: backend " + fmt("%.3f", r.backend_s) + " s, setup " + fmt("%.3f", r.setup_s) + " s, warm-up " +
       fmt("%.3f", r.warmup_s) + " s, timed " + fmt("%.3f", r.timed_s) + " s, total " + fmt("%.3f", r.total_s) +
       " s\n";
  return s;
}

std::string layers_text(const VggRun& r) {
  if (r.layers.empty()) return "";
  char line[256];
  std::string s = "per layer, mean ms per step over " + std::to_string(r.layers.front().forwards) +
                  " steps (each layer timed on the backend's queue; those steps' median " +
                  fmt("%.2f", r.layered_step_ms) + " ms):\n";
  std::snprintf(line, sizeof line, "  %-3s %-46s %9s %9s %9s %7s\n", "#", "layer", "forward", "backward", "both",
                "share");
  s += line;
  const double step = r.layered_step_ms;
  double layers_ms = 0;
  for (size_t i = 0; i < r.layers.size(); ++i) {
    const cudl::LayerTime& l = r.layers[i];
    const double f = l.forwards ? l.forward_ms / static_cast<double>(l.forwards) : 0.0;
    const double b = l.backwards ? l.backward_ms / static_cast<double>(l.backwards) : 0.0;
    layers_ms += f + b;
    std::snprintf(line, sizeof line, "  %-3zu %-46s %9.3f %9.3f %9.3f %6.1f%%\n", i, l.layer.c_str(), f, b, f + b,
                  step > 0 ? 100.0 * (f + b) / step : 0.0);
    s += line;
  }
  const double rest = step - layers_ms;
  std::snprintf(line, sizeof line, "  %-3s %-46s %9s %9s %9.3f %6.1f%%\n", "", "rest (loss, update, gaps)", "", "",
                rest, step > 0 ? 100.0 * rest / step : 0.0);
  s += line;
  return s;
}

std::string to_json(const VggRun& r) {
  const auto& o = r.options;
  const Throughput t = throughput(r);
  std::ostringstream j;
  j << "{\n  \"tool\": \"bench_vgg\",\n  \"date\": " << quote(r.date) << ",\n  \"status\": " << quote(r.status)
    << ",\n  \"error\": " << (r.error.empty() ? "null" : quote(r.error)) << ",\n";
  j << "  \"device\": {\"kind\": " << quote(o.device) << ", \"description\": " << quote(r.device)
    << ", \"threads_requested\": " << o.threads
    << ", \"precision\": " << (r.precision.empty() ? "null" : quote(r.precision)) << "},\n";
  j << "  \"settings\": {\"network\": \"VGG16-D\", \"size\": " << o.size << ", \"batch\": " << o.batch
    << ", \"classes\": " << o.classes << ", \"warmup\": " << o.warmup << ", \"iters\": " << o.iters
    << ", \"seed\": " << o.seed << ", \"learn_rate\": " << num(o.learn_rate) << ", \"momentum\": "
    << num(o.momentum) << ", \"l2\": " << num(o.l2)
    << ", \"conv_determinism\": " << quote(cudl::to_string(o.conv_determinism))
    << ", \"data\": \"synthetic\", \"work\": \"forward+loss+backward+update\"},\n";
  j << "  \"network\": {\"parameters\": " << r.parameters << ", \"summary\": " << quote(r.summary) << "},\n";
  j << "  \"convolution_plans\": [";
  for (size_t i = 0; i < r.plans.size(); ++i) j << (i ? ", " : "") << quote(r.plans[i]);
  j << "],\n";
  j << "  \"flop_per_iteration\": " << num(r.flop_per_step) << ",\n";
  j << "  \"warmup_ms\": " << array(r.warmup_ms) << ",\n  \"iteration_ms\": " << array(r.iteration_ms) << ",\n";
  j << "  \"ms_per_iteration\": {\"median\": " << num(t.median_ms) << ", \"mean\": " << num(t.mean_ms)
    << ", \"min\": " << num(t.min_ms) << ", \"max\": " << num(t.max_ms) << "},\n";
  j << "  \"images_per_s\": {\"median\": " << num(t.median_images_s) << ", \"mean\": " << num(t.mean_images_s)
    << "},\n";
  j << "  \"layers\": [";
  for (size_t i = 0; i < r.layers.size(); ++i) {
    const cudl::LayerTime& l = r.layers[i];
    j << (i ? ",\n    " : "\n    ") << "{\"layer\": " << quote(l.layer) << ", \"forward_ms\": "
      << num(l.forwards ? l.forward_ms / static_cast<double>(l.forwards) : 0.0) << ", \"backward_ms\": "
      << num(l.backwards ? l.backward_ms / static_cast<double>(l.backwards) : 0.0) << ", \"steps\": " << l.forwards
      << "}";
  }
  j << (r.layers.empty() ? "" : "\n  ") << "],\n";
  j << "  \"layered_step_ms\": " << (r.layers.empty() ? "null" : num(r.layered_step_ms)) << ",\n";
  j << "  \"mean_loss\": " << (r.iteration_ms.empty() ? "null" : num(r.mean_loss)) << ",\n";
  j << "  \"timing\": {\"backend_s\": " << num(r.backend_s) << ", \"setup_s\": " << num(r.setup_s)
    << ", \"warmup_s\": " << num(r.warmup_s) << ", \"timed_s\": " << num(r.timed_s) << ", \"total_s\": "
    << num(r.total_s) << "}\n}\n";
  return j.str();
}

}  // namespace bench

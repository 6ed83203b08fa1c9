#include "report.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "json.hpp"

namespace bench {
namespace {

std::string layers_text(const std::vector<int64_t>& layers) {
  std::string s;
  for (size_t i = 0; i < layers.size(); ++i) s += (i ? "-" : "") + std::to_string(layers[i]);
  return s;
}

}  // namespace

std::string header_line(const Run& r) {
  return "cudl bench_dbn | " + r.location.name + " from " + r.location.dir + " (" + r.location.reason + ") | " +
         std::to_string(r.rows) + " rows, split " + std::to_string(r.train_rows) + " train / " +
         std::to_string(r.test_rows) + " test | layers " + layers_text(r.options.layers) + " | " + r.device +
         (r.ranks > 1 ? " | ranks " + std::to_string(r.ranks) + " (" + r.communicator + ")" : "");
}

std::string settings_line(const Run& r) {
  const auto& t = r.options.train;
  const int64_t steps = r.train_rows / (t.batch * r.ranks);
  const std::string batch = r.ranks > 1 ? std::to_string(t.batch) + " per rank × " + std::to_string(r.ranks) + " ranks"
                                        : std::to_string(t.batch);
  return "settings: learn rate " + fmt("%g", t.learn_rate) + " ×" + fmt("%g", t.decay) + "/epoch, momentum " +
         fmt("%g", t.momentum) + ", L2 " + fmt("%g", t.l2) + ", batch " + batch + ", " +
         std::to_string(t.epochs) + " epochs of " + std::to_string(steps) +
         " minibatches drawn with replacement, seed " + std::to_string(t.seed) + ", precision " + r.precision;
}

std::string epoch_block(const cudl::EpochReport& e) {
  return "Epoch " + std::to_string(e.epoch) + ":\n  loss " + fmt("%.6g", e.loss) + "\n  err  " + fmt("%.6g", e.err) +
         "\n  (" + fmt("%.3f", e.seconds) + "s)\n";
}

std::string pretrain_header(size_t layer, const PretrainedLayer& p) {
  return "Pretraining layer " + std::to_string(layer + 1) + " (" + std::to_string(p.visible) + "-" +
         std::to_string(p.hidden) + ", " + p.units + " RBM):\n";
}

std::string pretrain_line(const cudl::RbmEpochReport& e) {
  std::string s = "  Epoch " + std::to_string(e.epoch) + ": reconstruction error " + fmt("%.6g", e.reconstruction_error) +
                  " (held-out " + fmt("%.6g", e.heldout_reconstruction_error) + ")";
  if (std::isfinite(e.free_energy))
    s += ", free energy " + fmt("%.6g", e.free_energy) + " (held-out " + fmt("%.6g", e.heldout_free_energy) + ")";
  return s + " (" + fmt("%.3f", e.seconds) + "s" + (e.captured ? ", captured steps" : "") + ")\n";
}

double median_epoch_seconds(const Run& r) {
  if (r.epochs.empty()) return 0.0;
  std::vector<double> s;
  for (const auto& e : r.epochs) s.push_back(e.seconds);
  std::sort(s.begin(), s.end());
  const size_t n = s.size();
  return n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

std::string timing_line(const Run& r) {
  const size_t trained = r.epochs.size() - std::min(r.epochs.size(), static_cast<size_t>(r.resumed_epochs));
  const double per_epoch = trained == 0 ? 0.0 : r.train_s / static_cast<double>(trained);
  return "timing: backend " + fmt("%.3f", r.backend_s) + " s during load " + fmt("%.3f", r.load_s) +
         " s, train " + fmt("%.3f", r.train_s) + " s (" +
         fmt("%.3f", per_epoch) + " s/epoch, median " + fmt("%.3f", median_epoch_seconds(r)) + "), evaluate " +
         fmt("%.3f", r.evaluate_s) + " s, total " + fmt("%.3f", r.total_s) + " s" +
         (r.allreduce_s >= 0 ? "; rank 0's gradient all-reduces " + fmt("%.3f", r.allreduce_s) + " s of the training (" +
                                   std::to_string(r.allreduce_calls) + " steps, " +
                                   fmt("%.3f", r.allreduce_calls > 0 ? 1e3 * r.allreduce_s / r.allreduce_calls : 0.0) +
                                   " ms each)"
                             : "") +
         (r.pretrain_allreduce_s >= 0 ? "; rank 0's pretraining all-reduces " + fmt("%.3f", r.pretrain_allreduce_s) +
                                            " s of " + fmt("%.3f", r.pretrain_s) + " s (" +
                                            std::to_string(r.pretrain_allreduce_calls) + " steps)"
                                      : "") +
         (r.epochs.empty()                ? ""
          : r.epochs.front().fused        ? " (each epoch runs the fused step: one persistent kernel)"
          : r.epochs.front().captured     ? " (each epoch replays one captured step; not fused: " +
                                            r.epochs.front().not_fused + ")"
                                          : "");
}

std::string to_json(const Run& r) {
  const auto& t = r.options.train;
  std::ostringstream j;
  j << "{\n  \"tool\": \"bench_dbn\",\n  \"date\": " << quote(r.date) << ",\n  \"status\": " << quote(r.status)
    << ",\n  \"error\": " << (r.error.empty() ? "null" : quote(r.error)) << ",\n";
  j << "  \"dataset\": {\"name\": " << quote(r.location.name) << ", \"dir\": " << quote(r.location.dir)
    << ", \"found_by\": " << quote(r.location.reason) << ", \"rows\": " << r.rows
    << ", \"train_rows\": " << r.train_rows << ", \"test_rows\": " << r.test_rows << ", \"features\": " << r.features
    << ", \"classes\": " << r.classes << "},\n";
  j << "  \"device\": {\"kind\": " << quote(r.options.device) << ", \"description\": " << quote(r.device)
    << ", \"threads_requested\": " << r.options.threads
    << ", \"precision\": " << (r.precision.empty() ? "null" : quote(r.precision)) << ", \"captured_steps\": "
    << (!r.epochs.empty() && r.epochs.front().captured ? "true" : "false") << ", \"fused_steps\": "
    << (!r.epochs.empty() && r.epochs.front().fused ? "true" : "false") << ", \"ranks\": " << r.ranks
    << ", \"communicator\": " << (r.communicator.empty() ? "null" : quote(r.communicator)) << "},\n";
  j << "  \"settings\": {\"layers\": " << array(r.options.layers) << ", \"learn_rate\": " << num(t.learn_rate)
    << ", \"decay\": " << num(t.decay) << ", \"momentum\": " << num(t.momentum) << ", \"l2\": " << num(t.l2)
    << ", \"batch\": " << t.batch << ", \"epochs\": " << t.epochs << ", \"seed\": " << t.seed
    << ", \"test_size\": " << num(r.options.test_size) << ", \"pretrain_epochs\": " << r.options.pretrain_epochs
    << ", \"resumed_from\": " << (r.options.resume.empty() ? "null" : quote(r.options.resume))
    << ", \"resumed_epochs\": " << r.resumed_epochs << "},\n";
  j << "  \"pretraining\": [";
  for (size_t l = 0; l < r.pretraining.size(); ++l) {
    const auto& p = r.pretraining[l];
    j << (l ? ",\n    " : "\n    ") << "{\"layer\": " << l + 1 << ", \"visible\": " << p.visible
      << ", \"hidden\": " << p.hidden << ", \"units\": " << quote(p.units) << ", \"epochs\": [";
    for (size_t e = 0; e < p.epochs.size(); ++e) {
      const auto& pe = p.epochs[e];
      j << (e ? ", " : "") << "{\"epoch\": " << pe.epoch << ", \"reconstruction_error\": "
        << num(pe.reconstruction_error) << ", \"heldout_reconstruction_error\": " << num(pe.heldout_reconstruction_error)
        << ", \"free_energy\": " << num(pe.free_energy) << ", \"heldout_free_energy\": " << num(pe.heldout_free_energy)
        << ", \"seconds\": " << num(pe.seconds) << ", \"captured_steps\": " << (pe.captured ? "true" : "false")
        << "}";
    }
    j << "]}";
  }
  j << (r.pretraining.empty() ? "],\n" : "\n  ],\n");
  j << "  \"epochs\": [";
  for (size_t i = 0; i < r.epochs.size(); ++i) {
    const auto& e = r.epochs[i];
    j << (i ? ",\n    " : "\n    ") << "{\"epoch\": " << e.epoch << ", \"loss\": " << num(e.loss)
      << ", \"err\": " << num(e.err) << ", \"seconds\": " << num(e.seconds) << ", \"learn_rate\": " << num(e.learn_rate)
      << ", \"minibatches\": " << e.steps << "}";
  }
  j << (r.epochs.empty() ? "],\n" : "\n  ],\n");
  if (r.evaluated) {
    const auto& c = r.report;
    j << "  \"test\": {\"accuracy\": " << num(c.accuracy) << ", \"precision\": " << array(c.precision)
      << ", \"recall\": " << array(c.recall) << ", \"f1\": " << array(c.f1) << ", \"support\": " << array(c.support)
      << ", \"avg_precision\": " << num(c.avg_precision) << ", \"avg_recall\": " << num(c.avg_recall)
      << ", \"avg_f1\": " << num(c.avg_f1) << ", \"total\": " << c.total << "},\n";
  } else {
    j << "  \"test\": null,\n";
  }
  j << "  \"timing\": {\"backend_s\": " << num(r.backend_s) << ", \"load_s\": " << num(r.load_s)
    << ", \"pretrain_s\": " << num(r.pretrain_s)
    << ", \"train_s\": " << num(r.train_s)
    << ", \"median_epoch_s\": " << num(median_epoch_seconds(r)) << ", \"evaluate_s\": " << num(r.evaluate_s)
    << ", \"total_s\": " << num(r.total_s) << ", \"allreduce_s\": " << (r.allreduce_s >= 0 ? num(r.allreduce_s) : "null")
    << ", \"allreduce_calls\": " << r.allreduce_calls << ", \"pretrain_allreduce_s\": "
    << (r.pretrain_allreduce_s >= 0 ? num(r.pretrain_allreduce_s) : "null")
    << ", \"pretrain_allreduce_calls\": " << r.pretrain_allreduce_calls << "}\n}\n";
  return j.str();
}

}  // namespace bench

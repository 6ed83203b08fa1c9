#include "options.hpp"

#include "command_line.hpp"
#include "cudl/error.hpp"

namespace bench {

std::optional<int> parse_vgg_options(int argc, char** argv, VggOptions* out) {
  VggOptions& o = *out;
  CLI::App app(R"(Training throughput of VGG16 (configuration D: 13 3×3 convolutions with ReLU in five blocks of
64, 128, 256, 512, 512 channels, each block ending in 2×2 max pooling; then Dense 4096 ReLU,
Dropout 0.5, Dense 4096 ReLU, Dropout 0.5, Dense K) on synthetic data: one batch of N(0, 1)
images and uniform random labels, made once on the device. Each timed iteration is one training
step as cudl's trainer does it: forward, softmax cross-entropy, backward, the GdbnNesterov update;
the backend is synchronised before the clock is read. benchmarks/peers/vgg_torch.py times the
same work in PyTorch.
)",
               "bench_vgg");
  setup_app(app, 25);
  app.footer("Exit status: 0 success, 2 bad input or unavailable device.");
  using Text = const std::string&;
  add_value(app, "--device", "cpu|gpu", "where to run (default cpu)", [&](Text v) { o.device = parse_device(v); });
  add_precision(app, &o.precision);
  add_conv_determinism(app, &o.conv_determinism);
  add_value(app, "--size", "S",
            "input S×S×3, S a multiple of 32 (default 224 on the GPU, 32 on the CPU;\n"
            "the first dense layer then has 512·(S/32)² inputs)",
            [&](Text v) {
              o.size = parse_whole<int64_t>("--size", v, 32);
              if (o.size % 32 != 0)
                throw cudl::Error("--size: VGG16 halves the input five times, so S must be a multiple of 32, found '" +
                                  v + "'");
            });
  add_value(app, "--batch", "N", "images per step (default 64 on the GPU, 16 on the CPU)",
            [&](Text v) { o.batch = parse_whole<int64_t>("--batch", v, 1); });
  add_value(app, "--classes", "K", "outputs of the last layer (default 1000)",
            [&](Text v) { o.classes = parse_whole<int64_t>("--classes", v, 2); });
  add_value(app, "--warmup", "N", "untimed steps first (default 5 on the GPU, 2 on the CPU)",
            [&](Text v) { o.warmup = parse_whole<int>("--warmup", v, 0); });
  add_value(app, "--iters", "N", "timed steps (default 20 on the GPU, 10 on the CPU)",
            [&](Text v) { o.iters = parse_whole<int>("--iters", v, 1); });
  add_value(app, "--threads", "N", "CPU threads (default: all available)",
            [&](Text v) { o.threads = parse_whole<int>("--threads", v, 0, 4096); });
  add_value(app, "--seed", "N", "seed of the synthetic data and the initial weights (default 2014)",
            [&](Text v) { o.seed = parse_uint64("--seed", v); });
  add_value(app, "--learn-rate", "X", "the update's learning rate (default 1e-4)", [&](Text v) {
    o.learn_rate = static_cast<float>(parse_number("--learn-rate", v));
    if (o.learn_rate <= 0) throw cudl::Error("--learn-rate: must be positive, found '" + v + "'");
  });
  add_value(app, "--momentum", "X", "the update's momentum (default 0.9)", [&](Text v) {
    o.momentum = static_cast<float>(parse_number("--momentum", v));
    if (o.momentum < 0 || o.momentum >= 1) throw cudl::Error("--momentum: must be in [0, 1), found '" + v + "'");
  });
  add_value(app, "--l2", "X", "the update's L2 weight cost (default 5e-4, the VGG paper's)", [&](Text v) {
    o.l2 = static_cast<float>(parse_number("--l2", v));
    if (o.l2 < 0) throw cudl::Error("--l2: must be non-negative, found '" + v + "'");
  });
  app.add_flag("--layers", o.layers,
               "after the timed steps, --iters more with each layer's forward and backward\n"
               "timed on the backend's queue (GPU events), printed as a per-layer table");
  add_value(app, "--json", "FILE", "also write the results, machine-readably", [&](Text v) { o.json = v; });
  if (const std::optional<int> status = parse_command_line(app, argc, argv)) return status;
  const bool gpu = o.device == "gpu";
  if (o.size == 0) o.size = gpu ? 224 : 32;
  if (o.batch == 0) o.batch = gpu ? 64 : 16;
  if (o.warmup < 0) o.warmup = gpu ? 5 : 2;
  if (o.iters == 0) o.iters = gpu ? 20 : 10;
  return std::nullopt;
}

}  // namespace bench

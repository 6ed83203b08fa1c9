#include "options.hpp"

#include "cli.hpp"
#include "cudl/error.hpp"

namespace bench {
namespace {


}  // namespace

const char* vgg_usage() {
  return R"(usage: bench_vgg [options]
Training throughput of VGG16 (configuration D: 13 3×3 convolutions with ReLU in five blocks of
64, 128, 256, 512, 512 channels, each block ending in 2×2 max pooling; then Dense 4096 ReLU,
Dropout 0.5, Dense 4096 ReLU, Dropout 0.5, Dense K) on synthetic data: one batch of N(0, 1)
images and uniform random labels, made once on the device. Each timed iteration is one training
step as cudl's trainer does it: forward, softmax cross-entropy, backward, the GdbnNesterov update;
the backend is synchronised before the clock is read. benchmarks/peers/vgg_torch.py times the
same work in PyTorch.

  --device cpu|gpu       where to run (default cpu)
  --precision fp32|tf32  GPU convolutions and products in strict fp32 (default) or on tf32 tensor
                         cores
  --size S               input S×S×3, S a multiple of 32 (default 224 on the GPU, 32 on the CPU;
                         the first dense layer then has 512·(S/32)² inputs)
  --batch N              images per step (default 64 on the GPU, 16 on the CPU)
  --classes K            outputs of the last layer (default 1000)
  --warmup N             untimed steps first (default 5 on the GPU, 2 on the CPU)
  --iters N              timed steps (default 20 on the GPU, 10 on the CPU)
  --threads N            CPU threads (default: all available)
  --seed N               seed of the synthetic data and the initial weights (default 2014)
  --learn-rate X, --momentum X, --l2 X
                         the update's settings (default 1e-4, 0.9, 5e-4)
  --json FILE            also write the results, machine-readably
  --help                 this text
Exit status: 0 success, 2 bad input or unavailable device.
)";
}

VggOptions parse_vgg_options(int argc, char** argv) {
  VggOptions o;
  for_each_flag(argc, argv, &o.help, [&](const std::string& flag, const std::string& v) {
    if (flag == "--device") {
      o.device = parse_device(v);
    } else if (flag == "--precision") {
      o.precision = parse_precision(v);
    } else if (flag == "--size") {
      o.size = parse_whole<int64_t>(flag, v, 32);
      if (o.size % 32 != 0)
        throw cudl::Error("--size: VGG16 halves the input five times, so S must be a multiple of 32, found '" + v +
                          "'");
    } else if (flag == "--batch") {
      o.batch = parse_whole<int64_t>(flag, v, 1);
    } else if (flag == "--classes") {
      o.classes = parse_whole<int64_t>(flag, v, 2);
    } else if (flag == "--warmup") {
      o.warmup = parse_whole<int>(flag, v, 0);
    } else if (flag == "--iters") {
      o.iters = parse_whole<int>(flag, v, 1);
    } else if (flag == "--threads") {
      o.threads = parse_whole<int>(flag, v, 0, 4096);
    } else if (flag == "--seed") {
      o.seed = parse_uint64(flag, v);
    } else if (flag == "--learn-rate") {
      o.learn_rate = static_cast<float>(parse_number(flag, v));
      if (o.learn_rate <= 0) throw cudl::Error("--learn-rate: must be positive, found '" + v + "'");
    } else if (flag == "--momentum") {
      o.momentum = static_cast<float>(parse_number(flag, v));
      if (o.momentum < 0 || o.momentum >= 1) throw cudl::Error("--momentum: must be in [0, 1), found '" + v + "'");
    } else if (flag == "--l2") {
      o.l2 = static_cast<float>(parse_number(flag, v));
      if (o.l2 < 0) throw cudl::Error("--l2: must be non-negative, found '" + v + "'");
    } else if (flag == "--json") {
      o.json = v;
    } else {
      return false;
    }
    return true;
  });
  const bool gpu = o.device == "gpu";
  if (o.size == 0) o.size = gpu ? 224 : 32;
  if (o.batch == 0) o.batch = gpu ? 64 : 16;
  if (o.warmup < 0) o.warmup = gpu ? 5 : 2;
  if (o.iters == 0) o.iters = gpu ? 20 : 10;
  return o;
}

}  // namespace bench

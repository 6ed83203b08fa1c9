// A user's program, built against an installed cudl by tests/consumer/run.sh: through CMake
// (cmake/CMakeLists.txt, find_package) and through pkg-config (pkgconfig/Makefile). It includes
// only <cudl/cudl.hpp>, so it compiles with a plain C++17 compiler and nothing of CUDA or Eigen.
//
//   consumer                 trains a tiny classifier on the CPU; exit 0 when it learns
//   consumer --device gpu    the same on the GPU; without a usable one, prints the library's
//                            sentence and exits 2
// Exit 1: training went wrong (an error, or accuracy below 90%).
#include <cudl/cudl.hpp>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <vector>

namespace {

// Two classes of 2-D points (rows R): inside or outside the circle of radius 0.6, drawn with
// cudl's counter-based generator so that every build sees the same data.
void make_disc(int64_t rows, std::vector<float>& x, std::vector<float>& y) {
  for (int64_t r = 0; r < rows; ++r) {
    const cudl::rng::Philox4 b = cudl::rng::bits(7, 0, static_cast<uint64_t>(r));
    const float px = 2.0f * cudl::rng::uniform(b.v[0]) - 1.0f;
    const float py = 2.0f * cudl::rng::uniform(b.v[1]) - 1.0f;
    x.push_back(px);
    x.push_back(py);
    y.push_back(std::sqrt(px * px + py * py) < 0.6f ? 1.0f : 0.0f);
  }
}

}  // namespace

int main(int argc, char** argv) {
  cudl::Device device = cudl::Device::kCpu;
  if (argc == 3 && !std::strcmp(argv[1], "--device") && !std::strcmp(argv[2], "gpu")) {
    device = cudl::Device::kCuda;
  } else if (argc != 1) {
    std::fprintf(stderr, "usage: consumer [--device gpu]\n");
    return 1;
  }
  std::printf("cudl %s (version %d.%d.%d; CUDA backend %s)\n", CUDL_VERSION_STRING, CUDL_VERSION_MAJOR,
              CUDL_VERSION_MINOR, CUDL_VERSION_PATCH, CUDL_HAVE_CUDA ? "built" : "not built");

  std::unique_ptr<cudl::Backend> backend;
  try {
    cudl::BackendOptions options;
    options.threads = 1;
    backend = cudl::make_backend(device, options);
  } catch (const cudl::Error& e) {
    std::fprintf(stderr, "consumer: %s\n", e.what());  // "cannot use the GPU: <why>"
    return 2;
  }
  try {
    constexpr int64_t kRows = 2048;
    std::vector<float> xs, ys;
    make_disc(kRows, xs, ys);
    const cudl::Tensor x = cudl::Tensor::from_host(xs, {kRows, 2}, *backend);
    const cudl::Tensor y = cudl::Tensor::from_host(ys, {kRows}, *backend);

    cudl::Network net(*backend, {2});
    net.add(cudl::dense(16, cudl::Activation::kRelu)).add(cudl::dense(2));
    net.initialize(/*seed=*/1, /*weight_stddev=*/0.5f);
    cudl::SoftmaxCrossEntropy loss;
    cudl::AdamOptions adam;
    adam.learn_rate = 0.02f;
    cudl::Adam opt(net.param_set(), adam);
    cudl::FitOptions fit;
    fit.epochs = 20;
    fit.batch = 64;
    fit.progress = cudl::Progress::kNone;
    const cudl::History h = cudl::fit(net, loss, opt, x, y, fit);

    const std::vector<int> predicted = cudl::predict(net, x);
    int64_t right = 0;
    for (int64_t r = 0; r < kRows; ++r) right += predicted[static_cast<size_t>(r)] == static_cast<int>(ys[static_cast<size_t>(r)]);
    const double accuracy = static_cast<double>(right) / kRows;
    std::printf("trained on %s: %zu epochs, loss %.4f -> %.4f, accuracy %.1f%%\n", backend->describe().c_str(),
                h.epochs.size(), h.epochs.front().loss, h.epochs.back().loss, 100.0 * accuracy);
    return accuracy >= 0.9 ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "consumer: %s\n", e.what());
    return 1;
  }
}

// The cuDNN engines the GPU backend chooses (skipped without a GPU): under
// ConvDeterminism::kDeterministic no plan carries a rejected note and every convolution repeats
// itself bit for bit; and the heuristics' engine lists for the shapes cudl runs, written in the
// text form of tests/data/cudnn_engines/ (README.md there) so the host tests can check the filter
// on what a real GPU returns.
#include <cuda_runtime.h>
#include <cudnn.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cudl/cpu_backend.hpp"
#include "cudl/cuda_backend.hpp"
#include "cudl/device.hpp"
#include "cudnn_graph.hpp"
#include "test_support.hpp"

using namespace cudl;
using cudl::cuda::ConvOp;
using cudl::testing::uniform_values;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

Conv2dShape shape(int64_t n, int64_t c, int64_t h, int64_t w, int64_t k, int64_t r, int64_t s, int64_t stride,
                  int64_t pad, int64_t dilation = 1) {
  Conv2dShape out;
  out.n = n, out.c = c, out.h = h, out.w = w, out.k = k, out.r = r, out.s = s;
  out.params.stride_h = out.params.stride_w = stride;
  out.params.pad_h = out.params.pad_w = pad;
  out.params.dilation_h = out.params.dilation_w = dilation;
  out.p = window_output_size(h, r, stride, pad, dilation);
  out.q = window_output_size(w, s, stride, pad, dilation);
  return out;
}

// The shapes cudl's programs and tests run: LeNet's two layers, the 5×5 filter gradient whose
// fastest fp32 engine is imprecise on an H200, two VGG16 layers, and an odd one.
const Conv2dShape kShapes[] = {
    shape(64, 1, 28, 28, 20, 5, 5, 1, 0),  shape(64, 20, 12, 12, 50, 5, 5, 1, 0),
    shape(64, 32, 14, 14, 64, 5, 5, 1, 2),     shape(64, 3, 224, 224, 64, 3, 3, 1, 1),
    shape(64, 512, 14, 14, 512, 3, 3, 1, 1),   shape(2, 3, 9, 7, 4, 3, 2, 2, 1, 2),
};

class CudaConvEngines : public ::testing::Test {
 protected:
  void SetUp() override {
    const GpuProbe probe = probe_gpu();
    if (!probe.usable) GTEST_SKIP() << "no usable GPU: " << probe.reason;
  }
};

// The notes between " [" and "]" after ": engine N" in a plan line.
std::string plan_notes(const std::string& line) {
  const size_t open = line.find(" [", line.find(": engine ")), close = line.find(']', open);
  EXPECT_NE(close, std::string::npos) << line;
  return close == std::string::npos ? line : line.substr(open + 2, close - open - 2);
}

// Every precision and search with kDeterministic: each plan's notes name none of the notes the
// option rejects (nor those every mode rejects), the backend says so, and each of the three
// operations gives the same bits when run again on the same inputs, close to the CPU's result.
// The shapes are the small ones of kShapes (the first three and the odd one).
TEST_F(CudaConvEngines, DeterministicPlansCarryNoRejectedNoteAndRepeatBitForBit) {
  const std::vector<Conv2dShape> shapes{kShapes[0], kShapes[1], kShapes[2], kShapes[5]};
  for (Precision precision : {Precision::kFp32, Precision::kTf32, Precision::kBf16})
    for (ConvSearch search : {ConvSearch::kFastest, ConvSearch::kPrecise}) {
      BackendOptions options;
      options.precision = precision;
      options.conv_search = search;
      options.conv_determinism = ConvDeterminism::kDeterministic;
      CudaBackend gpu(options);
      CpuBackend cpu(2, precision);
      EXPECT_THAT(gpu.describe(), HasSubstr(", deterministic convolutions"));
      uint64_t seed = 31000;
      for (const Conv2dShape& s : shapes) {
        const Shape xs{s.n, s.c, s.h, s.w}, ws{s.k, s.c, s.r, s.s}, ys{s.n, s.k, s.p, s.q};
        const std::vector<float> xv = uniform_values(++seed, numel(xs), -1, 1);
        const std::vector<float> wv = uniform_values(++seed, numel(ws), -1, 1);
        const std::vector<float> yv = uniform_values(++seed, numel(ys), -1, 1);
        for (ConvOp op : {ConvOp::kForward, ConvOp::kBackwardData, ConvOp::kBackwardFilter}) {
          const std::string what = std::string(to_string(precision)) + " " + to_string(search) + " " +
                                   cuda::to_string(op) + " " + cuda::shape_text(s);
          // The operation's output on backend b, from the same inputs each time.
          auto run = [&](Backend& b) {
            const Tensor x = Tensor::from_host(xv, xs, b), w = Tensor::from_host(wv, ws, b);
            const Tensor y = Tensor::from_host(yv, ys, b);
            Tensor out(op == ConvOp::kForward ? ys : op == ConvOp::kBackwardData ? xs : ws, b);
            switch (op) {
              case ConvOp::kForward: b.conv2d_forward(x, w, s.params, out); break;
              case ConvOp::kBackwardData: b.conv2d_backward_data(y, w, s.params, out); break;
              case ConvOp::kBackwardFilter: b.conv2d_backward_filter(x, y, s.params, out); break;
            }
            return out.to_vector();
          };
          const std::vector<float> first = run(gpu), second = run(gpu), expected = run(cpu);
          ASSERT_EQ(first.size(), second.size());
          EXPECT_EQ(std::memcmp(first.data(), second.data(), first.size() * sizeof(float)), 0)
              << what << ": a second run gave other bits";
          double diff = 0, norm = 0;
          for (size_t i = 0; i < first.size(); ++i) {
            const double d = static_cast<double>(first[i]) - expected[i];
            diff += d * d;
            norm += static_cast<double>(expected[i]) * expected[i];
          }
          EXPECT_LE(std::sqrt(diff / norm), 1e-2) << what;  // a missing 5×5 tap is ~20%
        }
      }
      const std::vector<std::string> plans = convolution_plans(gpu);
      EXPECT_EQ(plans.size(), 3 * shapes.size());
      for (const std::string& line : plans) {
        std::printf("%s\n", line.c_str());
        const std::string notes = plan_notes(line);
        for (const char* no : {"nondeterministic", "fft", "winograd", "down-convert-inputs",
                               "reduced-precision-reduction"})
          EXPECT_THAT(notes, Not(HasSubstr(no))) << line;
        if (precision == Precision::kFp32) {
          EXPECT_THAT(notes, Not(HasSubstr("tensor-core"))) << line;
        }
      }
    }
}

// "64x32x14x14-k64x5x5-s1-p2-d1": a file name's part for a shape.
std::string shape_id(const Conv2dShape& s) {
  const Conv2dParams& p = s.params;
  return std::to_string(s.n) + "x" + std::to_string(s.c) + "x" + std::to_string(s.h) + "x" + std::to_string(s.w) +
         "-k" + std::to_string(s.k) + "x" + std::to_string(s.r) + "x" + std::to_string(s.s) + "-s" +
         std::to_string(p.stride_h) + "-p" + std::to_string(p.pad_h) + "-d" + std::to_string(p.dilation_h);
}

// Writes what cuDNN's heuristics list (mode A and the fallback list, every engine configuration,
// before cudl's filter) for each operation, shape of kShapes and tensor type, one file each, into
// $CUDL_RECORD_CUDNN_ENGINES/<GPU>-cudnn<version>/ (a temporary folder when unset). Every list
// must be readable back: its lines are engine_text's.
TEST_F(CudaConvEngines, RecordsWhatTheHeuristicsList) {
  cudaDeviceProp prop{};
  ASSERT_EQ(cudaGetDeviceProperties(&prop, 0), cudaSuccess);
  std::string gpu_name = prop.name;
  for (char& ch : gpu_name)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '-';
  const char* env = std::getenv("CUDL_RECORD_CUDNN_ENGINES");
  const std::filesystem::path root = env != nullptr && *env != '\0'
                                         ? std::filesystem::path(env)
                                         : std::filesystem::temp_directory_path() / "cudl-cudnn-engines";
  const std::filesystem::path dir =
      root / (gpu_name + "-sm" + std::to_string(prop.major) + std::to_string(prop.minor) + "-cudnn" +
              std::to_string(cudnnGetVersion()));
  std::filesystem::create_directories(dir);
  cudnnHandle_t handle = nullptr;
  ASSERT_EQ(cudnnCreate(&handle), CUDNN_STATUS_SUCCESS);
  int files = 0;
  for (const Conv2dShape& s : kShapes)
    for (ConvOp op : {ConvOp::kForward, ConvOp::kBackwardData, ConvOp::kBackwardFilter})
      for (Precision tensors : {Precision::kFp32, Precision::kBf16}) {
        const cuda::ConvGraph graph = cuda::convolution_graph(op, s, cuda::tensor_type(tensors), 16, 16, 16, handle);
        for (cudnnBackendHeurMode_t mode : {CUDNN_HEUR_MODE_A, CUDNN_HEUR_MODE_FALLBACK}) {
          const char* mode_name = mode == CUDNN_HEUR_MODE_A ? "modeA" : "fallback";
          const std::vector<cuda::Descriptor> configs = cuda::heuristic_configs(graph.graph(), mode);
          if (configs.empty()) continue;  // no list in this mode
          const std::filesystem::path file = dir / (std::string(cuda::to_string(op)) + "-" + shape_id(s) + "-" +
                                                    to_string(tensors) + "-" + mode_name + ".txt");
          std::ofstream out(file);
          out << "# Recorded on " << prop.name << " (sm_" << prop.major << prop.minor << "), cuDNN "
              << cudnnGetVersion() << ", by CudaConvEngines.RecordsWhatTheHeuristicsList:\n# "
              << cuda::to_string(op) << " " << cuda::shape_text(s) << ", " << to_string(tensors)
              << " tensors, fp32 compute, 16-byte aligned; heuristics " << mode_name << ", before cudl's filter\n";
          for (const cuda::Descriptor& config : configs) out << cuda::engine_text(cuda::engine_notes(config)) << "\n";
          ASSERT_TRUE(out.good()) << file;
          ++files;
        }
      }
  cudnnDestroy(handle);
  EXPECT_GT(files, 0);
  std::printf("%d engine lists in %s\n", files, dir.c_str());
}

}  // namespace

// to_device (include/cudl/data.hpp, issue 21): a dataset's rows put on a backend in chunks, filled
// on several threads, in place on the CPU and through copies on a GPU.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <string>
#include <vector>

#include "cudl/cpu_backend.hpp"
#include "cudl/data.hpp"
#include "cudl/dataset.hpp"
#include "cudl/error.hpp"
#include "dataset_support.hpp"

using namespace cudl;
using cudl::testing::counting;
using cudl::testing::Generated;
using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

namespace {

TEST(ToDevice, UploadsEveryRowInChunks) {
  CpuBackend cpu(1);
  const InMemoryDataset d = counting(300000, 4, 10);  // 4.8 MB of x: several chunks of about 4 MB
  const DeviceData t = to_device(d, cpu);
  EXPECT_EQ(t.x.shape(), (Shape{300000, 4}));
  EXPECT_EQ(t.y.shape(), (Shape{300000}));
  EXPECT_EQ(t.x.to_vector(), d.x);
  EXPECT_EQ(t.y.to_vector(), d.y);
  const DeviceData g = to_device(Generated(3), cpu);
  EXPECT_EQ(g.x.shape(), (Shape{3, 8}));
}

// A CPU backend that says it is a GPU: to_device must then copy each chunk through copy_from_host
// (counted), never write into the tensors' memory itself.
class CountedCopies : public CpuBackend {
 public:
  CountedCopies() : CpuBackend(1) {}
  Device device() const override { return Device::kCuda; }
  void copy_from_host(const void* host_src, void* dst, std::size_t bytes) override {
    ++copies;
    copied += bytes;
    CpuBackend::copy_from_host(host_src, dst, bytes);
  }
  int copies = 0;
  std::size_t copied = 0;
};

// Generated's rows, failing for one index (to see the error of one thread reach the caller).
class FailsAtRow : public Dataset {
 public:
  FailsAtRow(int64_t n, int64_t bad) : n_(n), bad_(bad) {}
  int64_t size() const override { return n_; }
  Shape example_shape() const override { return {1000}; }
  Shape target_shape() const override { return {}; }
  void fill(const int64_t* idx, int64_t n, float* x, float* y) const override {
    for (int64_t i = 0; i < n; ++i) {
      if (idx[i] == bad_) throw Error("row " + std::to_string(bad_) + " is unreadable");
      std::fill(x + i * 1000, x + (i + 1) * 1000, static_cast<float>(idx[i]));
      y[i] = 0.0f;
    }
  }
  std::string describe() const override { return "fails"; }

 private:
  int64_t n_, bad_;
};

TEST(ToDevice, ThreadsFillEveryChunkOnceInPlaceOrThroughCopies) {
  const InMemoryDataset d = counting(700001, 3, 10);  // 8.4 MB of x: three chunks, the last one short
  for (const int threads : {0, 1, 2, 3, 7}) {
    CpuBackend cpu(1);
    const DeviceData t = to_device(d, cpu, threads);
    EXPECT_EQ(t.x.to_vector(), d.x) << threads;
    EXPECT_EQ(t.y.to_vector(), d.y) << threads;
    CountedCopies gpu;
    const DeviceData g = to_device(d, gpu, threads);
    EXPECT_EQ(g.x.to_vector(), d.x) << threads;
    EXPECT_EQ(g.y.to_vector(), d.y) << threads;
    EXPECT_EQ(gpu.copies, 6) << threads;  // x and y of each of the three chunks, nothing else
    EXPECT_EQ(gpu.copied, (d.x.size() + d.y.size()) * sizeof(float)) << threads;
  }
  // Targets of several values, and no rows at all.
  InMemoryDataset v = counting(5, 2);
  v.target_cols = 2;
  v.y = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  CpuBackend cpu(1);
  EXPECT_EQ(to_device(v, cpu, 2).y.shape(), (Shape{5, 2}));
  EXPECT_EQ(to_device(v, cpu, 2).y.to_vector(), v.y);
  EXPECT_EQ(to_device(counting(0), cpu).x.shape(), (Shape{0, 3}));
  EXPECT_THAT([&] { to_device(v, cpu, -1); },
              ThrowsMessage<Error>(
                  HasSubstr("to_device: threads must be 0 (one per hardware thread) or more, got -1")));
}

TEST(ToDevice, AnErrorOfOneThreadReachesTheCaller) {
  CpuBackend cpu(1);
  CountedCopies gpu;
  for (const int threads : {1, 4}) {
    EXPECT_THAT([&] { to_device(FailsAtRow(5000, 3333), cpu, threads); },
                ThrowsMessage<Error>(HasSubstr("row 3333 is unreadable")));
    EXPECT_THAT([&] { to_device(FailsAtRow(5000, 3333), gpu, threads); },
                ThrowsMessage<Error>(HasSubstr("row 3333 is unreadable")));
  }
}

}  // namespace

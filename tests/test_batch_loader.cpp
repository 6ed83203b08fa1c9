// The streamed path's host half (src/data/batch_loader.hpp, issue 21): the loader's batches are
// exactly the rows the backend's sampler draws in EpochLoop (both samplings, several ranks, a
// resumed epoch, any number of threads and slots); memory stays bounded; a dataset's error reaches
// the caller with its step; a loader stopped mid-epoch and restarted loses nothing.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "cudl/cpu_backend.hpp"
#include "cudl/data.hpp"
#include "data/batch_loader.hpp"
#include "nn/epoch_loop.hpp"

using namespace cudl;
using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

namespace {

// Row r holds r·10 + c in column c; its label is r (so a batch names its rows).
InMemoryDataset numbered(int64_t n, int64_t f = 3) {
  InMemoryDataset d;
  d.rows = n;
  d.features = f;
  d.classes = n;
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t c = 0; c < f; ++c) d.x.push_back(static_cast<float>(r * 10 + c));
    d.y.push_back(static_cast<float>(r));
  }
  return d;
}

// The batches EpochLoop draws on the CPU backend for epochs 1..epochs (x, then y, per step).
std::vector<std::vector<float>> drawn_by_epoch_loop(const InMemoryDataset& d, Sampling sampling, int64_t batch, int rank,
                                                    int ranks, int epochs, int64_t steps, int64_t first_step = 0) {
  CpuBackend cpu(1);
  const Tensor x = Tensor::from_host(d.x, {d.rows, d.features}, cpu), y = Tensor::from_host(d.y, {d.rows}, cpu);
  detail::EpochLoop loop(cpu, batch, d.features, sampling, 77, rank, ranks);
  std::vector<std::vector<float>> out;
  for (int e = 1; e <= epochs; ++e)
    loop.run(x, y, e, steps, false, [&](const Tensor& xb, const Tensor& yb) {
      out.push_back(xb.to_vector());
      out.push_back(yb.to_vector());
    }, {}, e == 1 ? first_step : 0);
  return out;
}

std::vector<std::vector<float>> drawn_by_loader(const InMemoryDataset& d, Sampling sampling, int64_t batch, int rank,
                                                int ranks, int epochs, int64_t steps, int prefetch, int threads,
                                                int64_t first_step = 0) {
  detail::BatchLoader loader(d, sampling, 77, batch, rank, ranks, prefetch, threads);
  std::vector<std::vector<float>> out;
  for (int e = 1; e <= epochs; ++e) {
    loader.start(e, steps, e == 1 ? first_step : 0);
    for (int64_t s = e == 1 ? first_step : 0; s < steps; ++s) {
      const detail::BatchLoader::Batch b = loader.next();
      EXPECT_EQ(b.step, s);
      out.emplace_back(b.x, b.x + batch * d.features);
      out.emplace_back(b.y, b.y + batch);
    }
  }
  return out;
}

}  // namespace

TEST(BatchLoader, DrawsTheRowsOfTheDeviceSamplerWithAnyThreadsAndSlots) {
  const InMemoryDataset d = numbered(1000);
  for (Sampling sampling : {Sampling::kWithReplacement, Sampling::kShuffle}) {
    const auto expected = drawn_by_epoch_loop(d, sampling, 32, 0, 1, 3, 31);
    for (const auto& [prefetch, threads] : {std::pair{1, 0}, {1, 1}, {4, 2}, {3, 3}, {8, 1}}) {
      EXPECT_EQ(drawn_by_loader(d, sampling, 32, 0, 1, 3, 31, prefetch, threads), expected)
          << (sampling == Sampling::kShuffle ? "shuffled" : "with replacement") << ", " << prefetch << " slots, "
          << threads << " threads";
    }
  }
}

TEST(BatchLoader, GivesEachRankItsShareAndResumesInsideAnEpoch) {
  const InMemoryDataset d = numbered(777);
  for (Sampling sampling : {Sampling::kWithReplacement, Sampling::kShuffle})
    for (int rank = 0; rank < 3; ++rank) {
      EXPECT_EQ(drawn_by_loader(d, sampling, 16, rank, 3, 2, 16, 4, 2), drawn_by_epoch_loop(d, sampling, 16, rank, 3, 2, 16))
          << "rank " << rank;
      EXPECT_EQ(drawn_by_loader(d, sampling, 16, rank, 3, 2, 16, 2, 2, /*first_step=*/5),
                drawn_by_epoch_loop(d, sampling, 16, rank, 3, 2, 16, 5))
          << "rank " << rank << ", resumed at step 5";
    }
}

TEST(BatchLoader, HoldsOnlyItsSlotsAndRestartsCleanlyMidEpoch) {
  const InMemoryDataset d = numbered(500, 7);
  detail::BatchLoader loader(d, Sampling::kShuffle, 77, 10, 0, 1, 3, 2);
  EXPECT_EQ(loader.bytes_held(), 3 * 10 * (7 + 1) * 4);
  loader.start(1, 50);
  for (int s = 0; s < 7; ++s) loader.next();  // stopped after 7 of 50 steps
  loader.start(2, 50);                        // the next epoch from its first step
  const auto b = loader.next();
  EXPECT_EQ(b.step, 0);
  const auto expected = drawn_by_epoch_loop(d, Sampling::kShuffle, 10, 0, 1, 2, 50);
  EXPECT_EQ(std::vector<float>(b.y, b.y + 10), expected[2 * 50 + 1]);
  for (int s = 1; s < 50; ++s) loader.next();
  EXPECT_THAT([&] { loader.next(); }, ThrowsMessage<Error>(HasSubstr("next() after the last step (50)")));
  EXPECT_THAT([&] { loader.start(1, 51); }, ThrowsMessage<Error>(HasSubstr("do not fit 500 rows")));
}

namespace {

// Fails on one row, and counts concurrent fills.
class Failing : public Dataset {
 public:
  explicit Failing(int64_t bad) : bad_(bad) {}
  int64_t size() const override { return 100; }
  Shape example_shape() const override { return {1}; }
  Shape target_shape() const override { return {}; }
  void fill(const int64_t* idx, int64_t n, float* x, float* y) const override {
    for (int64_t i = 0; i < n; ++i) {
      if (idx[i] == bad_) throw std::runtime_error("row " + std::to_string(bad_) + " is corrupt");
      x[i] = y[i] = static_cast<float>(idx[i]);
    }
  }
  std::string describe() const override { return "failing"; }

 private:
  int64_t bad_;
};

}  // namespace

TEST(BatchLoader, CarriesADatasetsErrorToTheCallerWithItsStep) {
  const Failing data(42);
  std::vector<int64_t> rows(10);
  for (int64_t s = 0; s < 10; ++s) {  // the step whose batch holds row 42 in a shuffled epoch
    detail::batch_rows(Sampling::kShuffle, 77, 100, s * 10, 10, rows.data());
    if (std::find(rows.begin(), rows.end(), 42) == rows.end()) continue;
    for (int threads : {0, 2}) {
      detail::BatchLoader loader(data, Sampling::kShuffle, 77, 10, 0, 1, 4, threads);
      loader.start(1, 10);
      for (int64_t t = 0; t < s; ++t) loader.next();
      EXPECT_THAT([&] { loader.next(); }, ThrowsMessage<Error>(HasSubstr("loading the batch of step " + std::to_string(s + 1) +
                                                                         ": row 42 is corrupt")))
          << threads << " threads";
      if (s + 1 < 10) {
        EXPECT_EQ(loader.next().step, s + 1);  // the loader goes on
      }
    }
    return;
  }
  FAIL() << "row 42 is in no batch";
}

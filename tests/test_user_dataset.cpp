// The Dataset interface (include/cudl/dataset.hpp, issue 21): the in-memory dataset's fill,
// subsets and the seeded split (the same rows as train_test_split), standardisation, and fit() on
// a Dataset, which must train bit for bit as fit() on the same tensors (to_device: test_to_device).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cudl/conv_layers.hpp"
#include "cudl/cpu_backend.hpp"
#include "cudl/data.hpp"
#include "cudl/dataset.hpp"
#include "cudl/trainer.hpp"
#include "dataset_support.hpp"
#include "test_support.hpp"

using namespace cudl;
using cudl::testing::counting;
using cudl::testing::Generated;
using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

namespace {

InMemoryDataset blobs(int64_t n) { return cudl::testing::Blobs(n).dataset(); }

std::vector<float> params_of(Network& net) { return net.params().to_vector(); }

}  // namespace

TEST(InMemoryDataset, FillsTheAskedRowsInTheirOrder) {
  const InMemoryDataset d = counting(10);
  EXPECT_EQ(d.size(), 10);
  EXPECT_EQ(d.example_shape(), (Shape{3}));
  EXPECT_EQ(d.target_shape(), (Shape{}));
  EXPECT_EQ(d.num_classes(), 4);
  const std::vector<int64_t> idx{7, 2, 7};
  std::vector<float> x(9), y(3);
  d.fill(idx.data(), 3, x.data(), y.data());
  EXPECT_EQ(x, (std::vector<float>{700, 701, 702, 200, 201, 202, 700, 701, 702}));
  EXPECT_EQ(y, (std::vector<float>{3, 2, 3}));
  const std::vector<int64_t> bad{1, 10};
  EXPECT_THAT([&] { d.fill(bad.data(), 2, x.data(), y.data()); },
              ThrowsMessage<Error>(HasSubstr("row index 10 (entry 1 of the request) is outside [0, 10) of counting")));
}

TEST(InMemoryDataset, HoldsRegressionTargetsAndRefusesInconsistentSizes) {
  InMemoryDataset d = counting(4, 2);
  d.target_cols = 2;
  d.y = {0, 1, 10, 11, 20, 21, 30, 31};
  EXPECT_EQ(d.target_shape(), (Shape{2}));
  EXPECT_EQ(d.num_classes(), 0);
  const std::vector<int64_t> idx{3, 1};
  std::vector<float> x(4), y(4);
  d.fill(idx.data(), 2, x.data(), y.data());
  EXPECT_EQ(y, (std::vector<float>{30, 31, 10, 11}));
  // The split moves the target rows with their examples.
  const Split s = train_test_split(d, 0.5, 3);
  for (const InMemoryDataset* part : {&s.train, &s.test})
    for (int64_t r = 0; r < part->rows; ++r)
      EXPECT_EQ(part->y[static_cast<size_t>(r * 2)], part->x[static_cast<size_t>(r * 2)] / 10) << "row " << r;
  d.y.pop_back();
  EXPECT_THAT([&] { d.fill(idx.data(), 2, x.data(), y.data()); },
              ThrowsMessage<Error>(HasSubstr("inconsistent sizes: rows 4, features 2, target_cols 2, x.size() 8, y.size() 7")));
}

TEST(RandomSplit, TakesTheRowsOfTrainTestSplitWithoutCopyingThem) {
  const InMemoryDataset d = counting(1001);
  const DatasetSplit parts = random_split(d, 0.2, 42);
  const Split copied = train_test_split(d, 0.2, 42);
  ASSERT_EQ(parts.valid.size(), copied.test.rows);
  ASSERT_EQ(parts.train.size(), copied.train.rows);
  const auto rows_of = [](const Subset& s) {
    std::vector<float> x(static_cast<size_t>(s.size() * 3)), y(static_cast<size_t>(s.size()));
    std::vector<int64_t> idx(static_cast<size_t>(s.size()));
    for (int64_t i = 0; i < s.size(); ++i) idx[static_cast<size_t>(i)] = i;
    s.fill(idx.data(), s.size(), x.data(), y.data());
    return std::make_pair(x, y);
  };
  EXPECT_EQ(rows_of(parts.valid).first, copied.test.x);
  EXPECT_EQ(rows_of(parts.valid).second, copied.test.y);
  EXPECT_EQ(rows_of(parts.train).first, copied.train.x);
  EXPECT_EQ(rows_of(parts.train).second, copied.train.y);
  EXPECT_THAT(parts.valid.describe(), HasSubstr("201 rows of counting: 1001 rows of 3 features, 4 classes"));
  // A subset of a subset maps through both.
  const Subset inner(parts.valid, {5, 0});
  std::vector<float> x(6), y(2);
  const std::vector<int64_t> idx{0, 1};
  inner.fill(idx.data(), 2, x.data(), y.data());
  EXPECT_EQ(x[0], static_cast<float>(parts.valid.indices()[5] * 100));
  EXPECT_EQ(x[3], static_cast<float>(parts.valid.indices()[0] * 100));
  EXPECT_THAT([&] { Subset(parts.valid, {201}); }, ThrowsMessage<Error>(HasSubstr("Subset: row index 201")));
}

TEST(RandomSplit, StratifiedKeepsEachClassInProportion) {
  InMemoryDataset d = counting(1000, 2, 3);
  for (int64_t r = 0; r < d.rows; ++r) d.y[static_cast<size_t>(r)] = r < 900 ? 0.0f : r < 990 ? 1.0f : 2.0f;
  const DatasetSplit parts = random_split(d, 0.1, 9, /*stratified=*/true);
  std::map<float, int> valid, train;
  for (int64_t r : parts.valid.indices()) ++valid[d.y[static_cast<size_t>(r)]];
  for (int64_t r : parts.train.indices()) ++train[d.y[static_cast<size_t>(r)]];
  EXPECT_EQ(valid, (std::map<float, int>{{0.0f, 90}, {1.0f, 9}, {2.0f, 1}}));
  EXPECT_EQ(train, (std::map<float, int>{{0.0f, 810}, {1.0f, 81}, {2.0f, 9}}));
  // Every row on exactly one side.
  std::vector<int> seen(1000, 0);
  for (const Subset* s : {&parts.valid, &parts.train})
    for (int64_t r : s->indices()) ++seen[static_cast<size_t>(r)];
  EXPECT_EQ(std::count(seen.begin(), seen.end(), 1), 1000);
}

TEST(RandomSplit, RefusesWhatCannotBeSplit) {
  const InMemoryDataset d = counting(10);
  EXPECT_THAT([&] { random_split(d, 1.0, 1); },
              ThrowsMessage<Error>(HasSubstr("random_split: valid_fraction must lie in (0, 1), got 1.0")));
  EXPECT_THAT([&] { random_split(counting(1), 0.5, 1); },
              ThrowsMessage<Error>(HasSubstr("leaves 0 training and 1 valid rows; both need at least 1")));
  InMemoryDataset values = counting(10, 1);
  values.target_cols = 1;
  EXPECT_THAT([&] { random_split(values, 0.5, 1, true); },
              ThrowsMessage<Error>(HasSubstr("random_split: stratified needs class-index targets")));
  InMemoryDataset odd = counting(10);
  odd.y[4] = 1.5f;
  EXPECT_THAT([&] { random_split(odd, 0.5, 1, true); },
              ThrowsMessage<Error>(HasSubstr("row 4 of counting")));
}

TEST(Normalize, StandardisesPerFeatureAndPerChannelWithTheTrainingStatistics) {
  InMemoryDataset d = counting(50, 3);
  for (int64_t r = 0; r < d.rows; ++r) d.x[static_cast<size_t>(r * 3 + 2)] = 5.0f;  // a constant feature
  const Normalize norm = Normalize::fit(d);
  const Transformed t(d, norm);
  std::vector<int64_t> idx(50);
  for (int64_t i = 0; i < 50; ++i) idx[static_cast<size_t>(i)] = i;
  std::vector<float> x(150), y(50);
  t.fill(idx.data(), 50, x.data(), y.data());
  for (int c = 0; c < 3; ++c) {
    double sum = 0, sq = 0;
    for (int64_t r = 0; r < 50; ++r) sum += x[static_cast<size_t>(r * 3 + c)], sq += x[static_cast<size_t>(r * 3 + c)] * x[static_cast<size_t>(r * 3 + c)];
    EXPECT_NEAR(sum / 50, 0.0, 1e-5) << "feature " << c;
    EXPECT_NEAR(sq / 50, c == 2 ? 0.0 : 1.0, 1e-4) << "feature " << c;  // the constant one becomes 0, not NaN
  }
  EXPECT_EQ(y[7], 3.0f);

  const Generated g(30);  // channel 0 takes r % 7, channel 1 takes 10 + 2·(r % 3)
  const Normalize per_channel = Normalize::fit(g, Normalize::Per::kChannel);
  ASSERT_EQ(per_channel.mean.size(), 2u);
  EXPECT_NEAR(per_channel.mean[1], 12.0f, 1e-6);
  const Transformed tg(g, per_channel);
  std::vector<float> gx(8 * 30), gy(30);
  tg.fill(idx.data(), 30, gx.data(), gy.data());
  double s1 = 0;
  for (int64_t r = 0; r < 30; ++r) s1 += gx[static_cast<size_t>(r * 8 + 5)];
  EXPECT_NEAR(s1 / 30, 0.0, 1e-5);
  EXPECT_THAT([&] { Normalize::fit(d, Normalize::Per::kChannel); },
              ThrowsMessage<Error>(HasSubstr("per channel needs examples of shape {C, H, W}")));
  EXPECT_THAT([&] { Transformed(g, norm); }, ThrowsMessage<Error>(HasSubstr("does not fit generated: 30 rows")));
}

TEST(Scale, MapsEveryExampleValueAndChainsWithNormalize) {
  const InMemoryDataset d = counting(4, 2);
  const Transformed scaled(d, Scale{0.5f, -1.0f});
  const std::vector<int64_t> idx{3, 1};
  std::vector<float> x(4), y(2);
  scaled.fill(idx.data(), 2, x.data(), y.data());
  EXPECT_EQ(x, (std::vector<float>{149.0f, 149.5f, 49.0f, 49.5f}));  // (r·100 + c)·0.5 − 1
  EXPECT_EQ(y, (std::vector<float>{3.0f, 1.0f}));                       // targets unchanged
  EXPECT_THAT(scaled.describe(), HasSubstr("counting: 4 rows"));
  EXPECT_THAT(scaled.describe(), HasSubstr("scaled by 0.5 - 1"));
  // The statistics of the scaled values, applied after the scale: standardised as before.
  const Transformed both(scaled, Normalize::fit(scaled));
  const Transformed direct(d, Normalize::fit(d));
  std::vector<float> a(4), b(4);
  both.fill(idx.data(), 2, a.data(), y.data());
  direct.fill(idx.data(), 2, b.data(), y.data());
  for (size_t i = 0; i < 4; ++i) EXPECT_NEAR(a[i], b[i], 1e-5) << i;
  EXPECT_THAT([&] { Transformed(d, Scale{std::numeric_limits<float>::infinity()}); },
              ThrowsMessage<Error>(HasSubstr("Transformed: Scale{inf, 0.000000} is not finite")));
}

TEST(FitOnADataset, TrainsBitForBitAsFitOnTheSameTensors) {
  CpuBackend cpu(2);
  const InMemoryDataset all = blobs(800);
  const DatasetSplit parts = random_split(all, 0.25, 3);
  const Split copied = train_test_split(all, 0.25, 3);
  FitOptions o;
  o.epochs = 3;
  o.batch = 32;
  o.progress = Progress::kNone;
  const auto run = [&](bool on_dataset) {
    Network net(cpu, {8});
    net.add(dense(16, Activation::kRelu)).add(dense(2));
    net.initialize(1, 0.1f);
    Sgd opt(net.param_set(), SgdOptions{0.05f});
    const SoftmaxCrossEntropy loss;
    History h;
    if (on_dataset) {
      FitOptions od = o;
      od.validation_data = &parts.valid;
      h = fit(net, loss, opt, parts.train, od);
    } else {
      const Tensor x = Tensor::from_host(copied.train.x, {copied.train.rows, 8}, cpu);
      const Tensor y = Tensor::from_host(copied.train.y, {copied.train.rows}, cpu);
      const Tensor vx = Tensor::from_host(copied.test.x, {copied.test.rows, 8}, cpu);
      const Tensor vy = Tensor::from_host(copied.test.y, {copied.test.rows}, cpu);
      FitOptions ot = o;
      ot.valid_x = &vx;
      ot.valid_y = &vy;
      h = fit(net, loss, opt, x, y, ot);
    }
    return std::make_pair(h, params_of(net));
  };
  const auto [h_tensors, p_tensors] = run(false);
  const auto [h_dataset, p_dataset] = run(true);
  ASSERT_EQ(h_dataset.epochs.size(), 3u);
  for (size_t e = 0; e < 3; ++e) {
    EXPECT_EQ(h_dataset.epochs[e].loss, h_tensors.epochs[e].loss) << "epoch " << e + 1;
    EXPECT_EQ(h_dataset.epochs[e].valid_loss, h_tensors.epochs[e].valid_loss) << "epoch " << e + 1;
    EXPECT_TRUE(h_dataset.epochs[e].validated);
  }
  EXPECT_EQ(p_dataset, p_tensors);
  EXPECT_LT(h_dataset.epochs.back().valid_err, 0.1);
}

TEST(FitOnADataset, TrainsOnADatasetThatHoldsNothingAndRefusesMixedValidation) {
  CpuBackend cpu(1);
  const Generated g(256);
  Network net(cpu, {2, 2, 2});
  net.add(flatten()).add(dense(2));
  net.initialize(4, 0.1f);
  Sgd opt(net.param_set(), SgdOptions{0.05f});
  const SoftmaxCrossEntropy loss;
  FitOptions o;
  o.epochs = 1;
  o.progress = Progress::kNone;
  EXPECT_EQ(fit(net, loss, opt, g, o).epochs.size(), 1u);

  const Tensor x = Tensor::from_host(std::vector<float>(8 * 4, 0.0f), {4, 8}, cpu);
  const Tensor y = Tensor::from_host({0, 1, 0, 1}, {4}, cpu);
  FitOptions with_dataset = o;
  with_dataset.validation_data = &g;
  EXPECT_THAT([&] { fit(net, loss, opt, x, y, with_dataset); },
              ThrowsMessage<Error>(HasSubstr("FitOptions::validation_data is for fit() on a Dataset")));
  FitOptions with_tensors = o;
  with_tensors.valid_x = &x;
  with_tensors.valid_y = &y;
  EXPECT_THAT([&] { fit(net, loss, opt, g, with_tensors); },
              ThrowsMessage<Error>(HasSubstr("give the validation rows as FitOptions::validation_data")));
  const InMemoryDataset flat = counting(8, 8, 2);
  FitOptions other_shape = o;
  other_shape.validation_data = &flat;
  EXPECT_THAT([&] { fit(net, loss, opt, g, other_shape); },
              ThrowsMessage<Error>(HasSubstr("the validation data's examples [8]")));
}

// ---- the streamed path: batches filled on the host by the loader ----

namespace {

struct FitRun {
  History h;
  std::vector<float> params;
};

FitRun fit_blobs(const Dataset& train, const Dataset* valid, FitOptions o, const std::string& checkpoint = "",
              const std::string& resume = "", const std::atomic<bool>* stop = nullptr, CpuBackend* backend = nullptr) {
  CpuBackend own(2);
  CpuBackend& cpu = backend != nullptr ? *backend : own;
  Network net(cpu, {8});
  net.add(dense(16, Activation::kRelu)).add(dense(2));
  net.initialize(1, 0.1f);
  Sgd opt(net.param_set(), SgdOptions{0.05f, 0.9f});
  o.validation_data = valid;
  o.checkpoint_path = checkpoint;
  o.resume_from = resume;
  o.stop = stop;
  FitRun r;
  r.h = fit(net, SoftmaxCrossEntropy(), opt, train, o);
  r.params = net.params().to_vector();
  return r;
}

// A CPU backend that plays a GPU's asynchronous uploads: upload_async only queues a copy; the
// copies queued before an event recorded on the copy queue run when the compute queue (or the
// host) waits for that event, and not before. A loop that copied a stage into its batch buffers
// without waiting would train on the stage's previous batch.
class DeferredUploads : public CpuBackend {
 public:
  DeferredUploads() : CpuBackend(2) {}
  bool async_uploads() const override { return true; }
  std::unique_ptr<Event> create_event() override { return std::make_unique<Copies>(); }
  void* allocate_host(std::size_t bytes) override {
    ++host_buffers;
    return CpuBackend::allocate_host(bytes);
  }
  void upload_async(const void* host_src, void* dst, std::size_t bytes) override {
    queued_.push_back({host_src, dst, bytes});
    ++uploads;
  }
  void record(Event& event, Queue queue) override {
    if (queue != Queue::kCopy) return;
    auto& e = static_cast<Copies&>(event);
    e.copies.insert(e.copies.end(), queued_.begin(), queued_.end());
    queued_.clear();
  }
  void wait(Queue queue, const Event& event) override {
    if (queue == Queue::kCompute) run(event);
  }
  void host_wait(const Event& event) override { run(event); }
  bool idle() const { return queued_.empty(); }
  int uploads = 0, host_buffers = 0;

 private:
  struct Copy {
    const void* src;
    void* dst;
    std::size_t bytes;
  };
  struct Copies : Event {
    std::vector<Copy> copies;
  };
  static void run(const Event& event) {
    auto& e = const_cast<Copies&>(static_cast<const Copies&>(event));
    for (const Copy& c : e.copies) std::memcpy(c.dst, c.src, c.bytes);
    e.copies.clear();
  }
  std::vector<Copy> queued_;
};

}  // namespace

TEST(FitOnADataset, StreamedThroughAsynchronousUploadsTrainsBitForBitAsResident) {
  const InMemoryDataset all = blobs(900);
  const DatasetSplit parts = random_split(all, 0.2, 5);
  FitOptions o;
  o.epochs = 3;
  o.batch = 32;
  o.progress = Progress::kNone;
  o.data_path = DataPath::kResident;
  const FitRun resident = fit_blobs(parts.train, &parts.valid, o);
  for (const auto& [prefetch, threads] : {std::pair{1, 0}, {3, 2}}) {
    DeferredUploads gpu_like;
    o.data_path = DataPath::kStreamed;
    o.prefetch = prefetch;
    o.loader_threads = threads;
    const FitRun streamed = fit_blobs(parts.train, &parts.valid, o, "", "", nullptr, &gpu_like);
    const std::string what = std::to_string(prefetch) + " slots, " + std::to_string(threads) + " threads";
    EXPECT_EQ(streamed.params, resident.params) << what;
    EXPECT_EQ(streamed.h.epochs.back().loss, resident.h.epochs.back().loss) << what;
    EXPECT_EQ(gpu_like.uploads, 2 * 3 * (720 / 32)) << what;         // x and y of every step
    EXPECT_EQ(gpu_like.host_buffers, 2 * prefetch) << what;          // the loader's slots are the backend's
    EXPECT_TRUE(gpu_like.idle()) << what;                             // nothing left queued
    EXPECT_THAT(streamed.h.data_path, HasSubstr("uploaded on a second queue")) << what;
  }
}

TEST(FitOnADataset, StreamedTrainsBitForBitAsResident) {
  const InMemoryDataset all = blobs(900);
  const DatasetSplit parts = random_split(all, 0.2, 5);
  for (Sampling sampling : {Sampling::kShuffle, Sampling::kWithReplacement}) {
    FitOptions o;
    o.epochs = 3;
    o.batch = 32;
    o.sampling = sampling;
    o.progress = Progress::kNone;
    o.data_path = DataPath::kResident;
    const FitRun resident = fit_blobs(parts.train, &parts.valid, o);
    EXPECT_EQ(resident.h.data_path, "resident on cpu (0.0 MB)");
    for (const auto& [prefetch, threads] : {std::pair{1, 0}, {4, 2}, {2, 1}}) {
      o.data_path = DataPath::kStreamed;
      o.prefetch = prefetch;
      o.loader_threads = threads;
      const FitRun streamed = fit_blobs(parts.train, &parts.valid, o);
      const std::string what = std::string(sampling == Sampling::kShuffle ? "shuffled" : "with replacement") + ", " +
                               std::to_string(prefetch) + " slots, " + std::to_string(threads) + " threads";
      EXPECT_EQ(streamed.params, resident.params) << what;
      ASSERT_EQ(streamed.h.epochs.size(), 3u) << what;
      for (size_t e = 0; e < 3; ++e) {
        EXPECT_EQ(streamed.h.epochs[e].loss, resident.h.epochs[e].loss) << what << ", epoch " << e + 1;
        EXPECT_EQ(streamed.h.epochs[e].valid_loss, resident.h.epochs[e].valid_loss) << what << ", epoch " << e + 1;
      }
      EXPECT_THAT(streamed.h.data_path, HasSubstr("streamed from 720 rows of"));
      EXPECT_THAT(streamed.h.data_path, HasSubstr(std::to_string(prefetch) + " batches filled ahead by " +
                                                  std::to_string(threads) + " threads"));
    }
  }
  // kAuto streams what exceeds max_resident_bytes (720 rows × 9 floats = 25,920 bytes).
  FitOptions o;
  o.epochs = 1;
  o.progress = Progress::kNone;
  o.max_resident_bytes = 25919;
  EXPECT_THAT(fit_blobs(parts.train, nullptr, o).h.data_path, HasSubstr("streamed"));
  o.max_resident_bytes = 25920;
  EXPECT_THAT(fit_blobs(parts.train, nullptr, o).h.data_path, HasSubstr("resident"));
}

TEST(FitOnADataset, AStreamedRunStoppedInsideAnEpochResumesExactly) {
  const InMemoryDataset all = blobs(640);
  cudl::testing::TempDir dir;
  FitOptions o;
  o.epochs = 3;
  o.batch = 32;
  o.progress = Progress::kNone;
  o.data_path = DataPath::kStreamed;
  const FitRun straight = fit_blobs(all, nullptr, o);
  std::atomic<bool> stop{false};
  o.every_steps = 1;
  o.on_steps = [&](const StepReport& s) { stop = s.epoch == 2 && s.step == 7; };
  const FitRun first = fit_blobs(all, nullptr, o, dir.str("run.safetensors"), "", &stop);
  EXPECT_TRUE(first.h.interrupted);
  o.on_steps = {};
  const FitRun resumed = fit_blobs(all, nullptr, o, dir.str("run.safetensors"), dir.str("run.safetensors"));
  EXPECT_EQ(resumed.params, straight.params);
  ASSERT_EQ(resumed.h.epochs.size(), 3u);
  EXPECT_EQ(resumed.h.epochs[2].loss, straight.h.epochs[2].loss);
}

TEST(FitOnADataset, AStreamedBadValueNamesItsRow) {
  InMemoryDataset d = blobs(320);
  d.x[static_cast<size_t>(123 * 8 + 5)] = std::nanf("");
  FitOptions o;
  o.epochs = 1;
  o.progress = Progress::kNone;
  o.data_path = DataPath::kStreamed;
  EXPECT_THAT([&] { fit_blobs(d, nullptr, o); },
              ThrowsMessage<Error>(HasSubstr("row 123 of blobs: 320 rows of 8 features, 2 classes: example value 5 is NaN")));
  o.prefetch = 0;
  EXPECT_THAT([&] { fit_blobs(d, nullptr, o); }, ThrowsMessage<Error>(HasSubstr("prefetch must be ≥ 1")));
}

// Datasets from IDX directories: loading (splits, scaling, mismatches, bounded memory), discovery
// order of find_dataset, and the seeded train/test split (sizes, permutation, determinism).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "cudl/data.hpp"
#include "cudl/error.hpp"
#include "data/dataset_internal.hpp"
#include "test_support.hpp"

namespace {

namespace fs = std::filesystem;
using cudl::testing::Bytes;
using cudl::testing::error_of;
using cudl::testing::gzip;
using cudl::testing::idx_images;
using cudl::testing::idx_labels;
using cudl::testing::shared_mnist_dir;
using cudl::testing::TempDir;
using cudl::testing::why_no_shared_mnist;
using cudl::testing::write_file;
using cudl::testing::write_split;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

int64_t peak_rss_bytes() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<int64_t>(usage.ru_maxrss) * 1024;  // Linux: KiB
}

// Loads `dir` in a forked child, so that its peak RSS (ru_maxrss, which in the child starts from
// the parent's RSS at the fork, not from the parent's peak) leaves out other tests' memory. The
// load must fail with a cudl::Error holding `expected`, the child's peak RSS stay under 1 GiB
// and grow by at most `growth_mib` MiB. The child reports to a file and by its exit status.
void expect_bounded_failure(const TempDir& dir, const std::string& expected, int64_t growth_mib) {
  const std::string report = dir.str("report.txt");
  const pid_t pid = fork();
  if (pid == 0) {
    std::ofstream out(report);
    const int64_t before = peak_rss_bytes();
    std::string message = "(none)";
    try {
      cudl::load_idx_dataset(dir.str(), "MNIST");
    } catch (const std::exception& e) {
      message = e.what();
    }
    const int64_t after = peak_rss_bytes();
    out << "error: " << message << "\npeak RSS " << after << " bytes, " << before << " at the fork"
        << std::endl;
    const bool bounded = after < (int64_t{1} << 30) && after - before <= (growth_mib << 20);
    _exit(message.find(expected) == std::string::npos ? 1 : bounded ? 0 : 2);
  }
  int status = 0;
  ASSERT_TRUE(pid > 0 && waitpid(pid, &status, 0) == pid) << "fork or waitpid failed";
  std::ostringstream text;
  text << std::ifstream(report).rdbuf();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "exit status " << (WIFEXITED(status) ? WEXITSTATUS(status) : -1) << " (1: wrong or no "
      << "error, 2: too much memory), signal " << (WIFSIGNALED(status) ? WTERMSIG(status) : 0)
      << "\n" << text.str();
}

// ---------------------------------------------------------------------------------------------
// load_idx_dataset

TEST(LoadIdxDataset, TrainRowsThenT10kRowsScaledBy255) {
  TempDir dir;
  write_split(dir.path(), "train", 3, 2, 2, /*gz=*/true, /*first=*/0);
  write_split(dir.path(), "t10k", 2, 2, 2, /*gz=*/true, /*first=*/3);
  const cudl::InMemoryDataset d = cudl::load_idx_dataset(dir.str(), "MNIST");
  EXPECT_EQ(d.name, "MNIST");
  EXPECT_EQ(d.source, dir.str());
  EXPECT_EQ(d.rows, 5);
  EXPECT_EQ(d.features, 4);
  EXPECT_EQ(d.classes, 10);
  ASSERT_EQ(d.x.size(), 20u);
  for (size_t i = 0; i < 5; ++i) {
    for (size_t k = 0; k < 4; ++k) {
      EXPECT_EQ(d.x[i * 4 + k], static_cast<float>((i * 16 + k) & 0xff) / 255.f) << i << "," << k;
    }
  }
  EXPECT_THAT(d.y, ElementsAre(0.f, 1.f, 2.f, 3.f, 4.f));
}

TEST(LoadIdxDataset, T10kAloneIsEnoughAndPlainNamesWork) {
  TempDir dir;
  write_split(dir.path(), "t10k", 4, 3, 3, /*gz=*/false);
  const cudl::InMemoryDataset d = cudl::load_idx_dataset(dir.str(), "X");
  EXPECT_EQ(d.rows, 4);
  EXPECT_EQ(d.features, 9);
  EXPECT_EQ(d.x.size(), 36u);
  EXPECT_THAT(d.y, ElementsAre(0.f, 1.f, 2.f, 3.f));
}

TEST(LoadIdxDataset, MixedGzipAndPlainSplitsLoadTogether) {
  TempDir dir;
  write_split(dir.path(), "train", 2, 2, 3, /*gz=*/false);
  write_split(dir.path(), "t10k", 1, 2, 3, /*gz=*/true, /*first=*/2);
  const cudl::InMemoryDataset d = cudl::load_idx_dataset(dir.str(), "MNIST");
  EXPECT_EQ(d.rows, 3);
  EXPECT_THAT(d.y, ElementsAre(0.f, 1.f, 2.f));
}

TEST(LoadIdxDataset, CountMismatchNamesBothFilesAndCounts) {
  TempDir dir;
  write_split(dir.path(), "t10k", 5, 2, 2, /*gz=*/true, 0, /*label_count=*/4);
  EXPECT_THAT(error_of([&] { cudl::load_idx_dataset(dir.str(), "MNIST"); }),
              HasSubstr("image/label count mismatch: " + dir.str("t10k-images-idx3-ubyte.gz") +
                        " holds 5 images but " + dir.str("t10k-labels-idx1-ubyte.gz") +
                        " holds 4 labels"));
}

TEST(LoadIdxDataset, ImageSizeMismatchBetweenSplitsIsAnError) {
  TempDir dir;
  write_split(dir.path(), "train", 2, 28, 28, /*gz=*/true);
  write_split(dir.path(), "t10k", 2, 32, 32, /*gz=*/false);
  EXPECT_THAT(error_of([&] { cudl::load_idx_dataset(dir.str(), "MNIST"); }),
              HasSubstr("image size mismatch: " + dir.str("train-images-idx3-ubyte.gz") +
                        " holds 28×28 images but " + dir.str("t10k-images-idx3-ubyte") +
                        " holds 32×32"));
}

TEST(LoadIdxDataset, MissingOrLonelyFilesAreErrors) {
  TempDir dir;
  EXPECT_THAT(error_of([&] { cudl::load_idx_dataset(dir.str("nope"), "MNIST"); }),
              HasSubstr(dir.str("nope") + ": not a directory (looking for MNIST)"));
  EXPECT_THAT(error_of([&] { cudl::load_idx_dataset(dir.str(), "MNIST"); }),
              HasSubstr(dir.str() + ": no MNIST IDX files: expected t10k-images-idx3-ubyte[.gz] "
                                    "and t10k-labels-idx1-ubyte[.gz], missing "
                                    "t10k-images-idx3-ubyte[.gz] and "
                                    "t10k-labels-idx1-ubyte[.gz]"));
  write_split(dir.path(), "t10k", 2, 2, 2, /*gz=*/true);
  fs::remove(dir.path() / "t10k-labels-idx1-ubyte.gz");
  EXPECT_THAT(error_of([&] { cudl::load_idx_dataset(dir.str(), "MNIST"); }),
              HasSubstr("[.gz], missing t10k-labels-idx1-ubyte[.gz]"));
  write_split(dir.path(), "t10k", 2, 2, 2, /*gz=*/true);
  write_split(dir.path(), "train", 2, 2, 2, /*gz=*/true);
  fs::remove(dir.path() / "train-labels-idx1-ubyte.gz");
  EXPECT_THAT(error_of([&] { cudl::load_idx_dataset(dir.str(), "MNIST"); }),
              HasSubstr(": found " + dir.str("train-images-idx3-ubyte.gz") +
                        " but no train-labels-idx1-ubyte[.gz]: the training split needs both "
                        "files, or neither"));
}

TEST(LoadIdxDataset, LabelOutOfRangeIsAnError) {
  TempDir dir;
  write_split(dir.path(), "t10k", 12, 1, 1, /*gz=*/false, /*first=*/0);
  // Labels are (first + i) % 10, always in range: overwrite one with 10.
  Bytes labels(12, 0);
  labels[11] = 10;
  write_file(dir.path() / "t10k-labels-idx1-ubyte", idx_labels(labels));
  EXPECT_THAT(error_of([&] { cudl::load_idx_dataset(dir.str(), "MNIST"); }),
              HasSubstr("label 10 at index 11 is out of range: expected a class below 10"));
}

// Issue 12's bomb: 2.7 million 28×28 images of zeros (2.1 GB, inside the readers' 2 GiB limit)
// in 2 MB of gzip members of 16 MiB each. Before the cap, bench_dbn reached 11 GB and more.
TEST(LoadIdxDataset, GzipBombFailsAfterTheHeaderWithBoundedMemory) {
  TempDir dir;
  constexpr uint32_t kCount = 2'700'000;
  constexpr uint64_t kPayload = uint64_t{kCount} * 28 * 28;
  constexpr uint64_t kMember = uint64_t{1} << 24;
  Bytes bomb = gzip(idx_images(kCount, 28, 28, {}));
  const Bytes member = gzip(Bytes(kMember, 0));
  for (uint64_t i = 0; i < kPayload / kMember; ++i) bomb.insert(bomb.end(), member.begin(), member.end());
  for (const uint8_t b : gzip(Bytes(kPayload % kMember, 0))) bomb.push_back(b);
  ASSERT_LT(bomb.size(), 3u << 20);
  dir.write("t10k-images-idx3-ubyte.gz", bomb);
  dir.write("t10k-labels-idx1-ubyte.gz", gzip(idx_labels(Bytes(kCount, 0))));
  expect_bounded_failure(dir,
                         dir.str("t10k-images-idx3-ubyte.gz") +
                             ": the header gives 2700000 images of 28×28: as floats (2700000 rows "
                             "× 784 features × 4 bytes) that is 8467200000 bytes, over the cap of "
                             "1073741824 bytes (LoadOptions::max_float_bytes",
                         /*growth_mib=*/64);
}

// Under the cap, a header that promises 300,000 images (940 MB as floats) to a file holding
// 1,000 costs what the file holds: x is reserved, not filled, until data arrives.
TEST(LoadIdxDataset, FileThatPromisesMoreThanItHoldsCostsWhatItHolds) {
  TempDir dir;
  dir.write("t10k-images-idx3-ubyte.gz", gzip(idx_images(300'000, 28, 28, Bytes(1000 * 784, 7))));
  dir.write("t10k-labels-idx1-ubyte.gz", gzip(idx_labels(Bytes(300'000, 0))));
  expect_bounded_failure(dir, "truncated payload: the header promises 300000 images of 28×28",
                         /*growth_mib=*/256);
}

TEST(LoadIdxDataset, CapIsConfigurableAndCountsBothSplits) {
  TempDir dir;
  write_split(dir.path(), "t10k", 5, 2, 2, /*gz=*/true);  // 5 rows × 4 features × 4 = 80 bytes
  cudl::LoadOptions options;
  options.max_float_bytes = 79;
  EXPECT_THAT(error_of([&] { cudl::load_idx_dataset(dir.str(), "MNIST", options); }),
              HasSubstr(dir.str("t10k-images-idx3-ubyte.gz") +
                        ": the header gives 5 images of 2×2: as floats (5 rows × 4 features × 4 "
                        "bytes) that is 80 bytes, over the cap of 79 bytes"));
  options.max_float_bytes = 80;
  EXPECT_EQ(cudl::load_idx_dataset(dir.str(), "MNIST", options).rows, 5);
  write_split(dir.path(), "train", 3, 2, 2, /*gz=*/false);  // 48 more bytes: 128 in all
  options.max_float_bytes = 127;
  EXPECT_THAT(error_of([&] { cudl::load_idx_dataset(dir.str(), "MNIST", options); }),
              HasSubstr(dir.str("train-images-idx3-ubyte") + " (3 images) and " +
                        dir.str("t10k-images-idx3-ubyte.gz") +
                        " (5 images) of 2×2 take 128 bytes together as floats, over the cap of "
                        "127 bytes"));
  options.cap_name = "--max-data-mib 1";  // how a program's user raises it
  EXPECT_THAT(error_of([&] { cudl::load_idx_dataset(dir.str(), "MNIST", options); }),
              HasSubstr("over the cap of 127 bytes (--max-data-mib 1; raise it to load a larger set"));
  options.max_float_bytes = 0;
  EXPECT_THAT(error_of([&] { cudl::load_idx_dataset(dir.str(), "MNIST", options); }),
              HasSubstr("LoadOptions::max_float_bytes must be positive, got 0"));
}

TEST(PeekIdxDataset, GivesTheShapeFromTheHeadersAlone) {
  TempDir dir;
  write_split(dir.path(), "train", 3, 2, 5, /*gz=*/true);
  // t10k promises 1000 images and 1000 labels but holds 2 of each: only the load finds out.
  dir.write("t10k-images-idx3-ubyte", idx_images(1000, 2, 5, Bytes(20, 1)));
  dir.write("t10k-labels-idx1-ubyte", idx_labels(Bytes(2, 1), 1000));
  const cudl::DatasetShape shape = cudl::peek_idx_dataset(dir.str(), "MNIST");
  EXPECT_EQ(shape.rows, 1003);
  EXPECT_EQ(shape.features, 10);
  EXPECT_EQ(shape.classes, 10);
  EXPECT_THAT(error_of([&] { cudl::load_idx_dataset(dir.str(), "MNIST"); }),
              HasSubstr("truncated payload"));
  dir.write("t10k-labels-idx1-ubyte", idx_labels(Bytes(999, 1)));
  EXPECT_THAT(error_of([&] { cudl::peek_idx_dataset(dir.str(), "MNIST"); }),
              HasSubstr("holds 1000 images but " + dir.str("t10k-labels-idx1-ubyte") +
                        " holds 999 labels"));
}

TEST(LoadIdxDataset, RealMnistT10kLoadsTenThousandScaledDigits) {
  if (const std::string why = why_no_shared_mnist(); !why.empty()) GTEST_SKIP() << why;
  const std::string dir = shared_mnist_dir();
  const cudl::InMemoryDataset d = cudl::load_idx_dataset(dir, "MNIST");
  EXPECT_EQ(d.rows, 10000);
  EXPECT_EQ(d.features, 784);
  ASSERT_EQ(d.x.size(), 10000u * 784);
  EXPECT_EQ(*std::min_element(d.x.begin(), d.x.end()), 0.f);
  EXPECT_EQ(*std::max_element(d.x.begin(), d.x.end()), 1.f);
  EXPECT_THAT(std::vector<float>(d.y.begin(), d.y.begin() + 5), ElementsAre(7, 2, 1, 0, 4));
}


TEST(LoadIdxDataset, DebianFashionMnistHasSeventyThousandRowsTrainFirst) {
  if (!fs::exists(std::string(cudl::testing::kFashionMnistDir) + "/train-images-idx3-ubyte.gz")) {
    GTEST_SKIP() << cudl::testing::kFashionMnistDir << " not installed (apt-get install dataset-fashion-mnist)";
  }
  const cudl::InMemoryDataset d = cudl::load_idx_dataset(cudl::testing::kFashionMnistDir, "Fashion-MNIST");
  EXPECT_EQ(d.rows, 70000);
  EXPECT_EQ(d.features, 784);
  EXPECT_EQ(d.x.size(), 70000u * 784);
  // Fashion-MNIST's first labels: train 9,0,0,3 and t10k 9,2,1,1.
  EXPECT_THAT(std::vector<float>(d.y.begin(), d.y.begin() + 4), ElementsAre(9, 0, 0, 3));
  EXPECT_THAT(std::vector<float>(d.y.begin() + 60000, d.y.begin() + 60004), ElementsAre(9, 2, 1, 1));
}

// ---------------------------------------------------------------------------------------------
// train_test_split

// `rows` rows of one feature: x = row index, y = index % 10, so every row is identifiable.
cudl::InMemoryDataset indexed(int64_t rows) {
  cudl::InMemoryDataset d;
  d.name = "indexed";
  d.source = "memory";
  d.rows = rows;
  d.features = 1;
  d.classes = 10;
  for (int64_t i = 0; i < rows; ++i) {
    d.x.push_back(static_cast<float>(i));
    d.y.push_back(static_cast<float>(i % 10));
  }
  return d;
}

TEST(TrainTestSplit, SizesAreSklearnsCeilOfTheFraction) {
  const cudl::Split big = cudl::train_test_split(indexed(70000), 0.33, 42);
  EXPECT_EQ(big.test.rows, 23100);
  EXPECT_EQ(big.train.rows, 46900);
  const cudl::Split small = cudl::train_test_split(indexed(10000), 0.33, 42);
  EXPECT_EQ(small.test.rows, 3300);
  EXPECT_EQ(small.train.rows, 6700);
  EXPECT_EQ(small.test.x.size(), 3300u);
  EXPECT_EQ(small.train.y.size(), 6700u);
  EXPECT_EQ(cudl::train_test_split(indexed(10), 0.25, 1).test.rows, 3);  // ceil(2.5)
}

TEST(TrainTestSplit, IsAPermutationThatKeepsEachRowWithItsLabel) {
  const cudl::Split s = cudl::train_test_split(indexed(70000), 0.33, 7);
  std::vector<int> seen(70000, 0);
  double test_mean = 0;
  for (const cudl::InMemoryDataset* part : {&s.test, &s.train}) {
    for (int64_t i = 0; i < part->rows; ++i) {
      const auto row = static_cast<int64_t>(part->x[static_cast<size_t>(i)]);
      ASSERT_GE(row, 0);
      ASSERT_LT(row, 70000);
      ++seen[static_cast<size_t>(row)];
      EXPECT_EQ(part->y[static_cast<size_t>(i)], static_cast<float>(row % 10));
      if (part == &s.test) test_mean += static_cast<double>(row) / static_cast<double>(s.test.rows);
    }
  }
  EXPECT_EQ(std::count(seen.begin(), seen.end(), 1), 70000);  // every row exactly once
  EXPECT_NEAR(test_mean, 34999.5, 700.0);  // the test rows are spread over the whole range
  EXPECT_EQ(s.test.name, "indexed");
  EXPECT_EQ(s.train.source, "memory");
  EXPECT_EQ(s.train.features, 1);
  EXPECT_EQ(s.test.classes, 10);
}

TEST(TrainTestSplit, SameSeedSameSplitDifferentSeedDifferentSplit) {
  const cudl::InMemoryDataset d = indexed(10000);
  const cudl::Split a = cudl::train_test_split(d, 0.33, 2014);
  const cudl::Split b = cudl::train_test_split(d, 0.33, 2014);
  const cudl::Split c = cudl::train_test_split(d, 0.33, 2015);
  EXPECT_EQ(a.test.x, b.test.x);
  EXPECT_EQ(a.train.x, b.train.x);
  EXPECT_NE(a.test.x, c.test.x);
  EXPECT_NE(a.train.x, c.train.x);
}

TEST(TrainTestSplit, RejectsFractionsOutsideTheOpenUnitInterval) {
  const cudl::InMemoryDataset d = indexed(100);
  for (const double f : {0.0, 1.0, -0.5, 1.5, std::nan("")}) {
    EXPECT_THAT(error_of([&] { cudl::train_test_split(d, f, 1); }),
                HasSubstr("train_test_split: test_fraction must lie in (0, 1), got "))
        << f;
  }
}

TEST(TrainTestSplit, RejectsASplitThatLeavesASideEmpty) {
  EXPECT_THAT(error_of([&] { cudl::train_test_split(indexed(1), 0.5, 1); }),
              HasSubstr("train_test_split: test_fraction 0.500000 of 1 rows leaves 0 training "
                        "and 1 test rows; both need at least 1"));
  EXPECT_THAT(error_of([&] { cudl::train_test_split(indexed(0), 0.5, 1); }),
              HasSubstr("leaves 0 training and 0 test rows"));
  EXPECT_THAT(error_of([&] { cudl::train_test_split(indexed(10), 0.95, 1); }),
              HasSubstr("leaves 0 training and 10 test rows"));
}

TEST(TrainTestSplit, MovingTheDataGivesTheSameSplitAsCopyingIt) {
  cudl::InMemoryDataset d;  // 1,001 rows of 3 features, every value distinct
  d.rows = 1001;
  d.features = 3;
  d.classes = 10;
  for (int64_t i = 0; i < d.rows * d.features; ++i) d.x.push_back(static_cast<float>(i));
  for (int64_t i = 0; i < d.rows; ++i) d.y.push_back(static_cast<float>(i % 10));
  for (const double f : {0.33, 0.5, 0.9, 0.001}) {  // train kept in place, then test (0.9)
    const cudl::Split copied = cudl::train_test_split(d, f, 2014);
    cudl::InMemoryDataset moved_from = d;
    const cudl::Split moved = cudl::train_test_split(std::move(moved_from), f, 2014);
    for (const auto& [a, b] : {std::pair(&moved.train, &copied.train), std::pair(&moved.test, &copied.test)}) {
      EXPECT_EQ(a->rows, b->rows) << f;
      EXPECT_EQ(a->x, b->x) << f;
      EXPECT_EQ(a->y, b->y) << f;
    }
  }
}

TEST(TrainTestSplit, RejectsAnInconsistentDataset) {
  cudl::InMemoryDataset d = indexed(10);
  d.y.pop_back();
  EXPECT_THAT(error_of([&] { cudl::train_test_split(d, 0.5, 1); }),
              HasSubstr("inconsistent dataset: rows 10, features 1, x.size() 10, y.size() 9"));
}

}  // namespace

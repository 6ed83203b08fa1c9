// find_dataset: where bench_dbn and the examples look for their data (--data, $CUDL_DATA, the
// project's data/mnist, Debian's Fashion-MNIST) and what they say when nothing is there.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <optional>
#include <string>

#include "cudl/data.hpp"
#include "cudl/error.hpp"
#include "data/dataset_internal.hpp"
#include "test_support.hpp"

namespace {

namespace fs = std::filesystem;
using cudl::testing::error_of;
using cudl::testing::ScopedEnv;
using cudl::testing::TempDir;
using cudl::testing::write_split;
using ::testing::HasSubstr;
using ::testing::Not;


TEST(FindDataset, CliDirWinsOverEverything) {
  TempDir root, cli;
  write_split(root.path() / "data" / "mnist", "t10k", 1, 1, 1, true);
  write_split(cli.path(), "t10k", 1, 1, 1, true);
  ScopedEnv env("CUDL_DATA", root.str("data/mnist"));
  const cudl::DatasetLocation loc = cudl::find_dataset(cli.str(), root.str());
  EXPECT_EQ(loc.dir, cli.str());
  EXPECT_EQ(loc.reason, "--data");
  EXPECT_EQ(loc.name, "MNIST");
}

TEST(FindDataset, EnvironmentVariableComesNext) {
  TempDir root, env_dir;
  write_split(root.path() / "data" / "mnist", "t10k", 1, 1, 1, true);
  write_split(env_dir.path(), "t10k", 1, 1, 1, false);
  ScopedEnv env("CUDL_DATA", env_dir.str());
  const cudl::DatasetLocation loc = cudl::find_dataset("", root.str());
  EXPECT_EQ(loc.dir, env_dir.str());
  EXPECT_EQ(loc.reason, "$CUDL_DATA");
}

TEST(FindDataset, ProjectDataMnistComesNext) {
  TempDir root;
  write_split(root.path() / "data" / "mnist", "t10k", 1, 1, 1, true);
  ScopedEnv env("CUDL_DATA", std::nullopt);
  const cudl::DatasetLocation loc = cudl::find_dataset("", root.str());
  EXPECT_EQ(loc.dir, (root.path() / "data" / "mnist").string());
  EXPECT_EQ(loc.reason, "project data/mnist");
  EXPECT_EQ(loc.name, "MNIST");
  ScopedEnv empty("CUDL_DATA", "");  // set but empty counts as unset
  EXPECT_EQ(cudl::find_dataset("", root.str()).reason, "project data/mnist");
}

TEST(FindDataset, FallsBackToDebianFashionMnist) {
  if (!fs::exists(std::string(cudl::testing::kFashionMnistDir) + "/t10k-images-idx3-ubyte.gz")) {
    GTEST_SKIP() << cudl::testing::kFashionMnistDir << " not installed (apt-get install dataset-fashion-mnist)";
  }
  TempDir root;  // no data/mnist inside
  ScopedEnv env("CUDL_DATA", std::nullopt);
  const cudl::DatasetLocation loc = cudl::find_dataset("", root.str());
  EXPECT_EQ(loc.dir, cudl::testing::kFashionMnistDir);
  EXPECT_EQ(loc.name, "Fashion-MNIST");
  EXPECT_EQ(loc.reason, "Debian dataset-fashion-mnist");
}

TEST(FindDataset, NameIsFashionWhenThePathSaysSoInAnyCase) {
  TempDir root;
  write_split(root.path() / "My-FaShIoN-set", "t10k", 1, 1, 1, true);
  EXPECT_EQ(cudl::find_dataset(root.str("My-FaShIoN-set"), "").name, "Fashion-MNIST");
}

TEST(FindDataset, ExplicitDirectoryWithoutIdxFilesIsAnError) {
  TempDir empty;
  EXPECT_THAT(error_of([&] { cudl::find_dataset(empty.str(), ""); }),
              HasSubstr("--data " + empty.str() + ": no IDX files there (expected "
                        "t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz])"));
  ScopedEnv env("CUDL_DATA", empty.str());
  EXPECT_THAT(error_of([&] { cudl::find_dataset("", ""); }),
              HasSubstr("$CUDL_DATA=" + empty.str() + ": no IDX files there"));
}

TEST(FindDataset, NothingFoundListsEveryPlaceTriedAndHowToFillOne) {
  TempDir root;
  ScopedEnv env("CUDL_DATA", std::nullopt);
  const std::string absent = root.str("no-fallback");
  const std::string message =
      error_of([&] { cudl::detail::find_dataset_in("", root.str(), absent); });
  EXPECT_THAT(message, HasSubstr("no dataset found"));
  EXPECT_THAT(message, HasSubstr("--data (not given)"));
  EXPECT_THAT(message, HasSubstr("$CUDL_DATA (not set)"));
  EXPECT_THAT(message, HasSubstr((root.path() / "data" / "mnist").string() + " (no "));
  EXPECT_THAT(message, HasSubstr(absent + " (same)"));
  EXPECT_THAT(message, HasSubstr("scripts/fetch_mnist.sh"));
  EXPECT_THAT(message, HasSubstr("apt-get install dataset-fashion-mnist"));
}

// An installed program's source folder does not exist: the message names neither its data/mnist
// nor scripts/fetch_mnist.sh, only what the user can do.
TEST(FindDataset, WithoutTheSourceFolderTheMessageNamesOnlyWhatExists) {
  TempDir root;
  ScopedEnv env("CUDL_DATA", std::nullopt);
  const std::string gone = root.str("source-folder-not-installed");
  const std::string absent = root.str("no-fallback");
  const std::string message = error_of([&] { cudl::detail::find_dataset_in("", gone, absent); });
  EXPECT_THAT(message, HasSubstr("Tried: --data (not given); $CUDL_DATA (not set); " + absent + " (no "));
  EXPECT_THAT(message, Not(HasSubstr(gone)));
  EXPECT_THAT(message, Not(HasSubstr("fetch_mnist")));
  EXPECT_THAT(message, HasSubstr("apt-get install dataset-fashion-mnist"));
  EXPECT_THAT(message, HasSubstr("pass --data DIR or set CUDL_DATA=DIR"));
}

}  // namespace

#pragma once
// Datasets on the host: the IDX file format (MNIST, Fashion-MNIST), gzip or plain, dataset
// discovery for bench_dbn, and the seeded train/test split of the 2014 run.
#include <cstdint>
#include <string>
#include <vector>

namespace cudl {

// An IDX image file: count images of rows×cols bytes, row-major, image after image.
struct IdxImages {
  int64_t count = 0, rows = 0, cols = 0;
  std::vector<uint8_t> pixels;  // count·rows·cols bytes
};

// Reads an IDX3 image file (magic 0x00000803), gzip-compressed or plain (detected from the
// content, not the name). Throws cudl::Error naming the file and the problem: missing or
// unreadable file, wrong magic (expected vs found), zero or absurd dimensions, truncated or
// over-long payload, corrupt gzip stream. Never reads out of bounds.
IdxImages read_idx_images(const std::string& path);

// Reads an IDX1 label file (magic 0x00000801), same rules. Every label must be < num_classes;
// the error names the first offending label, its index and the file.
std::vector<uint8_t> read_idx_labels(const std::string& path, int num_classes);

// A labelled dataset in host memory: x is rows×features floats, y holds class indices as floats.
struct Dataset {
  std::string name;      // e.g. "MNIST", "Fashion-MNIST"
  std::string source;    // directory it was read from
  int64_t rows = 0, features = 0, classes = 0;
  std::vector<float> x;  // rows × features
  std::vector<float> y;  // rows
};

// Loads a directory holding the IDX files of MNIST or Fashion-MNIST:
// train-{images-idx3,labels-idx1}-ubyte[.gz] and t10k-{...}-ubyte[.gz]. With both splits the
// rows are train followed by t10k (70,000); with only the t10k files, those (10,000). Pixels
// are scaled by 1/255. Image/label count mismatch is an error naming both files and counts.
Dataset load_idx_dataset(const std::string& dir, const std::string& name);

// Where bench_dbn's data comes from and why.
struct DatasetLocation {
  std::string dir;      // directory holding the IDX files
  std::string name;     // "MNIST" or "Fashion-MNIST"
  std::string reason;   // e.g. "--data", "$CUDL_DATA", "project data/mnist", "Debian dataset-fashion-mnist"
};

// Discovery order: `cli_dir` if not empty; else $CUDL_DATA; else <project_root>/data/mnist if
// it holds MNIST files; else /usr/share/datasets/fashion-mnist. The name is "Fashion-MNIST" when
// the directory path contains "fashion" (case-insensitive), otherwise "MNIST". An explicitly
// named directory (flag or variable) that holds no IDX files is an error; none found at all is
// an error listing every place tried and how to fill one (scripts/fetch_mnist.sh, apt).
DatasetLocation find_dataset(const std::string& cli_dir, const std::string& project_root);

// The seeded split of sklearn's train_test_split(test_size): rows are permuted with a
// counter-based Fisher-Yates shuffle under `seed`; the first ceil(test_fraction·rows) of the
// permutation are the test set, the rest the training set, both in permutation order.
struct Split {
  Dataset train, test;
};
Split train_test_split(const Dataset& data, double test_fraction, uint64_t seed);

}  // namespace cudl

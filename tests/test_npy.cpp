// NumPy .npy files (include/cudl/npy.hpp, issue 21): files NumPy wrote (tests/data/npy), every
// format version and dtype written here byte by byte, and each broken or unsupported file refused
// with its sentence; a network trains on an NpyDataset as on the same rows in memory.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cudl/cpu_backend.hpp"
#include "cudl/data.hpp"
#include "cudl/npy.hpp"
#include "cudl/trainer.hpp"
#include "test_support.hpp"

using namespace cudl;
using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

namespace {

const std::string kData = std::string(CUDL_SOURCE_DIR) + "/tests/data/npy/";

// A .npy file of version `major` with this header dict (padded as NumPy pads) and data bytes.
std::string npy_bytes(const std::string& dict, const std::string& data, int major = 1) {
  const size_t pre = major == 1 ? 10 : 12;
  std::string header = dict;
  while ((pre + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string out = "\x93NUMPY";
  out += static_cast<char>(major);
  out += '\0';
  const size_t len = header.size();
  out += static_cast<char>(len & 0xff);
  out += static_cast<char>((len >> 8) & 0xff);
  if (major > 1) out += std::string(2, '\0');
  return out + header + data;
}

template <typename T>
std::string raw(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

class Npy : public ::testing::Test {
 protected:
  std::string write(const std::string& name, const std::string& bytes) {
    const std::string path = (dir_.path() / name).string();
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }
  std::string labels(const std::vector<int64_t>& y) {
    return write("y.npy", npy_bytes("{'descr': '<i8', 'fortran_order': False, 'shape': (" + std::to_string(y.size()) + ",), }", raw(y)));
  }
  cudl::testing::TempDir dir_;
};

}  // namespace

// Options set field by field: NpyOptions may gain fields.
NpyOptions options(NpyOptions::Targets targets, int64_t classes = 0, float x_scale = 1.0f) {
  NpyOptions o;
  o.targets = targets;
  o.classes = classes;
  o.x_scale = x_scale;
  return o;
}

TEST_F(Npy, ReadsWhatNumPyWrote) {
  const auto d = NpyDataset::open(kData + "images_u8.npy", kData + "labels_i8.npy", options(NpyOptions::Targets::kAuto, 0, 1.0f / 255));
  EXPECT_EQ(d->size(), 12);
  EXPECT_EQ(d->example_shape(), (Shape{2, 3}));
  EXPECT_EQ(d->target_shape(), (Shape{}));
  EXPECT_EQ(d->num_classes(), 3);
  const std::vector<int64_t> idx{5, 0};
  std::vector<float> x(12), y(2);
  d->fill(idx.data(), 2, x.data(), y.data());
  const std::vector<int> row5{207, 22, 56, 63, 78, 75}, row0{114, 104, 41, 77, 130, 82};
  for (int k = 0; k < 6; ++k) {
    EXPECT_EQ(x[static_cast<size_t>(k)], static_cast<float>(row5[static_cast<size_t>(k)]) * (1.0f / 255));
    EXPECT_EQ(x[static_cast<size_t>(6 + k)], static_cast<float>(row0[static_cast<size_t>(k)]) * (1.0f / 255));
  }
  EXPECT_EQ(y, (std::vector<float>{2, 0}));
  EXPECT_THAT(d->describe(), HasSubstr("images_u8.npy: [12, 2, 3] uint8"));

  const auto v = NpyDataset::open(kData + "images_u8.npy", kData + "values_f8.npy");
  EXPECT_EQ(v->target_shape(), (Shape{2}));
  EXPECT_EQ(v->num_classes(), 0);
  std::vector<float> vy(4);
  v->fill(idx.data(), 2, x.data(), vy.data());
  EXPECT_EQ(vy, (std::vector<float>{2.5f, -5.0f, 0.0f, -0.0f}));
}

TEST_F(Npy, ReadsEveryVersionAndType) {
  const std::string y = labels({1, 0});
  const std::string shape = "'fortran_order': False, 'shape': (2, 2), }";
  struct Case {
    std::string descr, data;
    int major;
  } cases[] = {{"<f4", raw(std::vector<float>{1.5f, -2, 3, 4}), 1}, {"<f8", raw(std::vector<double>{1.5, -2, 3, 4}), 2},
               {"|u1", std::string("\x01\x02\x03\x04", 4), 3}, {"<i4", raw(std::vector<int32_t>{1, -2, 3, 4}), 1},
               {"<i8", raw(std::vector<int64_t>{1, -2, 3, 4}), 1}};
  for (const Case& c : cases) {
    const std::string x = write("x.npy", npy_bytes("{'descr': '" + c.descr + "', " + shape, c.data, c.major));
    const auto d = NpyDataset::open(x, y);
    const std::vector<int64_t> idx{1};
    std::vector<float> xv(2), yv(1);
    d->fill(idx.data(), 1, xv.data(), yv.data());
    EXPECT_EQ(xv, (std::vector<float>{3, 4})) << c.descr;
    EXPECT_EQ(yv[0], 0.0f) << c.descr;
  }
  // Keys in another order, double quotes, no trailing comma: still NumPy's dict.
  const std::string x = write("x.npy", npy_bytes("{\"shape\": (2, 1), \"fortran_order\": False, \"descr\": \"<f4\"}",
                                                 raw(std::vector<float>{7, 8})));
  EXPECT_EQ(NpyDataset::open(x, y)->example_shape(), (Shape{1}));
}

TEST_F(Npy, RefusesEveryBrokenOrUnsupportedFileInOneSentence) {
  const std::string y = labels({1, 0});
  const std::string good_x = npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", raw(std::vector<float>{1, 2, 3, 4}));
  const auto refused = [&](const std::string& x_bytes, const std::string& why) {
    const std::string x = write("x.npy", x_bytes);
    EXPECT_THAT([&] { NpyDataset::open(x, y); }, ThrowsMessage<Error>(HasSubstr(why))) << why;
  };
  refused(good_x.substr(0, good_x.size() - 1), "truncated: shape [2, 2] of float32 needs 16 bytes after the 128-byte header, the file has 15");
  refused(good_x + "x", "over-long");
  refused(good_x.substr(0, 30), "truncated: the header announces 118 bytes, the file has 20 after the preamble");
  refused("PK\x03\x04 a zip file, not an array", "not a .npy file (it does not start with \\x93NUMPY)");
  std::string v4 = good_x;
  v4[6] = 4;
  refused(v4, ".npy format version 4.0 is not supported");
  refused(npy_bytes("{'descr': '<f2', 'fortran_order': False, 'shape': (2, 2), }", std::string(8, '\0')),
          "dtype '<f2' is not supported");
  refused(npy_bytes("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", std::string(8, '\0')),
          "expected a quoted string at '[('a', '<f4''");
  refused(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), 'extra': 1}", std::string(16, '\0')),
          "unexpected key 'extra'");
  refused(npy_bytes("{'descr': '<f4', 'shape': (2, 2), }", std::string(16, '\0')), "lacks one of 'descr', 'fortran_order' and 'shape'");
  refused(npy_bytes("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2, 2), }", std::string(16, '\0')),
          "fortran_order must be True or False");
  refused(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999, 2), }", ""),
          "a dimension of the shape is too large");
  refused(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4), }", ""),
          "the shape [4611686018427387904, 4] is too large");
  refused(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", raw(std::vector<float>{1, 2, 3, 4})),
          "examples must be an array of rank 2 or more");
  refused(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 1), }", raw(std::vector<float>{1, 2, 3})),
          "holds 3 rows but");
  refused("", "empty file, not a .npy file");
  refused(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 1099511627776), }", ""), "holds no rows");
  refused(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 0), }", ""), "rows of zero values (shape [2, 0])");
  refused(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 4000000000000000048, 1200000), }", ""),
          "is too large");
  EXPECT_THAT([&] { NpyDataset::open(kData + "x_f4_fortran.npy", kData + "labels_i8.npy"); },
              ThrowsMessage<Error>(HasSubstr("x_f4_fortran.npy: Fortran-order arrays are not supported")));
  EXPECT_THAT([&] { NpyDataset::open(kData + "x_f4_bigendian.npy", kData + "labels_i8.npy"); },
              ThrowsMessage<Error>(HasSubstr("big-endian data ('>f4') is not supported")));
  EXPECT_THAT([&] { NpyDataset::open((dir_.path() / "absent.npy").string(), y); },
              ThrowsMessage<Error>(HasSubstr("absent.npy: cannot open: No such file or directory")));
}

TEST_F(Npy, ChecksEveryLabelOfClassTargets) {
  const std::string x = write("x.npy", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 1), }",
                                                 raw(std::vector<float>{1, 2, 3})));
  EXPECT_THAT([&] { NpyDataset::open(x, labels({0, -1, 2})); },
              ThrowsMessage<Error>(HasSubstr("label -1.000000 of row 1 is not a class index")));
  EXPECT_THAT([&] { NpyDataset::open(x, labels({0, 1, 5}), options(NpyOptions::Targets::kClasses, 3)); },
              ThrowsMessage<Error>(HasSubstr("label 5 of row 2 is not below NpyOptions::classes = 3")));
  const std::string fy = write("fy.npy", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }",
                                                   raw(std::vector<float>{0, 1.5f, 2})));
  EXPECT_EQ(NpyDataset::open(x, fy)->num_classes(), 0);  // float targets are values unless told
  EXPECT_EQ(NpyDataset::open(x, fy)->target_shape(), (Shape{1}));  // one value per row
  EXPECT_THAT([&] { NpyDataset::open(x, fy, options(NpyOptions::Targets::kClasses)); },
              ThrowsMessage<Error>(HasSubstr("label 1.500000 of row 1 is not a class index")));
  const auto d = NpyDataset::open(x, labels({0, 1, 2}));
  const std::vector<int64_t> bad{3};
  std::vector<float> xv(1), yv(1);
  EXPECT_THAT([&] { d->fill(bad.data(), 1, xv.data(), yv.data()); },
              ThrowsMessage<Error>(HasSubstr("row index 3 (entry 0 of the request) is outside [0, 3)")));
}

TEST_F(Npy, TrainsAsTheSameRowsInMemory) {
  const cudl::testing::Blobs b(256);
  std::vector<int64_t> y(b.y.begin(), b.y.end());
  const std::string x = write("x.npy", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (256, 8), }", raw(b.x)));
  const auto npy = NpyDataset::open(x, labels(y));
  const InMemoryDataset mem = b.dataset();
  CpuBackend cpu(1);
  const auto train = [&](const Dataset& data) {
    Network net(cpu, {8});
    net.add(dense(8, Activation::kRelu)).add(dense(2));
    net.initialize(3, 0.1f);
    Sgd opt(net.param_set(), SgdOptions{0.1f});
    FitOptions o;
    o.epochs = 2;
    o.progress = Progress::kNone;
    fit(net, SoftmaxCrossEntropy(), opt, data, o);
    return net.params().to_vector();
  };
  EXPECT_EQ(train(*npy), train(mem));
}

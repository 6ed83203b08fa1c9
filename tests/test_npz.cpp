// NumPy .npz archives (NpyDataset::open_npz, issue 21) as NumPy writes them (tests/data/npy,
// make_npz.py): stored and deflated members, keyword and positional arrays; every broken or
// unsupported archive refused in one sentence; and save_npy, whose files are NumPy's byte for byte.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "cudl/npy.hpp"
#include "test_support.hpp"

using namespace cudl;
using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

namespace {

const std::string kData = std::string(CUDL_SOURCE_DIR) + "/tests/data/npy/";

std::string bytes_of(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// Every row of a dataset: x then y, row after row.
std::vector<float> rows(const Dataset& d) {
  std::vector<float> out, x(static_cast<size_t>(d.example_numel())), y(static_cast<size_t>(d.target_numel()));
  for (int64_t r = 0; r < d.size(); ++r) {
    d.fill(&r, 1, x.data(), y.data());
    out.insert(out.end(), x.begin(), x.end());
    out.insert(out.end(), y.begin(), y.end());
  }
  return out;
}

class Npz : public ::testing::Test {
 protected:
  std::string write(const std::string& name, const std::string& bytes) {
    const std::string path = (dir_.path() / name).string();
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }
  cudl::testing::TempDir dir_;
};

}  // namespace

TEST_F(Npz, ReadsStoredAndDeflatedArchivesAsTheirNpyFiles) {
  const auto npy = NpyDataset::open(kData + "images_u8.npy", kData + "labels_i8.npy");
  const auto stored = NpyDataset::open_npz(kData + "xy_stored.npz");
  EXPECT_EQ(stored->size(), 12);
  EXPECT_EQ(stored->example_shape(), (Shape{2, 3}));
  EXPECT_EQ(stored->num_classes(), 3);
  EXPECT_EQ(rows(*stored), rows(*npy));
  std::vector<float> x0(6), y0(1);
  const int64_t first = 0;
  stored->fill(&first, 1, x0.data(), y0.data());
  EXPECT_EQ(x0, (std::vector<float>{114, 104, 41, 77, 130, 82}));  // NumPy's values, not only the same as open()'s
  EXPECT_THAT(stored->describe(), HasSubstr("xy_stored.npz[x.npy]: [12, 2, 3] uint8"));
  EXPECT_THAT(stored->describe(), HasSubstr("memory-mapped"));

  const auto deflated = NpyDataset::open_npz(kData + "xy_deflated.npz");  // np.savez_compressed
  EXPECT_EQ(deflated->target_shape(), (Shape{2}));
  EXPECT_EQ(rows(*deflated), rows(*NpyDataset::open(kData + "images_u8.npy", kData + "values_f8.npy")));
  EXPECT_THAT(deflated->describe(), HasSubstr("inflated into memory"));

  // np.savez(path, x, y) names them arr_0 and arr_1; other names are asked for by option.
  EXPECT_EQ(rows(*NpyDataset::open_npz(kData + "xy_positional.npz")), rows(*npy));
  NpyOptions named;
  named.npz_x = "images";
  named.npz_y = "labels";
  EXPECT_EQ(rows(*NpyDataset::open_npz(kData + "xy_other_names.npz", named)), rows(*npy));
  EXPECT_THAT([&] { NpyDataset::open_npz(kData + "xy_other_names.npz"); },
              ThrowsMessage<Error>(HasSubstr("xy_other_names.npz: has no array 'x' (its members: 'images.npy', 'labels.npy')")));
}

TEST_F(Npz, RefusesEveryBrokenOrUnsupportedArchiveInOneSentence) {
  const auto refused = [&](const std::string& path, const std::string& why, const NpyOptions& o = {}) {
    EXPECT_THAT([&] { NpyDataset::open_npz(path, o); }, ThrowsMessage<Error>(HasSubstr(why))) << why;
  };
  const std::string stored = bytes_of(kData + "xy_stored.npz"), deflated = bytes_of(kData + "xy_deflated.npz");
  refused(kData + "xy_bzip2.npz", "member 'x.npy' uses ZIP compression method 12");
  refused(kData + "images_u8.npy", "images_u8.npy: not a .npz file (no ZIP end-of-central-directory record)");
  refused(write("empty.npz", ""), "empty.npz: empty file, not a .npz file");
  refused(write("short.npz", "PK"), "too short for a ZIP archive");
  // Cut before the directory: no end record; cut inside a member: the directory points past the end.
  refused(write("cut.npz", stored.substr(0, 300)), "no ZIP end-of-central-directory record");
  std::string moved = stored;
  moved.erase(100, 50);  // the members' bytes shift, the directory still points at the old places
  refused(write("moved.npz", moved), "moved.npz: not a ZIP archive NumPy writes");
  // A flipped byte in a deflated member: zlib or the CRC-32 finds it.
  std::string flipped = deflated;
  flipped[100] = static_cast<char>(flipped[100] ^ 0x55);
  EXPECT_THAT([&] { NpyDataset::open_npz(write("flipped.npz", flipped)); },
              ThrowsMessage<Error>(::testing::AnyOf(HasSubstr("corrupt deflate data"), HasSubstr("CRC-32 mismatch"),
                                                    HasSubstr("truncated or longer"), HasSubstr("inflated to"))));
  NpyOptions small;
  small.max_inflated_bytes = 100;
  refused(kData + "xy_deflated.npz", "xy_deflated.npz[x.npy]: inflates to 200 bytes, over the limit of 100", small);
  // A stored member whose .npy header is broken is refused as open() refuses it, named in the archive.
  std::string bad_header = stored;
  const size_t magic = bad_header.find("\x93NUMPY");
  ASSERT_NE(magic, std::string::npos);
  bad_header[magic + 6] = 9;
  refused(write("bad.npz", bad_header), "bad.npz[x.npy]: .npy format version 9.0 is not supported");
  refused((dir_.path() / "absent.npz").string(), "absent.npz: cannot open: No such file or directory");
}

TEST_F(Npz, SaveNpyWritesWhatNumPyWrites) {
  // NumPy 2.4.6 wrote labels_i8.npy and values_f8.npy: save_npy's files equal them byte for byte.
  std::vector<int64_t> labels(12);
  std::vector<double> values(24);
  for (int64_t r = 0; r < 12; ++r) {
    labels[static_cast<size_t>(r)] = r % 3;
    values[static_cast<size_t>(2 * r)] = 0.5 * static_cast<double>(r);
    values[static_cast<size_t>(2 * r + 1)] = -static_cast<double>(r);
  }
  const std::string y = (dir_.path() / "y.npy").string(), v = (dir_.path() / "v.npy").string();
  save_npy(y, labels.data(), {12});
  save_npy(v, values.data(), {12, 2});
  EXPECT_EQ(bytes_of(y), bytes_of(kData + "labels_i8.npy"));
  EXPECT_EQ(bytes_of(v), bytes_of(kData + "values_f8.npy"));

  // Every type reads back; an existing file is replaced whole.
  const std::string x = (dir_.path() / "x.npy").string();
  const std::vector<float> xf{1.5f, -2, 3, 4, 5, 6};
  save_npy(x, xf.data(), {2, 3});
  const std::vector<uint8_t> xu{1, 2, 3, 4, 5, 6};
  save_npy(x, xu.data(), {2, 1, 3});
  const std::vector<int32_t> two{1, 0};
  const std::string y2 = (dir_.path() / "y2.npy").string();
  save_npy(y2, two.data(), {2});
  const auto d = NpyDataset::open(x, y2);
  EXPECT_EQ(d->example_shape(), (Shape{1, 3}));
  EXPECT_EQ(rows(*d), (std::vector<float>{1, 2, 3, 1, 4, 5, 6, 0}));
  EXPECT_THAT([&] { save_npy(x, xf.data(), {2, -3}); }, ThrowsMessage<Error>(HasSubstr("has a negative dimension")));
  EXPECT_THAT([&] { save_npy(x, static_cast<const float*>(nullptr), {2, 3}); },
              ThrowsMessage<Error>(HasSubstr("no data for the shape [2, 3]")));
  EXPECT_THAT([&] { save_npy((dir_.path() / "no" / "such.npy").string(), xf.data(), {6}); },
              ThrowsMessage<Error>(HasSubstr("cannot create")));
  EXPECT_EQ(rows(*NpyDataset::open(x, y2)), rows(*d));  // the failures left x whole
}

// A folder of images as a Dataset (include/cudl/image_folder.hpp, issue 21), on the small files of
// tests/data/images (written by make_images.py there): the classes and rows in byte order, every
// PNG kind to exact values, JPEG to the values Pillow decodes, the gray/RGB conversions, bilinear
// resizing against a case worked by hand, each fault refused in one sentence naming its file, fill
// from two threads at once, the cache, and fit() training on it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cudl/conv_layers.hpp"
#include "cudl/cpu_backend.hpp"
#include "cudl/image_folder.hpp"
#include "cudl/trainer.hpp"
#include "test_support.hpp"

using namespace cudl;
using ::testing::HasSubstr;
using ::testing::ThrowsMessage;
using Resize = ImageFolderOptions::Resize;

namespace {

const std::string kImages = std::string(CUDL_SOURCE_DIR) + "/tests/data/images/";
const std::string kFolder = kImages + "folder";

// make_images.py's patterns: the 8-bit value of channel c at column x, row y, and the 16-bit gray.
int pattern(int x, int y, int c, int seed) { return (37 * x + 23 * y + 91 * c + 13 * seed) % 256; }
int pattern16(int x, int y) { return (4099 * x + 771 * y + 1) % 65536; }
int pattern16c(int x, int y, int c) { return (4099 * x + 771 * y + 9001 * c + 1) % 65536; }
float unit(int v) { return static_cast<float>(v) / 255.0f; }

ImageFolderOptions with(int channels, bool cache = false) {
  ImageFolderOptions o;
  o.channels = channels;
  o.cache = cache;
  return o;
}

// Every row of d, filled in one call: x (size × C·H·W) and y (size).
std::pair<std::vector<float>, std::vector<float>> all_rows(const Dataset& d) {
  std::vector<int64_t> idx(static_cast<size_t>(d.size()));
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<int64_t>(i);
  std::vector<float> x(static_cast<size_t>(d.size() * d.example_numel())), y(idx.size());
  d.fill(idx.data(), d.size(), x.data(), y.data());
  return {x, y};
}

// The row of `name` ("class/file") in d.
int64_t row_of(const ImageFolderDataset& d, const std::string& name) {
  for (int64_t r = 0; r < d.size(); ++r)
    if (d.path(r) == kFolder + "/" + name) return r;
  ADD_FAILURE() << name << " is not a row";
  return 0;
}

// 8×8 planes (C·64 floats) of the row; expected(c, x, y) gives each value.
template <class F>
void expect_planes(const std::vector<float>& x, int64_t row, int channels, F expected, float tolerance, const std::string& what) {
  const float* px = x.data() + row * channels * 64;
  int wrong = 0;
  for (int c = 0; c < channels; ++c)
    for (int yy = 0; yy < 8; ++yy)
      for (int xx = 0; xx < 8; ++xx) {
        const float got = px[(c * 8 + yy) * 8 + xx], want = expected(c, xx, yy);
        if (!(std::fabs(got - want) <= tolerance) && wrong++ < 3)
          ADD_FAILURE() << what << " channel " << c << " x " << xx << " y " << yy << ": " << got << " != " << want;
      }
  EXPECT_EQ(wrong, 0) << what;
}

}  // namespace

TEST(ImageFolder, ListsClassesAndRowsInByteOrder) {
  const auto d = ImageFolderDataset::open(kFolder);
  EXPECT_EQ(d->class_names(), (std::vector<std::string>{"circle", "square", "triangle"}));
  EXPECT_EQ(d->num_classes(), 3);
  EXPECT_EQ(d->example_shape(), (Shape{1, 8, 8}));  // the first image, circle/gray.png, is gray
  EXPECT_EQ(d->target_shape(), (Shape{}));
  const std::vector<std::string> files{"circle/gray.png",  "circle/gray_alpha.png", "circle/rgb.jpg",    "circle/rgba.png",
                                       "square/gray16.png", "square/palette.png",   "square/rgb.png",    "triangle/bilevel.png",
                                       "triangle/gray.JPEG", "triangle/rgb.png"};
  ASSERT_EQ(d->size(), static_cast<int64_t>(files.size()));
  std::vector<float> labels;
  for (int64_t r = 0; r < d->size(); ++r) {
    EXPECT_EQ(d->path(r), kFolder + "/" + files[static_cast<size_t>(r)]);
    labels.push_back(static_cast<float>(d->class_of(r)));
  }
  EXPECT_EQ(labels, (std::vector<float>{0, 0, 0, 0, 1, 1, 1, 2, 2, 2}));
  EXPECT_EQ(all_rows(*d).second, labels);
  const std::vector<int64_t> idx{9, 0, 5};
  std::vector<float> y(3);
  d->fill_targets(idx.data(), 3, y.data());
  EXPECT_EQ(y, (std::vector<float>{2, 0, 1}));
  EXPECT_EQ(d->skipped(), 1);  // circle/notes.txt
  EXPECT_THAT(d->describe(), HasSubstr("10 images (8 PNG, 2 JPEG) in 3 classes (circle, square, triangle) as [1, 8, 8] "
                                       "floats in [0, 1], decoded in fill, 1 other entry skipped"));
}

TEST(ImageFolder, DecodesEveryPngKindToExactValues) {
  const auto d = ImageFolderDataset::open(kFolder, with(3));
  EXPECT_EQ(d->example_shape(), (Shape{3, 8, 8}));
  const auto [x, y] = all_rows(*d);
  const auto gray = [](int seed) { return [seed](int, int xx, int yy) { return unit(pattern(xx, yy, 0, seed)); }; };
  const auto rgb = [](int seed) { return [seed](int c, int xx, int yy) { return unit(pattern(xx, yy, c, seed)); }; };
  expect_planes(x, row_of(*d, "circle/gray.png"), 3, gray(1), 0.0f, "8-bit gray, repeated");
  expect_planes(x, row_of(*d, "circle/gray_alpha.png"), 3, gray(2), 0.0f, "gray + alpha, alpha dropped");
  expect_planes(x, row_of(*d, "circle/rgba.png"), 3, rgb(3), 0.0f, "RGBA, alpha dropped");
  expect_planes(x, row_of(*d, "square/rgb.png"), 3, rgb(5), 0.0f, "8-bit RGB");
  expect_planes(x, row_of(*d, "triangle/rgb.png"), 3, rgb(7), 0.0f, "8-bit RGB");
  expect_planes(x, row_of(*d, "square/gray16.png"), 3,
                [](int, int xx, int yy) { return static_cast<float>(pattern16(xx, yy)) / 65535.0f; }, 0.0f, "16-bit gray");
  const int palette[4][3] = {{255, 0, 0}, {0, 128, 255}, {10, 20, 30}, {200, 200, 200}};
  expect_planes(x, row_of(*d, "square/palette.png"), 3,
                [&](int c, int xx, int yy) { return unit(palette[(xx + 2 * yy) % 4][c]); }, 0.0f, "palette");
  expect_planes(x, row_of(*d, "triangle/bilevel.png"), 3,
                [](int, int xx, int yy) { return (xx + yy) % 2 ? 1.0f : 0.0f; }, 0.0f, "1-bit gray");
  for (const float v : x) ASSERT_TRUE(v >= 0.0f && v <= 1.0f) << v;
}

TEST(ImageFolder, KeepsAllSixteenBitsAndReadsInterlacedPngs) {
  const auto d = ImageFolderDataset::open(kImages + "deep", with(3));
  ASSERT_EQ(d->size(), 4);  // gray_alpha16, interlaced, rgb16, rgba16
  const auto [x, y] = all_rows(*d);
  const auto deep = [](int c, int xx, int yy) { return static_cast<float>(pattern16c(xx, yy, c)) / 65535.0f; };
  expect_planes(x, 0, 3, [](int, int xx, int yy) { return static_cast<float>(pattern16(xx, yy)) / 65535.0f; }, 0.0f,
                "16-bit gray + alpha");
  expect_planes(x, 1, 3, [](int c, int xx, int yy) { return unit(pattern(xx, yy, c, 11)); }, 0.0f, "Adam7 interlaced");
  expect_planes(x, 2, 3, deep, 0.0f, "16-bit RGB");
  expect_planes(x, 3, 3, deep, 0.0f, "16-bit RGBA");
}

// A JPEG whose frame header lies past the first 64 KiB (large metadata segments before it): open()
// reads the whole file to find its size.
TEST(ImageFolder, ReadsAJpegHeaderBeyondTheFirst64KiB) {
  const cudl::testing::TempDir tmp;
  std::ifstream in(kFolder + "/circle/rgb.jpg", std::ios::binary);
  const cudl::testing::Bytes jpeg((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GT(jpeg.size(), 2u);
  cudl::testing::Bytes big(jpeg.begin(), jpeg.begin() + 2);  // SOI
  for (int segment = 0; segment < 2; ++segment) {           // two APP15 segments of 60,000 bytes
    const int len = 60002;
    big.insert(big.end(), {0xff, 0xef, static_cast<uint8_t>(len >> 8), static_cast<uint8_t>(len & 0xff)});
    big.insert(big.end(), 60000, static_cast<uint8_t>('m'));
  }
  big.insert(big.end(), jpeg.begin() + 2, jpeg.end());
  tmp.write("data/a/big.jpg", big);
  const auto d = ImageFolderDataset::open(tmp.str("data"), with(3));
  EXPECT_EQ(d->example_shape(), (Shape{3, 8, 8}));
  const auto plain = ImageFolderDataset::open(kFolder, with(3));
  const int64_t row = row_of(*plain, "circle/rgb.jpg");
  std::vector<float> a(192), b(192), y(1);
  d->fill(std::vector<int64_t>{0}.data(), 1, a.data(), y.data());
  plain->fill(&row, 1, b.data(), y.data());
  EXPECT_EQ(a, b);
}

TEST(ImageFolder, TurnsColourToGrayByBt601Luma) {
  const auto d = ImageFolderDataset::open(kFolder, with(1));
  const auto [x, y] = all_rows(*d);
  const auto luma = [](int seed) {
    return [seed](int, int xx, int yy) {
      return 0.299f * unit(pattern(xx, yy, 0, seed)) + 0.587f * unit(pattern(xx, yy, 1, seed)) +
             0.114f * unit(pattern(xx, yy, 2, seed));
    };
  };
  expect_planes(x, row_of(*d, "square/rgb.png"), 1, luma(5), 1e-6f, "RGB to gray");
  expect_planes(x, row_of(*d, "circle/rgba.png"), 1, luma(3), 1e-6f, "RGBA to gray");
  expect_planes(x, row_of(*d, "circle/gray.png"), 1, [](int, int xx, int yy) { return unit(pattern(xx, yy, 0, 1)); }, 0.0f,
                "gray stays");
  const int palette[4][3] = {{255, 0, 0}, {0, 128, 255}, {10, 20, 30}, {200, 200, 200}};
  expect_planes(x, row_of(*d, "square/palette.png"), 1, [&](int, int xx, int yy) {
    const int* p = palette[(xx + 2 * yy) % 4];
    return 0.299f * unit(p[0]) + 0.587f * unit(p[1]) + 0.114f * unit(p[2]);
  }, 1e-6f, "palette to gray");
}

// jpeg_reference.txt holds each JPEG's pixels as Pillow (over libjpeg-turbo) decodes them. The same
// library decodes them here, with the same DCT and upsampling: equal but for a last-bit difference
// another libjpeg-turbo build might make (1/255 allowed).
TEST(ImageFolder, DecodesJpegAsPillowDoes) {
  const auto d = ImageFolderDataset::open(kFolder, with(3));
  const auto [x, y] = all_rows(*d);
  std::ifstream in(kImages + "jpeg_reference.txt");
  ASSERT_TRUE(in.good());
  std::string line;
  int checked = 0;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream s(line);
    std::string rel;
    int c = 0, h = 0, w = 0;
    s >> rel >> c >> h >> w;
    ASSERT_EQ(h * w, 64) << rel;
    std::vector<int> ref(static_cast<size_t>(c * 64));
    for (int& v : ref) s >> v;
    ASSERT_TRUE(s) << rel;
    expect_planes(x, row_of(*d, rel.substr(std::string("folder/").size())), 3,
                  [&](int k, int xx, int yy) { return unit(ref[static_cast<size_t>(((c == 1 ? 0 : k) * 8 + yy) * 8 + xx)]); },
                  1.0f / 255 + 1e-6f, rel);
    ++checked;
  }
  EXPECT_EQ(checked, 2);
}

TEST(ImageFolder, ResizesBilinearlyAsWorkedByHand) {
  // resize/a/checker.png is 0 255 / 255 0. To 3×3 with centres aligned, output o samples source
  // (o + 0.5)·2/3 − 0.5 = −1/6 (clamped to 0), 1/2, 7/6 (clamped to 1).
  ImageFolderOptions o = with(1);
  o.height = o.width = 3;
  o.resize = Resize::kBilinear;
  const auto d = ImageFolderDataset::open(kImages + "resize", o);
  EXPECT_EQ(d->example_shape(), (Shape{1, 3, 3}));
  auto [x, y] = all_rows(*d);
  EXPECT_EQ(std::vector<float>(x.begin(), x.begin() + 9), (std::vector<float>{0, 0.5f, 1, 0.5f, 0.5f, 0.5f, 1, 0.5f, 0}));
  EXPECT_THAT(d->describe(), HasSubstr("2 resized bilinearly"));

  // The first image's size (2×2): resize/b/wide.png (5 high, 6 wide, RGB) samples rows 0.75 and
  // 3.25, columns 1 and 4.
  ImageFolderOptions first = with(3);
  first.resize = Resize::kBilinear;
  const auto e = ImageFolderDataset::open(kImages + "resize", first);
  EXPECT_EQ(e->example_shape(), (Shape{3, 2, 2}));
  std::tie(x, y) = all_rows(*e);
  for (int c = 0; c < 3; ++c)
    for (int oy = 0; oy < 2; ++oy)
      for (int ox = 0; ox < 2; ++ox) {
        const int sx = ox == 0 ? 1 : 4, y0 = oy == 0 ? 0 : 3;
        const float f = oy == 0 ? 0.75f : 0.25f;  // the weight of row y0 + 1
        const float want = (1 - f) * unit(pattern(sx, y0, c, 8)) + f * unit(pattern(sx, y0 + 1, c, 8));
        EXPECT_NEAR(x[static_cast<size_t>(12 + (c * 2 + oy) * 2 + ox)], want, 1e-6f) << c << " " << oy << " " << ox;
      }
  // The same under kRefuse: refused at open, from the header.
  EXPECT_THAT([&] { ImageFolderDataset::open(kImages + "resize", with(3)); },
              ThrowsMessage<Error>(HasSubstr("resize/b/wide.png: expected an image of 2×2 (height×width, the size of the "
                                             "first image, " + kImages + "resize/a/checker.png), found 5×6")));
}

TEST(ImageFolder, RefusesEachFaultInOneSentenceNamingTheFile) {
  const cudl::testing::TempDir tmp;
  const auto refused = [](const std::string& root, const ImageFolderOptions& o, const std::string& why) {
    EXPECT_THAT([&] { ImageFolderDataset::open(root, o); }, ThrowsMessage<Error>(HasSubstr(why))) << why;
  };
  refused(tmp.str("absent"), {}, tmp.str("absent") + ": no such folder");
  refused(kFolder + "/circle/gray.png", {}, "circle/gray.png: not a folder");
  tmp.write("flat/image.png", {1, 2, 3});
  refused(tmp.str("flat"), {}, tmp.str("flat") + ": no class subfolders");
  std::filesystem::create_directories(tmp.path() / "gap/a");
  tmp.write("gap/a/notes.txt", {1});
  std::filesystem::create_directories(tmp.path() / "gap/b");
  std::filesystem::copy_file(kFolder + "/circle/gray.png", tmp.path() / "gap/b/x.png");
  refused(tmp.str("gap"), {}, tmp.str("gap/a") + ": the folder of class 'a' holds no images");

  tmp.write("empty/a/nothing.png", {});
  refused(tmp.str("empty"), {}, tmp.str("empty/a/nothing.png") + ": empty file, not an image");
  tmp.write("headless/a/cut.jpg", {0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 'J', 'F', 'I', 'F', 0});
  refused(tmp.str("headless"), {}, tmp.str("headless/a/cut.jpg") + ": corrupt or truncated JPEG (libjpeg-turbo: ");

  // A PNG header announcing 8193 × 8193 pixels: refused before anything that size is allocated.
  cudl::testing::Bytes huge{0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R'};
  for (const uint32_t side : {8193u, 8193u}) cudl::testing::put32(huge, side);
  huge.insert(huge.end(), {8, 2, 0, 0, 0});  // 8-bit RGB
  cudl::testing::put32(huge, static_cast<uint32_t>(crc32(0, huge.data() + 12, 17)));
  tmp.write("huge/a/huge.png", huge);
  refused(tmp.str("huge"), {}, "huge/a/huge.png: an image of 8193×8193 pixels, more than the 67108864 ImageFolderDataset decodes");

  const std::string broken = kImages + "broken/";
  refused(broken + "text_png", {}, "text_png/a/letter.png: neither a PNG nor a JPEG file (it starts with bytes 44 65 61 72");
  refused(broken + "cmyk", {}, "cmyk/a/cmyk.jpg: a CMYK JPEG, which is not supported");
  refused(broken + "mismatch", {}, "mismatch/a/wide.png: expected an image of 8×8 (height×width, the size of the first image, " +
                                       broken + "mismatch/a/big.png), found 5×6");
  ImageFolderOptions four;
  four.height = four.width = 4;
  refused(broken + "mismatch", four, "mismatch/a/big.png: expected an image of 4×4 (height×width, as ImageFolderOptions asks), found 8×8");
  ImageFolderOptions bad;
  bad.height = 3;
  refused(kFolder, bad, "ImageFolderOptions: height and width must both be 0 (the first image's size) or both positive, found 3×0");
  refused(kFolder, with(2), "ImageFolderOptions: channels must be 0 (as the first image), 1 (gray) or 3 (RGB), found 2");

  // Truncated image data: the headers are whole, so open() finds it only when it decodes (cache).
  for (const auto& [folder, why] : {std::pair<std::string, std::string>{"truncated_png", "truncated_png/a/cut.png: corrupt or truncated PNG (libspng"},
                                    {"truncated_jpeg", "truncated_jpeg/a/cut.jpg: corrupt or truncated JPEG (libjpeg-turbo: "}}) {
    refused(broken + folder, with(0, true), why);
    const auto d = ImageFolderDataset::open(broken + folder);
    const int64_t row = 0;
    std::vector<float> x(static_cast<size_t>(d->example_numel())), y(1);
    EXPECT_THAT([&] { d->fill(&row, 1, x.data(), y.data()); }, ThrowsMessage<Error>(HasSubstr(why))) << why;
  }

  const auto d = ImageFolderDataset::open(kFolder);
  const int64_t outside = 10;
  std::vector<float> x(64), y(1);
  EXPECT_THAT([&] { d->fill(&outside, 1, x.data(), y.data()); },
              ThrowsMessage<Error>(HasSubstr("ImageFolderDataset::fill: row index 10 (entry 0 of the request) is outside [0, 10)")));
  EXPECT_THAT([&] { d->path(-1); }, ThrowsMessage<Error>(HasSubstr("ImageFolderDataset::path: row -1 is outside [0, 10) of " + kFolder)));
}

TEST(ImageFolder, SkipsAndCountsWhatIsNotAnImageOfAClass) {
  const cudl::testing::TempDir tmp;
  for (const char* name : {"data/b/one.PNG", "data/a/two.Jpg"}) {
    std::filesystem::create_directories((tmp.path() / name).parent_path());
    std::filesystem::copy_file(kFolder + (name[5] == 'b' ? "/circle/gray.png" : "/triangle/gray.JPEG"), tmp.path() / name);
  }
  tmp.write("data/a/._two.jpg", {0, 5, 22});           // a macOS resource fork: hidden
  tmp.write("data/a/inner/three.png", {1});            // not searched
  tmp.write("data/README", {'h', 'i'});                // a file in the root
  tmp.write("data/.ipynb_checkpoints/x.png", {1});     // a hidden folder: not a class
  const auto d = ImageFolderDataset::open(tmp.str("data"));
  EXPECT_EQ(d->class_names(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(d->size(), 2);
  EXPECT_EQ(d->skipped(), 4);
  EXPECT_THAT(d->describe(), HasSubstr("2 images (1 PNG, 1 JPEG) in 2 classes (a, b)"));
  EXPECT_THAT(d->describe(), HasSubstr("4 other entries skipped"));
}

TEST(ImageFolder, FillsFromTwoThreadsAsFromOneAndCachesTheSameValues) {
  const auto d = ImageFolderDataset::open(kFolder, with(3));
  const auto cached = ImageFolderDataset::open(kFolder, with(3, true));
  EXPECT_THAT(cached->describe(), HasSubstr("decoded at open"));
  EXPECT_EQ(all_rows(*d), all_rows(*cached));

  const std::vector<int64_t> idx{9, 0, 3, 3, 5, 2, 8, 1, 7, 4, 6, 2};
  const auto n = static_cast<int64_t>(idx.size());
  const size_t per = static_cast<size_t>(d->example_numel());
  std::vector<float> x1(idx.size() * per), y1(idx.size());
  d->fill(idx.data(), n, x1.data(), y1.data());
  const auto [all_x, all_y] = all_rows(*d);
  for (size_t i = 0; i < idx.size(); ++i)
    ASSERT_TRUE(std::equal(x1.begin() + static_cast<std::ptrdiff_t>(i * per), x1.begin() + static_cast<std::ptrdiff_t>((i + 1) * per),
                           all_x.begin() + idx[i] * static_cast<std::ptrdiff_t>(per)))
        << "entry " << i;
  std::vector<float> xa(x1.size()), ya(y1.size()), xb(x1.size()), yb(y1.size());
  bool same = true;
  for (int round = 0; round < 30 && same; ++round) {
    std::fill(xa.begin(), xa.end(), -1.0f);
    std::fill(xb.begin(), xb.end(), -1.0f);
    std::thread a([&] { d->fill(idx.data(), n, xa.data(), ya.data()); });
    std::thread b([&] { d->fill(idx.data(), n, xb.data(), yb.data()); });
    a.join();
    b.join();
    same = xa == x1 && xb == x1 && ya == y1 && yb == y1;
  }
  EXPECT_TRUE(same);
}

TEST(ImageFolder, FitTrainsOnIt) {
  const auto data = ImageFolderDataset::open(kFolder, with(3));
  CpuBackend cpu(1);
  Network net(cpu, data->example_shape());
  net.add(flatten()).add(dense(16, Activation::kRelu)).add(dense(3));
  net.initialize(5, 0.1f);
  Sgd opt(net.param_set(), SgdOptions{0.2f});
  FitOptions o;
  o.epochs = 40;
  o.batch = 5;
  o.data_path = DataPath::kStreamed;  // rows filled (decoded) by the loader's threads
  o.progress = Progress::kNone;
  const History h = fit(net, SoftmaxCrossEntropy(), opt, *data, o);
  ASSERT_EQ(h.epochs.size(), 40u);
  EXPECT_LT(h.epochs.back().loss, 0.5 * h.epochs.front().loss) << "first " << h.epochs.front().loss << ", last "
                                                               << h.epochs.back().loss;
  EXPECT_THAT(h.data_path, HasSubstr("stream"));
}

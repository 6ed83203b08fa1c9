// How fast cudl's dataset loaders deliver rows (issue 21): the same rows written as .npy (uint8
// and float32 examples, int64 labels), as CSV (a "label" column, then one integer column per
// pixel, with a header) and as a folder of PNG files (one subfolder per class), then, per format,
// the open (NpyDataset::open, CsvDataset::read's parse, ImageFolderDataset::open's header scan)
// and one pass of Dataset::fill over every row in random batches, on 1 thread and on T threads
// (each thread filling its own batches from a shared counter, as the loader's threads do). The
// page cache is warm: every format is opened and filled once, untimed, before the timed rounds.
// benchmarks/peers/loader_numpy.py times the same files read the way a Python user would;
// benchmarks/compare_loader.sh runs both.
//
// Usage: bench_loader [--data DIR] [--rows N] [--dir DIR] [--keep] [--threads T] [--rounds R]
//                     [--batch B] [--seed S] [--json FILE]
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cli.hpp"
#include "clock.hpp"
#include "command_line.hpp"
#include "cudl/csv.hpp"
#include "cudl/data.hpp"
#include "cudl/image.hpp"
#include "cudl/image_folder.hpp"
#include "cudl/npy.hpp"
#include "json.hpp"

namespace fs = std::filesystem;

namespace {

struct Options {
  std::string data = "/usr/share/datasets/fashion-mnist";
  int64_t rows = 0;  // 0: all
  std::string dir, json;
  bool keep = false;
  int threads = 2, rounds = 3;
  int64_t batch = 64;
  uint64_t seed = 2014;
};

// The rows every format holds: n images of h × w bytes and their labels (0..9).
struct Rows {
  std::string source;
  int64_t n = 0, h = 28, w = 28;
  std::vector<uint8_t> pixels, labels;
};

uint64_t mix(uint64_t z) {  // splitmix64's finaliser
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::string idx_file(const std::string& dir, const std::string& stem) {
  for (const std::string& p : {dir + "/" + stem, dir + "/" + stem + ".gz"})
    if (fs::is_regular_file(p)) return p;
  return "";
}

// Fashion-MNIST's (or MNIST's) training split from `dir` when its files are there; else 60,000
// deterministic synthetic 28×28 images (noise with about half the pixels 0, label i mod 10).
Rows load_rows(const std::string& dir, int64_t limit) {
  Rows r;
  const std::string images = idx_file(dir, "train-images-idx3-ubyte"), labels = idx_file(dir, "train-labels-idx1-ubyte");
  if (!images.empty() && !labels.empty()) {
    cudl::IdxImages im = cudl::read_idx_images(images);
    r.labels = cudl::read_idx_labels(labels, 10);
    if (static_cast<int64_t>(r.labels.size()) != im.count) throw cudl::Error(images + " and " + labels + ": counts differ");
    r.source = "training images of " + dir;
    r.n = im.count, r.h = im.rows, r.w = im.cols;
    r.pixels = std::move(im.pixels);
  } else {
    r.source = "synthetic (no IDX training files in " + dir + ")";
    r.n = 60000;
    r.pixels.resize(static_cast<size_t>(r.n * r.h * r.w));
    r.labels.resize(static_cast<size_t>(r.n));
    for (int64_t i = 0; i < r.n; ++i) {
      r.labels[static_cast<size_t>(i)] = static_cast<uint8_t>(i % 10);
      for (int64_t p = 0; p < r.h * r.w; ++p) {
        const uint64_t z = mix(static_cast<uint64_t>(i * r.h * r.w + p));
        r.pixels[static_cast<size_t>(i * r.h * r.w + p)] = (z >> 40) & 1 ? static_cast<uint8_t>(z) : 0;
      }
    }
  }
  if (limit > 0 && limit < r.n) {
    r.n = limit;
    r.pixels.resize(static_cast<size_t>(r.n * r.h * r.w));
    r.labels.resize(static_cast<size_t>(r.n));
  }
  return r;
}

std::string png_name(const Rows& r, int64_t i) {
  char name[32];
  std::snprintf(name, sizeof name, "%d/%06lld.png", r.labels[static_cast<size_t>(i)], static_cast<long long>(i));
  return name;
}

// Writes x.npy, y.npy, x_f4.npy, data.csv, png/ and order.npy (the seeded permutation the fill
// passes draw their batches from, for the peer) into dir. Returns the permutation.
std::vector<int64_t> write_files(const Rows& r, const std::string& dir, uint64_t seed) {
  const int64_t d = r.h * r.w;
  std::vector<int64_t> y(r.labels.begin(), r.labels.end());
  cudl::save_npy(dir + "/x.npy", r.pixels.data(), {r.n, r.h, r.w});
  cudl::save_npy(dir + "/y.npy", y.data(), {r.n});
  std::vector<float> xf(r.pixels.size());
  for (size_t i = 0; i < xf.size(); ++i) xf[i] = static_cast<float>(r.pixels[i]) / 255.0f;
  cudl::save_npy(dir + "/x_f4.npy", xf.data(), {r.n, r.h, r.w});

  std::string text = "label";
  for (int64_t p = 0; p < d; ++p) text += ",p" + std::to_string(p);
  text += '\n';
  text.reserve(text.size() + static_cast<size_t>(r.n * (d * 3 + 4)));
  char cell[8];
  for (int64_t i = 0; i < r.n; ++i) {
    text += static_cast<char>('0' + r.labels[static_cast<size_t>(i)]);
    for (int64_t p = 0; p < d; ++p) {
      cell[0] = ',';
      const auto end = std::to_chars(cell + 1, cell + sizeof cell, r.pixels[static_cast<size_t>(i * d + p)]).ptr;
      text.append(cell, end);
    }
    text += '\n';
  }
  std::ofstream(dir + "/data.csv", std::ios::binary).write(text.data(), static_cast<std::streamsize>(text.size()));
  if (!fs::is_regular_file(dir + "/data.csv") || fs::file_size(dir + "/data.csv") != text.size())
    throw cudl::Error("cannot write " + dir + "/data.csv");

  for (int c = 0; c < 10; ++c) fs::create_directories(dir + "/png/" + std::to_string(c));
  for (int64_t i = 0; i < r.n; ++i) {
    const auto first = r.pixels.begin() + i * d;
    cudl::write_png_gray(dir + "/png/" + png_name(r, i), r.w, r.h, std::vector<uint8_t>(first, first + d));
  }

  std::vector<int64_t> order(static_cast<size_t>(r.n));
  for (int64_t i = 0; i < r.n; ++i) order[static_cast<size_t>(i)] = i;
  std::mt19937_64 rng(seed);
  std::shuffle(order.begin(), order.end(), rng);
  cudl::save_npy(dir + "/order.npy", order.data(), {r.n});
  return order;
}

int64_t bytes_under(const std::string& path) {
  if (fs::is_regular_file(path)) return static_cast<int64_t>(fs::file_size(path));
  int64_t total = 0;
  for (const auto& e : fs::recursive_directory_iterator(path))
    if (e.is_regular_file()) total += static_cast<int64_t>(e.file_size());
  return total;
}

// One pass over every row of `order` in batches of `batch`, by `threads` threads that take the
// next batch from a shared counter, each into its own buffers. Returns the seconds.
double fill_pass(const cudl::Dataset& data, const std::vector<int64_t>& order, int64_t batch, int threads) {
  const int64_t n = static_cast<int64_t>(order.size()), batches = (n + batch - 1) / batch;
  std::vector<std::vector<float>> xs(static_cast<size_t>(threads)), ys(static_cast<size_t>(threads));
  for (int t = 0; t < threads; ++t) {
    xs[static_cast<size_t>(t)].resize(static_cast<size_t>(batch * data.example_numel()));
    ys[static_cast<size_t>(t)].resize(static_cast<size_t>(batch * std::max<int64_t>(1, data.target_numel())));
  }
  std::atomic<int64_t> next{0};
  const auto work = [&](int t) {
    for (int64_t b; (b = next.fetch_add(1)) < batches;) {
      const int64_t first = b * batch;
      data.fill(order.data() + first, std::min(batch, n - first), xs[static_cast<size_t>(t)].data(),
                ys[static_cast<size_t>(t)].data());
    }
  };
  const bench::Clock::time_point t0 = bench::Clock::now();
  if (threads == 1) {
    work(0);
  } else {
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) pool.emplace_back(work, t);
    for (std::thread& th : pool) th.join();
  }
  return bench::since(t0);
}

// Fills the first batch of `order` and checks it against the rows: example values `scale` ·
// pixel (within 1e-6), labels exact. `row_of` maps the dataset's row to the index in `r`.
void check_batch(const std::string& name, const cudl::Dataset& data, const Rows& r, const std::vector<int64_t>& order,
                 float scale, const std::function<int64_t(int64_t)>& row_of) {
  const int64_t m = std::min<int64_t>(64, r.n), d = r.h * r.w;
  if (data.size() != r.n || data.example_numel() != d)
    throw cudl::Error(name + ": " + data.describe() + " does not hold the rows written");
  std::vector<float> x(static_cast<size_t>(m * d)), y(static_cast<size_t>(m));
  data.fill(order.data(), m, x.data(), y.data());
  for (int64_t k = 0; k < m; ++k) {
    const int64_t i = row_of(order[static_cast<size_t>(k)]);
    bool same = y[static_cast<size_t>(k)] == r.labels[static_cast<size_t>(i)];
    for (int64_t p = 0; p < d && same; ++p)
      same = std::fabs(x[static_cast<size_t>(k * d + p)] - scale * r.pixels[static_cast<size_t>(i * d + p)]) <= 1e-6f;
    if (!same) throw cudl::Error(name + ": row " + std::to_string(i) + " does not read back as written");
  }
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

struct Format {
  using Open = std::function<std::unique_ptr<cudl::Dataset>()>;
  Format(std::string name_, std::string file_, std::string open_what_, Open open_, float scale_, bool png_ = false)
      : name(std::move(name_)), file(std::move(file_)), open_what(std::move(open_what_)), open(std::move(open_)),
        scale(scale_), png(png_) {}
  std::string name, file, open_what;
  Open open;
  float scale = 1.0f;  // what the examples are of the pixels
  bool png = false;
  int64_t bytes = 0;
  std::vector<double> open_s, fill1_s, fillt_s;
};

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line, model = "unknown CPU";
  bool avx512 = false, found = false;
  while (std::getline(in, line)) {
    if (!found && line.rfind("model name", 0) == 0) model = line.substr(line.find(':') + 2), found = true;
    if (line.rfind("flags", 0) == 0 && line.find(" avx512f") != std::string::npos) avx512 = true;
  }
  return model + (avx512 ? " (AVX-512)" : " (no AVX-512)") + ", " + std::to_string(std::thread::hardware_concurrency()) +
         " logical CPUs";
}

std::optional<int> parse(int argc, char** argv, Options& o) {
  CLI::App app(R"(How fast cudl's datasets deliver rows: the same rows (Fashion-MNIST's training images, or a
synthetic set of the same shape) written as .npy (uint8 and float32), CSV and a PNG folder, then
per format the open (NpyDataset::open, CsvDataset::read, ImageFolderDataset::open) and one pass of
Dataset::fill in random batches on 1 and on T threads; medians of R rounds, page cache warm.
)",
               "bench_loader");
  bench::setup_app(app, 22);
  using Text = const std::string&;
  bench::add_value(app, "--data", "DIR", "IDX files (default /usr/share/datasets/fashion-mnist;\nsynthetic rows when absent)",
                   [&](Text v) { o.data = v; });
  bench::add_value(app, "--rows", "N", "use the first N rows (default all)",
                   [&](Text v) { o.rows = bench::parse_whole<int64_t>("--rows", v, 1); });
  bench::add_value(app, "--dir", "DIR", "the folder for the files, new or empty (default: a temporary\none)",
                   [&](Text v) { o.dir = v; });
  app.add_flag("--keep", o.keep, "keep the files written (default: removed at the end)");
  bench::add_value(app, "--threads", "T", "loader threads of the second fill pass (default 2)",
                   [&](Text v) { o.threads = bench::parse_whole<int>("--threads", v, 1, 256); });
  bench::add_value(app, "--rounds", "R", "timed rounds; medians are reported (default 3)",
                   [&](Text v) { o.rounds = bench::parse_whole<int>("--rounds", v, 1, 1000); });
  bench::add_value(app, "--batch", "B", "rows per fill (default 64)",
                   [&](Text v) { o.batch = bench::parse_whole<int64_t>("--batch", v, 1, 1 << 20); });
  bench::add_value(app, "--seed", "S", "seed of the row order (default 2014)",
                   [&](Text v) { o.seed = bench::parse_uint64("--seed", v); });
  bench::add_value(app, "--json", "FILE", "also write the results, machine-readably", [&](Text v) { o.json = v; });
  return bench::parse_command_line(app, argc, argv, [&] {
    if (!o.dir.empty() && fs::exists(o.dir) && (!fs::is_directory(o.dir) || !fs::is_empty(o.dir)))
      throw cudl::Error("--dir: " + o.dir + " is not an empty folder");
  });
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (const std::optional<int> status = parse(argc, argv, o)) return *status;
  if (!o.json.empty() && !bench::json_path_writable("bench_loader", o.json)) return 2;
  std::string dir = o.dir;
  const auto clean_up = [&] {  // the files written (and the temporary folder), unless --keep
    if (o.keep || dir.empty()) return;
    std::error_code ec;
    for (const char* name : {"x.npy", "y.npy", "x_f4.npy", "data.csv", "order.npy", "png"}) fs::remove_all(dir + "/" + name, ec);
    if (o.dir.empty()) fs::remove(dir, ec);
  };
  try {
    const Rows r = load_rows(o.data, o.rows);
    if (dir.empty()) {
      dir = (fs::temp_directory_path() / "cudl_bench_loader_XXXXXX").string();
      if (mkdtemp(dir.data()) == nullptr) throw cudl::Error("mkdtemp failed");
    }
    fs::create_directories(dir);
    std::printf("rows: %lld × %lld×%lld, %s\nfiles: %s\n", static_cast<long long>(r.n), static_cast<long long>(r.h),
                static_cast<long long>(r.w), r.source.c_str(), dir.c_str());
    std::fflush(stdout);
    const bench::Clock::time_point t_write = bench::Clock::now();
    const std::vector<int64_t> order = write_files(r, dir, o.seed);
    const double write_s = bench::since(t_write);

    cudl::NpyOptions u8;
    u8.targets = cudl::NpyOptions::Targets::kClasses;
    u8.classes = 10;
    u8.x_scale = 1.0f / 255;
    cudl::NpyOptions f4 = u8;
    f4.x_scale = 1.0f;
    cudl::CsvOptions csv;
    csv.target = "label";
    csv.header = cudl::CsvOptions::Header::kYes;
    csv.targets = cudl::CsvOptions::Targets::kClasses;
    csv.classes = 10;
    std::vector<Format> formats = {
        Format{"npy-u8", dir + "/x.npy", "NpyDataset::open (mmap, labels checked)",
         [&] { return std::unique_ptr<cudl::Dataset>(cudl::NpyDataset::open(dir + "/x.npy", dir + "/y.npy", u8)); }, 1.0f / 255},
        Format{"npy-f4", dir + "/x_f4.npy", "NpyDataset::open (mmap, labels checked)",
         [&] { return std::unique_ptr<cudl::Dataset>(cudl::NpyDataset::open(dir + "/x_f4.npy", dir + "/y.npy", f4)); }, 1.0f / 255},
        Format{"csv", dir + "/data.csv", "CsvDataset::read (read and parse every cell)",
         [&] { return std::unique_ptr<cudl::Dataset>(cudl::CsvDataset::read(dir + "/data.csv", csv)); }, 1.0f},
        Format{"png", dir + "/png", "ImageFolderDataset::open (list, read every header)",
         [&] { return std::unique_ptr<cudl::Dataset>(cudl::ImageFolderDataset::open(dir + "/png")); }, 1.0f / 255, true},
    };
    for (Format& f : formats) {  // untimed: warms the page cache and checks what reads back
      f.bytes = bytes_under(f.file);
      const std::unique_ptr<cudl::Dataset> data = f.open();
      std::function<int64_t(int64_t)> row_of = [](int64_t i) { return i; };
      if (f.png) {
        const auto* folder = static_cast<const cudl::ImageFolderDataset*>(data.get());
        row_of = [folder](int64_t i) { return std::stoll(fs::path(folder->path(i)).stem().string()); };
      }
      check_batch(f.name, *data, r, order, f.scale, row_of);
      fill_pass(*data, order, o.batch, o.threads);
    }
    for (int round = 0; round < o.rounds; ++round)
      for (Format& f : formats) {
        const bench::Clock::time_point t0 = bench::Clock::now();
        const std::unique_ptr<cudl::Dataset> data = f.open();
        f.open_s.push_back(bench::since(t0));
        f.fill1_s.push_back(fill_pass(*data, order, o.batch, 1));
        f.fillt_s.push_back(fill_pass(*data, order, o.batch, o.threads));
      }

    const double n = static_cast<double>(r.n);
    std::printf("written in %.1f s; %s; batches of %lld rows in a seeded random order; medians of %d rounds, page cache "
                "warm\n\n",
                write_s, cpu_model().c_str(), static_cast<long long>(o.batch), o.rounds);
    std::printf("| format | MB on disk | open s | open rows/s | fill rows/s, 1 thread | fill rows/s, %d threads |\n", o.threads);
    std::printf("| --- | ---: | ---: | ---: | ---: | ---: |\n");
    std::string js = "{\"tool\": \"bench_loader\", \"date\": " + bench::quote(bench::utc_now()) +
                     ", \"cpu\": " + bench::quote(cpu_model()) + ", \"source\": " + bench::quote(r.source) +
                     ", \"rows\": " + bench::num(n) + ", \"features\": " + bench::num(static_cast<double>(r.h * r.w)) +
                     ", \"batch\": " + bench::num(static_cast<double>(o.batch)) +
                     ", \"threads\": " + bench::num(o.threads) + ", \"rounds\": " + bench::num(o.rounds) +
                     ", \"write_seconds\": " + bench::num(write_s) + ", \"formats\": [";
    for (size_t i = 0; i < formats.size(); ++i) {
      const Format& f = formats[i];
      std::printf("| %s | %.1f | %.3f | %.0f | %.0f | %.0f |\n", f.name.c_str(), static_cast<double>(f.bytes) / 1e6,
                  median(f.open_s), n / median(f.open_s), n / median(f.fill1_s), n / median(f.fillt_s));
      js += std::string(i ? ", " : "") + "{\"name\": " + bench::quote(f.name) + ", \"open\": " + bench::quote(f.open_what) +
            ", \"bytes\": " + bench::num(static_cast<double>(f.bytes)) + ", \"open_seconds\": " + bench::array(f.open_s) +
            ", \"fill_seconds_1\": " + bench::array(f.fill1_s) + ", \"fill_seconds_t\": " + bench::array(f.fillt_s) + "}";
    }
    js += "]}\n";
    std::printf("\nopen: npy = %s; csv = %s; png = %s.\nfill: Dataset::fill of every row to floats (png: read and "
                "decode each file), as the loader's threads call it.\n",
                formats[0].open_what.c_str(), formats[2].open_what.c_str(), formats[3].open_what.c_str());
    clean_up();
    if (o.keep) std::printf("kept the files in %s\n", dir.c_str());
    return o.json.empty() ? 0 : bench::save_json("bench_loader", o.json, js, 0);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_loader: %s\n", e.what());
    clean_up();
    return 1;
  }
}

// cudl's own product for few rows (rows_gemm_plan.hpp: what it computes and in which order) and
// the per-shape choice between it and the library (rows_gemm.hpp).
#include "rows_gemm.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <utility>

#include "check.hpp"
#include "cudl/error.hpp"
#include "rows_gemm_kernel.cuh"

namespace cudl::cuda {
namespace {

using namespace rows_gemm;

// Holds the stream for about `ns` nanoseconds, so that the calls queued behind it are all queued
// before the GPU reaches them: their timing is then the GPU's, not the host's launch rate.
__global__ void hold_kernel(unsigned long long ns) {
  auto now = [] {
    unsigned long long t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));  // nanoseconds
    return t;
  };
  const unsigned long long until = now() + ns;
  while (now() < until) __nanosleep(1000);
}

bool overlaps(const void* a, size_t a_bytes, const void* b, size_t b_bytes) {
  const auto x = reinterpret_cast<uintptr_t>(a), y = reinterpret_cast<uintptr_t>(b);
  return x < y + b_bytes && y < x + a_bytes;
}

// Bytes from the first to one past the last element of a rows×cols matrix with row stride ld.
size_t span(int64_t rows, int64_t cols, int64_t ld) {
  return sizeof(float) * static_cast<size_t>((rows - 1) * ld + cols);
}

const char* epilogue_name(const RowsGemmCall& c) {
  switch (c.out.epilogue) {
    case Epilogue::kPlain:
      return c.out.a_sums != nullptr ? (c.out.beta == 0.0f ? " +row sums of A and B" : " +beta*C +row sums of A and B")
             : c.out.sums != nullptr ? (c.out.beta == 0.0f ? " +row sums of B" : " +beta*C +row sums of B")
                                     : (c.out.beta == 0.0f ? "" : " +beta*C");
    case Epilogue::kBiasAct:
      return c.out.act == Activation::kRelu ? " +bias relu" : c.out.act == Activation::kSigmoid ? " +bias sigmoid"
                                                                                                  : " +bias";
    case Epilogue::kActBackward:
      return c.out.act == Activation::kRelu ? " *relu'" : c.out.act == Activation::kSigmoid ? " *sigmoid'" : "";
    case Epilogue::kUpdate: return " nesterov step";  // the persistent step's (mlp_step), not RowsGemm's
  }
  return "";
}

}  // namespace

RowsGemm::Mode RowsGemm::mode_for(GpuGemmKernels option, std::string* source) {
  const char* v = std::getenv("CUDL_GEMM_KERNELS");
  if (v == nullptr || *v == '\0') {
    *source = std::string("BackendOptions::gpu_gemm_kernels = ") + to_string(option);
    return option == GpuGemmKernels::kCudl ? Mode::kCudl : option == GpuGemmKernels::kLibrary ? Mode::kLibrary
                                                                                              : Mode::kAuto;
  }
  *source = std::string("CUDL_GEMM_KERNELS=") + v;
  if (std::strcmp(v, "auto") == 0) return Mode::kAuto;
  if (std::strcmp(v, "cudl") == 0) return Mode::kCudl;
  if (std::strcmp(v, "library") == 0) return Mode::kLibrary;
  throw Error(std::string("CUDL_GEMM_KERNELS must be auto, cudl or library, not \"") + v + "\"");
}

RowsGemm::RowsGemm(cudaStream_t stream, int sms, Mode mode, std::string source,
                   std::function<void*(size_t)> scratch)
    : stream_(stream),
      sms_(std::max(sms, 1)),
      mode_(mode),
      source_(std::move(source)),
      scratch_(std::move(scratch)) {
  if (mode_ == Mode::kLibrary) return;
  CUDL_CUDA_CHECK(cudaMalloc(&tickets_, sizeof(int) * static_cast<size_t>(kMaxTiles)));
  const cudaError_t zeroed = cudaMemsetAsync(tickets_, 0, sizeof(int) * static_cast<size_t>(kMaxTiles), stream_);
  if (zeroed != cudaSuccess) {  // no destructor runs for a constructor that throws: free them here
    cudaFree(tickets_);
    tickets_ = nullptr;
    CUDL_CUDA_CHECK(zeroed);
  }
}

RowsGemm::~RowsGemm() {
  // Statuses ignored (a destructor does not throw); the backend synchronised its stream first.
  if (start_ != nullptr) cudaEventDestroy(start_);
  if (stop_ != nullptr) cudaEventDestroy(stop_);
  if (tickets_ != nullptr) cudaFree(tickets_);
}

namespace {
// Row sums are one block's each: their calls take k in one slice.
bool summing(const RowsGemmCall& call) { return call.out.sums != nullptr || call.out.a_sums != nullptr; }
}  // namespace

Split RowsGemm::split(const RowsGemmCall& call) const {
  return split_for(call.m, call.n, call.k, sms_, summing(call));
}

size_t RowsGemm::partial_bytes(const RowsGemmCall& call) const {
  const Split s = split(call);
  return s.splits > 1 ? sizeof(float) * static_cast<size_t>(s.splits * call.m * call.n) : 0;
}

void RowsGemm::launch(const RowsGemmCall& call, float* partials) {
  CUDL_REQUIRE(serves(call.m, call.n, call.k, summing(call)), "rows_gemm: cannot run a " + std::to_string(call.m) +
                                                                  "x" + std::to_string(call.n) + "x" +
                                                                  std::to_string(call.k) + " product");
  CUDL_REQUIRE(tickets_ != nullptr, "rows_gemm: the library's mode (" + source_ + ") made no counters");
  CUDL_REQUIRE(call.out.epilogue == Epilogue::kPlain || call.out.ldc == call.n,
               "rows_gemm: a bias or activation-gradient epilogue writes C with row stride n");
  const Split s = split(call);
  CUDL_REQUIRE(s.splits == 1 || partials != nullptr, "rows_gemm: a product in slices needs its partials buffer");
  KernelArgs p{call.ta, call.tb, call.m, call.n, call.k, call.a, call.lda, call.b, call.ldb,
               s.split_k, s.splits, partials, tickets_, call.out};
  const dim3 grid(static_cast<unsigned>(s.col_tiles), static_cast<unsigned>(s.row_tiles),
                  static_cast<unsigned>(s.splits));
  rows_gemm_kernel<<<grid, kThreads, 0, stream_>>>(p);
  CUDL_CHECK_LAUNCH();
}

bool RowsGemm::run(const RowsGemmCall& call, const std::function<void(const Outputs&)>& library) {
  if (mode_ == Mode::kLibrary || !serves(call.m, call.n, call.k, summing(call))) return false;
  const size_t c_bytes = span(call.m, call.n, call.out.ldc);
  // The library's kernels do not accept C overlapping A or B either; ours would read what it wrote.
  const size_t a_bytes = call.ta ? span(call.k, call.m, call.lda) : span(call.m, call.k, call.lda);
  const size_t b_bytes = call.tb ? span(call.n, call.k, call.ldb) : span(call.k, call.n, call.ldb);
  if (overlaps(call.out.c, c_bytes, call.a, a_bytes) || overlaps(call.out.c, c_bytes, call.b, b_bytes)) return false;
  // The row sums are written while A and B are read, beside C and each other.
  auto clashes = [&](const float* sums, int64_t count) {
    const size_t bytes = sizeof(float) * static_cast<size_t>(count);
    return sums != nullptr && (overlaps(sums, bytes, call.a, a_bytes) || overlaps(sums, bytes, call.b, b_bytes) ||
                               overlaps(sums, bytes, call.out.c, c_bytes));
  };
  if (clashes(call.out.sums, call.n) || clashes(call.out.a_sums, call.m)) return false;
  if (call.out.sums != nullptr && call.out.a_sums != nullptr &&
      overlaps(call.out.sums, sizeof(float) * static_cast<size_t>(call.n), call.out.a_sums,
               sizeof(float) * static_cast<size_t>(call.m)))
    return false;
  const Key key{static_cast<int64_t>(call.out.epilogue), call.ta, call.tb, call.m, call.n, call.k, call.lda, call.ldb,
                call.out.ldc, static_cast<int64_t>(call.out.act), call.out.beta != 0.0f, call.out.alpha != 1.0f,
                call.out.sums != nullptr, call.out.sum_beta != 0.0f, call.out.a_sums != nullptr};
  auto it = choices_.find(key);
  if (it == choices_.end()) {
    if (capturing(stream_)) {
      // Timing needs the host: the library keeps the shape, now and later, so that eager calls
      // give the captured call's bits.
      Choice ch;
      ch.what = describe_call(call) + ", first seen while capturing";
      it = choices_.emplace(key, ch).first;
    } else {
      it = choices_.emplace(key, decide(call, library)).first;
    }
  }
  if (!it->second.ours) return false;
  const size_t bytes = partial_bytes(call);
  launch(call, bytes > 0 ? static_cast<float*>(scratch_(bytes)) : nullptr);
  return true;
}

double RowsGemm::time_us(const std::function<void()>& f) {
  constexpr int kRounds = 3, kCalls = 5;
  if (start_ == nullptr) CUDL_CUDA_CHECK(cudaEventCreate(&start_));
  if (stop_ == nullptr) CUDL_CUDA_CHECK(cudaEventCreate(&stop_));
  double best = std::numeric_limits<double>::infinity();
  for (int round = 0; round < kRounds; ++round) {
    hold_kernel<<<1, 1, 0, stream_>>>(200000);  // 0.2 ms: time to queue the calls behind it
    CUDL_CHECK_LAUNCH();
    CUDL_CUDA_CHECK(cudaEventRecord(start_, stream_));
    for (int i = 0; i < kCalls; ++i) f();
    CUDL_CUDA_CHECK(cudaEventRecord(stop_, stream_));
    CUDL_CUDA_CHECK(cudaEventSynchronize(stop_));
    float ms = 0.0f;
    CUDL_CUDA_CHECK(cudaEventElapsedTime(&ms, start_, stop_));
    best = std::min(best, 1e3 * static_cast<double>(ms) / kCalls);
  }
  return best;
}

std::string RowsGemm::describe_call(const RowsGemmCall& call) const {
  const Split s = split(call);
  char what[192];
  std::snprintf(what, sizeof what, "%s%s %lldx%lldx%lld%s: %lld x %lld tiles, %lld slice%s of %lld",
                call.ta ? "T" : "N", call.tb ? "T" : "N", static_cast<long long>(call.m),
                static_cast<long long>(call.n), static_cast<long long>(call.k), epilogue_name(call),
                static_cast<long long>(s.row_tiles), static_cast<long long>(s.col_tiles),
                static_cast<long long>(s.splits), s.splits == 1 ? "" : "s", static_cast<long long>(s.split_k));
  return what;
}

RowsGemm::Choice RowsGemm::decide(const RowsGemmCall& call, const std::function<void(const Outputs&)>& library) {
  Choice ch;
  ch.what = describe_call(call);
  if (mode_ == Mode::kCudl) {
    ch.ours = true;
    ch.what += ", forced by " + source_;
    return ch;
  }
  // Both write a scratch C (same row stride) and scratch row sums in front of our partials; each
  // runs once before it is timed (the library's first call of a shape may choose or load its
  // kernel). A buffer of its own (not the backend's scratch, which the library's way may take
  // and grow, e.g. sum_rows), freed in stream order after the timing.
  auto round_up = [](size_t bytes) { return (bytes + 255) / 256 * 256; };
  const size_t c_bytes = round_up(sizeof(float) * static_cast<size_t>(call.m * call.out.ldc));
  const size_t sum_bytes = call.out.sums != nullptr ? round_up(sizeof(float) * static_cast<size_t>(call.n)) : 0;
  const size_t a_sum_bytes = call.out.a_sums != nullptr ? round_up(sizeof(float) * static_cast<size_t>(call.m)) : 0;
  const size_t outputs = c_bytes + sum_bytes + a_sum_bytes;
  void* memory = nullptr;
  CUDL_CUDA_CHECK(cudaMallocAsync(&memory, outputs + partial_bytes(call), stream_));
  struct Free {
    void* p;
    cudaStream_t s;
    ~Free() { cudaFreeAsync(p, s); }  // status ignored: a destructor does not throw
  } free_memory{memory, stream_};
  auto* base = static_cast<char*>(memory);
  RowsGemmCall t = call;
  t.out.c = reinterpret_cast<float*>(base);
  if (call.out.sums != nullptr) t.out.sums = reinterpret_cast<float*>(base + c_bytes);
  if (call.out.a_sums != nullptr) t.out.a_sums = reinterpret_cast<float*>(base + c_bytes + sum_bytes);
  float* partials = reinterpret_cast<float*>(base + outputs);
  CUDL_CUDA_CHECK(cudaMemsetAsync(base, 0, outputs, stream_));  // read where beta ≠ 0
  auto ours = [&] { launch(t, partials); };
  auto theirs = [&] { library(t.out); };
  ours();
  theirs();
  ch.library_us = time_us(theirs);
  ch.ours_us = time_us(ours);
  ch.ours = ch.ours_us < ch.library_us;
  const char* verbose = std::getenv("CUDL_GEMM_VERBOSE");
  if (verbose != nullptr && std::strcmp(verbose, "1") == 0)
    std::fprintf(stderr, "cudl gemm: %s: %s (%.1f us; library %.1f us)\n", ch.what.c_str(),
                 ch.ours ? "cudl's kernel" : "the library's", ch.ours_us, ch.library_us);
  return ch;
}

std::vector<std::string> RowsGemm::describe() const {
  std::vector<std::string> lines;
  for (const auto& [key, ch] : choices_) {
    char times[96] = "";
    if (ch.library_us > 0.0)
      std::snprintf(times, sizeof times, " (%.1f us; library %.1f us)", ch.ours_us, ch.library_us);
    lines.push_back(ch.what + ": " + (ch.ours ? "cudl's kernel" : "the library's") + times);
  }
  return lines;
}

}  // namespace cudl::cuda

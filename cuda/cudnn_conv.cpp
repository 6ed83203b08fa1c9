// cuDNN graph-API convolutions: see cudnn_conv.hpp. Compiled by the host compiler (no kernels).
#include "cudnn_conv.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "check.hpp"

namespace cudl::cuda {
namespace {

// Owns one cuDNN backend descriptor.
class Descriptor {
 public:
  explicit Descriptor(cudnnBackendDescriptorType_t type) { CUDL_CUDNN_CHECK(cudnnBackendCreateDescriptor(type, &d_)); }
  ~Descriptor() {
    if (d_ != nullptr) cudnnBackendDestroyDescriptor(d_);
  }
  Descriptor(Descriptor&& other) noexcept : d_(other.d_) { other.d_ = nullptr; }
  Descriptor(const Descriptor&) = delete;
  Descriptor& operator=(const Descriptor&) = delete;
  Descriptor& operator=(Descriptor&&) = delete;

  cudnnBackendDescriptor_t get() const { return d_; }
  cudnnBackendDescriptor_t* ptr() { return &d_; }

  template <typename T>
  Descriptor& set(cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type, int64_t count, const T* values) {
    CUDL_CUDNN_CHECK(cudnnBackendSetAttribute(d_, name, type, count, values));
    return *this;
  }
  Descriptor& set_descriptor(cudnnBackendAttributeName_t name, const Descriptor& value) {
    cudnnBackendDescriptor_t d = value.get();
    return set(name, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &d);
  }
  Descriptor& set_int64(cudnnBackendAttributeName_t name, std::vector<int64_t> values) {
    return set(name, CUDNN_TYPE_INT64, static_cast<int64_t>(values.size()), values.data());
  }
  void finalize() { CUDL_CUDNN_CHECK(cudnnBackendFinalize(d_)); }
  // Finalize, returning the status instead of throwing (a plan may be unsupported).
  cudnnStatus_t try_finalize() { return cudnnBackendFinalize(d_); }

 private:
  cudnnBackendDescriptor_t d_ = nullptr;
};

// The operation graph and execution plans take the handle through attributes that cuDNN 9.x
// marks deprecated in its newest releases (in favour of device-property descriptors, added in
// 9.8); they remain supported, and are what every 9.x release accepts.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
constexpr cudnnBackendAttributeName_t kGraphHandle = CUDNN_ATTR_OPERATIONGRAPH_HANDLE;
constexpr cudnnBackendAttributeName_t kPlanHandle = CUDNN_ATTR_EXECUTION_PLAN_HANDLE;
#pragma GCC diagnostic pop

constexpr int64_t kUidX = 'x', kUidW = 'w', kUidY = 'y';

// The largest of 16, 8, 4 bytes that divides the address.
int64_t alignment(const void* p) {
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  return a % 16 == 0 ? 16 : a % 8 == 0 ? 8 : 4;
}

Descriptor tensor(int64_t uid, const std::vector<int64_t>& dims, int64_t align) {
  Descriptor t(CUDNN_BACKEND_TENSOR_DESCRIPTOR);
  std::vector<int64_t> strides(dims.size(), 1);
  for (size_t i = dims.size() - 1; i-- > 0;) strides[i] = strides[i + 1] * dims[i + 1];
  const cudnnDataType_t type = CUDNN_DATA_FLOAT;
  t.set(CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &type)
      .set_int64(CUDNN_ATTR_TENSOR_DIMENSIONS, dims)
      .set_int64(CUDNN_ATTR_TENSOR_STRIDES, strides)
      .set_int64(CUDNN_ATTR_TENSOR_UNIQUE_ID, {uid})
      .set_int64(CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, {align});
  t.finalize();
  return t;
}

const char* name(ConvOp op) {
  switch (op) {
    case ConvOp::kForward: return "forward";
    case ConvOp::kBackwardData: return "backward-data";
    case ConvOp::kBackwardFilter: return "backward-filter";
  }
  return "?";
}

std::string shape_text(const Conv2dShape& s) {
  auto d = [](std::initializer_list<int64_t> v) {
    std::string out;
    for (int64_t x : v) out += (out.empty() ? "" : "×") + std::to_string(x);
    return out;
  };
  const Conv2dParams& p = s.params;
  return d({s.n, s.c, s.h, s.w}) + " ⋆ " + d({s.k, s.c, s.r, s.s}) + " (stride " + d({p.stride_h, p.stride_w}) +
         ", padding " + d({p.pad_h, p.pad_w}) + ", dilation " + d({p.dilation_h, p.dilation_w}) + ")";
}

bool has_note(const Descriptor& config, cudnnBackendNumericalNote_t wanted) {
  Descriptor engine(CUDNN_BACKEND_ENGINE_DESCRIPTOR);
  int64_t count = 0;
  CUDL_CUDNN_CHECK(cudnnBackendGetAttribute(config.get(), CUDNN_ATTR_ENGINECFG_ENGINE,
                                            CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &count, engine.ptr()));
  cudnnBackendNumericalNote_t notes[CUDNN_NUMERICAL_NOTE_TYPE_COUNT];
  CUDL_CUDNN_CHECK(cudnnBackendGetAttribute(engine.get(), CUDNN_ATTR_ENGINE_NUMERICAL_NOTE, CUDNN_TYPE_NUMERICAL_NOTE,
                                            CUDNN_NUMERICAL_NOTE_TYPE_COUNT, &count, notes));
  return std::find(notes, notes + count, wanted) != notes + count;
}

int64_t engine_index(const Descriptor& config) {
  Descriptor engine(CUDNN_BACKEND_ENGINE_DESCRIPTOR);
  int64_t count = 0, index = -1;
  CUDL_CUDNN_CHECK(cudnnBackendGetAttribute(config.get(), CUDNN_ATTR_ENGINECFG_ENGINE,
                                            CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &count, engine.ptr()));
  CUDL_CUDNN_CHECK(cudnnBackendGetAttribute(engine.get(), CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64, 1, &count,
                                            &index));
  return index;
}

// The engine configurations cuDNN's heuristics propose for `graph`, best first.
std::vector<Descriptor> heuristic_configs(const Descriptor& graph, cudnnBackendHeurMode_t mode) {
  Descriptor heur(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
  heur.set_descriptor(CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, graph)
      .set(CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode);
  if (heur.try_finalize() != CUDNN_STATUS_SUCCESS) return {};
  int64_t count = 0;
  CUDL_CUDNN_CHECK(cudnnBackendGetAttribute(heur.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR,
                                            0, &count, nullptr));
  std::vector<Descriptor> configs;
  std::vector<cudnnBackendDescriptor_t> raw;
  for (int64_t i = 0; i < count; ++i) {
    configs.emplace_back(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR);
    raw.push_back(configs.back().get());
  }
  int64_t returned = 0;
  if (count > 0) {
    CUDL_CUDNN_CHECK(cudnnBackendGetAttribute(heur.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                              CUDNN_TYPE_BACKEND_DESCRIPTOR, count, &returned, raw.data()));
  }
  while (static_cast<int64_t>(configs.size()) > std::min(returned, count)) configs.pop_back();
  return configs;
}

// Queues one execution of `plan` on the three tensors; returns cuDNN's status.
cudnnStatus_t execute(cudnnHandle_t handle, const Descriptor& plan, const float* x, const float* w, const float* y,
                      void* workspace) {
  const int64_t uids[3] = {kUidX, kUidW, kUidY};
  void* ptrs[3] = {const_cast<float*>(x), const_cast<float*>(w), const_cast<float*>(y)};
  Descriptor pack(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
  pack.set(CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, 3, uids)
      .set(CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, 3, ptrs)
      .set(CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &workspace);
  pack.finalize();
  return cudnnBackendExecute(handle, plan.get(), pack.get());
}

bool autotune_enabled() {
  const char* v = std::getenv("CUDL_CUDNN_AUTOTUNE");
  return v == nullptr || std::strcmp(v, "0") != 0;
}

constexpr size_t kMaxCandidates = 8;
constexpr int64_t kMaxWorkspace = int64_t{1} << 30;  // plans needing more than 1 GiB are skipped

}  // namespace

struct ConvPlans::Plan {
  Descriptor plan{CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR};
  int64_t workspace = 0;
  int64_t engine = -1;
  int candidates = 0;
  std::string text;
};

ConvPlans::ConvPlans(cudnnHandle_t handle, cudaStream_t stream, Precision precision,
                     std::function<void*(std::size_t)> workspace)
    : handle_(handle), stream_(stream), precision_(precision), workspace_(std::move(workspace)) {}

ConvPlans::~ConvPlans() = default;

ConvPlans::Plan& ConvPlans::plan_for(ConvOp op, const Conv2dShape& s, const float* x, const float* w,
                                     const float* y) {
  const Conv2dParams& p = s.params;
  std::vector<int64_t> key{static_cast<int64_t>(op), s.n, s.c, s.h, s.w, s.k, s.r, s.s, p.stride_h, p.stride_w,
                           p.pad_h, p.pad_w, p.dilation_h, p.dilation_w, alignment(x), alignment(w), alignment(y)};
  auto found = plans_.find(key);
  if (found != plans_.end()) return *found->second;

  const Descriptor tx = tensor(kUidX, {s.n, s.c, s.h, s.w}, alignment(x));
  const Descriptor tw = tensor(kUidW, {s.k, s.c, s.r, s.s}, alignment(w));
  const Descriptor ty = tensor(kUidY, {s.n, s.k, s.p, s.q}, alignment(y));

  Descriptor conv(CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR);
  const cudnnDataType_t compute = CUDNN_DATA_FLOAT;
  const cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
  const int64_t dims = 2;
  conv.set(CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &compute)
      .set(CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE, 1, &mode)
      .set(CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, CUDNN_TYPE_INT64, 1, &dims)
      .set_int64(CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, {p.stride_h, p.stride_w})
      .set_int64(CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, {p.pad_h, p.pad_w})
      .set_int64(CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, {p.pad_h, p.pad_w})
      .set_int64(CUDNN_ATTR_CONVOLUTION_DILATIONS, {p.dilation_h, p.dilation_w});
  conv.finalize();

  // The three operations differ only in their descriptor type and attribute names: x, w and y
  // are (input, filters, output) for the forward pass, (dx, w, dy) and (x, dw, dy) backwards.
  struct OpAttributes {
    cudnnBackendDescriptorType_t type;
    cudnnBackendAttributeName_t x, w, y, conv, alpha, beta;
  };
  static const OpAttributes kAttributes[] = {
      {CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X,
       CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y,
       CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA,
       CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA},
      {CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_DATA_DESCRIPTOR, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DX,
       CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_W, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DY,
       CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_CONV_DESC, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_ALPHA,
       CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_BETA},
      {CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_FILTER_DESCRIPTOR, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_X,
       CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DW, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DY,
       CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_CONV_DESC, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_ALPHA,
       CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_BETA},
  };
  const OpAttributes& a = kAttributes[static_cast<int>(op)];
  const float alpha = 1.0f, beta = 0.0f;
  auto operation = std::make_unique<Descriptor>(a.type);
  operation->set_descriptor(a.x, tx)
      .set_descriptor(a.w, tw)
      .set_descriptor(a.y, ty)
      .set_descriptor(a.conv, conv)
      .set(a.alpha, CUDNN_TYPE_FLOAT, 1, &alpha)
      .set(a.beta, CUDNN_TYPE_FLOAT, 1, &beta);
  operation->finalize();

  Descriptor graph(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
  cudnnBackendDescriptor_t ops = operation->get();
  graph.set(CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &ops)
      .set(kGraphHandle, CUDNN_TYPE_HANDLE, 1, &handle_);
  graph.finalize();

  // Candidates: the heuristics' list, then the fallback list, filtered by precision, each
  // finalized into an execution plan (an engine may not support this shape: skipped).
  std::vector<std::unique_ptr<Plan>> candidates;
  int rejected_tf32 = 0;
  for (cudnnBackendHeurMode_t heur : {CUDNN_HEUR_MODE_A, CUDNN_HEUR_MODE_FALLBACK}) {
    for (Descriptor& config : heuristic_configs(graph, heur)) {
      if (candidates.size() >= kMaxCandidates) break;
      if (precision_ == Precision::kFp32 && has_note(config, CUDNN_NUMERICAL_NOTE_TENSOR_CORE)) {
        ++rejected_tf32;
        continue;
      }
      const int64_t index = engine_index(config);
      bool duplicate = false;
      for (const auto& c : candidates) duplicate = duplicate || c->engine == index;
      if (duplicate) continue;
      auto candidate = std::make_unique<Plan>();
      cudnnBackendDescriptor_t cfg = config.get();
      candidate->plan.set(kPlanHandle, CUDNN_TYPE_HANDLE, 1, &handle_)
          .set(CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &cfg);
      if (candidate->plan.try_finalize() != CUDNN_STATUS_SUCCESS) continue;
      int64_t count = 0;
      CUDL_CUDNN_CHECK(cudnnBackendGetAttribute(candidate->plan.get(), CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE,
                                                CUDNN_TYPE_INT64, 1, &count, &candidate->workspace));
      if (candidate->workspace > kMaxWorkspace) continue;
      candidate->engine = index;
      candidates.push_back(std::move(candidate));
    }
    if (!candidates.empty()) break;
  }
  CUDL_REQUIRE(!candidates.empty(), std::string("cuDNN has no ") + to_string(precision_) + " engine for the " +
                                        name(op) + " convolution " + shape_text(s) + " (" +
                                        std::to_string(rejected_tf32) + " TF32 engines rejected)");

  size_t best = 0;
  if (candidates.size() > 1 && autotune_enabled()) {
    // Time each candidate on the real tensors: one warm-up run, then the best of three.
    cudaEvent_t start = nullptr, stop = nullptr;
    CUDL_CUDA_CHECK(cudaEventCreate(&start));
    CUDL_CUDA_CHECK(cudaEventCreate(&stop));
    float best_ms = std::numeric_limits<float>::infinity();
    for (size_t i = 0; i < candidates.size(); ++i) {
      float ms = std::numeric_limits<float>::infinity();
      for (int rep = 0; rep < 4; ++rep) {
        void* ws = workspace_(static_cast<std::size_t>(candidates[i]->workspace));
        CUDL_CUDA_CHECK(cudaEventRecord(start, stream_));
        const cudnnStatus_t status = execute(handle_, candidates[i]->plan, x, w, y, ws);
        CUDL_CUDA_CHECK(cudaEventRecord(stop, stream_));
        CUDL_CUDA_CHECK(cudaEventSynchronize(stop));
        if (status != CUDNN_STATUS_SUCCESS) break;  // this engine cannot run here after all
        float elapsed = 0.0f;
        CUDL_CUDA_CHECK(cudaEventElapsedTime(&elapsed, start, stop));
        if (rep > 0) ms = std::min(ms, elapsed);
      }
      if (ms < best_ms) {
        best_ms = ms;
        best = i;
      }
    }
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    CUDL_REQUIRE(best_ms < std::numeric_limits<float>::infinity(),
                 std::string("no cuDNN engine could execute the ") + name(op) + " convolution " + shape_text(s));
  }
  std::unique_ptr<Plan> chosen = std::move(candidates[best]);
  chosen->candidates = static_cast<int>(candidates.size());
  chosen->text = std::string(name(op)) + " " + shape_text(s) + ": engine " + std::to_string(chosen->engine) +
                 (candidates.size() > 1 && autotune_enabled()
                      ? " (fastest of " + std::to_string(candidates.size()) + ")"
                      : " (heuristics' first choice)") +
                 ", workspace " + std::to_string(chosen->workspace) + " B";
  return *plans_.emplace(std::move(key), std::move(chosen)).first->second;
}

void ConvPlans::run(ConvOp op, const Conv2dShape& shape, const float* x, const float* w, const float* y) {
  Plan& plan = plan_for(op, shape, x, w, y);
  void* ws = workspace_(static_cast<std::size_t>(plan.workspace));
  CUDL_CUDNN_CHECK(execute(handle_, plan.plan, x, w, y, ws));
}

std::vector<std::string> ConvPlans::describe() const {
  std::vector<std::string> lines;
  for (const auto& [key, plan] : plans_) lines.push_back(plan->text);
  return lines;
}

}  // namespace cudl::cuda

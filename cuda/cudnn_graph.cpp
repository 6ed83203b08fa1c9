// cuDNN graph-API building blocks: see cudnn_graph.hpp.
#include "cudnn_graph.hpp"

#include <algorithm>
#include <cstdint>
#include <initializer_list>

#include "check.hpp"

namespace cudl::cuda {

// The operation graph takes the handle through an attribute that cuDNN 9.x marks deprecated in
// its newest releases (in favour of device-property descriptors, added in 9.8); it remains
// supported, and is what every 9.x release accepts.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
constexpr cudnnBackendAttributeName_t kGraphHandle = CUDNN_ATTR_OPERATIONGRAPH_HANDLE;
#pragma GCC diagnostic pop

const char* to_string(ConvOp op) {
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

int64_t alignment(const void* p) {
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  return a % 16 == 0 ? 16 : a % 8 == 0 ? 8 : 4;
}

Descriptor::Descriptor(cudnnBackendDescriptorType_t type) { CUDL_CUDNN_CHECK(cudnnBackendCreateDescriptor(type, &d_)); }

Descriptor::~Descriptor() {
  if (d_ != nullptr) cudnnBackendDestroyDescriptor(d_);
}

Descriptor& Descriptor::set(cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type, int64_t count,
                            const void* values) {
  CUDL_CUDNN_CHECK(cudnnBackendSetAttribute(d_, name, type, count, values));
  return *this;
}

Descriptor& Descriptor::set_descriptor(cudnnBackendAttributeName_t name, const Descriptor& value) {
  cudnnBackendDescriptor_t d = value.get();
  return set(name, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &d);
}

Descriptor& Descriptor::set_int64(cudnnBackendAttributeName_t name, std::vector<int64_t> values) {
  return set(name, CUDNN_TYPE_INT64, static_cast<int64_t>(values.size()), values.data());
}

void Descriptor::finalize() { CUDL_CUDNN_CHECK(cudnnBackendFinalize(d_)); }

cudnnStatus_t Descriptor::try_finalize() { return cudnnBackendFinalize(d_); }

namespace {

Descriptor tensor(int64_t uid, const std::vector<int64_t>& dims, cudnnDataType_t type, int64_t align) {
  Descriptor t(CUDNN_BACKEND_TENSOR_DESCRIPTOR);
  std::vector<int64_t> strides(dims.size(), 1);  // packed row-major (NCHW)
  for (size_t i = dims.size() - 1; i-- > 0;) strides[i] = strides[i + 1] * dims[i + 1];
  t.set(CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &type)
      .set_int64(CUDNN_ATTR_TENSOR_DIMENSIONS, dims)
      .set_int64(CUDNN_ATTR_TENSOR_STRIDES, strides)
      .set_int64(CUDNN_ATTR_TENSOR_UNIQUE_ID, {uid})
      .set_int64(CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, {align});
  t.finalize();
  return t;
}

// The three operations differ only in their descriptor type and attribute names: x, w and y are
// (input, filters, output) for the forward pass, (dx, w, dy) and (x, dw, dy) backwards.
struct OpAttributes {
  cudnnBackendDescriptorType_t type;
  cudnnBackendAttributeName_t x, w, y, conv, alpha, beta;
};
const OpAttributes kAttributes[] = {
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

}  // namespace

cudnnDataType_t tensor_type(Precision precision) {
  return precision == Precision::kBf16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
}

ConvGraph convolution_graph(ConvOp op, const Conv2dShape& s, cudnnDataType_t type, int64_t align_x, int64_t align_w,
                            int64_t align_y, cudnnHandle_t handle) {
  ConvGraph g;
  std::vector<Descriptor>& d = g.parts_;
  d.reserve(6);  // the descriptors refer to each other: they must not move once referred to
  d.push_back(tensor(kUidX, {s.n, s.c, s.h, s.w}, type, align_x));
  d.push_back(tensor(kUidW, {s.k, s.c, s.r, s.s}, type, align_w));
  d.push_back(tensor(kUidY, {s.n, s.k, s.p, s.q}, type, align_y));

  const Conv2dParams& p = s.params;
  Descriptor& conv = d.emplace_back(CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR);
  const cudnnDataType_t compute = CUDNN_DATA_FLOAT;  // fp32 accumulation, for bf16 tensors too
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

  const OpAttributes& a = kAttributes[static_cast<int>(op)];
  const float alpha = 1.0f, beta = 0.0f;
  Descriptor& operation = d.emplace_back(a.type);
  operation.set_descriptor(a.x, d[0])
      .set_descriptor(a.w, d[1])
      .set_descriptor(a.y, d[2])
      .set_descriptor(a.conv, d[3])
      .set(a.alpha, CUDNN_TYPE_FLOAT, 1, &alpha)
      .set(a.beta, CUDNN_TYPE_FLOAT, 1, &beta);
  operation.finalize();

  Descriptor& graph = d.emplace_back(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
  cudnnBackendDescriptor_t ops = d[4].get();
  graph.set(CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &ops);
  if (handle != nullptr) graph.set(kGraphHandle, CUDNN_TYPE_HANDLE, 1, &handle);
  graph.finalize();
  return g;
}

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

EngineNotes engine_notes(const Descriptor& config) {
  Descriptor engine(CUDNN_BACKEND_ENGINE_DESCRIPTOR);
  int64_t count = 0;
  CUDL_CUDNN_CHECK(cudnnBackendGetAttribute(config.get(), CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR,
                                            1, &count, engine.ptr()));
  EngineNotes out;
  CUDL_CUDNN_CHECK(cudnnBackendGetAttribute(engine.get(), CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64, 1, &count,
                                            &out.engine));
  // Each kind of note appears at most once, so the type counts bound the lists.
  cudnnBackendNumericalNote_t numerical[CUDNN_NUMERICAL_NOTE_TYPE_COUNT];
  CUDL_CUDNN_CHECK(cudnnBackendGetAttribute(engine.get(), CUDNN_ATTR_ENGINE_NUMERICAL_NOTE, CUDNN_TYPE_NUMERICAL_NOTE,
                                            CUDNN_NUMERICAL_NOTE_TYPE_COUNT, &count, numerical));
  out.numerical.assign(numerical, numerical + std::clamp<int64_t>(count, 0, CUDNN_NUMERICAL_NOTE_TYPE_COUNT));
  // Behaviour notes are printed, never used to choose (conv_engines.cpp): an engine whose notes
  // cannot be read (a status other than success) is listed without them rather than failing the
  // convolution, since this read has not yet run on a GPU.
  cudnnBackendBehaviorNote_t behaviour[CUDNN_BEHAVIOR_NOTE_TYPE_COUNT];
  count = 0;
  if (cudnnBackendGetAttribute(engine.get(), CUDNN_ATTR_ENGINE_BEHAVIOR_NOTE, CUDNN_TYPE_BEHAVIOR_NOTE,
                               CUDNN_BEHAVIOR_NOTE_TYPE_COUNT, &count, behaviour) == CUDNN_STATUS_SUCCESS) {
    out.behaviour.assign(behaviour, behaviour + std::clamp<int64_t>(count, 0, CUDNN_BEHAVIOR_NOTE_TYPE_COUNT));
  }
  // The knob choices tell two configurations of one engine apart (same_configuration). Read as
  // the behaviour notes are: a failed read leaves knobs_read false (the engine alone then tells
  // configurations apart, as before), never fails the convolution.
  std::vector<Descriptor> choices;
  std::vector<cudnnBackendDescriptor_t> raw;
  for (int i = 0; i < CUDNN_KNOB_TYPE_COUNTS; ++i) {
    choices.emplace_back(CUDNN_BACKEND_KNOB_CHOICE_DESCRIPTOR);
    raw.push_back(choices.back().get());
  }
  count = 0;
  if (cudnnBackendGetAttribute(config.get(), CUDNN_ATTR_ENGINECFG_KNOB_CHOICES, CUDNN_TYPE_BACKEND_DESCRIPTOR,
                               CUDNN_KNOB_TYPE_COUNTS, &count, raw.data()) == CUDNN_STATUS_SUCCESS &&
      count >= 0 && count <= CUDNN_KNOB_TYPE_COUNTS) {
    bool read = true;
    for (int64_t i = 0; i < count && read; ++i) {
      cudnnBackendKnobType_t type{};
      int64_t value = 0, n = 0;
      read = cudnnBackendGetAttribute(raw[i], CUDNN_ATTR_KNOB_CHOICE_KNOB_TYPE, CUDNN_TYPE_KNOB_TYPE, 1, &n, &type) ==
                 CUDNN_STATUS_SUCCESS &&
             cudnnBackendGetAttribute(raw[i], CUDNN_ATTR_KNOB_CHOICE_KNOB_VALUE, CUDNN_TYPE_INT64, 1, &n, &value) ==
                 CUDNN_STATUS_SUCCESS;
      if (read) out.knobs.emplace_back(static_cast<int64_t>(type), value);
    }
    out.knobs_read = read;
    if (!read) out.knobs.clear();
  }
  return out;
}

}  // namespace cudl::cuda

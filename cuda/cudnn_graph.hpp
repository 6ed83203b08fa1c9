#pragma once
// cuDNN graph-API building blocks for the convolutions (cudnn_conv.cpp): an owning descriptor, the
// operation graph of one convolution, and the engines cuDNN's heuristics propose for it. Split out
// so the descriptors can be checked without a GPU (tests/test_cudnn_graph.cpp): tensor,
// convolution and operation descriptors finalize on the host, and so does an operation graph
// without a handle in cuDNN ≥ 9.19.
#include <cudnn.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "conv_engines.hpp"
#include "cudl/backend.hpp"

namespace cudl::cuda {

enum class ConvOp { kForward, kBackwardData, kBackwardFilter };
const char* to_string(ConvOp op);  // "forward", "backward-data", "backward-filter"
// "2×3×9×9 ⋆ 4×3×3×3 (stride 1×1, padding 1×1, dilation 1×1)"
std::string shape_text(const Conv2dShape& shape);
// The largest of 16, 8, 4 bytes that divides the address (cuDNN's tensor byte alignment).
int64_t alignment(const void* p);

// Unique ids of the three tensors in every convolution graph (and its variant packs): x is the
// input-shaped tensor (N×C×H×W), w the filters (K×C×R×S), y the output-shaped one (N×K×P×Q).
constexpr int64_t kUidX = 'x', kUidW = 'w', kUidY = 'y';

// Owns one cuDNN backend descriptor; every call is status-checked (cudl::Error names the call).
class Descriptor {
 public:
  explicit Descriptor(cudnnBackendDescriptorType_t type);
  ~Descriptor();
  Descriptor(Descriptor&& other) noexcept : d_(other.d_) { other.d_ = nullptr; }
  Descriptor(const Descriptor&) = delete;
  Descriptor& operator=(const Descriptor&) = delete;
  Descriptor& operator=(Descriptor&& other) noexcept {  // the old descriptor goes with `other`
    std::swap(d_, other.d_);
    return *this;
  }

  cudnnBackendDescriptor_t get() const { return d_; }
  cudnnBackendDescriptor_t* ptr() { return &d_; }

  Descriptor& set(cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type, int64_t count,
                  const void* values);
  Descriptor& set_descriptor(cudnnBackendAttributeName_t name, const Descriptor& value);
  Descriptor& set_int64(cudnnBackendAttributeName_t name, std::vector<int64_t> values);
  void finalize();
  // Finalize, returning the status instead of throwing (a plan may be unsupported).
  cudnnStatus_t try_finalize();

 private:
  cudnnBackendDescriptor_t d_ = nullptr;
};

// The finalized operation graph of one convolution and the descriptors it refers to.
class ConvGraph {
 public:
  const Descriptor& graph() const { return parts_.back(); }

 private:
  friend ConvGraph convolution_graph(ConvOp, const Conv2dShape&, cudnnDataType_t, int64_t, int64_t, int64_t,
                                     cudnnHandle_t);
  std::vector<Descriptor> parts_;  // x, w, y tensors, the convolution, the operation, the graph
};

// The tensors' data type for a precision: CUDNN_DATA_BFLOAT16 in kBf16, CUDNN_DATA_FLOAT otherwise.
cudnnDataType_t tensor_type(Precision precision);

// Builds and finalizes the graph of `op` on NCHW tensors of `type` (CUDNN_DATA_FLOAT, or
// CUDNN_DATA_BFLOAT16: x, w and y all bf16, as PyTorch's autocast has them) with the given byte
// alignments, always with fp32 compute (the engines decide TF32 or bf16 tensor cores, see
// ConvPlans). A null handle leaves the graph's handle unset (for host-only checks; cuDNN ≥ 9.19
// accepts that).
ConvGraph convolution_graph(ConvOp op, const Conv2dShape& shape, cudnnDataType_t type, int64_t align_x,
                            int64_t align_w, int64_t align_y, cudnnHandle_t handle);

// The engine configurations cuDNN's heuristics (`mode`: CUDNN_HEUR_MODE_A, CUDNN_HEUR_MODE_FALLBACK)
// propose for a finalized operation graph, best first; empty when the heuristics cannot be
// finalized for it. Needs a graph made with a handle (a GPU).
std::vector<Descriptor> heuristic_configs(const Descriptor& graph, cudnnBackendHeurMode_t mode);

// What cuDNN says of a configuration's engine: its global index, numerical and behaviour notes.
EngineNotes engine_notes(const Descriptor& config);

}  // namespace cudl::cuda

// cuDNN's graph-API descriptors of our convolutions, checked where they can be without a GPU:
// tensor, convolution and operation descriptors finalize on the host, and so does the operation
// graph (without a handle, from cuDNN 9.19). This catches a wrong attribute name, type or count
// before a GPU ever runs the code. With a usable GPU the graph gets a real handle instead.
#include <cudnn.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "cudl/device.hpp"
#include "cudl/error.hpp"
#include "cudnn_graph.hpp"
#include "test_support.hpp"

using namespace cudl;
using cudl::cuda::ConvOp;
using cudl::testing::error_of;
using ::testing::HasSubstr;

namespace {

Conv2dShape shape(int64_t n, int64_t c, int64_t h, int64_t w, int64_t k, int64_t r, int64_t s, Conv2dParams p) {
  Conv2dShape out;
  out.n = n, out.c = c, out.h = h, out.w = w, out.k = k, out.r = r, out.s = s, out.params = p;
  out.p = window_output_size(h, r, p.stride_h, p.pad_h, p.dilation_h);
  out.q = window_output_size(w, s, p.stride_w, p.pad_w, p.dilation_w);
  return out;
}

Conv2dParams params(int64_t stride, int64_t pad, int64_t dilation) {
  Conv2dParams p;
  p.stride_h = p.stride_w = stride;
  p.pad_h = p.pad_w = pad;
  p.dilation_h = p.dilation_w = dilation;
  return p;
}

// A handle when a GPU can be used; null (host-only finalization) otherwise.
class CudnnGraph : public ::testing::Test {
 protected:
  void SetUp() override {
    if (probe_gpu().usable) {
      ASSERT_EQ(cudnnCreate(&handle_), CUDNN_STATUS_SUCCESS);
    } else if (cudnnGetVersion() < 91900) {
      GTEST_SKIP() << "no usable GPU, and cuDNN " << cudnnGetVersion()
                   << " (< 9.19) needs a handle to finalize an operation graph";
    }
  }
  void TearDown() override {
    if (handle_ != nullptr) cudnnDestroy(handle_);
  }
  cudnnHandle_t handle_ = nullptr;
};

}  // namespace

TEST_F(CudnnGraph, EveryOperationFinalizesForTheShapesWeUse) {
  const Conv2dShape shapes[] = {
      shape(64, 1, 28, 28, 20, 5, 5, params(1, 0, 1)),     // LeNet
      shape(64, 3, 224, 224, 64, 3, 3, params(1, 1, 1)),   // VGG16's first layer
      shape(2, 3, 9, 7, 4, 3, 2, params(2, 1, 2)),         // odd sizes, stride, dilation
  };
  // fp32 tensors, and the bf16 ones of Precision::kBf16 (fp32 compute either way).
  for (Precision precision : {Precision::kFp32, Precision::kBf16}) {
    for (const Conv2dShape& s : shapes) {
      for (ConvOp op : {ConvOp::kForward, ConvOp::kBackwardData, ConvOp::kBackwardFilter}) {
        for (int64_t align : {16, 4}) {
          EXPECT_NO_THROW(cuda::convolution_graph(op, s, cuda::tensor_type(precision), align, align, align, handle_))
              << to_string(precision) << " " << cuda::to_string(op) << " " << cuda::shape_text(s) << " alignment "
              << align;
        }
      }
    }
  }
}

TEST(CudnnGraphText, Bf16TensorsOnlyInBf16) {
  EXPECT_EQ(cuda::tensor_type(Precision::kBf16), CUDNN_DATA_BFLOAT16);
  EXPECT_EQ(cuda::tensor_type(Precision::kFp32), CUDNN_DATA_FLOAT);
  EXPECT_EQ(cuda::tensor_type(Precision::kTf32), CUDNN_DATA_FLOAT);
}

TEST_F(CudnnGraph, AMismatchedOutputShapeIsRejectedWithCudnnsStatus) {
  Conv2dShape s = shape(2, 3, 8, 8, 4, 3, 3, params(1, 1, 1));
  s.p = 5;  // not what the geometry gives (8)
  const std::string message =
      error_of([&] { cuda::convolution_graph(ConvOp::kForward, s, CUDNN_DATA_FLOAT, 16, 16, 16, handle_); });
  EXPECT_THAT(message, HasSubstr("cudnnBackendFinalize"));
  EXPECT_THAT(message, HasSubstr("CUDNN_STATUS_"));
}

TEST(CudnnGraphText, NamesTheOperationAndShape) {
  const Conv2dShape s = shape(2, 3, 9, 7, 4, 3, 2, params(2, 1, 2));
  EXPECT_EQ(cuda::shape_text(s), "2×3×9×7 ⋆ 4×3×3×2 (stride 2×2, padding 1×1, dilation 2×2)");
  EXPECT_STREQ(cuda::to_string(ConvOp::kBackwardFilter), "backward-filter");
  alignas(16) float buffer[8];
  EXPECT_EQ(cuda::alignment(buffer), 16);
  EXPECT_EQ(cuda::alignment(buffer + 1), 4);
  EXPECT_EQ(cuda::alignment(buffer + 2), 8);
}

// Tensor: shapes, host round trips, views that share (and keep alive) their parent's storage,
// copies, move semantics and the messages of bad slices, reshapes and copies; and the checked
// front half of Backend: bad shapes and tensors of another backend are Errors that say what was
// expected and what was found.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "cudl/backend.hpp"
#include "cudl/cpu_backend.hpp"
#include "cudl/error.hpp"
#include "cudl/tensor.hpp"
#include "test_support.hpp"

namespace {

using cudl::CpuBackend;
using cudl::Shape;
using cudl::Tensor;
using cudl::Trans;
using cudl::testing::error_of;
using ::testing::AllOf;
using ::testing::ContainsRegex;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<float> iota(int n, float start = 0.0f) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) v[static_cast<size_t>(i)] = start + static_cast<float>(i);
  return v;
}

// ---- shapes ----

TEST(Tensor, ShapeRowsAndCols) {
  CpuBackend cpu(1);
  Tensor t({2, 3, 4}, cpu);
  EXPECT_FALSE(t.empty());
  EXPECT_EQ(t.shape(), (Shape{2, 3, 4}));
  EXPECT_EQ(t.rank(), 3);
  EXPECT_EQ(t.size(), 24);
  EXPECT_EQ(t.rows(), 2);
  EXPECT_EQ(t.cols(), 12);
  EXPECT_EQ(t.dim(0), 2);
  EXPECT_EQ(t.dim(2), 4);
  EXPECT_EQ(t.dim(-1), 4);
  EXPECT_EQ(t.dim(-3), 2);
  EXPECT_EQ(t.device(), cudl::Device::kCpu);
  EXPECT_EQ(&t.backend(), &cpu);

  Tensor v({5}, cpu);
  EXPECT_EQ(v.rows(), 5);
  EXPECT_EQ(v.cols(), 1);
}

TEST(Tensor, ZeroRowsIsAllowed) {
  CpuBackend cpu(1);
  Tensor t({0, 3}, cpu);
  EXPECT_FALSE(t.empty());
  EXPECT_EQ(t.size(), 0);
  EXPECT_EQ(t.rows(), 0);
  EXPECT_TRUE(t.to_vector().empty());
  EXPECT_EQ(t.rows(0, 0).shape(), (Shape{0, 3}));
}

TEST(Tensor, ShapeHelpers) {
  EXPECT_EQ(cudl::to_string(Shape{64, 784}), "[64, 784]");
  EXPECT_EQ(cudl::to_string(Shape{}), "[]");
  EXPECT_EQ(cudl::numel(Shape{2, 3, 4}), 24);
  EXPECT_EQ(cudl::numel(Shape{}), 1);
  EXPECT_STREQ(cudl::to_string(cudl::Device::kCpu), "cpu");
}

TEST(Tensor, DimOutOfRangeNamesTheShape) {
  CpuBackend cpu(1);
  Tensor t({2, 3}, cpu);
  EXPECT_THAT(error_of([&] { t.dim(2); }), AllOf(HasSubstr("dimension 2"), HasSubstr("[2, 3]")));
  EXPECT_THAT(error_of([&] { t.dim(-3); }), AllOf(HasSubstr("dimension -3"), HasSubstr("[2, 3]")));
}

TEST(Tensor, NegativeDimensionIsAnError) {
  CpuBackend cpu(1);
  EXPECT_THAT(error_of([&] { Tensor t({2, -1}, cpu); }),
              AllOf(HasSubstr("negative dimension"), HasSubstr("[2, -1]")));
}

TEST(Tensor, ErrorsNameTheSourceFileAndLine) {
  CpuBackend cpu(1);
  Tensor t({2, 3}, cpu);
  EXPECT_THAT(error_of([&] { (void)t.reshaped({7}); }), ContainsRegex("^[A-Za-z_]+\\.cpp:[0-9]+: "));
}

// ---- host round trips ----

TEST(Tensor, FromHostToVectorRoundTrip) {
  CpuBackend cpu(1);
  const std::vector<float> values = {1.5f, -2.0f, 3.25f, 0.0f, 1e-20f, -7e20f};
  Tensor t = Tensor::from_host(values, {2, 3}, cpu);
  EXPECT_EQ(t.shape(), (Shape{2, 3}));
  EXPECT_EQ(t.to_vector(), values);
  t.copy_from(std::vector<float>{6, 5, 4, 3, 2, 1});
  EXPECT_THAT(t.to_vector(), ElementsAre(6, 5, 4, 3, 2, 1));
}

TEST(Tensor, FromHostWithWrongCountNamesCountAndShape) {
  CpuBackend cpu(1);
  EXPECT_THAT(error_of([&] { Tensor::from_host({1, 2, 3, 4, 5}, {2, 3}, cpu); }),
              AllOf(HasSubstr("5 values"), HasSubstr("[2, 3]")));
  Tensor t({4}, cpu);
  EXPECT_THAT(error_of([&] { t.copy_from(std::vector<float>{1, 2}); }),
              AllOf(HasSubstr("2 values"), HasSubstr("[4]")));
}

// ---- views ----

TEST(Tensor, RowsViewSharesStorage) {
  CpuBackend cpu(1);
  Tensor parent = Tensor::from_host(iota(12), {4, 3}, cpu);
  Tensor middle = parent.rows(1, 3);
  EXPECT_EQ(middle.shape(), (Shape{2, 3}));
  EXPECT_THAT(middle.to_vector(), ElementsAre(3, 4, 5, 6, 7, 8));
  middle.copy_from(std::vector<float>{-1, -2, -3, -4, -5, -6});
  EXPECT_THAT(parent.to_vector(), ElementsAre(0, 1, 2, -1, -2, -3, -4, -5, -6, 9, 10, 11));
  // and the other way: a write to the parent is visible in the view
  parent.copy_from(iota(12, 100));
  EXPECT_THAT(middle.to_vector(), ElementsAre(103, 104, 105, 106, 107, 108));
}

TEST(Tensor, RowsOfHigherRankKeepTheTrailingShape) {
  CpuBackend cpu(1);
  Tensor parent = Tensor::from_host(iota(24), {4, 2, 3}, cpu);
  Tensor last = parent.rows(3, 4);
  EXPECT_EQ(last.shape(), (Shape{1, 2, 3}));
  EXPECT_THAT(last.to_vector(), ElementsAre(18, 19, 20, 21, 22, 23));
}

TEST(Tensor, SliceAndReshapedViewsShareStorage) {
  CpuBackend cpu(1);
  Tensor parent = Tensor::from_host(iota(8), {2, 4}, cpu);
  Tensor flat = parent.reshaped({8});
  Tensor square = parent.reshaped({4, 2});
  Tensor piece = parent.slice(3, {2, 2});
  EXPECT_EQ(square.shape(), (Shape{4, 2}));
  EXPECT_THAT(piece.to_vector(), ElementsAre(3, 4, 5, 6));

  piece.copy_from(std::vector<float>{30, 40, 50, 60});
  EXPECT_THAT(parent.to_vector(), ElementsAre(0, 1, 2, 30, 40, 50, 60, 7));
  EXPECT_THAT(flat.to_vector(), ElementsAre(0, 1, 2, 30, 40, 50, 60, 7));
  EXPECT_THAT(square.rows(2, 3).to_vector(), ElementsAre(40, 50));
  // a view of a view still aliases the parent
  square.rows(3, 4).copy_from(std::vector<float>{-6, -7});
  EXPECT_THAT(parent.to_vector(), ElementsAre(0, 1, 2, 30, 40, 50, -6, -7));
}

TEST(Tensor, ViewKeepsStorageAliveAfterParentIsDestroyed) {
  CpuBackend cpu(1);
  Tensor view;
  {
    Tensor parent = Tensor::from_host(iota(6), {3, 2}, cpu);
    view = parent.rows(1, 3);
  }
  EXPECT_FALSE(view.empty());
  EXPECT_THAT(view.to_vector(), ElementsAre(2, 3, 4, 5));
  view.copy_from(std::vector<float>{9, 9, 9, 9});  // still writable (ASan would flag a dangling buffer)
  EXPECT_THAT(view.to_vector(), ElementsAre(9, 9, 9, 9));
}

TEST(Tensor, ViewFollowsTheStorageWhenTheParentIsMoved) {
  CpuBackend cpu(1);
  Tensor parent = Tensor::from_host(iota(6), {3, 2}, cpu);
  Tensor view = parent.reshaped({6});
  Tensor moved = std::move(parent);
  view.copy_from(std::vector<float>{5, 4, 3, 2, 1, 0});
  EXPECT_THAT(moved.to_vector(), ElementsAre(5, 4, 3, 2, 1, 0));
  moved = Tensor();  // drop the moved-to tensor too: the view alone keeps the storage
  EXPECT_THAT(view.to_vector(), ElementsAre(5, 4, 3, 2, 1, 0));
}

TEST(Tensor, BadRowsNameRangeAndShape) {
  CpuBackend cpu(1);
  Tensor t({4, 3}, cpu);
  EXPECT_THAT(error_of([&] { (void)t.rows(2, 5); }), AllOf(HasSubstr("rows [2, 5)"), HasSubstr("[4, 3]")));
  EXPECT_THAT(error_of([&] { (void)t.rows(3, 2); }), AllOf(HasSubstr("rows [3, 2)"), HasSubstr("[4, 3]")));
  EXPECT_THAT(error_of([&] { (void)t.rows(-1, 2); }), AllOf(HasSubstr("rows [-1, 2)"), HasSubstr("[4, 3]")));
}

TEST(Tensor, BadSliceNamesSizesAndShape) {
  CpuBackend cpu(1);
  Tensor t({2, 4}, cpu);
  EXPECT_THAT(error_of([&] { (void)t.slice(3, {2, 3}); }),
              AllOf(HasSubstr("6 elements at offset 3"), HasSubstr("8 elements"), HasSubstr("[2, 4]")));
  EXPECT_THAT(error_of([&] { (void)t.slice(-1, {2}); }), AllOf(HasSubstr("offset -1"), HasSubstr("[2, 4]")));
  EXPECT_THAT(error_of([] { (void)Tensor().slice(0, {1}); }), HasSubstr("empty tensor"));
}

// Sizes that overflow 64 bits (or the bytes of an allocation) are errors naming the shape, not
// a small allocation reporting a huge size (found by hand: Tensor({2^31, 2^31}) allocated 64
// bytes and reported 2^62 elements) or a view far outside its tensor.
TEST(Tensor, SizesThatOverflowAreErrorsNamingTheShape) {
  CpuBackend cpu(1);
  const int64_t big = int64_t{1} << 31, huge = int64_t{1} << 40;
  EXPECT_THAT(error_of([&] { Tensor t({big, big}, cpu); }),
              AllOf(HasSubstr("[2147483648, 2147483648]"), HasSubstr("floats exceed any memory")));
  EXPECT_THAT(error_of([&] { Tensor t({huge, huge}, cpu); }),
              AllOf(HasSubstr("[1099511627776, 1099511627776]"), HasSubstr("more elements than a 64-bit count")));
  EXPECT_THAT(error_of([&] { (void)cudl::numel({huge, huge}); }), HasSubstr("64-bit"));
  EXPECT_THAT(error_of([&] { (void)cudl::numel({3, -1}); }), HasSubstr("negative dimension in shape [3, -1]"));
  Tensor t({16}, cpu);
  EXPECT_THAT(error_of([&] { (void)t.slice(INT64_MAX - 2, {4}); }), HasSubstr("exceeds a tensor of 16 elements"));
  EXPECT_THAT(error_of([&] { (void)t.slice(2, {huge, huge}); }), HasSubstr("64-bit"));
}

TEST(Tensor, BadReshapeNamesBothShapes) {
  CpuBackend cpu(1);
  Tensor t({2, 3}, cpu);
  EXPECT_THAT(error_of([&] { (void)t.reshaped({4, 2}); }), AllOf(HasSubstr("[2, 3]"), HasSubstr("[4, 2]")));
}

// ---- copies ----

TEST(Tensor, CopyFromTensorOnTheSameBackend) {
  CpuBackend cpu(1);
  Tensor a = Tensor::from_host(iota(6), {2, 3}, cpu);
  Tensor b({2, 3}, cpu);
  b.copy_from(a);
  EXPECT_EQ(b.to_vector(), a.to_vector());
  a.copy_from(std::vector<float>(6, 0.0f));  // a deep copy: b keeps its values
  EXPECT_THAT(b.to_vector(), ElementsAre(0, 1, 2, 3, 4, 5));
}

TEST(Tensor, CopyFromTensorAcrossBackends) {
  CpuBackend one(1), two(1);
  Tensor a = Tensor::from_host(iota(6), {3, 2}, one);
  Tensor b({3, 2}, two);
  b.copy_from(a);
  EXPECT_THAT(b.to_vector(), ElementsAre(0, 1, 2, 3, 4, 5));
  EXPECT_EQ(&b.backend(), &two);
}

TEST(Tensor, CopyBetweenOverlappingViews) {
  CpuBackend cpu(1);
  Tensor t = Tensor::from_host(iota(6), {6}, cpu);
  Tensor dst = t.slice(1, {4});
  dst.copy_from(t.slice(0, {4}));  // overlapping ranges: a memmove, not a memcpy
  EXPECT_THAT(t.to_vector(), ElementsAre(0, 0, 1, 2, 3, 5));
}

TEST(Tensor, ToMakesADeepCopyOnAnotherBackend) {
  CpuBackend one(1), two(1);
  Tensor a = Tensor::from_host(iota(4), {2, 2}, one);
  Tensor b = a.to(two);
  EXPECT_EQ(b.shape(), (Shape{2, 2}));
  EXPECT_EQ(&b.backend(), &two);
  b.copy_from(std::vector<float>{9, 9, 9, 9});
  EXPECT_THAT(a.to_vector(), ElementsAre(0, 1, 2, 3));
}

TEST(Tensor, CopyFromWrongSizeNamesBothShapes) {
  CpuBackend cpu(1);
  Tensor a({3}, cpu), b({2, 2}, cpu);
  EXPECT_THAT(error_of([&] { b.copy_from(a); }), AllOf(HasSubstr("[3]"), HasSubstr("[2, 2]")));
}

// ---- moves ----

TEST(Tensor, MovedFromTensorIsEmpty) {
  CpuBackend cpu(1);
  Tensor a = Tensor::from_host(iota(4), {4}, cpu);
  const float* data = a.data();
  Tensor b(std::move(a));
  // The moved-from state is part of the contract: empty, with no pointer into b's buffer.
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(a.data(), nullptr);
  EXPECT_EQ(b.data(), data);  // the buffer moved, it was not copied
  EXPECT_THAT(b.to_vector(), ElementsAre(0, 1, 2, 3));

  Tensor c({1}, cpu);
  c = std::move(b);
  EXPECT_TRUE(b.empty());  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(b.data(), nullptr);
  EXPECT_EQ(c.shape(), (Shape{4}));
  EXPECT_EQ(c.data(), data);
}

TEST(Tensor, DefaultTensorIsEmptyAndHasNoBackend) {
  Tensor t;
  EXPECT_TRUE(t.empty());
  EXPECT_EQ(t.data(), nullptr);
  EXPECT_THAT(error_of([&] { t.backend(); }), HasSubstr("empty tensor"));
}

// ---- Backend's checked front half ----

TEST(BackendChecks, GemmInnerDimensionMismatchNamesBothShapes) {
  CpuBackend cpu(1);
  Tensor a({2, 3}, cpu), b({4, 5}, cpu), c({2, 5}, cpu);
  EXPECT_THAT(error_of([&] { cpu.gemm(1.0f, a, Trans::kNo, b, Trans::kNo, 0.0f, c); }),
              AllOf(HasSubstr("gemm"), HasSubstr("inner dimensions"), HasSubstr("[2, 3]"), HasSubstr("[4, 5]")));
  // with a transpose: op(A) = Aᵀ is 3×2, op(B) = B is 4×5
  Tensor c2({3, 5}, cpu);
  EXPECT_THAT(error_of([&] { cpu.gemm(1.0f, a, Trans::kYes, b, Trans::kNo, 0.0f, c2); }),
              AllOf(HasSubstr("3x2"), HasSubstr("4x5"), HasSubstr("[2, 3]"), HasSubstr("[4, 5]")));
}

TEST(BackendChecks, GemmWrongOutputShapeNamesExpectedAndFound) {
  CpuBackend cpu(1);
  Tensor a({2, 3}, cpu), b({3, 5}, cpu), c({2, 4}, cpu);
  EXPECT_THAT(error_of([&] { cpu.gemm(1.0f, a, Trans::kNo, b, Trans::kNo, 0.0f, c); }),
              AllOf(HasSubstr("gemm"), HasSubstr("C"), HasSubstr("expected shape [2, 5]"), HasSubstr("found [2, 4]")));
}

TEST(BackendChecks, GemmNeedsMatrices) {
  CpuBackend cpu(1);
  Tensor a({6}, cpu), b({3, 5}, cpu), c({2, 5}, cpu);
  EXPECT_THAT(error_of([&] { cpu.gemm(1.0f, a, Trans::kNo, b, Trans::kNo, 0.0f, c); }),
              AllOf(HasSubstr("gemm"), HasSubstr("rank 2"), HasSubstr("[6]")));
}

TEST(BackendChecks, TensorOfAnotherBackendNamesWhereItLives) {
  CpuBackend home(1), other(2);  // different thread counts, so the two describe() lines differ
  Tensor x({2, 2}, home);
  const std::string message = error_of([&] { other.fill(x, 1.0f); });
  EXPECT_THAT(message, AllOf(HasSubstr("fill"), HasSubstr("lives on another backend instance"), HasSubstr(home.describe()),
                             HasSubstr("not on this one"), HasSubstr(other.describe())));
  EXPECT_LT(message.find(home.describe()), message.find(other.describe())) << message;

  Tensor a({2, 3}, home), b({3, 2}, other), c({2, 2}, other);
  EXPECT_THAT(error_of([&] { other.gemm(1.0f, a, Trans::kNo, b, Trans::kNo, 0.0f, c); }),
              AllOf(HasSubstr("gemm: tensor A lives on another backend instance"), HasSubstr(home.describe())));
}

TEST(BackendChecks, EmptyTensorIsNamed) {
  CpuBackend cpu(1);
  Tensor empty;
  EXPECT_THAT(error_of([&] { cpu.fill(empty, 0.0f); }), HasSubstr("fill: tensor x is empty"));
}

TEST(BackendChecks, BiasActivationWrongBiasLengthNamesExpectedAndFound) {
  CpuBackend cpu(1);
  Tensor y({2, 3}, cpu), bias({4}, cpu);
  EXPECT_THAT(error_of([&] { cpu.bias_activation(y, bias, cudl::Activation::kRelu); }),
              AllOf(HasSubstr("bias_activation"), HasSubstr("bias"), HasSubstr("expected shape [3]"),
                    HasSubstr("found [4]")));
}

TEST(BackendChecks, OtherShapeMismatchesNameExpectedAndFound) {
  CpuBackend cpu(1);
  Tensor x({2, 3}, cpu), out({2}, cpu), y({3, 2}, cpu), stats({4}, cpu), labels({3}, cpu);
  EXPECT_THAT(error_of([&] { cpu.sum_rows(1.0f, x, 0.0f, out); }),
              AllOf(HasSubstr("sum_rows"), HasSubstr("expected shape [3]"), HasSubstr("found [2]")));
  EXPECT_THAT(error_of([&] { cpu.activation_backward(x, y, cudl::Activation::kSigmoid); }),
              AllOf(HasSubstr("activation_backward"), HasSubstr("expected shape [3, 2]"), HasSubstr("found [2, 3]")));
  EXPECT_THAT(error_of([&] { cpu.softmax_cross_entropy(x, labels, cudl::CrossEntropyArgs{}, x, stats); }),
              AllOf(HasSubstr("softmax_cross_entropy"), HasSubstr("labels"), HasSubstr("expected shape [2]"),
                    HasSubstr("found [3]")));
  Tensor small({5}, cpu);
  EXPECT_THAT(error_of([&] { cpu.axpy(1.0f, x, small); }),
              AllOf(HasSubstr("axpy"), HasSubstr("[2, 3]"), HasSubstr("[5]")));
}

TEST(BackendChecks, CheckedCallsDoNotTouchTheirOutputs) {
  CpuBackend cpu(1);
  Tensor a = Tensor::from_host(iota(6), {2, 3}, cpu), b({4, 5}, cpu);
  Tensor c = Tensor::from_host(std::vector<float>(10, 7.0f), {2, 5}, cpu);
  EXPECT_THROW(cpu.gemm(1.0f, a, Trans::kNo, b, Trans::kNo, 0.0f, c), cudl::Error);
  EXPECT_EQ(c.to_vector(), std::vector<float>(10, 7.0f));
}

}  // namespace

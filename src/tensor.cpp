#include "cudl/tensor.hpp"

#include <algorithm>
#include <limits>
#include <utility>

#include "cudl/backend.hpp"
#include "cudl/error.hpp"

namespace cudl {

const char* to_string(Device device) { return device == Device::kCpu ? "cpu" : "cuda"; }

// Owns one allocation of a backend; views share it through shared_ptr.
struct Tensor::Storage {
  Backend* backend;
  void* ptr;
  Storage(Backend* b, void* p) : backend(b), ptr(p) {}
  ~Storage() { backend->deallocate(ptr); }
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
};

Tensor::Tensor(Shape shape, Backend& backend) : shape_(std::move(shape)) {
  for (int64_t d : shape_) CUDL_REQUIRE(d >= 0, "negative dimension in tensor shape " + to_string(shape_));
  const int64_t n = numel(shape_);
  CUDL_REQUIRE(n <= std::numeric_limits<int64_t>::max() / static_cast<int64_t>(sizeof(float)),
               "tensor shape " + to_string(shape_) + ": " + std::to_string(n) + " floats exceed any memory");
  const size_t bytes = static_cast<size_t>(std::max<int64_t>(n, 1)) * sizeof(float);
  storage_ = std::make_shared<Storage>(&backend, backend.allocate(bytes));
  data_ = static_cast<float*>(storage_->ptr);
}

Tensor::Tensor(Tensor&& other) noexcept
    : storage_(std::move(other.storage_)), data_(std::exchange(other.data_, nullptr)), shape_(std::move(other.shape_)) {
  other.shape_.clear();
}

Tensor& Tensor::operator=(Tensor&& other) noexcept {
  if (this != &other) {
    storage_ = std::move(other.storage_);
    data_ = std::exchange(other.data_, nullptr);
    shape_ = std::move(other.shape_);
    other.shape_.clear();
  }
  return *this;
}

Tensor Tensor::from_host(const std::vector<float>& values, Shape shape, Backend& backend) {
  Tensor t(std::move(shape), backend);
  t.copy_from(values);
  return t;
}

int64_t Tensor::dim(int i) const {
  const int r = rank();
  const int j = i < 0 ? i + r : i;
  CUDL_REQUIRE(j >= 0 && j < r, "dimension " + std::to_string(i) + " out of range for shape " + to_string(shape_));
  return shape_[j];
}

int64_t Tensor::rows() const { return empty() ? 0 : shape_.empty() ? 1 : shape_[0]; }
int64_t Tensor::cols() const { return shape_.size() <= 1 ? 1 : size() / std::max<int64_t>(shape_[0], 1); }

Backend& Tensor::backend() const {
  CUDL_REQUIRE(storage_, "use of an empty tensor");
  return *storage_->backend;
}

Device Tensor::device() const { return backend().device(); }

Tensor Tensor::slice(int64_t offset, Shape shape) const {
  CUDL_REQUIRE(storage_, "slice of an empty tensor");
  // Written so that no sum can overflow: offset ≤ size, then count ≤ size − offset.
  CUDL_REQUIRE(offset >= 0 && offset <= size() && numel(shape) <= size() - offset,
               "slice of " + std::to_string(numel(shape)) + " elements at offset " + std::to_string(offset) +
                   " exceeds a tensor of " + std::to_string(size()) + " elements " + to_string(shape_));
  Tensor t;
  t.storage_ = storage_;
  t.data_ = data_ + offset;
  t.shape_ = std::move(shape);
  return t;
}

Tensor Tensor::rows(int64_t begin, int64_t end) const {
  CUDL_REQUIRE(rank() >= 1 && 0 <= begin && begin <= end && end <= rows(),
               "rows [" + std::to_string(begin) + ", " + std::to_string(end) + ") out of range for shape " +
                   to_string(shape_));
  Shape s = shape_;
  s[0] = end - begin;
  return slice(begin * cols(), std::move(s));
}

Tensor Tensor::reshaped(Shape shape) const {
  CUDL_REQUIRE(numel(shape) == size(), "cannot view shape " + to_string(shape_) + " as " + to_string(shape));
  return slice(0, std::move(shape));
}

std::vector<float> Tensor::to_vector() const {
  std::vector<float> out(static_cast<size_t>(size()));
  if (!out.empty()) backend().copy_to_host(data_, out.data(), out.size() * sizeof(float));
  return out;
}

void Tensor::copy_from(const std::vector<float>& values) {
  CUDL_REQUIRE(static_cast<int64_t>(values.size()) == size(),
               "copy of " + std::to_string(values.size()) + " values into a tensor of shape " + to_string(shape_));
  if (!values.empty()) backend().copy_from_host(values.data(), data_, values.size() * sizeof(float));
}

void Tensor::copy_from(const Tensor& other) {
  CUDL_REQUIRE(other.shape_ == shape_,
               "copy of a tensor of shape " + to_string(other.shape_) + " into one of shape " + to_string(shape_));
  if (size() == 0) return;
  if (&other.backend() == &backend()) {
    backend().copy(other.data_, data_, static_cast<size_t>(size()) * sizeof(float));
  } else {
    copy_from(other.to_vector());
  }
}

Tensor Tensor::to(Backend& target) const {
  Tensor t(shape_, target);
  t.copy_from(*this);
  return t;
}

}  // namespace cudl

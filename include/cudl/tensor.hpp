#pragma once
// Tensor: a row-major float array on exactly one device, allocated by a Backend.
// Move-only. Data crosses between host and device only through explicit calls (to_vector,
// copy_from, to), so every transfer is visible in the code. A view (rows, reshaped) shares the
// storage of its parent and keeps it alive; it is the only way two tensors alias.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace cudl {

class Backend;
enum class Device { kCpu, kCuda };
const char* to_string(Device device);

using Shape = std::vector<int64_t>;
std::string to_string(const Shape& shape);  // "[64, 784]"
int64_t numel(const Shape& shape);

class Tensor {
 public:
  Tensor() = default;
  // Uninitialised tensor of `shape` allocated by `backend`, which must outlive it.
  Tensor(Shape shape, Backend& backend);
  // Tensor of `shape` holding `values` (host memory, size must equal numel(shape)).
  static Tensor from_host(const std::vector<float>& values, Shape shape, Backend& backend);

  // A moved-from tensor is empty.
  Tensor(Tensor&& other) noexcept;
  Tensor& operator=(Tensor&& other) noexcept;
  Tensor(const Tensor&) = delete;
  Tensor& operator=(const Tensor&) = delete;

  bool empty() const { return data_ == nullptr; }
  const Shape& shape() const { return shape_; }
  int64_t dim(int i) const;    // size of dimension i (negative counts from the end)
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t size() const { return empty() ? 0 : numel(shape_); }
  int64_t rows() const;        // dimension 0
  int64_t cols() const;        // product of the other dimensions (1 for rank 1)
  float* data() { return data_; }
  const float* data() const { return data_; }
  Backend& backend() const;
  Device device() const;

  // A view of rows [begin, end) along dimension 0; shares storage.
  Tensor rows(int64_t begin, int64_t end) const;
  // A view with another shape of the same number of elements; shares storage.
  Tensor reshaped(Shape shape) const;
  // A view of elements [offset, offset + numel(shape)) of this tensor, viewed as `shape`.
  Tensor slice(int64_t offset, Shape shape) const;

  // Explicit transfers (each synchronises with the owning backend's queue).
  std::vector<float> to_vector() const;
  void copy_from(const std::vector<float>& values);
  void copy_from(const Tensor& other);       // same shape, any backends
  Tensor to(Backend& backend) const;         // deep copy onto another backend

 private:
  struct Storage;
  std::shared_ptr<Storage> storage_;
  float* data_ = nullptr;
  Shape shape_;
};

}  // namespace cudl

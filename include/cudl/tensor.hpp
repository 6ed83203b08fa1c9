#pragma once
/// @file
/// Tensor: a row-major float array on exactly one device, allocated by a Backend.
/// Move-only. Data crosses between host and device only through explicit calls (to_vector,
/// copy_from, to), so every transfer is visible in the code. A view (rows, reshaped) shares the
/// storage of its parent and keeps it alive; it is the only way two tensors alias.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace cudl {

class Backend;
/// Where a backend keeps its memory and runs its work.
enum class Device {
  kCpu,  ///< host memory, CpuBackend
  kCuda  ///< one NVIDIA GPU, CudaBackend
};
/// "cpu" or "cuda".
const char* to_string(Device device);

/// A tensor's dimensions, outermost first (row-major).
using Shape = std::vector<int64_t>;
/// The shape in brackets, e.g. "[64, 784]".
std::string to_string(const Shape& shape);
/// Number of elements: the product of the dimensions (1 for the empty shape). Throws Error on a
/// negative dimension or when the product overflows int64_t.
int64_t numel(const Shape& shape);

/// A row-major float array in one backend's memory (see the file's description).
///
/// Shape errors (a view or copy that does not fit, a dimension out of range, use of an empty
/// tensor) throw Error. A tensor is used from one thread at a time, like its backend; its
/// destructor never throws. On the GPU, data() is a device pointer: only the backend's primitives
/// and the explicit transfers read it.
class Tensor {
 public:
  /// An empty tensor (empty() is true; no backend).
  Tensor() = default;
  /// Uninitialised tensor of `shape` allocated by `backend`, which must outlive it. Throws Error
  /// on a negative dimension, a size that overflows, or a failed allocation.
  Tensor(Shape shape, Backend& backend);
  /// Tensor of `shape` holding `values` (host memory, size must equal numel(shape); Error if not),
  /// copied to the backend.
  static Tensor from_host(const std::vector<float>& values, Shape shape, Backend& backend);

  /// Takes other's storage; a moved-from tensor is empty.
  Tensor(Tensor&& other) noexcept;
  /// Takes other's storage, releasing this one's; a moved-from tensor is empty.
  Tensor& operator=(Tensor&& other) noexcept;
  Tensor(const Tensor&) = delete;
  Tensor& operator=(const Tensor&) = delete;

  /// Whether the tensor holds no storage (default-constructed or moved from).
  bool empty() const { return data_ == nullptr; }
  /// The dimensions, outermost first.
  const Shape& shape() const { return shape_; }
  /// Size of dimension i (negative counts from the end); Error when out of range.
  int64_t dim(int i) const;
  /// Number of dimensions.
  int rank() const { return static_cast<int>(shape_.size()); }
  /// Number of elements (0 when empty).
  int64_t size() const { return empty() ? 0 : numel(shape_); }
  /// Dimension 0 (0 when empty; 1 for rank 0).
  int64_t rows() const;
  /// Product of the other dimensions (1 for rank 1).
  int64_t cols() const;
  /// The first element, in the backend's memory (a device pointer on the GPU); null when empty.
  float* data() { return data_; }
  /// The first element, in the backend's memory (a device pointer on the GPU); null when empty.
  const float* data() const { return data_; }
  /// The backend that owns the storage. Throws Error when the tensor is empty.
  Backend& backend() const;
  /// The owning backend's device. Throws Error when the tensor is empty.
  Device device() const;

  /// A view of rows [begin, end) along dimension 0; shares storage. Error when the range is not
  /// inside [0, rows()].
  Tensor rows(int64_t begin, int64_t end) const;
  /// A view with another shape of the same number of elements; shares storage. Error when the
  /// numbers of elements differ.
  Tensor reshaped(Shape shape) const;
  /// A view of elements [offset, offset + numel(shape)) of this tensor, viewed as `shape`; shares
  /// storage. Error when the range is not inside the tensor.
  Tensor slice(int64_t offset, Shape shape) const;

  // Explicit transfers between host and backend memory.
  /// The elements, copied to the host in row-major order; waits for the backend's queued work.
  std::vector<float> to_vector() const;
  /// Overwrites the elements with host values (as many as size(); Error if not); waits for the
  /// backend's queued work.
  void copy_from(const std::vector<float>& values);
  /// Overwrites the elements with other's (same shape, Error if not), from any backend: on the
  /// same backend a queued copy; from another, through the host, waiting for both backends.
  void copy_from(const Tensor& other);
  /// A deep copy onto `backend`: through the host (waiting for both backends) when it is another
  /// backend, a queued copy when it is the same one.
  Tensor to(Backend& backend) const;

 private:
  struct Storage;
  std::shared_ptr<Storage> storage_;
  float* data_ = nullptr;
  Shape shape_;
};

}  // namespace cudl

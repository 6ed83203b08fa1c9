// CudaBackend's fused training step (cudl/fused_mlp.hpp): what it can run, its batch buffers, and
// one launch of the persistent kernel (mlp_step.hpp) per call.
#include <cstdlib>
#include <memory>
#include <string>

#include "backend_impl.hpp"
#include "check.hpp"
#include "cudl/cuda_backend.hpp"
#include "cudl/error.hpp"
#include "cudl/fused_mlp.hpp"
#include "mlp_step.hpp"

namespace cudl {
namespace ms = cuda::mlp_step;

std::string CudaBackend::fused_mlp_refusal(const FusedMlpArgs& f) {
  if (const char* v = std::getenv("CUDL_FUSED_STEP"); v != nullptr && std::string(v) == "0")
    return "the fused step is turned off (CUDL_FUSED_STEP=0)";
  if (impl_->precision != Precision::kFp32)
    return std::string("the fused step computes strict fp32; this backend's precision is ") +
           to_string(impl_->precision);
  if (std::string why = ms::refusal(f); !why.empty()) return why;
  if (!impl_->mlp_step && impl_->mlp_step_unavailable.empty()) {
    try {
      CUDL_CUDA_CHECK(cudaSetDevice(impl_->gpu));  // its occupancy, barrier and buffers are this GPU's
      impl_->mlp_step = std::make_unique<cuda::MlpStep>(impl_->stream);
    } catch (const Error& e) {
      impl_->mlp_step_unavailable = e.what();
    }
  }
  return impl_->mlp_step_unavailable;
}

void CudaBackend::fused_mlp_steps(const FusedMlpArgs& f) {
  const std::string why = fused_mlp_refusal(f);
  CUDL_REQUIRE(why.empty(), "fused_mlp_steps: " + why);
  const std::string lacking = ms::missing(f);
  CUDL_REQUIRE(lacking.empty(), "fused_mlp_steps: the arguments lack " + lacking);
  CUDL_CUDA_CHECK(cudaSetDevice(impl_->gpu));  // the buffers may grow: on this backend's GPU
  ms::Args a = ms::from_fused(f);
  ms::place_batch_buffers(a, impl_->mlp_step->batch_buffers(ms::batch_floats(a)));
  impl_->mlp_step->run(a);
}

}  // namespace cudl

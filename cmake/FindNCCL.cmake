# FindNCCL: NCCL ships no CMake package either; looked for like cuDNN (CudlFindNvidia.cmake):
# NCCL_PATH, the CUDA toolkit's folders (where the toolkit bundles it), pip's nvidia-nccl-cu*
# wheel. The version is read from nccl.h.
# Result: NCCL_FOUND, NCCL_VERSION, NCCL_INCLUDE_DIR, NCCL_LIBRARY and the imported target NCCL::nccl.
include(CudlFindNvidia)
cudl_find_nvidia_library(NCCL nvidia.nccl nccl.h PATCH nccl libnccl.so.2)

# FindCUDNN: cuDNN 9 ships no CMake package, so we look for it ourselves (CudlFindNvidia.cmake).
# Search order: the CUDNN_PATH variable or environment variable; the CUDA toolkit's own
# include/lib folders; the nvidia/cudnn folder of pip's nvidia-cudnn-cu* wheel (as PyTorch
# installs it), found through python3. The version is read from cudnn_version.h.
# Result: CUDNN_FOUND, CUDNN_VERSION (and CUDNN_MAJOR, ...), CUDNN_INCLUDE_DIR, CUDNN_LIBRARY and
# the imported target CUDNN::cudnn.
include(CudlFindNvidia)
cudl_find_nvidia_library(CUDNN nvidia.cudnn cudnn_version.h PATCHLEVEL cudnn libcudnn.so.9)

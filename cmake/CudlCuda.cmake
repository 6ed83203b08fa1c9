# Decides, in one place, whether the CUDA backend is built. Sets CUDL_HAVE_CUDA (ON/OFF), and
# CUDL_HAVE_NCCL (ON where the CUDA backend is built and NCCL 2.13 or newer is found: the NCCL
# communicator plugin, FindNCCL.cmake).
# CUDL_CUDA=AUTO builds it when a CUDA compiler, the toolkit's cuBLAS and cuDNN 9 (FindCUDNN.cmake:
# CUDNN_PATH, the toolkit, pip's nvidia/cudnn) are all found; ON makes their absence an error;
# OFF never builds it. Without a GPU to detect, the architecture must
# be explicit: we default CMAKE_CUDA_ARCHITECTURES to 90 (H100/H200); pass e.g. 75 for a T4.
set(CUDL_HAVE_CUDA OFF)
set(CUDL_HAVE_NCCL OFF)
if(NOT CUDL_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      set(CMAKE_CUDA_ARCHITECTURES 90 CACHE STRING "CUDA architectures (90: H100/H200, 75: T4)")
    endif()
    enable_language(CUDA)
    find_package(CUDAToolkit REQUIRED)
    find_package(CUDNN 9)
    if(TARGET CUDA::cublas AND TARGET CUDA::cublasLt AND CUDNN_FOUND)
      set(CUDL_HAVE_CUDA ON)
      message(STATUS "cudl: CUDA ${CUDAToolkit_VERSION}, cuDNN ${CUDNN_VERSION} (${CUDNN_LIBRARY}), architectures ${CMAKE_CUDA_ARCHITECTURES}")
      find_package(NCCL 2.13)  # ncclAvg (2.10), ncclGetLastError (2.13)
      if(NCCL_FOUND)
        set(CUDL_HAVE_NCCL ON)
        message(STATUS "cudl: NCCL ${NCCL_VERSION} (${NCCL_LIBRARY}): building the NCCL communicator")
      else()
        message(STATUS "cudl: NCCL 2.13 or newer not found (set NCCL_PATH): no NCCL communicator")
      endif()
    elseif(CUDL_CUDA STREQUAL "ON")
      message(FATAL_ERROR "CUDL_CUDA=ON but cuBLAS or cuDNN 9 was not found (set CUDNN_PATH to cuDNN's folder)")
    else()
      message(STATUS "cudl: CUDA compiler found but cuBLAS or cuDNN 9 is missing: building without the CUDA backend")
    endif()
  elseif(CUDL_CUDA STREQUAL "ON")
    message(FATAL_ERROR "CUDL_CUDA=ON but no CUDA compiler was found (set CMAKE_CUDA_COMPILER or put nvcc on PATH)")
  endif()
endif()

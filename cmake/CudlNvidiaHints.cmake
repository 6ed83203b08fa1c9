# cudl_nvidia_hints(<out> <VAR> <pip module>): the folders where an NVIDIA library without a CMake
# package (cuDNN, NCCL) may be installed, in search order: the <VAR> variable or environment
# variable (e.g. CUDNN_PATH); the CUDA toolkit's own folders; the folder of pip's wheel
# (e.g. nvidia.cudnn from nvidia-cudnn-cu13, as PyTorch installs it), found through python3.
function(cudl_nvidia_hints out var module)
  set(hints)
  foreach(root IN ITEMS "${${var}}" "$ENV{${var}}")
    if(root)
      list(APPEND hints "${root}")
    endif()
  endforeach()
  foreach(inc IN LISTS CUDAToolkit_INCLUDE_DIRS)
    get_filename_component(root "${inc}" DIRECTORY)
    list(APPEND hints "${root}")
  endforeach()
  if(CUDAToolkit_LIBRARY_DIR)
    get_filename_component(root "${CUDAToolkit_LIBRARY_DIR}" DIRECTORY)
    list(APPEND hints "${root}")
  endif()
  find_program(_cudl_python NAMES python3 python)
  if(_cudl_python)
    execute_process(
      COMMAND "${_cudl_python}" -c "import ${module} as m; print(list(m.__path__)[0])"
      OUTPUT_VARIABLE pip OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE rc)
    if(rc EQUAL 0 AND pip)
      list(APPEND hints "${pip}")
    endif()
  endif()
  set(${out} ${hints} PARENT_SCOPE)
endfunction()

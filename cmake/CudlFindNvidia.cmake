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

# cudl_find_nvidia_library(<PKG> <pip module> <version header> <patch macro> <library names...>):
# the body of FindCUDNN.cmake and FindNCCL.cmake. Looks in cudl_nvidia_hints(... <PKG>_PATH ...)
# for the library first, each folder tried for every name before the next (NAMES_PER_DIR: pip's
# wheels have only libX.so.N, and without it a system libX.so found by the first name would win
# over the wheel's); then for the header beside that library before anywhere else, so that header
# and library come from the same install. Reads <PKG>_MAJOR, _MINOR and _<patch macro> from the
# version header. Sets <PKG>_FOUND, <PKG>_VERSION, <PKG>_INCLUDE_DIR, <PKG>_LIBRARY, those parts,
# and the imported target <PKG>::<pkg in lower case>.
macro(cudl_find_nvidia_library pkg module header patch)
  string(TOLOWER "${pkg}" _cudl_lc)
  cudl_nvidia_hints(_cudl_hints ${pkg}_PATH ${module})
  find_library(${pkg}_LIBRARY NAMES ${ARGN} NAMES_PER_DIR HINTS ${_cudl_hints}
               PATH_SUFFIXES lib64 lib lib/x64 lib/x86_64-linux-gnu)
  if(${pkg}_LIBRARY)
    get_filename_component(_cudl_libdir "${${pkg}_LIBRARY}" DIRECTORY)
    get_filename_component(_cudl_root "${_cudl_libdir}" DIRECTORY)
    find_path(${pkg}_INCLUDE_DIR ${header} HINTS "${_cudl_root}" ${_cudl_hints} PATH_SUFFIXES include NO_DEFAULT_PATH)
  endif()
  find_path(${pkg}_INCLUDE_DIR ${header} HINTS ${_cudl_hints} PATH_SUFFIXES include)
  if(${pkg}_INCLUDE_DIR AND EXISTS "${${pkg}_INCLUDE_DIR}/${header}")
    file(STRINGS "${${pkg}_INCLUDE_DIR}/${header}" _cudl_defs REGEX "^#define ${pkg}_(MAJOR|MINOR|${patch}) ")
    foreach(_cudl_part MAJOR MINOR ${patch})
      string(REGEX REPLACE ".*#define ${pkg}_${_cudl_part} ([0-9]+).*" "\\1" ${pkg}_${_cudl_part} "${_cudl_defs}")
    endforeach()
    set(${pkg}_VERSION "${${pkg}_MAJOR}.${${pkg}_MINOR}.${${pkg}_${patch}}")
  endif()
  include(FindPackageHandleStandardArgs)
  find_package_handle_standard_args(${pkg} REQUIRED_VARS ${pkg}_LIBRARY ${pkg}_INCLUDE_DIR VERSION_VAR ${pkg}_VERSION)
  if(${pkg}_FOUND AND NOT TARGET ${pkg}::${_cudl_lc})
    add_library(${pkg}::${_cudl_lc} UNKNOWN IMPORTED)
    set_target_properties(${pkg}::${_cudl_lc} PROPERTIES IMPORTED_LOCATION "${${pkg}_LIBRARY}"
                                                          INTERFACE_INCLUDE_DIRECTORIES "${${pkg}_INCLUDE_DIR}")
  endif()
  mark_as_advanced(${pkg}_INCLUDE_DIR ${pkg}_LIBRARY)
endmacro()

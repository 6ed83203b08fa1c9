# FindCUDNN: cuDNN 9 ships no CMake package, so we look for it ourselves.
# Search order: the CUDNN_PATH variable or environment variable; the CUDA toolkit's own
# include/lib folders; the nvidia/cudnn folder of pip's nvidia-cudnn-cu* wheel (as PyTorch
# installs it), found through python3. The version is read from cudnn_version.h.
# Result: CUDNN_FOUND, CUDNN_VERSION, CUDNN_INCLUDE_DIR, CUDNN_LIBRARY and the imported
# target CUDNN::cudnn.
include(CudlNvidiaHints)
cudl_nvidia_hints(_cudnn_hints CUDNN_PATH nvidia.cudnn)

# Library first, each hinted folder tried for every name before the next folder (NAMES_PER_DIR:
# pip's wheel has only libcudnn.so.9, and without it a system libcudnn.so found by the first name
# would win over the wheel's); the header is then looked for beside that library before anywhere
# else, so that header and library come from the same install.
find_library(CUDNN_LIBRARY NAMES cudnn libcudnn.so.9 NAMES_PER_DIR HINTS ${_cudnn_hints}
             PATH_SUFFIXES lib64 lib lib/x64 lib/x86_64-linux-gnu)
if(CUDNN_LIBRARY)
  get_filename_component(_cudnn_libdir "${CUDNN_LIBRARY}" DIRECTORY)
  get_filename_component(_cudnn_root "${_cudnn_libdir}" DIRECTORY)
  find_path(CUDNN_INCLUDE_DIR cudnn_version.h HINTS "${_cudnn_root}" ${_cudnn_hints} PATH_SUFFIXES include
            NO_DEFAULT_PATH)
endif()
find_path(CUDNN_INCLUDE_DIR cudnn_version.h HINTS ${_cudnn_hints} PATH_SUFFIXES include)

if(CUDNN_INCLUDE_DIR AND EXISTS "${CUDNN_INCLUDE_DIR}/cudnn_version.h")
  file(STRINGS "${CUDNN_INCLUDE_DIR}/cudnn_version.h" _cudnn_defs REGEX "^#define CUDNN_(MAJOR|MINOR|PATCHLEVEL) ")
  foreach(_part MAJOR MINOR PATCHLEVEL)
    string(REGEX REPLACE ".*#define CUDNN_${_part} ([0-9]+).*" "\\1" CUDNN_${_part} "${_cudnn_defs}")
  endforeach()
  set(CUDNN_VERSION "${CUDNN_MAJOR}.${CUDNN_MINOR}.${CUDNN_PATCHLEVEL}")
endif()

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(CUDNN REQUIRED_VARS CUDNN_LIBRARY CUDNN_INCLUDE_DIR VERSION_VAR CUDNN_VERSION)
if(CUDNN_FOUND AND NOT TARGET CUDNN::cudnn)
  add_library(CUDNN::cudnn UNKNOWN IMPORTED)
  set_target_properties(CUDNN::cudnn PROPERTIES IMPORTED_LOCATION "${CUDNN_LIBRARY}"
                                                INTERFACE_INCLUDE_DIRECTORIES "${CUDNN_INCLUDE_DIR}")
endif()
mark_as_advanced(CUDNN_INCLUDE_DIR CUDNN_LIBRARY)

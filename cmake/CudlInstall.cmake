# What `cmake --install` puts under the prefix, and the files that let other projects use it:
#   include/cudl/*.hpp, include/cudl/version.hpp (generated)    the public headers
#   lib/libcudl.a                                                the library (static)
#   lib/cmake/cudl/cudlConfig.cmake (+ Version, Targets)         find_package(cudl)
#   lib/pkgconfig/cudl.pc                                        pkg-config --static --libs cudl
#   bin/bench_dbn, libexec/cudl/ (the examples' programs)        (their CMakeLists)
#   share/doc/cudl/LICENSE, NOTICE
# Included by the top-level CMakeLists.txt after the targets exist. tests/consumer/run.sh checks
# the result by building two programs against an installed tree.
include(CMakePackageConfigHelpers)

install(TARGETS cudl EXPORT cudlTargets ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(DIRECTORY include/cudl DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${PROJECT_BINARY_DIR}/include/cudl/version.hpp DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/cudl)
install(FILES LICENSE NOTICE DESTINATION ${CMAKE_INSTALL_DOCDIR})

# The CMake package.
install(EXPORT cudlTargets NAMESPACE cudl:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/cudl)
configure_package_config_file(cmake/cudlConfig.cmake.in ${PROJECT_BINARY_DIR}/cudlConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/cudl)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/cudlConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/cudlConfig.cmake ${PROJECT_BINARY_DIR}/cudlConfigVersion.cmake
  cmake/FindCUDNN.cmake DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/cudl)

# The pkg-config file. Its prefix is found from the file's own place (${pcfiledir}), so the tree
# can be installed with --prefix or DESTDIR and moved; absolute install dirs are written as given.
# Libs.private: what libcudl.a calls, as -L/-l flags (a library whose file name -l cannot reach,
# such as pip's libcudnn.so.9, by its full path).
function(_cudl_pc_link_flags out)
  set(flags "")
  foreach(lib IN LISTS ARGN)
    if(lib MATCHES "^(optimized|debug|general)$")
      continue()
    endif()
    if(lib MATCHES "^-")  # already a flag (-pthread, -lpthread)
      list(APPEND flags "${lib}")
      continue()
    endif()
    get_filename_component(dir "${lib}" DIRECTORY)
    get_filename_component(name "${lib}" NAME)
    if(IS_ABSOLUTE "${lib}" AND name MATCHES "^lib(.+)\\.(so|a)$")
      if(NOT dir IN_LIST CMAKE_CXX_IMPLICIT_LINK_DIRECTORIES)
        list(APPEND flags "-L${dir}")
      endif()
      list(APPEND flags "-l${CMAKE_MATCH_1}")
    elseif(IS_ABSOLUTE "${lib}")
      list(APPEND flags "${lib}")
    else()
      list(APPEND flags "-l${lib}")
    endif()
  endforeach()
  list(REMOVE_DUPLICATES flags)
  list(JOIN flags " " flags)
  set(${out} "${flags}" PARENT_SCOPE)
endfunction()

function(_cudl_imported_location out target)
  get_target_property(loc ${target} IMPORTED_LOCATION)
  if(NOT loc)
    get_target_property(loc ${target} IMPORTED_LOCATION_RELEASE)
  endif()
  if(NOT loc)
    message(FATAL_ERROR "cudl: no library file for ${target} (needed for cudl.pc)")
  endif()
  set(${out} "${loc}" PARENT_SCOPE)
endfunction()

set(_cudl_pc_libs ${ZLIB_LIBRARIES})
if(CUDL_HAVE_CUDA)
  _cudl_imported_location(_cudart CUDA::cudart)
  _cudl_imported_location(_cublas CUDA::cublas)
  list(APPEND _cudl_pc_libs "${_cudart}" "${_cublas}" "${CUDNN_LIBRARY}")
  set(CUDL_PC_CUDA_DESCRIPTION " and NVIDIA GPUs (CUDA backend)")
else()
  set(CUDL_PC_CUDA_DESCRIPTION "")
endif()
_cudl_pc_link_flags(CUDL_PC_LIBS_PRIVATE ${_cudl_pc_libs})
if(CMAKE_THREAD_LIBS_INIT)
  string(APPEND CUDL_PC_LIBS_PRIVATE " ${CMAKE_THREAD_LIBS_INIT}")
endif()

if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}" OR IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(CUDL_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
else()
  file(RELATIVE_PATH _cudl_up "/prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/prefix")
  string(REGEX REPLACE "/$" "" _cudl_up "${_cudl_up}")
  set(CUDL_PC_PREFIX "\${pcfiledir}/${_cudl_up}")
endif()
foreach(_dir LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${_dir}}")
    set(CUDL_PC_${_dir} "${CMAKE_INSTALL_${_dir}}")
  else()
    set(CUDL_PC_${_dir} "\${prefix}/${CMAKE_INSTALL_${_dir}}")
  endif()
endforeach()
configure_file(cmake/cudl.pc.in ${PROJECT_BINARY_DIR}/cudl.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/cudl.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

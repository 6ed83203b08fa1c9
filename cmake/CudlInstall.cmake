# What `cmake --install` puts under the prefix, and the files that let other projects use it:
#   include/cudl/*.hpp, include/cudl/version.hpp (generated)    the public headers
#   lib/libcudl.so (.so.0.1, .so.0.1.0)                          the library; needs nothing of CUDA
#   lib/libcudl_cuda.so (.so.0.1, ...)                           the CUDA backend, dlopen'ed by libcudl
#                                                                (only in a build with CUDA)
#   lib/libcudl_nccl.so (.so.0.1, ...)                           the NCCL communicator, dlopen'ed by libcudl
#                                                                (only in a build with CUDA and NCCL)
#   lib/libcudl_mpi.so (.so.0.1, ...)                            data-parallel training over MPI
#                                                                (only in a build with MPI)
#   lib/cmake/cudl/cudlConfig.cmake (+ Version, Targets)         find_package(cudl [COMPONENTS CUDA])
#   lib/pkgconfig/cudl.pc                                        pkg-config --libs cudl
#   bin/bench_dbn, libexec/cudl/ (the examples' programs)        (their CMakeLists)
#   share/doc/cudl/LICENSE, NOTICE
#   bin/launch-bench -> share/cudl/ec2/launch-bench (+ its lib/, the source it sends)
# Every install() names a COMPONENT, one per Debian package (cmake/CudlPackage.cmake): runtime
# (libcudl.so.*, LICENSE, NOTICE), dev (headers, the .so link, CMake package, pkg-config file),
# tools (bench_dbn, launch-bench, the examples), cuda and cuda_dev (the plugin; its CMake targets),
# nccl, mpi and mpi_dev. `cmake --install` without --component installs them all, as before.
# Included by the top-level CMakeLists.txt after the targets exist. tests/consumer/run.sh checks
# the result by building two programs against an installed tree.
include(CMakePackageConfigHelpers)

install(TARGETS cudl EXPORT cudlTargets LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime
        NAMELINK_COMPONENT dev)
if(CUDL_HAVE_CUDA)
  # Beside libcudl.so, where libcudl looks for it; it finds libcudl.so there too ($ORIGIN), and
  # the CUDA libraries where it was linked against them (CMAKE_INSTALL_RPATH_USE_LINK_PATH).
  set_property(TARGET cudl_cuda PROPERTY INSTALL_RPATH "$ORIGIN")
  # libcudl opens it by its unversioned name, so libcudl_cuda.so belongs to the plugin's package.
  install(TARGETS cudl_cuda EXPORT cudlCudaTargets LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT cuda)
  # cudl::cuda, for code that uses CudaBackend itself (find_package(cudl COMPONENTS CUDA)).
  install(EXPORT cudlCudaTargets NAMESPACE cudl:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/cudl COMPONENT cuda_dev)
  install(FILES cmake/FindCUDNN.cmake cmake/CudlFindNvidia.cmake DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/cudl
          COMPONENT cuda_dev)
endif()
if(CUDL_HAVE_NCCL)
  # A plugin beside libcudl.so, loaded by make_nccl_communicator; nothing links against it.
  set_property(TARGET cudl_nccl PROPERTY INSTALL_RPATH "$ORIGIN")
  install(TARGETS cudl_nccl LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT nccl)
endif()
if(CUDL_HAVE_MPI)
  set_property(TARGET cudl_mpi PROPERTY INSTALL_RPATH "$ORIGIN")
  install(TARGETS cudl_mpi EXPORT cudlMpiTargets LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT mpi
          NAMELINK_COMPONENT mpi_dev)
  # cudl::mpi (find_package(cudl COMPONENTS MPI)).
  install(EXPORT cudlMpiTargets NAMESPACE cudl:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/cudl COMPONENT mpi_dev)
endif()
install(DIRECTORY include/cudl DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev)
install(FILES ${PROJECT_BINARY_DIR}/include/cudl/version.hpp DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/cudl COMPONENT dev)
install(FILES LICENSE NOTICE DESTINATION ${CMAKE_INSTALL_DOCDIR} COMPONENT runtime)

# The CMake package.
install(EXPORT cudlTargets NAMESPACE cudl:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/cudl COMPONENT dev)
configure_package_config_file(cmake/cudlConfig.cmake.in ${PROJECT_BINARY_DIR}/cudlConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/cudl)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/cudlConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/cudlConfig.cmake ${PROJECT_BINARY_DIR}/cudlConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/cudl COMPONENT dev)

# The pkg-config file. Its prefix is found from the file's own place (${pcfiledir}), so the tree
# can be installed with --prefix or DESTDIR and moved; absolute install dirs are written as given.
# libcudl.so names its own dependencies (zlib, the C++ runtime); the CUDA libraries are the
# plugin's, loaded with it. Libs.private is for `pkg-config --static`: the threads library.
if(CUDL_HAVE_CUDA)
  set(CUDL_PC_CUDA_DESCRIPTION " and NVIDIA GPUs (CUDA backend, loaded at run time)")
else()
  set(CUDL_PC_CUDA_DESCRIPTION "")
endif()
set(CUDL_PC_LIBS_PRIVATE "${CMAKE_THREAD_LIBS_INIT}")

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
install(FILES ${PROJECT_BINARY_DIR}/cudl.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT dev)

# scripts/ec2/launch-bench, installed as bin/launch-bench (a link into share/cudl/ec2/, beside its
# lib/ and helpers). It sends the cudl source to the instance it rents: installed, the source of
# the commit this tree was built from, archived at each build by `git archive` (the tracked files,
# as from a checkout) with source.txt naming the commit. Built outside a git checkout there is no
# archive, and the installed launch-bench asks for CUDL_EC2_SOURCE_DIR.
install(DIRECTORY scripts/ec2/ DESTINATION ${CMAKE_INSTALL_DATADIR}/cudl/ec2 USE_SOURCE_PERMISSIONS COMPONENT tools
        PATTERN "__pycache__" EXCLUDE)
find_package(Git QUIET)
if(GIT_FOUND AND EXISTS "${PROJECT_SOURCE_DIR}/.git")
  add_custom_target(cudl_source_archive ALL
    COMMAND "${GIT_EXECUTABLE}" -C "${PROJECT_SOURCE_DIR}" archive --format=tar.gz -o "${PROJECT_BINARY_DIR}/source.tar.gz" HEAD
    COMMAND sh -c "'${GIT_EXECUTABLE}' -C '${PROJECT_SOURCE_DIR}' describe --always --abbrev=12 HEAD > '${PROJECT_BINARY_DIR}/source.txt'"
    COMMENT "Archiving the source at HEAD for the installed launch-bench"
    VERBATIM)
  install(FILES "${PROJECT_BINARY_DIR}/source.tar.gz" "${PROJECT_BINARY_DIR}/source.txt"
          DESTINATION ${CMAKE_INSTALL_DATADIR}/cudl/ec2 COMPONENT tools)
else()
  message(STATUS "cudl: not a git checkout: the installed launch-bench will need CUDL_EC2_SOURCE_DIR")
endif()
if(IS_ABSOLUTE "${CMAKE_INSTALL_DATADIR}")
  set(_cudl_launch_target "${CMAKE_INSTALL_DATADIR}/cudl/ec2/launch-bench")
else()
  file(RELATIVE_PATH _cudl_launch_target "/prefix/${CMAKE_INSTALL_BINDIR}" "/prefix/${CMAKE_INSTALL_DATADIR}/cudl/ec2/launch-bench")
endif()
install(CODE "
  set(link \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}/launch-bench\")
  file(MAKE_DIRECTORY \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}\")
  file(REMOVE \"\${link}\")
  file(CREATE_LINK \"${_cudl_launch_target}\" \"\${link}\" SYMBOLIC)
  message(STATUS \"Installing: \${link} -> ${_cudl_launch_target}\")" COMPONENT tools)

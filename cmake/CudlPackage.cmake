# Debian packages with CPack: `cmake --build build --target package` (or `cpack` in build/) writes
# build/packages/*.deb, one package per install COMPONENT (cmake/CudlInstall.cmake):
#   libcudl0.1        runtime    libcudl.so.0.1*, share/doc/cudl (LICENSE, NOTICE); needs nothing of CUDA
#   libcudl-dev       dev        headers, libcudl.so, the CMake package, cudl.pc
#   cudl-tools        tools      bench_dbn, launch-bench (+ share/cudl/ec2), the examples (libexec/cudl)
#   libcudl-cuda0.1   cuda       the CUDA plugin libcudl_cuda.so*; needs the CUDA runtime, cuBLAS, cuDNN
#   libcudl-cuda-dev  cuda_dev   cudl::cuda's CMake targets (find_package(cudl COMPONENTS CUDA))
#   libcudl-nccl0.1   nccl       the NCCL communicator plugin, libcudl_nccl.so*
#   libcudl-mpi0.1    mpi        libcudl_mpi.so.0.1*
#   libcudl-mpi-dev   mpi_dev    libcudl_mpi.so, cudl::mpi's CMake targets
# (the last five only where that part is built). The library's SONAME is libcudl.so.0.1 (SOVERSION
# major.minor: before 1.0 each minor version may break the ABI), hence Debian's name libcudl0.1.
# Each package has /usr/share/doc/<package>/copyright. Configure with -DCMAKE_INSTALL_PREFIX=/usr
# for Debian's multiarch lib/<triplet>; any build packages into /usr (CPACK_PACKAGING_INSTALL_PREFIX).
# Dependencies on Debian's libraries (libc6, libstdc++6, zlib1g, libdeflate0, libcsv3, libspng0, libturbojpeg0,
# libopenmpi3) come from dpkg-shlibdeps; those between cudl's packages are exact (= version).
set(CUDL_DEB_MAINTAINER "cudl maintainers <maintainers@cudl.invalid>" CACHE STRING
    "Maintainer field of the Debian packages (a placeholder by default)")
set(CUDL_DEB_HOMEPAGE "https://cudl.invalid/" CACHE STRING
    "Homepage field of the Debian packages (a placeholder: the project has no public URL yet)")
set(CUDL_DEB_RELEASE 1 CACHE STRING "Debian revision of the packages (version ${PROJECT_VERSION}-<this>)")

# The CUDA plugin's NVIDIA libraries have no Debian shlibs information where they come from NVIDIA's
# repository or a tarball, so the package names them. Defaults: NVIDIA's apt repository
# (developer.download.nvidia.com/compute/cuda/repos/debian12), for the versions found at configure
# time: cuda-cudart-13-0, libcublas-13-0, libcudnn9-cuda-13, libnccl2. Debian's own non-free
# packages (nvidia-cuda-toolkit) have other names and older versions (Debian 12: libcudart11.0,
# libcublas11; Debian 13: libcudart12, libcublas12) and no cuDNN library; set these to build for
# another source of the NVIDIA libraries.
if(CUDL_HAVE_CUDA)
  set(_cudl_cuda_mm "${CUDAToolkit_VERSION_MAJOR}-${CUDAToolkit_VERSION_MINOR}")
  set(CUDL_DEB_CUDA_DEPENDS
      "cuda-cudart-${_cudl_cuda_mm}, libcublas-${_cudl_cuda_mm}, libcudnn${CUDNN_MAJOR}-cuda-${CUDAToolkit_VERSION_MAJOR}"
      CACHE STRING "Depends of libcudl-cuda0.1 on NVIDIA's libraries (package names of NVIDIA's apt repository by default)")
  set(CUDL_DEB_CUDA_DEV_DEPENDS
      "cuda-cudart-dev-${_cudl_cuda_mm}, libcublas-dev-${_cudl_cuda_mm}, libcudnn${CUDNN_MAJOR}-dev-cuda-${CUDAToolkit_VERSION_MAJOR}"
      CACHE STRING "Depends of libcudl-cuda-dev on NVIDIA's development packages")
  set(CUDL_DEB_NCCL_DEPENDS "libnccl2" CACHE STRING "Depends of libcudl-nccl0.1 on NCCL")
endif()

set(_cudl_so "${PROJECT_VERSION_MAJOR}.${PROJECT_VERSION_MINOR}")
set(_cudl_deb_version "${PROJECT_VERSION}-${CUDL_DEB_RELEASE}")
set(_cudl_exact "(= ${_cudl_deb_version})")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME cudl)
set(CPACK_PACKAGE_VENDOR "the cudl authors")
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_RESOURCE_FILE_LICENSE "${PROJECT_SOURCE_DIR}/LICENSE")
set(CPACK_PACKAGE_CONTACT "${CUDL_DEB_MAINTAINER}")
set(CPACK_STRIP_FILES ON)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)   # <package>_<version>-<release>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_RELEASE "${CUDL_DEB_RELEASE}")
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${CUDL_DEB_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "${CUDL_DEB_HOMEPAGE}")
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)   # a shlibs file for each library package
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
# dpkg-shlibdeps finds libcudl.so.0.1, libcudl_mpi.so.0.1 and libcudl_cuda.so.0.1 (needed by the
# tools and the plugins) where CPack stages their packages, a folder known only when cpack runs
# (cpack -B moves it): CudlCPackOptions.cmake.in, read by cpack, names it. They belong to no
# installed package, so the Depends on them are written below instead.
configure_file(cmake/CudlCPackOptions.cmake.in ${PROJECT_BINARY_DIR}/CudlCPackOptions.cmake @ONLY)
set(CPACK_PROJECT_CONFIG_FILE ${PROJECT_BINARY_DIR}/CudlCPackOptions.cmake)

# cudl_deb_component(<component> <package> <section> <depends> <summary> <description...>): the
# description's lines are joined as given (CPACK_PACKAGE_DESCRIPTION_SUMMARY is left unset, so
# that CPack does not put its own first line above <summary>).
function(cudl_deb_component comp package section depends summary)
  string(TOUPPER "${comp}" up)
  string(JOIN "" text ${ARGN})
  set(CPACK_DEBIAN_${up}_PACKAGE_NAME "${package}" PARENT_SCOPE)
  set(CPACK_DEBIAN_${up}_PACKAGE_SECTION "${section}" PARENT_SCOPE)
  set(CPACK_DEBIAN_${up}_PACKAGE_DEPENDS "${depends}" PARENT_SCOPE)
  set(CPACK_COMPONENT_${up}_DESCRIPTION "${summary}\n${text}" PARENT_SCOPE)
  set(CPACK_COMPONENTS_ALL ${CPACK_COMPONENTS_ALL} ${comp} PARENT_SCOPE)
  # Debian policy: /usr/share/doc/<package>/copyright. Only in the packages: EXCLUDE_FROM_ALL keeps
  # it out of a plain `cmake --install`, which installs no component by name.
  install(FILES "${PROJECT_BINARY_DIR}/debian-copyright" DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/${package}
          RENAME copyright COMPONENT ${comp} EXCLUDE_FROM_ALL)
endfunction()

# The copyright file: NOTICE, then the licence (Debian's copy of its text).
file(READ "${PROJECT_SOURCE_DIR}/NOTICE" _cudl_notice)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${PROJECT_SOURCE_DIR}/NOTICE")
string(STRIP "${_cudl_notice}" _cudl_notice)
string(REPLACE "\n" "\n " _cudl_notice " ${_cudl_notice}")
string(REPLACE "\n \n" "\n .\n" _cudl_notice "${_cudl_notice}")
file(WRITE "${PROJECT_BINARY_DIR}/debian-copyright"
"Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: cudl
Comment:
${_cudl_notice}

Files: *
Copyright: 2026 the cudl authors
License: Apache-2.0
 On Debian systems, the full text of the Apache License, Version 2.0 is in
 /usr/share/common-licenses/Apache-2.0.
")

set(CPACK_COMPONENTS_ALL)
set(_lib "libcudl${_cudl_so}")
cudl_deb_component(runtime ${_lib} libs "" "C++17/CUDA library for training neural networks"
  "cudl trains dense, convolutional and deep belief networks on the CPU, and on NVIDIA GPUs"
  "\nthrough its CUDA plugin (package libcudl-cuda${_cudl_so}), loaded at run time: this library"
  "\nneeds nothing of CUDA.")
cudl_deb_component(dev libcudl-dev libdevel "${_lib} ${_cudl_exact}" "cudl: development files"
  "Headers (a plain C++17 compiler is enough: no CUDA or Eigen types), the CMake package"
  "\n(find_package(cudl), target cudl::cudl) and the pkg-config file (cudl.pc).")
cudl_deb_component(tools cudl-tools science "${_lib} ${_cudl_exact}, python3" "cudl: benchmark and example programs"
  "bench_dbn (a deep belief network on MNIST or Debian's Fashion-MNIST), launch-bench (runs"
  "\nthe benchmarks on a rented EC2 GPU instance) and the examples' programs in /usr/libexec/cudl.")
# launch-bench drives EC2 with the aws CLI and ssh, and writes its report with python3. In a build
# with MPI, bench_dbn links libcudl_mpi (it trains data-parallel when started by mpirun).
set(CPACK_DEBIAN_TOOLS_PACKAGE_RECOMMENDS "awscli, openssh-client")
if(CUDL_HAVE_MPI AND CUDL_BUILD_BENCHMARKS)
  string(APPEND CPACK_DEBIAN_TOOLS_PACKAGE_DEPENDS ", libcudl-mpi${_cudl_so} ${_cudl_exact}")
endif()
if(CUDL_HAVE_CUDA)
  cudl_deb_component(cuda libcudl-cuda${_cudl_so} libs "${_lib} ${_cudl_exact}, ${CUDL_DEB_CUDA_DEPENDS}"
    "cudl: CUDA backend plugin"
    "libcudl_cuda.so, which libcudl loads when a GPU is asked for; it links the CUDA"
    "\n${CUDAToolkit_VERSION_MAJOR} runtime, cuBLAS and cuDNN ${CUDNN_MAJOR} (NVIDIA's packages).")
  cudl_deb_component(cuda_dev libcudl-cuda-dev libdevel
    "libcudl-dev ${_cudl_exact}, libcudl-cuda${_cudl_so} ${_cudl_exact}, ${CUDL_DEB_CUDA_DEV_DEPENDS}"
    "cudl: CUDA backend, development files"
    "The CMake targets of find_package(cudl COMPONENTS CUDA) (cudl::cuda), for code that uses"
    "\ncudl::CudaBackend itself; portable code needs only libcudl-dev.")
endif()
if(CUDL_HAVE_NCCL)
  cudl_deb_component(nccl libcudl-nccl${_cudl_so} libs
    "${_lib} ${_cudl_exact}, libcudl-cuda${_cudl_so} ${_cudl_exact}, ${CUDL_DEB_NCCL_DEPENDS}"
    "cudl: NCCL communicator plugin"
    "libcudl_nccl.so, which cudl::make_nccl_communicator loads: data-parallel training over NCCL.")
endif()
if(CUDL_HAVE_MPI)
  cudl_deb_component(mpi libcudl-mpi${_cudl_so} libs "${_lib} ${_cudl_exact}" "cudl: data-parallel training over MPI"
    "libcudl_mpi (cudl::mpi::Session, a Communicator for FitOptions).")
  cudl_deb_component(mpi_dev libcudl-mpi-dev libdevel "libcudl-dev ${_cudl_exact}, libcudl-mpi${_cudl_so} ${_cudl_exact}"
    "cudl: MPI part, development files"
    "The CMake targets of find_package(cudl COMPONENTS MPI) (cudl::mpi) and libcudl_mpi.so.")
endif()

include(CPack)

# The image decoders of ImageFolderDataset (src/data/image_decode.cpp): libspng for PNG and
# libjpeg-turbo's TurboJPEG API for JPEG, both required, both private to libcudl (no public header
# names them). Found through pkg-config's hints where it has them (spng.pc, libturbojpeg.pc), then
# by find_path/find_library, so that a prefix laid out like /usr (CMAKE_PREFIX_PATH, as
# scripts/stage-device.sh stages one) is enough. Defines the imported targets cudl_spng and
# cudl_turbojpeg.
find_package(PkgConfig QUIET)
if(PKG_CONFIG_FOUND)
  pkg_check_modules(PC_SPNG QUIET spng)
  pkg_check_modules(PC_TURBOJPEG QUIET libturbojpeg)
endif()
find_path(SPNG_INCLUDE_DIR spng.h HINTS ${PC_SPNG_INCLUDE_DIRS})
find_library(SPNG_LIBRARY NAMES spng HINTS ${PC_SPNG_LIBRARY_DIRS})
find_path(TURBOJPEG_INCLUDE_DIR turbojpeg.h HINTS ${PC_TURBOJPEG_INCLUDE_DIRS})
find_library(TURBOJPEG_LIBRARY NAMES turbojpeg HINTS ${PC_TURBOJPEG_LIBRARY_DIRS})
if(NOT SPNG_INCLUDE_DIR OR NOT SPNG_LIBRARY)
  message(FATAL_ERROR "cudl needs libspng to read PNG images (spng.h and libspng.so were not found; "
                      "Debian/Ubuntu: apt-get install libspng-dev, or run scripts/setup.sh)")
endif()
if(NOT TURBOJPEG_INCLUDE_DIR OR NOT TURBOJPEG_LIBRARY)
  message(FATAL_ERROR "cudl needs libjpeg-turbo's TurboJPEG API to read JPEG images (turbojpeg.h and "
                      "libturbojpeg.so were not found; Debian/Ubuntu: apt-get install libturbojpeg0-dev, "
                      "or run scripts/setup.sh)")
endif()
foreach(lib SPNG TURBOJPEG)
  string(TOLOWER "cudl_${lib}" target)
  add_library(${target} UNKNOWN IMPORTED)
  set_target_properties(${target} PROPERTIES IMPORTED_LOCATION "${${lib}_LIBRARY}"
                        INTERFACE_INCLUDE_DIRECTORIES "${${lib}_INCLUDE_DIR}")
endforeach()
message(STATUS "cudl: libspng ${SPNG_LIBRARY}; libturbojpeg ${TURBOJPEG_LIBRARY}")

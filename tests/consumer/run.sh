#!/usr/bin/env bash
# tests/consumer/run.sh BUILD_DIR: cudl as its users get it. Installs the (built) tree in BUILD_DIR
# into a temporary prefix with `cmake --install`, checks what was installed, builds
# tests/consumer/main.cpp against that prefix twice (a CMake project with find_package(cudl), and
# g++ with pkg-config), and runs both: each trains on the CPU (exit 0), and asked for the GPU
# either trains there or, without a usable GPU, prints the library's sentence and exits 2. The
# installed bench_dbn runs from outside the source tree and finds its data there. Run by .ci/run.
# Keeps the prefix and the builds when CUDL_CONSUMER_KEEP is set (prints where).
# tests/consumer/run.sh BUILD_DIR PREFIX: the same checks against PREFIX, a tree already installed
# from BUILD_DIR (tests/packages/run.sh: the Debian packages unpacked, PREFIX=ROOT/usr); nothing
# is installed.
set -euo pipefail
[ $# -eq 1 ] || [ $# -eq 2 ] || { echo "usage: tests/consumer/run.sh BUILD_DIR [PREFIX]" >&2; exit 2; }
build=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
expect=$root/tests/cli/expect.sh
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cudl-consumer.XXXXXX")
if [ -n "${CUDL_CONSUMER_KEEP:-}" ]; then
  echo "consumer: keeping $tmp"
else
  trap 'rm -rf "$tmp"' EXIT
fi
step() { echo "consumer: $*"; }
fail() { echo "consumer: FAILED: $*" >&2; exit 1; }

if [ $# -eq 2 ]; then
  prefix=$(cd "$2" && pwd)
  step "using $prefix, installed from $build"
  echo "(installed before run.sh: no log)" >"$tmp/install.log"
else
  prefix=$tmp/prefix
  step "installing $build into $prefix"
  cmake --install "$build" --prefix "$prefix" >"$tmp/install.log"
fi

# What a user finds there. The headers compile with a plain C++17 compiler and only the prefix on
# the include path (no CUDA, no Eigen); the CMake package does not ask for Eigen or nlohmann-json.
cache() { sed -n "s/^$1:[A-Z]*=//p" "$build/CMakeCache.txt"; }
lib=$(cache CMAKE_INSTALL_LIBDIR)  # lib, or Debian's lib/<triplet>
lib=${lib:-lib}
expected=(bin/launch-bench share/cudl/ec2/lib/common.sh include/cudl/cudl.hpp include/cudl/version.hpp "$lib/libcudl.so" "$lib/cmake/cudl/cudlConfig.cmake"
          "$lib/pkgconfig/cudl.pc" share/doc/cudl/LICENSE share/doc/cudl/NOTICE)
benchmarks=$(cache CUDL_BUILD_BENCHMARKS)
[ "$benchmarks" = OFF ] || expected+=(bin/bench_dbn)
[ "$(cache CUDL_BUILD_EXAMPLES)" = OFF ] ||
  expected+=(libexec/cudl/mnist_mlp libexec/cudl/mnist_dbn libexec/cudl/mnist_lenet libexec/cudl/train_your_data
             libexec/cudl/train_csv libexec/cudl/predict libexec/cudl/save_and_resume libexec/cudl/backends
             share/cudl/examples/data/iris.csv)
[ "$(cache CUDL_HAVE_CUDA)" != ON ] || expected+=("$lib/libcudl_cuda.so" "$lib/cmake/cudl/cudlCudaTargets.cmake")
have_mpi=$(cache CUDL_HAVE_MPI)
[ "$have_mpi" != ON ] || expected+=("$lib/libcudl_mpi.so" "$lib/cmake/cudl/cudlMpiTargets.cmake" include/cudl/mpi.hpp)
[ "$have_mpi" != ON ] || [ "$(cache CUDL_BUILD_EXAMPLES)" = OFF ] || expected+=(libexec/cudl/data_parallel)
[ "$(cache CUDL_HAVE_NCCL)" != ON ] || expected+=("$lib/libcudl_nccl.so")
for f in "${expected[@]}"; do
  [ -e "$prefix/$f" ] || fail "$f was not installed (see $tmp/install.log)"
done
if grep -El 'Eigen3|nlohmann_json' "$prefix/$lib"/cmake/cudl/*.cmake; then
  fail "the installed CMake package names Eigen or nlohmann-json (above); consumers must not need them"
fi
step "every installed header, included together with only -I$prefix/include"
for h in "$prefix"/include/cudl/*.hpp; do echo "#include <cudl/$(basename "$h")>"; done >"$tmp/all_headers.cpp"
"${CXX:-g++}" -std=c++17 -fsyntax-only -Wall -Wextra -Werror -I"$prefix/include" "$tmp/all_headers.cpp"
have_cuda=$(sed -n 's/^#define CUDL_HAVE_CUDA \([01]\)$/\1/p' "$prefix/include/cudl/version.hpp")
[ -n "$have_cuda" ] || fail "no CUDL_HAVE_CUDA 0/1 in the installed cudl/version.hpp"

# The two builds. The CMake one is configured with Eigen3 and nlohmann_json made unfindable, so
# a package that still asked for them would fail here.
step "CMake consumer (find_package(cudl), CUDA backend $have_cuda)"
cmake -S "$here/cmake" -B "$tmp/cmake" -G "${CUDL_CONSUMER_GENERATOR:-Unix Makefiles}" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_DISABLE_FIND_PACKAGE_Eigen3=ON \
  -DCMAKE_DISABLE_FIND_PACKAGE_nlohmann_json=ON >"$tmp/cmake.log" 2>&1 ||
  { cat "$tmp/cmake.log"; fail "configuring the CMake consumer"; }
cmake --build "$tmp/cmake" >>"$tmp/cmake.log" 2>&1 || { cat "$tmp/cmake.log"; fail "building the CMake consumer"; }
step "pkg-config consumer: $(PKG_CONFIG_PATH=$prefix/$lib/pkgconfig pkg-config --cflags --libs cudl)"
mkdir -p "$tmp/pkgconfig"
PKG_CONFIG_PATH=$prefix/$lib/pkgconfig make -s -C "$here/pkgconfig" OUT="$tmp/pkgconfig" >"$tmp/pkgconfig.log" 2>&1 ||
  { cat "$tmp/pkgconfig.log"; fail "building the pkg-config consumer"; }

# Each trains on the CPU, and asked for the GPU trains there or refuses in one sentence (exit 2).
gpu_usable=0
nvidia-smi -L >/dev/null 2>&1 && gpu_usable=1
for exe in "$tmp/cmake/consumer" "$tmp/pkgconfig/consumer"; do
  step "$exe"
  "$expect" 0 "^trained on .*accuracy (9[0-9]|100)\.[0-9]%" "$exe"
  if [ "$gpu_usable" = 1 ] && [ "$have_cuda" = 1 ]; then
    "$expect" 0 "^trained on .*accuracy (9[0-9]|100)\.[0-9]%" "$exe" --device gpu
  else
    "$expect" 2 "^consumer: cannot use the GPU: [A-Za-z].*" "$exe" --device gpu
  fi
done

# Neither binary asks the loader for any CUDA library; the CMake one runs again with every CUDA
# library on this machine out of reach (tests/consumer/without_cuda.sh: a private mount namespace),
# trains on the CPU, and asked for the GPU gives cudl's sentence about its plugin.
cuda_libs='lib(cuda|cudart|cublas|cudnn|nccl)[^ ]*'
for exe in "$tmp/cmake/consumer" "$tmp/pkgconfig/consumer"; do
  if readelf -d "$exe" "$prefix/$lib/libcudl.so" | grep -E "NEEDED.*$cuda_libs"; then
    fail "$exe or libcudl.so needs a CUDA library at load time (above)"
  fi
done
hide=("$here/without_cuda.sh")
[ "$have_cuda" = 0 ] || hide+=(--runpath-of "$prefix/$lib/libcudl_cuda.so")
set +e
"${hide[@]}" true 2>/dev/null
hidden=$?
set -e
if [ "$hidden" = 77 ]; then
  step "CUDA toolkit not hidden: a private mount namespace is not permitted here (unshare -m)"
elif [ "$hidden" != 0 ]; then
  fail "tests/consumer/without_cuda.sh could not hide the CUDA libraries"
else
  step "the CMake consumer with every CUDA library hidden"
  "${hide[@]}" "$expect" 0 "^trained on .*accuracy (9[0-9]|100)\.[0-9]%" "$tmp/cmake/consumer"
  if [ "$have_cuda" = 1 ]; then
    "${hide[@]}" "$expect" 2 "^consumer: cannot use the GPU: cudl's CUDA plugin .*/libcudl_cuda.so cannot be loaded because lib(cudart|cublas|cudnn)[^ ]* is not installed or not on the library path" \
      "$tmp/cmake/consumer" --device gpu
  else
    "${hide[@]}" "$expect" 2 "^consumer: cannot use the GPU: this build of cudl has no CUDA backend" "$tmp/cmake/consumer" --device gpu
  fi
fi

# Data-parallel training through the installed MPI component: 2 ranks, 256 rows, 8 per rank per
# step, so 16 steps per epoch.
if [ "$have_mpi" = ON ]; then
  step "MPI consumer (find_package(cudl COMPONENTS MPI)) under mpirun -np 2"
  cmake -S "$here/mpi" -B "$tmp/mpi" -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" >"$tmp/mpi.log" 2>&1 &&
    cmake --build "$tmp/mpi" >>"$tmp/mpi.log" 2>&1 || { cat "$tmp/mpi.log"; fail "building the MPI consumer"; }
  OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 \
    "$expect" 0 "^ranks 2: 16 steps per epoch, last loss [0-9.]+, error 0\.0" mpirun -np 2 "$tmp/mpi/mpi_consumer"
fi

# The installed programs run from an empty folder, with the source folder masked by an empty one
# where this machine allows a private mount namespace (unshare -m: root or CAP_SYS_ADMIN), so that
# nothing can be found there.
mkdir -p "$tmp/run" "$tmp/data" "$tmp/empty"
cp "$expect" "$tmp/expect.sh"
if unshare -m true 2>/dev/null; then
  where="from outside the source tree, $root masked"
else
  where="from outside the source tree (unshare -m not permitted: $root left in place)"
fi
outside_source() {
  if unshare -m true 2>/dev/null; then
    # shellcheck disable=SC2016  # $1.. are the inner shell's arguments
    unshare -m bash -c 'mount --bind "$1" "$2" && [ ! -e "$2/CMakeLists.txt" ] && cd "$3" && shift 3 && exec "$@"' \
      _ "$tmp/empty" "$root" "$tmp/run" "$@"
  else
    (cd "$tmp/run" && "$@")
  fi
}

# The installed launch-bench (a link into share/cudl/ec2/): its help, and a dry run that plans to
# send the source archived at build time, as many files as git tracks at HEAD.
step "installed launch-bench, $where"
[ -L "$prefix/bin/launch-bench" ] || fail "bin/launch-bench was not installed as a link"
outside_source "$tmp/expect.sh" 0 "^Usage: launch-bench \\[run\\]" "$prefix/bin/launch-bench" --help
if git -C "$root" rev-parse -q --verify HEAD >/dev/null 2>&1; then
  files=$(git -C "$root" ls-tree -r HEAD | grep -c ' blob ')
  outside_source env -u CUDL_EC2_SOURCE_DIR "$tmp/expect.sh" 0 \
    "source +$files files, .*the source this launch-bench was installed from" \
    "$prefix/bin/launch-bench" run --dry-run --region us-east-1
fi

# The installed bench_dbn with the data copied out of the source tree ($CUDL_DATA): one short
# epoch of the shipped MNIST test digits.
if [ "$benchmarks" = OFF ]; then
  step "passed (bench_dbn not built: CUDL_BUILD_BENCHMARKS=OFF)"
  exit 0
fi
cp "$root"/tests/data/mnist/*.gz "$tmp/data/"
step "installed bench_dbn, $where"
outside_source env CUDL_DATA="$tmp/data" "$tmp/expect.sh" 0 "test accuracy 0\.[89]" "$prefix/bin/bench_dbn" --epochs 1 --threads 2
step "passed"

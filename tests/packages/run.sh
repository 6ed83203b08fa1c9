#!/usr/bin/env bash
# tests/packages/run.sh BUILD_DIR: cudl's Debian packages (cmake/CudlPackage.cmake), from a built
# tree. Writes them with CPack (BUILD_DIR/packages/*.deb) and checks them with dpkg-deb alone (no
# root, nothing registered with the system's dpkg):
#   - the packages this build should give, each with its Debian copyright file;
#   - the CPU packages (libcudl0.1, libcudl-dev, cudl-tools; libcudl-mpi0.1, libcudl-mpi-dev) name
#     nothing of CUDA in their Depends and hold no CUDA file; libcudl0.1's Depends come from dpkg-shlibdeps (libc6, zlib1g);
#     cudl's packages depend on each other at exactly this version;
#   - every file of `cmake --install` is in exactly one package;
# then unpacks them all into a scratch root (dpkg-deb -x) and runs tests/consumer/run.sh against
# ROOT/usr, and unpacks only the CPU packages into another root, where the pkg-config consumer
# builds, trains on the CPU and, asked for the GPU, refuses in one sentence. Run by .ci/run.
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: tests/packages/run.sh BUILD_DIR" >&2; exit 2; }
build=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cudl-packages.XXXXXX")
if [ -n "${CUDL_PACKAGES_KEEP:-}" ]; then
  echo "packages: keeping $tmp"
else
  trap 'rm -rf "$tmp"' EXIT
fi
step() { echo "packages: $*"; }
fail() { echo "packages: FAILED: $*" >&2; exit 1; }
cache() { sed -n "s/^$1:[A-Z]*=//p" "$build/CMakeCache.txt"; }
lib=$(cache CMAKE_INSTALL_LIBDIR)
lib=${lib:-lib}
so="$(cache CMAKE_PROJECT_VERSION_MAJOR).$(cache CMAKE_PROJECT_VERSION_MINOR)"

step "cpack -G DEB in $build"
rm -rf "$build/packages"
(cd "$build" && cpack -G DEB) >"$tmp/cpack.log" 2>&1 || { cat "$tmp/cpack.log"; fail "cpack"; }

# The CPU packages (MPI's too: bench_dbn links libcudl_mpi in a build with MPI), then the GPU ones.
cpu=("libcudl$so" libcudl-dev cudl-tools)
[ "$(cache CUDL_HAVE_MPI)" != ON ] || cpu+=("libcudl-mpi$so" libcudl-mpi-dev)
packages=("${cpu[@]}")
[ "$(cache CUDL_HAVE_CUDA)" != ON ] || packages+=("libcudl-cuda$so" libcudl-cuda-dev)
[ "$(cache CUDL_HAVE_NCCL)" != ON ] || packages+=("libcudl-nccl$so")
built=$(for d in "$build"/packages/*.deb; do basename "$d"; done | sed 's/_.*//' | sort | tr '\n' ' ')
wanted=$(printf '%s\n' "${packages[@]}" | sort | tr '\n' ' ')
[ "$built" = "$wanted" ] || fail "cpack wrote packages for: $built; expected: $wanted"

deb() { echo "$build"/packages/"$1"_*.deb; }
version=$(dpkg-deb -f "$(deb "libcudl$so")" Version)
mkdir -p "$tmp/each" "$tmp/root" "$tmp/cpu"
for p in "${packages[@]}"; do
  d=$(deb "$p")
  step "$(basename "$d"): $(dpkg-deb -f "$d" Installed-Size) KiB; Depends: $(dpkg-deb -f "$d" Depends)"
  dpkg-deb -x "$d" "$tmp/each/$p"
  dpkg-deb -x "$d" "$tmp/root"
  (cd "$tmp/each/$p" && find . ! -type d | sed 's|^\./||' | sort) >"$tmp/each/$p.files"
  [ -f "$tmp/each/$p/usr/share/doc/$p/copyright" ] || fail "$p has no usr/share/doc/$p/copyright"
  if [ "$p" != "libcudl$so" ] && ! dpkg-deb -f "$d" Depends | grep -Eq "^(libcudl-dev|libcudl$so) \(= $version\)"; then
    fail "$p does not depend first on libcudl$so or libcudl-dev (= $version)"
  fi
done

# What each package must hold (the rest is compared with `cmake --install` below).
has() {  # has PACKAGE FILE...
  local p=$1 f
  shift
  for f in "$@"; do grep -qxF "$f" "$tmp/each/$p.files" || fail "$p lacks $f"; done
}
has "libcudl$so" "usr/$lib/libcudl.so.$so" usr/share/doc/cudl/LICENSE
has libcudl-dev "usr/$lib/libcudl.so" usr/include/cudl/cudl.hpp usr/include/cudl/version.hpp \
  "usr/$lib/cmake/cudl/cudlConfig.cmake" "usr/$lib/pkgconfig/cudl.pc"
has cudl-tools usr/bin/launch-bench usr/share/cudl/ec2/launch-bench
[ "$(cache CUDL_BUILD_BENCHMARKS)" = OFF ] || has cudl-tools usr/bin/bench_dbn
if [ "$(cache CUDL_HAVE_CUDA)" = ON ]; then
  has "libcudl-cuda$so" "usr/$lib/libcudl_cuda.so" "usr/$lib/libcudl_cuda.so.$so"
  has libcudl-cuda-dev "usr/$lib/cmake/cudl/cudlCudaTargets.cmake"
fi
[ "$(cache CUDL_HAVE_NCCL)" != ON ] || has "libcudl-nccl$so" "usr/$lib/libcudl_nccl.so"
if [ "$(cache CUDL_HAVE_MPI)" = ON ]; then
  has "libcudl-mpi$so" "usr/$lib/libcudl_mpi.so.$so"
  has libcudl-mpi-dev "usr/$lib/libcudl_mpi.so" "usr/$lib/cmake/cudl/cudlMpiTargets.cmake"
fi

# A CPU-only machine installs the CPU packages with no CUDA package: nothing of CUDA in their
# Depends, no CUDA file in them; their Depends on Debian's libraries come from dpkg-shlibdeps.
cuda_words='cuda|cudnn|cublas|nccl|nvidia'
for p in "${cpu[@]}"; do
  if dpkg-deb -f "$(deb "$p")" Depends Recommends | grep -Ei "$cuda_words"; then
    fail "$p names a CUDA package (above): a CPU-only machine could not install it"
  fi
  if grep -Ei "libcudl_(cuda|nccl)|cudlCudaTargets" "$tmp/each/$p.files"; then
    fail "$p holds a file of the CUDA plugin (above)"
  fi
done
for dep in libc6 zlib1g; do
  dpkg-deb -f "$(deb "libcudl$so")" Depends | grep -q "\\b$dep\\b" ||
    fail "libcudl$so does not depend on $dep: did dpkg-shlibdeps (package dpkg-dev) run?"
done

# Every file that `cmake --install` puts under /usr is in exactly one package.
step "comparing the packages with cmake --install"
DESTDIR="$tmp/plain" cmake --install "$build" --prefix /usr >"$tmp/install.log"
(cd "$tmp/plain" && find . ! -type d | sed 's|^\./||' | sort) >"$tmp/plain.files"
cat "$tmp/each"/*.files | grep -v '^usr/share/doc/[^/]*/copyright$' | sort >"$tmp/packaged.files"
dups=$(uniq -d "$tmp/packaged.files")
[ -z "$dups" ] || fail "in more than one package: $dups"
diff "$tmp/plain.files" "$tmp/packaged.files" >"$tmp/diff" ||
  { cat "$tmp/diff"; fail "the packages differ from cmake --install (<: installed only, >: packaged only)"; }

# All of them unpacked: the consumer projects, the installed bench_dbn and launch-bench.
step "tests/consumer/run.sh against the unpacked packages, $tmp/root/usr"
"$root/tests/consumer/run.sh" "$build" "$tmp/root/usr"

# Only the CPU packages: the pkg-config consumer builds and trains, the installed bench_dbn starts;
# asked for the GPU, both refuse in one sentence.
step "the CPU packages alone (${cpu[*]}): the pkg-config consumer"
for p in "${cpu[@]}"; do dpkg-deb -x "$(deb "$p")" "$tmp/cpu"; done
mkdir -p "$tmp/cpu-consumer"
PKG_CONFIG_PATH=$tmp/cpu/usr/$lib/pkgconfig make -s -C "$root/tests/consumer/pkgconfig" OUT="$tmp/cpu-consumer" \
  >"$tmp/cpu-consumer.log" 2>&1 || { cat "$tmp/cpu-consumer.log"; fail "building the pkg-config consumer"; }
expect=$root/tests/cli/expect.sh
"$expect" 0 "^trained on .*accuracy (9[0-9]|100)\.[0-9]%" "$tmp/cpu-consumer/consumer"
"$expect" 2 "^consumer: cannot use the GPU: (cudl's CUDA plugin is not installed|this build of cudl has no CUDA backend)" \
  "$tmp/cpu-consumer/consumer" --device gpu
[ "$(cache CUDL_BUILD_BENCHMARKS)" = OFF ] ||
  "$expect" 2 "cannot use the GPU: (cudl's CUDA plugin is not installed|this build of cudl has no CUDA backend)" \
    "$tmp/cpu/usr/bin/bench_dbn" --device gpu --epochs 1

# In a build with CUDA: find_package(cudl COMPONENTS CUDA) needs libcudl-cuda-dev, and says so where
# only libcudl-dev is installed; with all the packages it finds cudl::cuda.
if [ "$(cache CUDL_HAVE_CUDA)" = ON ]; then
  step "find_package(cudl COMPONENTS CUDA): with the CPU packages alone, then with all"
  mkdir -p "$tmp/find-cuda"
  printf '%s\n' 'cmake_minimum_required(VERSION 3.22)' 'project(find_cuda LANGUAGES CXX)' \
    'find_package(cudl REQUIRED COMPONENTS CUDA)' 'if(NOT TARGET cudl::cuda)' '  message(FATAL_ERROR "no cudl::cuda")' \
    'endif()' >"$tmp/find-cuda/CMakeLists.txt"
  if cmake -S "$tmp/find-cuda" -B "$tmp/find-cuda/cpu" -DCMAKE_PREFIX_PATH="$tmp/cpu/usr" >"$tmp/find-cuda.log" 2>&1 ||
     ! grep -q "install libcudl-cuda-dev" "$tmp/find-cuda.log"; then
    cat "$tmp/find-cuda.log"
    fail "find_package(cudl COMPONENTS CUDA) without libcudl-cuda-dev did not fail naming it"
  fi
  cmake -S "$tmp/find-cuda" -B "$tmp/find-cuda/all" -DCMAKE_PREFIX_PATH="$tmp/root/usr" >"$tmp/find-cuda.log" 2>&1 ||
    { cat "$tmp/find-cuda.log"; fail "find_package(cudl COMPONENTS CUDA) with every package"; }
fi
step "passed"

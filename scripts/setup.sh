#!/usr/bin/env bash
# Installs what building and running cudl needs on Debian/Ubuntu (only what is missing), then
# configures and builds it in build/ (or $CUDL_BUILD_DIR). CUDA code is compiled too when nvcc
# is found (architecture $CUDL_CUDA_ARCH, default 90 = H100/H200; 75 for a T4).
# Usage: scripts/setup.sh [extra cmake arguments]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${CUDL_BUILD_DIR:-$root/build}

packages=(build-essential cmake pkg-config libeigen3-dev zlib1g-dev libgtest-dev libgmock-dev libbenchmark-dev nlohmann-json3-dev libcli11-dev
          libcsv-dev  # CsvDataset's tokenizer
          libdeflate-dev  # IdxDataset's gzip inflater
          libspng-dev libturbojpeg0-dev  # ImageFolderDataset's PNG and JPEG decoders
          libopenmpi-dev openmpi-bin)  # MPI: data-parallel training (libcudl_mpi) and its tests
optional=(dataset-fashion-mnist)  # the default dataset where MNIST is absent; not in every release
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
missing=()
for p in "${packages[@]}" "${optional[@]}"; do installed "$p" || missing+=("$p"); done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
  # env after sudo: sudo does not pass DEBIAN_FRONTEND through by default.
  apt=("${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get)
  "${apt[@]}" update -qq
  wanted=()
  for p in "${missing[@]}"; do
    if [[ " ${optional[*]} " == *" $p "* ]] && ! apt-cache show "$p" >/dev/null 2>&1; then
      echo "setup: $p is not available from this system's package sources; skipping it" >&2
    else
      wanted+=("$p")
    fi
  done
  ((${#wanted[@]})) && "${apt[@]}" install -y -qq --no-install-recommends "${wanted[@]}" >/dev/null
fi

cuda_args=()
if command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ]; then
  cuda_args=(-DCMAKE_CUDA_ARCHITECTURES="${CUDL_CUDA_ARCH:-90}")
fi
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release "${cuda_args[@]}" "$@" >/dev/null
cmake --build "$build" -j"$(nproc)"

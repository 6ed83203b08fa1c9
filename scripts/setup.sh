#!/usr/bin/env bash
# Installs what building and running cudl needs on Debian/Ubuntu (only what is missing), then
# configures and builds it in build/ (or $CUDL_BUILD_DIR). CUDA code is compiled too when nvcc
# is found (architecture $CUDL_CUDA_ARCH, default 90 = H100/H200; 75 for a T4).
# Usage: scripts/setup.sh [extra cmake arguments]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${CUDL_BUILD_DIR:-$root/build}

packages=(build-essential cmake pkg-config libeigen3-dev zlib1g-dev libgtest-dev libgmock-dev libbenchmark-dev
          dataset-fashion-mnist)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

cuda_args=()
if command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ]; then
  cuda_args=(-DCMAKE_CUDA_ARCHITECTURES="${CUDL_CUDA_ARCH:-90}")
fi
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release "${cuda_args[@]}" "$@" >/dev/null
cmake --build "$build" -j"$(nproc)"

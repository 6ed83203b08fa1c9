#!/usr/bin/env bash
# Stage what the GPU machine needs but cannot download (it has no network) into .device/: the
# shared stager's Eigen, GoogleTest, Google Benchmark, zlib and datasets, plus what cudl needs
# beyond those: nlohmann-json (checkpoints' metadata; header-only, with its CMake config, laid out
# like /usr so that find_package finds it under -DCMAKE_PREFIX_PATH=$PWD/.device/prefix).
# Usage: scripts/stage-device.sh   then name .device in the device tool's `carry`.
set -euo pipefail
root=$(git rev-parse --show-toplevel)
"$root/../shared/tools/stage-device.sh"
dpkg -s nlohmann-json3-dev >/dev/null 2>&1 ||
  { apt-get update -qq && apt-get install -y -qq nlohmann-json3-dev >/dev/null; }
prefix="$root/.device/prefix"
cp -r /usr/include/nlohmann "$prefix/include/"
mkdir -p "$prefix/share/cmake"
cp -r /usr/share/cmake/nlohmann_json "$prefix/share/cmake/"
du -sh "$root/.device"

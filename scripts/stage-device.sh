#!/usr/bin/env bash
# Stage what the GPU machine needs but cannot download (it has no network) into .device/: the
# shared stager's Eigen, GoogleTest, Google Benchmark, zlib and datasets, plus what cudl needs
# beyond those: nlohmann-json (checkpoints' metadata) and CLI11 (the programs' command lines), both
# header-only, with their CMake configs; libcsv (CsvDataset's tokenizer: csv.h and the static,
# position-independent libcsv.a, so that nothing is needed at run time); libdeflate (IdxDataset's
# inflater: libdeflate.h and the static, position-independent libdeflate.a); and libspng and
# libturbojpeg (ImageFolderDataset's decoders: headers and shared libraries), laid out like /usr so
# that find_package and find_library find them under -DCMAKE_PREFIX_PATH=$PWD/.device/prefix.
# Usage: scripts/stage-device.sh   then name .device in the device tool's `carry`.
set -euo pipefail
root=$(git rev-parse --show-toplevel)
"$root/../shared/tools/stage-device.sh"
missing=()
for p in nlohmann-json3-dev libcli11-dev libcsv-dev libdeflate-dev libspng-dev libturbojpeg0-dev; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
fi
prefix="$root/.device/prefix"
cp -r /usr/include/nlohmann /usr/include/CLI "$prefix/include/"
mkdir -p "$prefix/share/cmake"
cp -r /usr/share/cmake/nlohmann_json /usr/share/cmake/CLI11 "$prefix/share/cmake/"
lib=lib/x86_64-linux-gnu
cp /usr/include/csv.h /usr/include/libdeflate.h /usr/include/spng.h /usr/include/turbojpeg.h "$prefix/include/"
mkdir -p "$prefix/$lib"
cp /usr/$lib/libcsv.a /usr/$lib/libdeflate.a "$prefix/$lib/"
cp -a /usr/$lib/libspng.so* /usr/$lib/libturbojpeg.so* "$prefix/$lib/"
du -sh "$root/.device"

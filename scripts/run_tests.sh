#!/usr/bin/env bash
# Set up, build and run the whole test suite (GPU tests skip where no GPU is present).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
ctest --test-dir "${CUDL_BUILD_DIR:-$root/build}" --output-on-failure -j"$(nproc)" "$@"

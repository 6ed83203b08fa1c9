#!/usr/bin/env bash
# The main job: set up, build, and run bench_dbn on the default dataset (MNIST if
# scripts/fetch_mnist.sh has filled data/mnist, else Debian's Fashion-MNIST). Arguments are
# passed to bench_dbn, e.g. scripts/run_bench.sh --epochs 3 --json results.json
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
exec "${CUDL_BUILD_DIR:-$root/build}/benchmarks/bench_dbn" "$@"

#!/usr/bin/env bash
# Fuzzes the safetensors reader (SafetensorsFile::parse) with libFuzzer for N seconds (default 60):
# builds tests/fuzz/fuzz_safetensors.cpp with the reader's sources under clang++ with ASan and
# UBSan, then runs it from the committed seed corpus (tests/fuzz/corpus/safetensors/, written by
# make_seeds.cpp when that folder is empty). New inputs go to $CUDL_FUZZ_DIR/corpus, not the repo.
# A finding (crash, sanitizer report, uncaught non-cudl exception, leak, timeout) exits non-zero
# and leaves the input as $CUDL_FUZZ_DIR/crash-* (or leak-*, timeout-*).
# Usage: tests/fuzz/run_fuzz.sh [seconds]      Needs clang++ with libFuzzer and zlib.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
seconds=${1:-60}
out=${CUDL_FUZZ_DIR:-$root/build-fuzz}
seeds=$root/tests/fuzz/corpus/safetensors
cxx=${CUDL_FUZZ_CXX:-clang++}
mkdir -p "$out/corpus"

# Only the reader and what it needs (cudl::Error), not the whole library.
flags=(-std=c++17 -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=all
       -I"$root/include" -I"$root/src")
sources=("$root/src/io/safetensors.cpp" "$root/src/error.cpp")
echo "run_fuzz: building $out/fuzz_safetensors"
"$cxx" "${flags[@]}" -fsanitize=fuzzer "$root/tests/fuzz/fuzz_safetensors.cpp" "${sources[@]}" -lz \
  -o "$out/fuzz_safetensors"
if [ ! -d "$seeds" ] || [ -z "$(ls -A "$seeds")" ]; then
  echo "run_fuzz: writing the seed corpus into $seeds"
  "$cxx" "${flags[@]}" "$root/tests/fuzz/make_seeds.cpp" "${sources[@]}" -lz -o "$out/make_seeds"
  mkdir -p "$seeds"
  "$out/make_seeds" "$seeds"
fi

echo "run_fuzz: fuzzing for $seconds s"
# -timeout: one input may take 10 s at most (a quadratic path is a finding too).
"$out/fuzz_safetensors" -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
  -dict="$root/tests/fuzz/safetensors.dict" -artifact_prefix="$out/" "$out/corpus" "$seeds" \
  >"$out/fuzz.log" 2>&1 || { tail -n 60 "$out/fuzz.log"; echo "run_fuzz: FINDING (see above and $out)" >&2; exit 1; }
grep -E '^(Done [0-9]+ runs|stat::number_of_executed_units|stat::peak_rss_mb)' "$out/fuzz.log"
echo "run_fuzz: no finding"

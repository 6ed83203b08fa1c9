#!/usr/bin/env bash
# Fuzzes a cudl loader with libFuzzer for N seconds (default 60), under clang++ with ASan and UBSan.
# Six harnesses (idx: the IDX reader and the dataset loader, tests/fuzz/fuzz_idx.cpp; npy: the
# .npy header parser, the .npz archive reader and NpyDataset, tests/fuzz/fuzz_npy.cpp; csv:
# CsvDataset with options drawn from the input's first bytes, tests/fuzz/fuzz_csv.cpp, linked
# against Debian's libcsv; image: ImageFolderDataset's PNG and JPEG decoding,
# tests/fuzz/fuzz_image.cpp; all four built from src/data's sources alone):
#   safetensors  the format layer alone (SafetensorsFile::parse): tests/fuzz/fuzz_safetensors.cpp,
#                built from the reader's sources only;
#   checkpoint   the whole loader (inspect_checkpoint, load_model, load_weights, load_checkpoint on
#                a file of the input's bytes): tests/fuzz/fuzz_checkpoint.cpp, linked against the
#                library's CPU sources, which are compiled once into $CUDL_FUZZ_DIR/obj (in
#                parallel, $CUDL_FUZZ_JOBS at a time, default 2) and recompiled only when a source
#                or a header it includes is newer than its object, or the flags changed.
# Each runs from its committed seed corpus (tests/fuzz/corpus/HARNESS/, written by make_seeds.cpp
# or make_checkpoint_seeds.cpp when that folder is empty), with its dictionary
# (tests/fuzz/HARNESS.dict). New inputs go to $CUDL_FUZZ_DIR/HARNESS/corpus, not the repo. A
# finding (crash, sanitizer report, uncaught non-cudl exception, leak, timeout, out-of-memory)
# exits non-zero and leaves the input as $CUDL_FUZZ_DIR/HARNESS/crash-* (or leak-*, timeout-*,
# oom-*, slow-unit-*).
# Usage: tests/fuzz/run_fuzz.sh [HARNESS] [SECONDS] [LIBFUZZER FLAGS...]
#        CUDL_FUZZ_COVERAGE=1 tests/fuzz/run_fuzz.sh HARNESS   (line and branch coverage of its corpus)
#        tests/fuzz/run_fuzz.sh SECONDS          (the safetensors harness, as before)
#        CUDL_FUZZ_BUILD_ONLY=1 tests/fuzz/run_fuzz.sh checkpoint    (build, do not fuzz)
# Needs clang++ with libFuzzer, zlib, libdeflate (libdeflate-dev), libcsv (libcsv-dev), libspng and
# libturbojpeg (libspng-dev, libturbojpeg0-dev), and for the checkpoint harness Eigen (/usr/include/eigen3)
# and nlohmann-json.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
harness=safetensors
if [ $# -gt 0 ] && [[ ! $1 =~ ^[0-9]+$ ]]; then
  harness=$1
  shift
fi
case "$harness" in
  safetensors | checkpoint | idx | npy | csv | image) ;;
  *) echo "run_fuzz: unknown harness '$harness' (safetensors, checkpoint, idx, npy, csv, image)" >&2; exit 2 ;;
esac
seconds=${1:-60}
[ $# -gt 0 ] && shift
out=${CUDL_FUZZ_DIR:-$root/build-fuzz}
# Coverage mode (CUDL_FUZZ_COVERAGE=1): build the harness with clang's source-based coverage into
# $out/coverage, run every input of the fuzzing runs' corpus ($out/HARNESS/corpus) and the seeds
# once, and print llvm-cov's report for the code the harness is about. No fuzzing.
coverage=${CUDL_FUZZ_COVERAGE:-}
fuzz_corpus=$out/$harness/corpus
[ -z "$coverage" ] || out=$out/coverage
work=$out/$harness
seeds=$root/tests/fuzz/corpus/$harness
cxx=${CUDL_FUZZ_CXX:-clang++}
jobs=${CUDL_FUZZ_JOBS:-2}
mkdir -p "$work/corpus"

# Line tables are all a report needs (full -g made the checkpoint build 100 s instead of 82).
flags=(-std=c++17 -gline-tables-only -O1 -fsanitize=address,undefined -fno-sanitize-recover=all
       -I"$root/include" -I"$root/src")
[ -z "$coverage" ] || flags+=(-fprofile-instr-generate -fcoverage-mapping)

# compile SOURCE OBJECT FLAGS...: one object, with its header dependencies in OBJECT.d.
compile() {
  local src=$1 obj=$2
  shift 2
  mkdir -p "$(dirname "$obj")"
  "$cxx" "$@" -MMD -MP -MF "$obj.d" -c "$src" -o "$obj"
}

# stale OBJECT: whether OBJECT is missing or older than its source or any header it included.
stale() {
  local obj=$1 dep
  [ -f "$obj" ] && [ -f "$obj.d" ] || return 0
  # The .d file: "obj: src hdr1 hdr2 \" lines, then "hdr:" lines (-MP); every path once.
  while read -r dep; do
    [ -n "$dep" ] || continue
    [ -e "$dep" ] || return 0
    [ "$dep" -nt "$obj" ] && return 0
  done < <(sed -e 's/^[^:]*:[[:space:]]*//' -e 's/[[:space:]]*\\$//' "$obj.d" | tr ' ' '\n' | sort -u)
  return 1
}

# build_objects OBJDIR SRCROOT FLAGS -- SOURCES...: compiles the stale ones, $jobs at a time;
# prints nothing, sets the array `objects`.
build_objects() {
  local objdir=$1 srcroot=$2
  shift 2
  local -a cflags=()
  while [ "$1" != -- ]; do
    cflags+=("$1")
    shift
  done
  shift
  # A change of compiler or flags makes every object stale.
  local stamp="$objdir/flags.txt"
  mkdir -p "$objdir"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$("$cxx" --version | head -n 1) ${cflags[*]}" ]; then
    find "$objdir" -name '*.o' -delete
    printf '%s' "$("$cxx" --version | head -n 1) ${cflags[*]}" >"$stamp"
  fi
  objects=()
  local -a todo=()
  local src rel obj
  for src in "$@"; do
    rel=${src#"$srcroot"/}
    obj=$objdir/${rel%.cpp}.o
    objects+=("$obj")
    if stale "$obj"; then todo+=("$src" "$obj"); fi
  done
  local running=0 failed=0 i
  for ((i = 0; i < ${#todo[@]}; i += 2)); do
    echo "run_fuzz: compiling ${todo[i]#"$root"/}"
    compile "${todo[i]}" "${todo[i + 1]}" "${cflags[@]}" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
      wait -n || failed=1
      running=$((running - 1))
    fi
  done
  while [ "$running" -gt 0 ]; do
    wait -n || failed=1
    running=$((running - 1))
  done
  if [ "$failed" -ne 0 ]; then
    # Drop whatever a failed compile left, so that the next run retries it.
    for ((i = 1; i < ${#todo[@]}; i += 2)); do rm -f "${todo[i]}"; done
    echo "run_fuzz: compilation failed" >&2
    return 1
  fi
}

if [ "$harness" = idx ]; then
  # The IDX reader and the dataset loader (tests/fuzz/fuzz_idx.cpp) with what they need; the
  # seeds are committed (tests/fuzz/corpus/idx/, see the harness for the input layout).
  sources=("$root/src/data/idx.cpp" "$root/src/data/idx_dataset.cpp" "$root/src/data/dataset.cpp" "$root/src/shape.cpp"
           "$root/src/error.cpp")
  echo "run_fuzz: building $work/fuzz_idx"
  "$cxx" "${flags[@]}" -fsanitize=fuzzer "$root/tests/fuzz/fuzz_idx.cpp" "${sources[@]}" -ldeflate -lz -o "$work/fuzz_idx"
elif [ "$harness" = npy ]; then
  # The .npy and .npz readers (tests/fuzz/fuzz_npy.cpp); its seeds are the NumPy-written files of
  # tests/data/npy, committed in tests/fuzz/corpus/npy/.
  sources=("$root/src/data/npy.cpp" "$root/src/data/npz.cpp" "$root/src/data/dataset.cpp" "$root/src/data/idx.cpp" "$root/src/shape.cpp"
           "$root/src/error.cpp")
  echo "run_fuzz: building $work/fuzz_npy"
  "$cxx" "${flags[@]}" -fsanitize=fuzzer "$root/tests/fuzz/fuzz_npy.cpp" "${sources[@]}" -ldeflate -lz -o "$work/fuzz_npy"
elif [ "$harness" = csv ]; then
  # The CSV reader (tests/fuzz/fuzz_csv.cpp: three option bytes, then the text); its seeds are
  # small files of tests/data/csv behind option bytes, committed in tests/fuzz/corpus/csv/.
  # libcsv itself is Debian's build, not instrumented: the fuzzer is guided by our side of it.
  sources=("$root/src/data/csv.cpp" "$root/src/data/dataset.cpp" "$root/src/data/idx.cpp" "$root/src/shape.cpp"
           "$root/src/error.cpp")
  echo "run_fuzz: building $work/fuzz_csv"
  "$cxx" "${flags[@]}" -fsanitize=fuzzer "$root/tests/fuzz/fuzz_csv.cpp" "${sources[@]}" -lcsv -ldeflate -lz -o "$work/fuzz_csv"
elif [ "$harness" = image ]; then
  # ImageFolderDataset over one image (tests/fuzz/fuzz_image.cpp); its seeds are images of
  # tests/data/images, committed in tests/fuzz/corpus/image/.
  sources=("$root/src/data/image_folder.cpp" "$root/src/data/image_decode.cpp" "$root/src/data/dataset.cpp"
           "$root/src/data/idx.cpp" "$root/src/shape.cpp" "$root/src/error.cpp")
  echo "run_fuzz: building $work/fuzz_image"
  "$cxx" "${flags[@]}" -fsanitize=fuzzer "$root/tests/fuzz/fuzz_image.cpp" "${sources[@]}" -lspng -lturbojpeg -ldeflate -lz \
    -o "$work/fuzz_image"
elif [ "$harness" = safetensors ]; then
  # Only the reader and what it needs (cudl::Error), not the whole library.
  sources=("$root/src/io/safetensors.cpp" "$root/src/error.cpp")
  echo "run_fuzz: building $work/fuzz_safetensors"
  "$cxx" "${flags[@]}" -fsanitize=fuzzer "$root/tests/fuzz/fuzz_safetensors.cpp" "${sources[@]}" -lz \
    -o "$work/fuzz_safetensors"
  if [ ! -d "$seeds" ] || [ -z "$(ls -A "$seeds")" ]; then
    echo "run_fuzz: writing the seed corpus into $seeds"
    "$cxx" "${flags[@]}" "$root/tests/fuzz/make_seeds.cpp" "${sources[@]}" -lz -o "$work/make_seeds"
    mkdir -p "$seeds"
    "$work/make_seeds" "$seeds"
  fi
else
  # The library's sources as src/CMakeLists.txt lists them in add_library(cudl ...), so that this
  # build follows it. The CPU build only: no CUDA backend, nothing from cuda/.
  mapfile -t sources < <(sed -n '/^add_library(cudl\( SHARED\)\{0,1\}$/,/)/p' "$root/src/CMakeLists.txt" |
                           sed -e '1d' -e 's/[[:space:]]//g' -e 's/)$//' | grep '\.cpp$' | sed "s|^|$root/src/|")
  [ "${#sources[@]}" -gt 0 ] || { echo "run_fuzz: found no sources in src/CMakeLists.txt" >&2; exit 1; }
  for src in "${sources[@]}"; do
    [ -f "$src" ] || { echo "run_fuzz: src/CMakeLists.txt lists $src, which does not exist" >&2; exit 1; }
  done
  # cudl/version.hpp (CUDL_VERSION_STRING, which checkpoints record), as the top-level
  # CMakeLists.txt has configure_file write it into the build tree: project()'s version, and
  # every CUDL_HAVE_<X> 0 (the harnesses build the core alone: no CUDA, NCCL or MPI). Rewritten only when it changes, so that objects stay up to date. (Before
  # that header, src/CMakeLists.txt defined CUDL_VERSION_STRING for io/checkpoint.cpp alone.)
  generated=$out/include
  if [ -f "$root/cmake/version.hpp.in" ]; then
    version=$(sed -n 's/^project(cudl VERSION \([0-9][0-9.]*\).*/\1/p' "$root/CMakeLists.txt")
    [ -n "$version" ] || { echo "run_fuzz: no project(cudl VERSION ...) in CMakeLists.txt" >&2; exit 1; }
    IFS=. read -r major minor patch _ <<<"$version"
    mkdir -p "$generated/cudl"
    sed -e "s/@PROJECT_VERSION@/$version/g" -e "s/@PROJECT_VERSION_MAJOR@/$major/g" \
        -e "s/@PROJECT_VERSION_MINOR@/${minor:-}/g" -e "s/@PROJECT_VERSION_PATCH@/${patch:-}/g" \
        -e "s/@CUDL_HAVE_[A-Z0-9_]*_01@/0/g" "$root/cmake/version.hpp.in" >"$generated/cudl/version.hpp.new"
    if grep -n '@[A-Za-z0-9_]*@' "$generated/cudl/version.hpp.new" >&2; then
      echo "run_fuzz: cmake/version.hpp.in has a variable this script does not set (above)" >&2
      exit 1
    fi
    if cmp -s "$generated/cudl/version.hpp.new" "$generated/cudl/version.hpp"; then
      rm "$generated/cudl/version.hpp.new"
    else
      mv "$generated/cudl/version.hpp.new" "$generated/cudl/version.hpp"
    fi
    version_flags=(-I"$generated")
  else
    version_flags=(-DCUDL_VERSION_STRING='"fuzz"')
  fi
  # Coverage instrumentation for the library too (fuzzer-no-link), so that libFuzzer is guided
  # by the loader's branches, but not for the other libraries' code inlined into it
  # (coverage_ignorelist.txt); -march=native for src/cpu/gemm.cpp's intrinsics (CUDL_NATIVE).
  lib_flags=("${flags[@]}" -fsanitize=fuzzer-no-link
             -fsanitize-coverage-ignorelist="$root/tests/fuzz/coverage_ignorelist.txt"
             -march=native -pthread -I/usr/include/eigen3 "${version_flags[@]}")
  start=$(date +%s)
  build_objects "$out/obj" "$root" "${lib_flags[@]}" -- "${sources[@]}" "$root/tests/fuzz/fuzz_checkpoint.cpp"
  echo "run_fuzz: objects up to date in $(($(date +%s) - start)) s"
  lib=("${objects[@]:0:${#sources[@]}}")
  relink=$([ -x "$work/fuzz_checkpoint" ] || echo yes)
  for obj in "${objects[@]}"; do [ "$obj" -nt "$work/fuzz_checkpoint" ] && relink=yes; done
  if [ -n "$relink" ]; then
    echo "run_fuzz: linking $work/fuzz_checkpoint"
    "$cxx" "${lib_flags[@]}" -fsanitize=fuzzer "$out/obj/tests/fuzz/fuzz_checkpoint.o" "${lib[@]}" -lcsv -lspng -lturbojpeg -ldeflate -lz \
      -o "$work/fuzz_checkpoint"
  fi
  if [ ! -d "$seeds" ] || [ -z "$(ls -A "$seeds")" ]; then
    echo "run_fuzz: writing the seed corpus into $seeds"
    build_objects "$out/obj" "$root" "${lib_flags[@]}" -- "$root/tests/fuzz/make_checkpoint_seeds.cpp"
    "$cxx" "${lib_flags[@]}" "${objects[@]}" "${lib[@]}" -lcsv -lspng -lturbojpeg -lz -o "$work/make_checkpoint_seeds"
    mkdir -p "$seeds"
    "$work/make_checkpoint_seeds" "$seeds"
  fi
fi
[ -z "${CUDL_FUZZ_BUILD_ONLY:-}" ] || exit 0

if [ -n "$coverage" ]; then
  case "$harness" in
    idx) subject=(src/data/idx.cpp src/data/idx_dataset.cpp src/data/dataset.cpp) ;;
    npy) subject=(src/data/npy.cpp src/data/npz.cpp) ;;
    csv) subject=(src/data/csv.cpp src/data/csv_cell.hpp) ;;
    image) subject=(src/data/image_folder.cpp src/data/image_decode.cpp) ;;
    safetensors) subject=(src/io/safetensors.cpp) ;;
    checkpoint) subject=(src/io/safetensors.cpp src/io/checkpoint.cpp src/io/checkpoint_json.cpp src/nn/layer_config.cpp) ;;
  esac
  mkdir -p "$fuzz_corpus"
  rm -f "$work"/*.profraw
  echo "run_fuzz: coverage of $(ls "$fuzz_corpus" | wc -l) corpus inputs and $(ls "$seeds" | wc -l) seeds"
  LLVM_PROFILE_FILE="$work/%p.profraw" "$work/fuzz_$harness" -runs=0 -timeout=10 "$fuzz_corpus" "$seeds" \
    >"$work/coverage.log" 2>&1 || { tail -n 40 "$work/coverage.log"; echo "run_fuzz: an input failed" >&2; exit 1; }
  "${CUDL_LLVM_PROFDATA:-llvm-profdata}" merge -o "$work/coverage.profdata" "$work"/*.profraw
  "${CUDL_LLVM_COV:-llvm-cov}" report "$work/fuzz_$harness" -instr-profile="$work/coverage.profdata" \
    "${subject[@]/#/$root/}"
  exit 0
fi

echo "run_fuzz: fuzzing $harness for $seconds s"
extra=()
if [ "$harness" = checkpoint ]; then
  # Room for mutants to grow past the largest seed (the custom mutator turns -len_control off).
  extra=(-max_len=8192)
  # Shorter allocation stacks in ASan's records: the loader allocates for every JSON value, and
  # recording 30 frames each took a fifth of the time. Reports keep their full stacks; rerun a
  # finding with ASAN_OPTIONS=malloc_context_size=30 for the allocation's whole stack.
  export ASAN_OPTIONS=${ASAN_OPTIONS:-malloc_context_size=5}
fi
# -timeout: one input may take 10 s at most (a quadratic path is a finding too). -rss_limit_mb
# and -malloc_limit_mb: a file that makes the loader allocate gigabytes (a huge layer in the
# architecture) is a finding (oom-*), not a machine brought down. Flags given after SECONDS come
# last and win.
"$work/fuzz_$harness" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048 \
  -print_final_stats=1 -dict="$root/tests/fuzz/$harness.dict" -artifact_prefix="$work/" "${extra[@]}" "$@" \
  "$work/corpus" "$seeds" \
  >"$work/fuzz.log" 2>&1 || { tail -n 60 "$work/fuzz.log"; echo "run_fuzz: FINDING (see above and $work)" >&2; exit 1; }
grep -E '^(Done [0-9]+ runs|stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb)' \
  "$work/fuzz.log"
echo "run_fuzz: no finding"

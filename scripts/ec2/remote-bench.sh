#!/usr/bin/env bash
# Runs on the EC2 instance (launch-bench copies the source there and calls it): installs what the
# build needs, fetches MNIST (checksums verified), builds cudl for this machine's GPU, runs the tests,
# then bench_dbn on the CPU and on the GPU with --json, and keeps every log. On a machine with N >= 2
# GPUs it then runs the data-parallel benchmark too: mpirun -np N bench_dbn --device gpu --batch 64/N
# (the 2014 global batch of 64 rows a step, split over the ranks). A step that fails is recorded and
# the next ones still run where they can: the CPU benchmark runs even without a GPU.
#
# Usage: scripts/ec2/remote-bench.sh [options]
#   --out DIR            where the results go (default ./ec2-out): bench_cpu.json, bench_gpu.json,
#                        bench_gpu_ranks.json (N >= 2 GPUs), steps.tsv, info.tsv, system.txt,
#                        nvidia-smi.txt, logs/*.log
#   --epochs N           bench_dbn epochs (default 10, the 2014 run)
#   --arch auto|none|A   CUDA architectures to build for: auto (default) asks nvidia-smi for the
#                        GPU's compute capability (7.5 -> 75); none builds without choosing one;
#                        or a CMake list such as 75 or "75;86"
#   --gpu required|optional  whether a failed GPU benchmark (one GPU or data-parallel) fails the run
#                        (default required)
#   --gpus auto|N        GPUs for the data-parallel benchmark (bench_gpu_ranks): auto (default) counts
#                        those nvidia-smi lists; 0 or 1 runs none. Its MPI launcher is the build's own
#                        (MPIEXEC_EXECUTABLE in CMakeCache.txt), else mpirun on PATH
#   --no-tests           skip the test suite (ctest)
#   --tests-regex RE     run only the ctest tests matching RE
#   --prebuilt DIR       use the existing build in DIR: no package installation, no build
#                        (the test suite uses this to exercise the script without a rebuild)
#   --mnist-mirrors "URL ..."  MNIST mirrors for scripts/fetch_mnist.sh (default: its own)
#   --mnist-dir DIR      where MNIST is fetched to, or found already (default: data/mnist in the project)
#   --detect-arch        only print the architecture --arch auto would choose, and exit
# Exit status: 0 when every required step passed, 1 when one failed, 2 on bad usage.
set -euo pipefail

usage() { sed -n '/^# Usage:/,/^# Exit status:/s/^# \{0,1\}//p' "$0"; }
die_usage() { echo "remote-bench.sh: $*" >&2; usage >&2; exit 2; }

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
out=ec2-out
epochs=10
arch=auto
gpu=required
gpus=auto
run_tests=1
tests_regex=""
prebuilt=""
mirrors=""
mnist_dir="$src/data/mnist"
detect_only=0
while [ $# -gt 0 ]; do
  case "$1" in
    --out|--epochs|--arch|--gpu|--gpus|--tests-regex|--prebuilt|--mnist-mirrors|--mnist-dir)
      [ $# -ge 2 ] || die_usage "$1 needs a value"
      case "$1" in
        --out) out=$2 ;; --epochs) epochs=$2 ;; --arch) arch=$2 ;; --gpu) gpu=$2 ;; --gpus) gpus=$2 ;;
        --tests-regex) tests_regex=$2 ;; --prebuilt) prebuilt=$2 ;; --mnist-mirrors) mirrors=$2 ;;
        --mnist-dir) mnist_dir=$2 ;;
      esac
      shift 2 ;;
    --no-tests) run_tests=0; shift ;;
    --detect-arch) detect_only=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die_usage "unknown option '$1'" ;;
  esac
done
[ -n "$mnist_dir" ] || die_usage "--mnist-dir: expected a directory, found ''"
case "$mnist_dir" in /*) ;; *) mnist_dir=$PWD/$mnist_dir ;; esac  # absolute: the tests' link points at it
[[ "$epochs" =~ ^[1-9][0-9]*$ ]] || die_usage "--epochs: expected a positive integer, found '$epochs'"
[[ "$gpu" == required || "$gpu" == optional ]] || die_usage "--gpu: expected required or optional, found '$gpu'"
[[ "$gpus" =~ ^(auto|[0-9]{1,4})$ ]] || die_usage "--gpus: expected auto or a number of GPUs such as 4, found '$gpus'"
[[ "$arch" =~ ^(auto|none|[0-9]{2,3}(;[0-9]{2,3})*)$ ]] ||
  die_usage "--arch: expected auto, none or a list such as 75 or \"75;86\", found '$arch'"

# arch_of_name NAME: the compute capability (as 75) of a GPU that nvidia-smi names, for drivers too
# old to answer --query-gpu=compute_cap; empty when unknown.
arch_of_name() {
  case "$1" in
    *T4*) echo 75 ;; *A100*) echo 80 ;; *A10*) echo 86 ;; *L4*) echo 89 ;;
    *H100*|*H200*) echo 90 ;; *V100*) echo 70 ;; *K80*) echo 37 ;; *M60*) echo 52 ;; *) echo "" ;;
  esac
}

# detect_arch: prints the CUDA architectures of the GPUs here (e.g. 75, or "75;86" for a mix), or
# "none" when nvidia-smi is missing or reports no GPU; says why on stderr.
detect_arch() {
  local caps line a list=""
  if ! command -v nvidia-smi > /dev/null 2>&1; then
    echo "remote-bench.sh: nvidia-smi not found: no NVIDIA GPU driver here" >&2; echo none; return
  fi
  caps=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2> /dev/null) || caps=""
  while IFS= read -r line; do
    line=${line//[[:space:]]/}
    a=""
    if [[ "$line" =~ ^([0-9]+)\.([0-9])$ ]]; then a="${BASH_REMATCH[1]}${BASH_REMATCH[2]}"; fi
    if [ -n "$a" ] && [[ ";$list;" != *";$a;"* ]]; then list=${list:+$list;}$a; fi
  done <<< "$caps"
  if [ -z "$list" ]; then  # an older driver: map the GPU's name instead
    while IFS= read -r line; do
      a=$(arch_of_name "$line")
      if [ -n "$a" ] && [[ ";$list;" != *";$a;"* ]]; then list=${list:+$list;}$a; fi
    done <<< "$(nvidia-smi --query-gpu=name --format=csv,noheader 2> /dev/null || true)"
  fi
  if [ -z "$list" ]; then
    echo "remote-bench.sh: nvidia-smi reports no GPU whose compute capability is known" \
         "(compute_cap: '${caps//$'\n'/ }')" >&2
    echo none; return
  fi
  echo "$list"
}

if (( detect_only )); then detect_arch; exit 0; fi

mkdir -p "$out/logs"
out=$(cd "$out" && pwd)
: > "$out/steps.tsv"
: > "$out/info.tsv"
start=$(date +%s)
failed_required=""

say() { printf '[%4ds] %s\n' "$(( $(date +%s) - start ))" "$*"; }
info() { printf '%s\t%s\n' "$1" "$2" >> "$out/info.tsv"; }
# record STEP STATUS EXIT SECONDS NOTE: one line of steps.tsv (tabs and newlines in NOTE flattened).
record() {
  local note=${5//$'\t'/ }
  printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "${note//$'\n'/ }" >> "$out/steps.tsv"
}
# why_failed NAME: a failed step's note: the first line of its log naming the failure where the
# program says so in a known form, else the log's last non-empty line.
why_failed() {
  local log="$out/logs/$1.log" line
  line=$(grep -m 1 -E '^(fetch_mnist.sh|bench_dbn|setup|CMake Error|The following tests FAILED|remote-bench.sh|There are not enough slots)' \
    "$log" 2> /dev/null || true)
  [ -n "$line" ] || line=$(grep -v '^[[:space:]]*$' "$log" 2> /dev/null | tail -n 1 || true)
  echo "$line"
}
# step NAME REQUIRED CMD...: runs CMD with its output in logs/NAME.log, times it and records it.
# REQUIRED=1 makes a failure fail the run. Returns CMD's status.
step() {
  local name=$1 required=$2 t0 t1 rc=0 secs note
  shift 2
  say "$name: running ($*)"
  t0=$(date +%s.%N)
  "$@" > "$out/logs/$name.log" 2>&1 || rc=$?
  t1=$(date +%s.%N)
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
  if [ "$rc" -eq 0 ]; then
    record "$name" ok 0 "$secs" ""
    say "$name: ok (${secs} s)"
  else
    note=$(why_failed "$name")
    record "$name" failed "$rc" "$secs" "$note"
    say "$name: FAILED with status $rc after ${secs} s: $note (log: logs/$name.log)"
    if [ "$required" = 1 ]; then failed_required="$failed_required $name"; fi
  fi
  return "$rc"
}
skip() { record "$1" skipped - 0 "$2"; say "$1: skipped ($2)"; }

# --- What this machine is --------------------------------------------------------------------------
[ -d /usr/local/cuda/bin ] && export PATH="/usr/local/cuda/bin:$PATH"
(
  echo "date: $(date -u '+%Y-%m-%dT%H:%M:%SZ')"
  echo "host: $(hostname)"; uname -a
  if [ -r /etc/os-release ]; then
    # shellcheck disable=SC1091  # the machine's own file, read in this subshell only
    . /etc/os-release; echo "os: ${PRETTY_NAME:-unknown}"
  fi
  echo "cpus: $(nproc)"
  command -v lscpu > /dev/null && lscpu
  command -v free > /dev/null && free -h
  for tool in gcc cmake nvcc; do
    if command -v "$tool" > /dev/null; then "$tool" --version | head -n 4; else echo "$tool: not found"; fi
  done
) > "$out/system.txt" 2>&1 || true
gpu_count=0
if command -v nvidia-smi > /dev/null 2>&1; then
  { nvidia-smi; echo; nvidia-smi -q; } > "$out/nvidia-smi.txt" 2>&1 || true
  info gpu_name "$(nvidia-smi --query-gpu=name --format=csv,noheader 2> /dev/null | head -n 1)"
  # All the GPUs here: bench_gpu uses the first, bench_gpu_ranks (mpirun) one per rank.
  gpu_count=$(nvidia-smi --query-gpu=name --format=csv,noheader 2> /dev/null | grep -c . || true)
  info gpu_count "$gpu_count"
  info gpu_driver "$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2> /dev/null | head -n 1)"
else
  echo "nvidia-smi: not found (no NVIDIA driver on this machine)" > "$out/nvidia-smi.txt"
  info gpu_name ""
fi
info cpu_model "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2> /dev/null | head -n 1)"
info cpus "$(nproc)"
info hostname "$(hostname)"
# launch-bench writes SOURCE.txt beside the source tree (the tree holds exactly the tracked files).
if [ -r "$src/../SOURCE.txt" ]; then info source "$(head -n 1 "$src/../SOURCE.txt")"; fi

if [ "$arch" = auto ]; then
  arch=$(detect_arch 2> "$out/logs/arch.log")
  why=$(sed 's/^remote-bench.sh: //' "$out/logs/arch.log")
  say "GPU architecture: $arch${why:+ ($why)}"
fi
info cuda_arch "$arch"
for a in ${arch//;/ }; do
  if [ "$a" != none ] && [ "$a" -lt 75 ]; then
    say "warning: sm_$a is older than CUDA 13 supports (7.5, Turing, and newer): the GPU build will fail"
  fi
done

# --- MNIST ------------------------------------------------------------------------------------------
fetch_mnist() {
  if [ -n "$mirrors" ]; then MNIST_MIRRORS=$mirrors "$src/scripts/fetch_mnist.sh" "$mnist_dir"
  else "$src/scripts/fetch_mnist.sh" "$mnist_dir"; fi
}
data_args=()
if step mnist 0 fetch_mnist; then
  data_args=(--data "$mnist_dir")
  info dataset_dir "$mnist_dir"
  # The end-to-end tests read MNIST from ../shared/data/mnist beside the project: point it here.
  if [ ! -e "$src/../shared/data/mnist" ]; then
    if mkdir -p "$src/../shared/data"; then ln -s "$mnist_dir" "$src/../shared/data/mnist" || true; fi
  fi
else
  say "mnist: bench_dbn will use its default dataset instead (see logs/mnist.log)"
fi

# --- Build ------------------------------------------------------------------------------------------
# wait_for_apt: cloud-init and unattended-upgrades hold the package lock for minutes after boot.
wait_for_apt() {
  if command -v cloud-init > /dev/null; then timeout 900 cloud-init status --wait || true; fi
  local sudo_cmd=()
  [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
  echo 'DPkg::Lock::Timeout "900";' | "${sudo_cmd[@]}" tee /etc/apt/apt.conf.d/90cudl-lock-timeout
}
build_cudl() {
  local args=()
  if [ "$arch" != none ]; then args=(env "CUDL_CUDA_ARCH=$arch"); fi
  if command -v nvcc > /dev/null; then export CUDACXX=${CUDACXX:-$(command -v nvcc)}; fi
  CUDL_BUILD_DIR="$build" "${args[@]}" "$src/scripts/setup.sh"
}
if [ -n "$prebuilt" ]; then
  build=$(cd "$prebuilt" 2> /dev/null && pwd) || build=$prebuilt
  if [ -x "$build/benchmarks/bench_dbn" ]; then
    skip build "prebuilt $build"
  else
    record build failed - 0 "--prebuilt $prebuilt has no benchmarks/bench_dbn"
    say "build: FAILED: --prebuilt $prebuilt has no benchmarks/bench_dbn"
    failed_required="$failed_required build"
  fi
else
  build="$src/build"
  step apt-wait 0 wait_for_apt || true
  step build 1 build_cudl || true
fi
bench="$build/benchmarks/bench_dbn"
if [ -d "$build/cuda" ]; then info cuda_backend yes; else info cuda_backend no; fi

# --- The data-parallel benchmark --------------------------------------------------------------------
# How many GPUs it uses: --gpus N (launch-bench passes the instance type's count), else nvidia-smi's.
if [ "$gpus" = auto ]; then
  ranks=$gpu_count; ranks_from="nvidia-smi lists $gpu_count"
else
  ranks=$((10#$gpus)); ranks_from="--gpus $gpus"
  if [ "$ranks" -ne "$gpu_count" ]; then
    say "warning: --gpus $gpus, but nvidia-smi lists $gpu_count GPUs here: the data-parallel benchmark runs $ranks ranks"
  fi
fi
info ranks "$ranks"
# mpi_launcher: prints the MPI launcher to use: the one the build was configured with (CMake's
# MPIEXEC_EXECUTABLE: it matches the MPI that bench_dbn links), else mpirun on PATH; fails, saying
# why, when there is none.
mpi_launcher() {
  local cached where
  cached=$(sed -n 's/^MPIEXEC_EXECUTABLE:[A-Z]*=//p' "$build/CMakeCache.txt" 2> /dev/null | head -n 1)
  if [ -n "$cached" ] && [ -x "$cached" ]; then echo "$cached"; return 0; fi
  if command -v mpirun > /dev/null 2>&1; then command -v mpirun; return 0; fi
  if [ -n "$cached" ]; then where="the build's MPI launcher $cached (MPIEXEC_EXECUTABLE in CMakeCache.txt) does not exist"
  else where="the build names none (no MPIEXEC_EXECUTABLE in $build/CMakeCache.txt: configured without MPI?)"; fi
  echo "mpirun is not installed: $where, and no mpirun is on PATH; scripts/setup.sh installs openmpi-bin and libopenmpi-dev" >&2
  return 1
}
# bench_ranks REQUIRED: mpirun -np $ranks bench_dbn --device gpu, each rank with 64/$ranks rows of
# the 2014 run's 64-row step (floored; the log says so), as step bench_gpu_ranks.
bench_ranks() {
  local required=$1 per_rank mpirun launch=() why
  per_rank=$((64 / ranks))
  if [ "$per_rank" -lt 1 ]; then
    skip bench_gpu_ranks "$ranks GPUs: more ranks than the 64 rows of a step"; return 0
  fi
  if ! mpirun=$(mpi_launcher 2> "$out/logs/bench_gpu_ranks.log"); then
    why=$(cat "$out/logs/bench_gpu_ranks.log")
    record bench_gpu_ranks failed - 0 "$why"
    say "bench_gpu_ranks: FAILED: $why"
    if [ "$required" = 1 ]; then failed_required="$failed_required bench_gpu_ranks"; fi
    return 0
  fi
  if (( 64 % ranks )); then
    say "bench_gpu_ranks: 64 rows are not divisible by $ranks ranks: --batch $per_rank per rank, $((per_rank * ranks)) rows a step (64 in the one-GPU run)"
  fi
  info ranks_batch "$per_rank"
  # Open MPI refuses to start as root unless told (a container, a root login); other MPIs ignore these.
  if [ "$(id -u)" -eq 0 ]; then launch=(env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1); fi
  step bench_gpu_ranks "$required" "${launch[@]}" "$mpirun" -np "$ranks" "$bench" --device gpu --batch "$per_rank" \
    --epochs "$epochs" --json "$out/bench_gpu_ranks.json" "${data_args[@]}" || true
}

# --- Tests and benchmarks ---------------------------------------------------------------------------
if [ ! -x "$bench" ]; then
  for s in tests bench_cpu bench_gpu; do skip "$s" "no bench_dbn: the build failed"; done
  if [ "$ranks" -ge 2 ]; then skip bench_gpu_ranks "no bench_dbn: the build failed"; fi
  failed_required="$failed_required bench_cpu"
else
  if (( run_tests )); then
    ctest_args=(--test-dir "$build" --output-on-failure --no-tests=error -j "$(nproc)")
    [ -n "$tests_regex" ] && ctest_args+=(-R "$tests_regex")
    step tests 1 ctest "${ctest_args[@]}" || true
  else
    skip tests "--no-tests"
  fi
  step bench_cpu 1 "$bench" --device cpu --epochs "$epochs" --json "$out/bench_cpu.json" "${data_args[@]}" || true
  gpu_required=1
  [ "$gpu" = optional ] && gpu_required=0
  step bench_gpu "$gpu_required" "$bench" --device gpu --epochs "$epochs" --json "$out/bench_gpu.json" \
    "${data_args[@]}" || true
  if [ "$ranks" -ge 2 ]; then
    say "bench_gpu_ranks: $ranks GPUs ($ranks_from): the data-parallel benchmark, one rank per GPU"
    bench_ranks "$gpu_required"
  fi
fi

if [ -n "$failed_required" ]; then
  say "remote-bench: FAILED:${failed_required} (results and logs in $out)"
  exit 1
fi
say "remote-bench: OK (results and logs in $out)"

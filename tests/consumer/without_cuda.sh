#!/usr/bin/env bash
# tests/consumer/without_cuda.sh [--runpath-of FILE]... CMD [ARGS...]: runs CMD on this machine as
# if no CUDA library were installed, to show that a program linked with cudl needs nothing of CUDA
# to load and to train on the CPU, and that asking for the GPU then gives cudl's sentence.
# In a private mount namespace (unshare -m: root or CAP_SYS_ADMIN), each folder that holds a CUDA
# library (libcuda*, libcudnn*, libcublas*, libnccl*, libnvrtc*, libnvJitLink*, libcufft*,
# libcurand*, libcusolver*, libcusparse*) and that the dynamic loader could search is covered by an
# overlay in which those libraries are deleted. The folders: those of `ldconfig -p`, of
# LD_LIBRARY_PATH (which is then emptied), /usr/local/cuda*'s library folders, and the RUNPATH of
# each FILE given with --runpath-of (the installed plugin's, which names the toolkit it was linked
# with). Nothing outside the namespace changes. Exits 77 when the namespace cannot be made.
set -euo pipefail
runpath_of=()
while [ $# -gt 0 ] && [ "$1" = --runpath-of ]; do
  runpath_of+=("$2")
  shift 2
done
[ $# -gt 0 ] || { echo "usage: without_cuda.sh [--runpath-of FILE]... CMD [ARGS...]" >&2; exit 2; }
if ! unshare -m true 2>/dev/null; then
  echo "without_cuda: cannot make a private mount namespace here (unshare -m needs root or CAP_SYS_ADMIN)" >&2
  exit 77
fi
pattern='^lib(cuda|cudnn|cublas|nccl|nvrtc|nvJitLink|cufft|curand|cusolver|cusparse)'
folders=$(
  {
    ldconfig -p | sed -n 's/.* => \(.*\)\/[^/]*$/\1/p'
    tr ':' '\n' <<<"${LD_LIBRARY_PATH:-}"
    for d in /usr/local/cuda*/lib /usr/local/cuda*/lib64 /usr/local/cuda*/targets/*/lib; do echo "$d"; done
    for f in "${runpath_of[@]}"; do
      readelf -d "$f" 2>/dev/null | sed -n 's/.*(RUNPATH).*\[\(.*\)\]/\1/p' | tr ':' '\n' | sed "s|\$ORIGIN|$(dirname "$f")|"
    done
  } | while read -r d; do
    if [ -n "$d" ] && [ -d "$d" ]; then realpath "$d"; fi
  done | sort -u
)
# shellcheck disable=SC2016  # expanded by the inner shell
exec unshare -m bash -c '
  set -euo pipefail
  pattern=$1 folders=$2
  shift 2
  scratch=$(mktemp -d)
  mount -t tmpfs tmpfs "$scratch"
  n=0
  while read -r d; do
    [ -n "$d" ] || continue
    hits=$(find "$d" -maxdepth 1 -mindepth 1 -printf "%f\n" | grep -E "$pattern" || true)
    [ -n "$hits" ] || continue
    n=$((n + 1))
    mkdir -p "$scratch/$n/upper" "$scratch/$n/work"
    mount -t overlay overlay -o "lowerdir=$d,upperdir=$scratch/$n/upper,workdir=$scratch/$n/work" "$d"
    while read -r f; do rm -rf "${d:?}/$f"; done <<<"$hits"
    echo "without_cuda: hid $(wc -l <<<"$hits") CUDA libraries in $d" >&2
  done <<<"$folders"
  # Nothing the loader knows of may remain.
  left=$(ldconfig -p | sed -n "s/.* => //p" | while read -r f; do
           case "$(basename "$f")" in lib*) ;; *) continue ;; esac
           if basename "$f" | grep -qE "$pattern" && [ -e "$f" ]; then echo "$f"; fi
         done)
  if [ -n "$left" ]; then echo "without_cuda: still reachable: $left" >&2; exit 1; fi
  exec env LD_LIBRARY_PATH= "$@"
' _ "$pattern" "$folders" "$@"

#!/usr/bin/env bash
# Downloads the four MNIST IDX files into <project>/data/mnist (or DIR) and verifies each
# against its official md5. Files already present with the right checksum are kept; a
# download that fails its checksum is deleted and the next mirror tried. Downloads land in a
# temporary file and are renamed only once verified, so no partial file ever carries a final
# name.
#
# Usage: scripts/fetch_mnist.sh [--check] [DIR]
#   --check   only verify the files already in DIR; download nothing
# Environment: MNIST_MIRRORS  space-separated base URLs to try instead of the defaults
#              (file:// URLs work, for testing); FETCH_TIMEOUT  seconds per download (300).
# Exit status: 0 when all four files are present and verified, 1 otherwise, 2 on bad usage.
set -euo pipefail

usage() { sed -n '/^# Usage:/,/^# Exit status:/s/^# \{0,1\}//p' "$0"; }

check_only=0
dest=""
for arg in "$@"; do
  case "$arg" in
    --check) check_only=1 ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "fetch_mnist.sh: unknown option $arg" >&2; usage >&2; exit 2 ;;
    *)
      if [[ -n "$dest" ]]; then echo "fetch_mnist.sh: one DIR only" >&2; exit 2; fi
      dest="$arg" ;;
  esac
done
project_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${dest:-$project_root/data/mnist}"

# Official sizes and md5 sums; source: ../shared/data/mnist/README.md beside this project.
files=(train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz
       t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz)
# official FILE: prints "BYTES MD5" of FILE (plain case, not bash-4 maps: macOS ships bash 3).
official() {
  case "$1" in
    train-images-idx3-ubyte.gz) echo "9912422 f68b3c2dcbeaaa9fbdd348bbdeb94873" ;;
    train-labels-idx1-ubyte.gz) echo "28881 d53e105ee54ea40749a09fcbcd1e9432" ;;
    t10k-images-idx3-ubyte.gz) echo "1648877 9fb629c4189551a2d022fa330f9573f3" ;;
    t10k-labels-idx1-ubyte.gz) echo "4542 ec29112dd5afa0611ce80d1b7f02629c" ;;
  esac
}
read -r -a mirrors <<< "${MNIST_MIRRORS:-https://ossci-datasets.s3.amazonaws.com/mnist/ https://storage.googleapis.com/cvdf-datasets/mnist/ http://yann.lecun.com/exdb/mnist/}"
timeout_s="${FETCH_TIMEOUT:-300}"

md5_of() {
  if command -v md5sum > /dev/null; then md5sum "$1" | cut -d' ' -f1
  else md5 -q "$1"; fi  # macOS
}

# verify FILE NAME: prints why FILE is not the official NAME and fails, or succeeds silently.
verify() {
  local file="$1" name="$2" want_bytes want_md5 bytes sum
  read -r want_bytes want_md5 <<< "$(official "$name")"
  bytes=$(wc -c < "$file" | tr -d ' ')
  if [[ "$bytes" != "$want_bytes" ]]; then
    echo "size $bytes bytes, expected $want_bytes"; return 1
  fi
  sum=$(md5_of "$file")
  if [[ "$sum" != "$want_md5" ]]; then
    echo "md5 $sum, expected $want_md5"; return 1
  fi
}

if command -v curl > /dev/null; then tool=curl
elif command -v wget > /dev/null; then tool=wget
else tool=""; fi

# download URL OUT: fetches URL into OUT with short connect timeouts and a few retries.
download() {
  case "$tool" in
    curl) curl --fail --location --silent --show-error --connect-timeout 5 \
               --max-time "$timeout_s" --retry 2 --retry-delay 1 --output "$2" "$1" ;;
    wget) wget --quiet --connect-timeout=5 --read-timeout=30 --tries=3 \
               --output-document="$2" "$1" ;;
  esac
}

# unreachable RC: whether download's exit status means the host could not be reached at all
# (name not resolved, connection refused or timed out), so the mirror is skipped from then on.
unreachable() {
  case "$tool:$1" in
    curl:5|curl:6|curl:7|curl:28|wget:4) return 0 ;;
    *) return 1 ;;
  esac
}

tmp=""
cleanup() { if [[ -n "$tmp" ]]; then rm -f -- "$tmp"; fi; }
trap cleanup EXIT
trap 'exit 130' INT TERM

if (( check_only )); then
  bad=0
  for name in "${files[@]}"; do
    if [[ ! -f "$dest/$name" ]]; then
      echo "$dest/$name: missing"; bad=1
    elif why=$(verify "$dest/$name" "$name"); then
      echo "$dest/$name: ok"
    else
      echo "$dest/$name: BAD ($why)"; bad=1
    fi
  done
  exit "$bad"
fi

if [[ -z "$tool" ]]; then
  echo "fetch_mnist.sh: neither curl nor wget is installed" >&2; exit 1
fi
created=""
if [[ ! -d "$dest" ]]; then created=1; fi
mkdir -p -- "$dest"
failed=()
dead=" "  # mirrors found unreachable, space-separated: not tried again
for name in "${files[@]}"; do
  final="$dest/$name"
  if [[ -f "$final" ]]; then
    if why=$(verify "$final" "$name"); then
      echo "$final: present and verified"; continue
    fi
    echo "$final: present but corrupt ($why); removing it and downloading again"
    rm -f -- "$final"
  fi
  got=0
  for base in "${mirrors[@]}"; do
    if [[ "$dead" == *" $base "* ]]; then continue; fi
    url="${base%/}/$name"
    tmp=$(mktemp "$dest/.$name.XXXXXX")
    echo "$name: downloading $url"
    rc=0
    err=$(download "$url" "$tmp" 2>&1) || rc=$?
    if (( rc != 0 )); then
      echo "  failed: ${err##*$'\n'}"  # the last attempt's message
      if unreachable "$rc"; then dead+="$base "; fi
    elif ! why=$(verify "$tmp" "$name"); then
      echo "  rejected: $why; deleted"
    else
      chmod 644 -- "$tmp"  # mktemp made it private
      mv -f -- "$tmp" "$final"; tmp=""
      echo "$final: downloaded and verified"; got=1
      break
    fi
    rm -f -- "$tmp"; tmp=""
  done
  if (( ! got )); then failed+=("$name"); fi
done

if (( ${#failed[@]} > 0 )); then
  echo "fetch_mnist.sh: could not fetch ${failed[*]} into $dest" >&2
  n_dead=$(wc -w <<< "$dead")
  if (( n_dead == ${#mirrors[@]} )); then
    echo "  No mirror could be reached (offline?): ${mirrors[*]}" >&2
  fi
  echo "  Copy the files into $dest by hand and check them with: $0 --check $dest" >&2
  echo "  Or use Fashion-MNIST instead: apt-get install dataset-fashion-mnist" >&2
  if [[ -n "$created" ]]; then rmdir -- "$dest" 2> /dev/null || true; fi  # only if still empty
  exit 1
fi
echo "MNIST is ready in $dest"

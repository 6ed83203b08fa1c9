#!/usr/bin/env bash
# Run cudl's bench_loader and its Python peer (benchmarks/peers/loader_numpy.py) one after the
# other on the same files: bench_loader writes the rows as .npy, CSV and PNG into a temporary
# folder (--keep) and times cudl's datasets on them, the peer times numpy, pandas and Pillow on
# the same files in the same row order, and the folder is removed at the end. Prints rows/s side
# by side with the ratio cudl/peer (above 1: cudl delivers more rows per second).
set -euo pipefail

usage() {
    cat <<EOF
usage: $0 [--build DIR] [--data DIR] [--rows N] [--threads T] [--rounds R] [--python PY] [--out FILE]

  --build DIR     cudl build directory holding benchmarks/bench_loader (default: build in the repository root)
  --data DIR      IDX dataset directory (default: \$CUDL_DATA, else /usr/share/datasets/fashion-mnist;
                  bench_loader makes synthetic rows of the same shape when it holds no training files)
  --rows N        the first N rows (default: all)
  --threads T     threads of the second fill pass, for both programs (default: 2)
  --rounds R      timed rounds, medians reported (default: 3)
  --python PY     the peer's Python, one that imports numpy (default: /usr/bin/python3 when it imports
                  numpy and PIL, else python3); Pillow and pandas are used where it imports them
  --out FILE      also write the comparison as markdown to FILE
EOF
}

die() { echo "compare_loader.sh: $*" >&2; exit 1; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$ROOT/build
DATA=${CUDL_DATA:-/usr/share/datasets/fashion-mnist}
ROWS=
THREADS=2
ROUNDS=3
PY=
OUT=

while [ $# -gt 0 ]; do
    case "$1" in
        -h|--help) usage; exit 0 ;;
        --build|--data|--rows|--threads|--rounds|--python|--out)
            [ $# -ge 2 ] || { usage >&2; die "$1 needs a value"; }
            case "$1" in
                --build) BUILD=$2 ;;
                --data) DATA=$2 ;;
                --rows) ROWS=$2 ;;
                --threads) THREADS=$2 ;;
                --rounds) ROUNDS=$2 ;;
                --python) PY=$2 ;;
                --out) OUT=$2 ;;
            esac
            shift 2 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done

[ -z "$ROWS" ] || [[ $ROWS =~ ^[1-9][0-9]*$ ]] || die "--rows must be a positive integer, got '$ROWS'"
[[ $THREADS =~ ^[1-9][0-9]*$ ]] || die "--threads must be a positive integer, got '$THREADS'"
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer, got '$ROUNDS'"

BENCH=$BUILD/benchmarks/bench_loader
PEER=$ROOT/benchmarks/peers/loader_numpy.py
[ -x "$BENCH" ] || die "$BENCH not found; build it first: cmake --build build --target bench_loader  (or pass --build DIR)"
if [ -z "$PY" ]; then
    if /usr/bin/python3 -c 'import numpy, PIL' 2>/dev/null; then PY=/usr/bin/python3; else PY=python3; fi
fi
"$PY" -c 'import numpy' 2>/dev/null || die "$PY cannot import numpy (apt-get install python3-numpy, or pass --python PY)"

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
CUDL_CMD=("$BENCH" --data "$DATA" ${ROWS:+--rows "$ROWS"} --threads "$THREADS" --rounds "$ROUNDS"
          --dir "$TMP/files" --keep --json "$TMP/cudl.json")
PEER_CMD=("$PY" "$PEER" --dir "$TMP/files" --threads "$THREADS" --rounds "$ROUNDS" --json "$TMP/peer.json")

# One after the other, so they never compete for cores.
echo "== cudl: ${CUDL_CMD[*]}"
"${CUDL_CMD[@]}" || die "bench_loader failed (exit $?)"
echo
echo "== peer: ${PEER_CMD[*]}"
"${PEER_CMD[@]}" || die "the peer failed (exit $?)"
echo
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

TABLE=$("$PY" - "$TMP/cudl.json" "$TMP/peer.json" <<'EOF'
import json, statistics, sys
cudl, peer = (json.load(open(p)) for p in sys.argv[1:3])
n, t = cudl["rows"], cudl["threads"]
peers = {f["name"]: f for f in peer["formats"]}
absent = peer.get("absent", {})
def rate(xs):
    return n / statistics.median(xs) if xs else None
def cell(v, xs=None):  # rows/s, and for an open its median time too
    if not v:
        return "—"
    if xs is None:
        return f"{v:,.0f}"
    s = statistics.median(xs)
    return f"{v:,.0f} ({s:.2f} s)" if s >= 1 else f"{v:,.0f} ({s * 1e3:.3g} ms)"
print(f"| format | measure | cudl rows/s | peer | peer rows/s | cudl/peer |")
print("| --- | --- | ---: | --- | ---: | ---: |")
opens = {"npy-u8": "open (mmap)", "npy-f4": "open (mmap)", "csv": "open = parse the file", "png": "open = list + read headers"}
for f in cudl["formats"]:
    name = f["name"]
    rows = [(opens[name], "open_seconds", name), ("fill, 1 thread", "fill_seconds_1", name),
            (f"fill, {t} threads", "fill_seconds_t", name)]
    if name == "csv":
        rows.insert(1, (opens[name], "open_seconds", "csv-pandas"))
    for measure, key, peer_name in rows:
        c = rate(f[key])
        if peer_name in peers:
            p = rate(peers[peer_name][key])
            how = peers[peer_name]["short"]
            ratio = f"**{c / p:.2f}×**" if c and p else "—"
        else:
            p, how, ratio = None, f"absent ({absent.get(peer_name, 'not run')})", "—"
        xs = (lambda d: d[key] if key == "open_seconds" else None)
        print(f"| {name} | {measure} | {cell(c, xs(f))} | {how} | {cell(p, xs(peers[peer_name]) if p else None)} | {ratio} |")
print()
for f in peer["formats"]:
    print(f"- peer {f['name']}: {f['how']}")
print()
print(f"rows: {n:,} × {cudl['features']} ({cudl['source']}); batches of {cudl['batch']} in the same seeded "
      f"random order for both; medians of {cudl['rounds']} rounds; page cache warm (one untimed open and pass first).")
print(f"peer: Python {peer['python']}, numpy {peer['numpy_version']}, Pillow {peer['pillow_version'] or 'absent'}, "
      f"pandas {peer['pandas_version'] or 'absent'}; its {t}-thread passes are Python threads (under the GIL).")
print()
print("| format | MB on disk |")
print("| --- | ---: |")
for f in cudl["formats"]:
    print(f"| {f['name']} | {f['bytes'] / 1e6:.1f} |")
EOF
) || die "could not read the results JSON"

echo "$TABLE"

if [ -n "$OUT" ]; then
    CPU=$(grep -m1 -i '^model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//' || true)
    [ -n "$CPU" ] || CPU=unknown
    AVX512=no
    grep -qw avx512f /proc/cpuinfo 2>/dev/null && AVX512=yes
    {
        echo "# Loader throughput: cudl's datasets vs numpy, pandas and Pillow"
        echo
        echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
        echo "- machine: $(uname -m), $CPU, AVX-512: $AVX512, $(nproc) logical CPUs"
        echo "- load average (1, 5, 15 min): $LOAD_BEFORE before, $LOAD_AFTER after"
        echo "- threads of the second fill pass: $THREADS"
        echo
        echo "$TABLE"
        echo
        echo "Commands (run one after the other; files and JSON in a temporary directory):"
        echo
        echo '```'
        printf '%q ' "${CUDL_CMD[@]}"; echo
        printf '%q ' "${PEER_CMD[@]}"; echo
        echo '```'
    } > "$OUT"
    echo "wrote $OUT"
fi

#!/usr/bin/env bash
# Run cudl's bench_dbn (CPU) and the numpy peer (benchmarks/peers/dbn_numpy.py), and with
# --torch PYTHON the PyTorch peer (benchmarks/peers/dbn_torch.py --device cpu) too, one after the
# other with the same dataset, settings and thread count, and print median seconds per epoch, the
# peer/cudl ratios and test accuracies.
set -euo pipefail

usage() {
    cat <<EOF
usage: $0 [--build DIR] [--data DIR] [--epochs N] [--threads N] [--learn-rate X] [--torch PYTHON] [--out FILE]

  --build DIR       cudl build directory holding benchmarks/bench_dbn (default: build in the repository root)
  --data DIR        IDX dataset directory (default: \$CUDL_DATA, else /usr/share/datasets/fashion-mnist)
  --epochs N        epochs for each program (default: 3)
  --threads N       threads for both programs (default: nproc = $(nproc))
  --learn-rate X    initial learning rate for both (default: 0.1)
  --torch PYTHON    also run the PyTorch peer on the CPU with this Python (one that imports torch)
  --out FILE        also write the comparison as markdown to FILE
EOF
}

die() { echo "compare_numpy.sh: $*" >&2; exit 1; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$ROOT/build
DATA=${CUDL_DATA:-/usr/share/datasets/fashion-mnist}
EPOCHS=3
THREADS=$(nproc)
LR=0.1
OUT=
TORCH_PY=

while [ $# -gt 0 ]; do
    case "$1" in
        -h|--help) usage; exit 0 ;;
        --build|--data|--epochs|--threads|--learn-rate|--torch|--out)
            [ $# -ge 2 ] || { usage >&2; die "$1 needs a value"; }
            case "$1" in
                --build) BUILD=$2 ;;
                --data) DATA=$2 ;;
                --epochs) EPOCHS=$2 ;;
                --threads) THREADS=$2 ;;
                --learn-rate) LR=$2 ;;
                --torch) TORCH_PY=$2 ;;
                --out) OUT=$2 ;;
            esac
            shift 2 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done

[[ $EPOCHS =~ ^[1-9][0-9]*$ ]] || die "--epochs must be a positive integer, got '$EPOCHS'"
[[ $THREADS =~ ^[1-9][0-9]*$ ]] || die "--threads must be a positive integer, got '$THREADS'"
[[ $LR =~ ^([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$ ]] || die "--learn-rate must be a positive number, got '$LR'"

BENCH=$BUILD/benchmarks/bench_dbn
PEER=$ROOT/benchmarks/peers/dbn_numpy.py
[ -x "$BENCH" ] || die "$BENCH not found; build cudl first: cmake -S . -B build && cmake --build build  (or pass --build DIR)"
[ -d "$DATA" ] || die "dataset directory $DATA does not exist (pass --data DIR or set CUDL_DATA)"
python3 -c 'import numpy' 2>/dev/null || die "python3 with numpy is needed for the numpy peer"
if [ -n "$TORCH_PY" ]; then
    "$TORCH_PY" -c 'import torch' 2>/dev/null || die "$TORCH_PY cannot import torch (set LD_LIBRARY_PATH if it needs CUDA libraries)"
fi

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

CUDL_CMD=("$BENCH" --device cpu --data "$DATA" --epochs "$EPOCHS" --threads "$THREADS"
          --learn-rate "$LR" --json "$TMP/cudl.json")
NUMPY_CMD=(python3 "$PEER" --data "$DATA" --epochs "$EPOCHS" --threads "$THREADS"
           --learn-rate "$LR" --json "$TMP/numpy.json")

TORCH_CMD=()
[ -z "$TORCH_PY" ] || TORCH_CMD=("$TORCH_PY" "$ROOT/benchmarks/peers/dbn_torch.py" --device cpu --data "$DATA"
                                --epochs "$EPOCHS" --threads "$THREADS" --learn-rate "$LR" --json "$TMP/torch.json")

# One after the other, so they never compete for cores.
echo "== cudl: ${CUDL_CMD[*]}"
"${CUDL_CMD[@]}" || die "bench_dbn failed (exit $?)"
echo
echo "== numpy: ${NUMPY_CMD[*]}"
"${NUMPY_CMD[@]}" || die "numpy peer failed (exit $?)"
echo
if [ ${#TORCH_CMD[@]} -gt 0 ]; then
    echo "== torch: ${TORCH_CMD[*]}"
    "${TORCH_CMD[@]}" || die "torch peer failed (exit $?)"
    echo
fi

CPU=$(grep -m1 -i '^model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//' || true)
[ -n "$CPU" ] || CPU=$(lscpu 2>/dev/null | grep -m1 -i '^model name' | cut -d: -f2- | sed 's/^ *//' || true)
[ -n "$CPU" ] || CPU=unknown

# Both JSONs -> table; medians are recomputed from the per-epoch "seconds".
TABLE=$(python3 - "$TMP/cudl.json" "$TMP/numpy.json" "$TMP/torch.json" <<'EOF'
import json, os, statistics, sys
cudl, peer = (json.load(open(p)) for p in sys.argv[1:3])
torch = json.load(open(sys.argv[3])) if os.path.exists(sys.argv[3]) else None
def median(d):
    return statistics.median(e["seconds"] for e in d["epochs"])
mc, mn = median(cudl), median(peer)
ac, an = cudl["test"]["accuracy"], peer["test_accuracy"]
print("| program | median s/epoch | test accuracy |")
print("| --- | ---: | ---: |")
print(f"| cudl bench_dbn ({cudl['device']['description']}) | {mc:.3f} | {ac:.4f} |")
print(f"| numpy {peer['numpy_version']} ({peer.get('blas', '?')}) | {mn:.3f} | {an:.4f} |")
if torch:
    mt = median(torch)
    print(f"| PyTorch {torch['torch_version']} (cpu, {torch['threads']} threads) | {mt:.3f} | {torch['test_accuracy']:.4f} |")
print(f"\nratio numpy/cudl: **{mn / mc:.2f}x**" + (f"; PyTorch/cudl: **{mt / mc:.2f}x**" if torch else "") + "\n")
head = "| epoch | cudl loss | cudl err | cudl s | numpy loss | numpy err | numpy s |"
rule = "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
if torch:
    head += " torch loss | torch err | torch s |"
    rule += " ---: | ---: | ---: |"
print(head)
print(rule)
rows = zip(cudl["epochs"], peer["epochs"], torch["epochs"] if torch else [None] * len(cudl["epochs"]))
for c, n, t in rows:
    line = (f"| {c['epoch']} | {c['loss']:.4f} | {c['err']:.4f} | {c['seconds']:.3f} "
            f"| {n['loss']:.4f} | {n['err']:.4f} | {n['seconds']:.3f} |")
    if t:
        line += f" {t['loss']:.4f} | {t['err']:.4f} | {t['seconds']:.3f} |"
    print(line)
EOF
) || die "could not read the results JSON"

echo "$TABLE"

if [ -n "$OUT" ]; then
    {
        echo "# cudl vs numpy${TORCH_PY:+ and PyTorch}: DBN training on the CPU"
        echo
        echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
        echo "- machine: $(uname -m), $CPU ($(nproc) logical CPUs)"
        echo "- threads: $THREADS"
        echo "- dataset: $DATA"
        echo "- epochs: $EPOCHS, initial learning rate: $LR"
        echo
        echo "$TABLE"
        echo
        echo "Commands (run one after the other; JSON written to a temporary directory):"
        echo
        echo '```'
        printf '%q ' "${CUDL_CMD[@]}"; echo
        printf '%q ' "${NUMPY_CMD[@]}"; echo
        [ ${#TORCH_CMD[@]} -eq 0 ] || { printf '%q ' "${TORCH_CMD[@]}"; echo; }
        echo '```'
    } > "$OUT"
    echo "wrote $OUT"
fi

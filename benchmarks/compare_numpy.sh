#!/usr/bin/env bash
# Run cudl's bench_dbn (CPU) and the numpy peer (benchmarks/peers/dbn_numpy.py), and with
# --torch PYTHON the PyTorch peer (benchmarks/peers/dbn_torch.py --device cpu) too, one after the
# other with the same dataset, settings and thread count, and print median seconds per epoch, the
# peer/cudl ratios and test accuracies. With --repeat N the programs take turns N times (cudl,
# numpy, torch, cudl, ...) and the ratio of each round and their median are printed: on a shared
# machine whose speed drifts by tens of percent within minutes, one round decides little.
set -euo pipefail

usage() {
    cat <<EOF
usage: $0 [--build DIR] [--data DIR] [--epochs N] [--threads N] [--learn-rate X] [--torch PYTHON] [--repeat N] [--out FILE]

  --build DIR       cudl build directory holding benchmarks/bench_dbn (default: build in the repository root)
  --data DIR        IDX dataset directory (default: \$CUDL_DATA, else /usr/share/datasets/fashion-mnist)
  --epochs N        epochs for each program (default: 3)
  --threads N       threads for both programs (default: nproc = $(nproc))
  --learn-rate X    initial learning rate for both (default: 0.1)
  --torch PYTHON    also run the PyTorch peer on the CPU with this Python (one that imports torch)
  --repeat N        rounds, the programs taking turns in each (default: 1); ratios per round and their median
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
REPEAT=1

while [ $# -gt 0 ]; do
    case "$1" in
        -h|--help) usage; exit 0 ;;
        --build|--data|--epochs|--threads|--learn-rate|--torch|--repeat|--out)
            [ $# -ge 2 ] || { usage >&2; die "$1 needs a value"; }
            case "$1" in
                --build) BUILD=$2 ;;
                --data) DATA=$2 ;;
                --epochs) EPOCHS=$2 ;;
                --threads) THREADS=$2 ;;
                --learn-rate) LR=$2 ;;
                --torch) TORCH_PY=$2 ;;
                --repeat) REPEAT=$2 ;;
                --out) OUT=$2 ;;
            esac
            shift 2 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done

[[ $EPOCHS =~ ^[1-9][0-9]*$ ]] || die "--epochs must be a positive integer, got '$EPOCHS'"
[[ $THREADS =~ ^[1-9][0-9]*$ ]] || die "--threads must be a positive integer, got '$THREADS'"
[[ $REPEAT =~ ^[1-9][0-9]*$ ]] || die "--repeat must be a positive integer, got '$REPEAT'"
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

# The commands of round $1 (each writes its JSON into $TMP, named by program and round).
commands() {
    CUDL_CMD=("$BENCH" --device cpu --data "$DATA" --epochs "$EPOCHS" --threads "$THREADS"
              --learn-rate "$LR" --json "$TMP/cudl.$1.json")
    NUMPY_CMD=(python3 "$PEER" --data "$DATA" --epochs "$EPOCHS" --threads "$THREADS"
               --learn-rate "$LR" --json "$TMP/numpy.$1.json")
    TORCH_CMD=()
    [ -z "$TORCH_PY" ] || TORCH_CMD=("$TORCH_PY" "$ROOT/benchmarks/peers/dbn_torch.py" --device cpu --data "$DATA"
                                    --epochs "$EPOCHS" --threads "$THREADS" --learn-rate "$LR" --json "$TMP/torch.$1.json")
}

# One after the other, so they never compete for cores.
for round in $(seq 1 "$REPEAT"); do
    commands "$round"
    [ "$REPEAT" -eq 1 ] || echo "==== round $round of $REPEAT"
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
done

CPU=$(grep -m1 -i '^model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//' || true)
[ -n "$CPU" ] || CPU=$(lscpu 2>/dev/null | grep -m1 -i '^model name' | cut -d: -f2- | sed 's/^ *//' || true)
[ -n "$CPU" ] || CPU=unknown

# The JSONs -> table; medians are recomputed from the per-epoch "seconds". The per-epoch table is
# round 1's.
TABLE=$(python3 - "$TMP" "$REPEAT" <<'EOF'
import json, os, statistics, sys
tmp, rounds = sys.argv[1], int(sys.argv[2])
def load(name, r):
    p = os.path.join(tmp, f"{name}.{r}.json")
    return json.load(open(p)) if os.path.exists(p) else None
runs = {name: [load(name, r) for r in range(1, rounds + 1)] for name in ("cudl", "numpy", "torch")}
if runs["torch"][0] is None:
    del runs["torch"]
def median(d):
    return statistics.median(e["seconds"] for e in d["epochs"])
med = {name: [median(d) for d in ds] for name, ds in runs.items()}
cudl, peer, torch = runs["cudl"][0], runs["numpy"][0], runs.get("torch", [None])[0]
def cell(values):
    m = statistics.median(values)
    return f"{m:.3f}" if len(values) == 1 else f"{m:.3f} ({', '.join(f'{v:.3f}' for v in values)})"
print("| program | median s/epoch" + (" (each round)" if rounds > 1 else "") + " | test accuracy |")
print("| --- | ---: | ---: |")
print(f"| cudl bench_dbn ({cudl['device']['description']}) | {cell(med['cudl'])} | {cudl['test']['accuracy']:.4f} |")
print(f"| numpy {peer['numpy_version']} ({peer.get('blas', '?')}) | {cell(med['numpy'])} | {peer['test_accuracy']:.4f} |")
if torch:
    print(f"| PyTorch {torch['torch_version']} (cpu, {torch['threads']} threads) | {cell(med['torch'])} | "
          f"{torch['test_accuracy']:.4f} |")
def ratio(name, label):
    r = [p / c for p, c in zip(med[name], med["cudl"])]
    text = f"{label}/cudl: **{statistics.median(r):.2f}x**"
    if rounds > 1:
        text += f" (median of {rounds} rounds: {', '.join(f'{x:.2f}' for x in r)})"
    return text
print("\nratio " + ratio("numpy", "numpy") + ("; " + ratio("torch", "PyTorch") if torch else "") + "\n")
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
        echo "- epochs: $EPOCHS, initial learning rate: $LR, rounds: $REPEAT"
        echo
        echo "$TABLE"
        echo
        echo "Commands (the last round's; run one after the other; JSON written to a temporary directory):"
        echo
        echo '```'
        printf '%q ' "${CUDL_CMD[@]}"; echo
        printf '%q ' "${NUMPY_CMD[@]}"; echo
        [ ${#TORCH_CMD[@]} -eq 0 ] || { printf '%q ' "${TORCH_CMD[@]}"; echo; }
        echo '```'
    } > "$OUT"
    echo "wrote $OUT"
fi

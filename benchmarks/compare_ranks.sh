#!/usr/bin/env bash
# Data-parallel scaling on one machine's CPU cores (issue 15): bench_dbn as one process and as
# ranks of `mpirun -np N` (N = --ranks), interleaved over --rounds rounds so that a machine's
# drift hits every configuration alike. Prints per configuration the median seconds per epoch,
# the time per step, rank 0's gradient all-reduce per step (timed by bench_dbn) and the rest of
# the step (compute), and the test accuracy:
#   1 process,  1 thread,   batch 64              (the reference)
#   N ranks,    1 thread,   batch 64/N per rank   (the same algorithm: global batch 64)
#   1 process,  N threads,  batch 64              (the other way to use N cores)
#   N ranks,    1 thread,   batch 64 per rank     (global batch 64·N: more rows per step)
# With --pretrain, the same four run one epoch of RBM pretraining instead (gdbn's, as bench_dbn
# --pretrain-epochs 1 at learning rate 0.001 and momentum 0.5, no fine-tuning): seconds per RBM
# epoch and the first RBM's reconstruction error (the same algorithm gives the same error).
set -euo pipefail

usage() {
    cat <<END
usage: $0 [--build DIR] [--data DIR] [--epochs N] [--ranks N] [--rounds R] [--out FILE] [--pretrain]

  --build DIR    cudl build directory with benchmarks/bench_dbn built with MPI (default: build)
  --data DIR     IDX dataset directory (default: \$CUDL_DATA, else /usr/share/datasets/fashion-mnist)
  --epochs N     epochs per run (default: 3)
  --ranks N      MPI ranks and threads to compare with one (default: nproc = $(nproc))
  --rounds R     rounds of the four runs (default: 3)
  --out FILE     also write the table as markdown to FILE
  --pretrain     time one epoch of RBM pretraining per run instead of the fine-tuning epochs
END
}
die() { echo "compare_ranks.sh: $*" >&2; exit 1; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$ROOT/build
DATA=${CUDL_DATA:-/usr/share/datasets/fashion-mnist}
EPOCHS=3
RANKS=$(nproc)
ROUNDS=3
OUT=
PRETRAIN=0
while [ $# -gt 0 ]; do
    case "$1" in
        -h|--help) usage; exit 0 ;;
        --pretrain) PRETRAIN=1; shift ;;
        --build|--data|--epochs|--ranks|--rounds|--out)
            [ $# -ge 2 ] || { usage >&2; die "$1 needs a value"; }
            case "$1" in
                --build) BUILD=$2 ;; --data) DATA=$2 ;; --epochs) EPOCHS=$2 ;;
                --ranks) RANKS=$2 ;; --rounds) ROUNDS=$2 ;; --out) OUT=$2 ;;
            esac
            shift 2 ;;
        *) usage >&2; die "unknown option '$1'" ;;
    esac
done
for v in EPOCHS RANKS ROUNDS; do
    [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "--${v,,}: expected a positive integer, found '${!v}'"
done
(( RANKS >= 2 )) || die "--ranks: at least 2"
(( 64 % RANKS == 0 )) || die "--ranks: 64 must be a multiple of it (the per-rank batch is 64/N)"
BENCH=$BUILD/benchmarks/bench_dbn
[ -x "$BENCH" ] || die "no $BENCH: build cudl first (scripts/setup.sh)"
command -v mpirun >/dev/null || die "mpirun not found (Debian: apt-get install openmpi-bin)"
[ -d "$DATA" ] || die "no dataset folder $DATA (--data)"
if [ "$(id -u)" -eq 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
export OMPI_MCA_rmaps_base_oversubscribe=1  # N ranks on N cores: Open MPI counts slots strictly

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
common=(--data "$DATA" --epochs "$EPOCHS" --learn-rate 0.1)
if (( PRETRAIN )); then
    common=(--data "$DATA" --epochs 0 --learn-rate 0.1 --pretrain-epochs 1 --pretrain-learn-rate 0.001
            --pretrain-momentum 0.5)
fi
run() {  # run NAME COMMAND...: one run, its --json kept as $work/NAME.ROUND.json
    local name=$1
    shift
    "$@" "${common[@]}" --json "$work/$name.$round.json" >"$work/$name.$round.log" 2>&1 ||
        { cat "$work/$name.$round.log" >&2; die "$name failed (round $round)"; }
}
for round in $(seq 1 "$ROUNDS"); do
    echo "round $round of $ROUNDS" >&2
    run one "$BENCH" --threads 1 --batch 64
    run ranks mpirun -np "$RANKS" "$BENCH" --threads 1 --batch $((64 / RANKS))
    run threads "$BENCH" --threads "$RANKS" --batch 64
    run ranks_big mpirun -np "$RANKS" "$BENCH" --threads 1 --batch 64
done

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs)
python3 - "$work" "$ROUNDS" "$RANKS" "$OUT" "$cpu" "$PRETRAIN" <<'PY'
import json, statistics, sys
work, rounds, ranks, out, cpu = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
pretrain = sys.argv[6] == "1"
rows = [("one", "1 process, 1 thread, batch 64"),
        ("ranks", f"{ranks} ranks × 1 thread, batch {64 // ranks} per rank (global 64)"),
        ("threads", f"1 process, {ranks} threads, batch 64"),
        ("ranks_big", f"{ranks} ranks × 1 thread, batch 64 per rank (global {64 * ranks})")]
runs = {name: [json.load(open(f"{work}/{name}.{r}.json")) for r in range(1, rounds + 1)] for name, _ in rows}
if pretrain:
    first = runs["one"][0]
    layers = [f"{p['visible']}-{p['hidden']}" for p in first["pretraining"]]
    lines = ["| configuration | " + " | ".join(f"RBM {l} s/epoch" for l in layers) +
             " | pretraining s | speed vs 1 process | all-reduce s (rank 0) | RBM 1 reconstruction error |",
             "| --- | " + " | ".join("---" for _ in layers) + " | --- | --- | --- | --- |"]
    total = lambda j: sum(p["epochs"][0]["seconds"] for p in j["pretraining"])
    ref = statistics.median(total(j) for j in runs["one"])
    for name, label in rows:
        js = runs[name]
        per = [statistics.median(j["pretraining"][l]["epochs"][0]["seconds"] for j in js) for l in range(len(layers))]
        t = statistics.median(total(j) for j in js)
        err = statistics.median(j["pretraining"][0]["epochs"][0]["reconstruction_error"] for j in js)
        cells = " | ".join(f"{s:.3f}" for s in per)
        ar = [j["timing"].get("pretrain_allreduce_s") for j in js]
        ar_text = f"{statistics.median(ar):.3f}" if all(a is not None for a in ar) else "—"
        lines.append(f"| {label} | {cells} | {t:.3f} | {ref / t:.2f}× | {ar_text} | {err:.6g} |")
    text = (f"CPU: {cpu}; {rounds} rounds, the median over rounds; dataset {first['dataset']['name']}, one epoch of "
            "pretraining per RBM (learning rate 0.001, momentum 0.5), the seconds of training alone (the "
            "reconstruction errors measured after it are not included); the all-reduce is rank 0's time in the "
            "RBMs' gradient all-reduces, waiting for the other rank included.\n\n" + "\n".join(lines) + "\n")
    print(text)
    if out:
        open(out, "w").write(text)
    sys.exit(0)
ref = statistics.median(j["timing"]["median_epoch_s"] for j in runs["one"])
lines = ["| configuration | median s/epoch | speed vs 1 process | steps/epoch | ms/step | all-reduce ms/step (rank 0) "
         "| compute ms/step | test accuracy |",
         "| --- | --- | --- | --- | --- | --- | --- | --- |"]
for name, label in rows:
    js = runs[name]
    epoch = statistics.median(j["timing"]["median_epoch_s"] for j in js)
    steps = js[0]["epochs"][0]["minibatches"]
    step_ms = 1e3 * epoch / steps
    ar = [j["timing"].get("allreduce_s") for j in js]
    if all(a is not None for a in ar):
        ar_ms = statistics.median(1e3 * a / (j["timing"]["allreduce_calls"] or 1) for a, j in zip(ar, js))
        ar_text, compute_text = f"{ar_ms:.2f}", f"{step_ms - ar_ms:.2f}"
    else:
        ar_text, compute_text = "—", f"{step_ms:.2f}"
    acc = statistics.median(j["test"]["accuracy"] for j in js)
    lines.append(f"| {label} | {epoch:.3f} | {ref / epoch:.2f}× | {steps} | {step_ms:.2f} | {ar_text} "
                 f"| {compute_text} | {acc:.4f} |")
first = runs["one"][0]
text = (f"CPU: {cpu}; {rounds} rounds, the median over rounds of each run's median epoch; dataset "
        f"{first['dataset']['name']}, {first['settings']['epochs']} epochs, learn rate 0.1. The all-reduce is "
        "rank 0's time in it per step, waiting for the other rank included.\n\n" + "\n".join(lines) + "\n")
print(text)
if out:
    open(out, "w").write(text)
PY

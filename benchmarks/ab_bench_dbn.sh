#!/usr/bin/env bash
# Two builds of cudl (two commits, or two settings) side by side: bench_dbn from each, taking turns
# N times (A, B, A, B, ...), and the ratio B/A of each pair's median seconds per epoch, then the
# median of those ratios. On a shared machine whose speed drifts by tens of percent within minutes
# one run of each decides nothing; alternating pairs is how benchmarks/results compares commits.
#   benchmarks/ab_bench_dbn.sh --a build-old --b build --pairs 20
#   benchmarks/ab_bench_dbn.sh --a build --b build --env-b CUDL_GEMM_KERNEL=avx2-fma
#   benchmarks/ab_bench_dbn.sh --a build-old --b build --measure load --epochs 0   (the data's load)
set -euo pipefail

usage() {
    cat <<USAGE
usage: $0 --a DIR --b DIR [--pairs N] [--epochs N] [--threads N] [--measure epoch|load|total]
          [--env-a VAR=VALUE] [--env-b VAR=VALUE] [-- BENCH_DBN_ARGS...]

  --a DIR, --b DIR      build directories holding benchmarks/bench_dbn (may be the same, with --env-*)
  --pairs N             alternated pairs (default: 10)
  --epochs N            epochs per run (default: 2; 0 only with --measure load or total)
  --measure WHAT        what is compared (bench_dbn's --json timing): epoch (default: each run's
                        median seconds per epoch), load (reading the data into the backend's
                        tensors: load_s) or total (the whole run: total_s)
  --threads N           threads (default: nproc)
  --env-a, --env-b      an environment assignment for that side's runs (repeatable)
  -- ARGS               further bench_dbn arguments for both sides (e.g. --data DIR --learn-rate 0.1)
USAGE
}
die() { echo "ab_bench_dbn.sh: $*" >&2; exit 1; }

A= B= PAIRS=10 EPOCHS=2 THREADS=$(nproc) MEASURE=epoch
ENV_A=() ENV_B=() EXTRA=()
while [ $# -gt 0 ]; do
    case "$1" in
        -h|--help) usage; exit 0 ;;
        --a|--b|--pairs|--epochs|--threads|--measure|--env-a|--env-b)
            [ $# -ge 2 ] || { usage >&2; die "$1 needs a value"; }
            case "$1" in
                --a) A=$2 ;; --b) B=$2 ;; --pairs) PAIRS=$2 ;; --epochs) EPOCHS=$2 ;; --threads) THREADS=$2 ;;
                --measure) MEASURE=$2 ;;
                --env-a) ENV_A+=("$2") ;; --env-b) ENV_B+=("$2") ;;
            esac
            shift 2 ;;
        --) shift; EXTRA=("$@"); break ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done
[ -n "$A" ] && [ -n "$B" ] || { usage >&2; die "--a and --b are required"; }
for n in "$PAIRS" "$THREADS"; do
    [[ $n =~ ^[1-9][0-9]*$ ]] || die "--pairs and --threads take positive integers, got '$n'"
done
case "$MEASURE" in epoch|load|total) ;; *) die "--measure takes epoch, load or total, got '$MEASURE'" ;; esac
[[ $EPOCHS =~ ^(0|[1-9][0-9]*)$ ]] || die "--epochs takes a non-negative integer, got '$EPOCHS'"
[ "$EPOCHS" != 0 ] || [ "$MEASURE" != epoch ] || die "--epochs 0 has no epoch to compare: use --measure load or total"
for v in "${ENV_A[@]}" "${ENV_B[@]}"; do
    [[ $v =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || die "--env-a/--env-b take VAR=VALUE, got '$v'"
done
for d in "$A" "$B"; do
    [ -x "$d/benchmarks/bench_dbn" ] || die "$d/benchmarks/bench_dbn not found (build it first)"
done
python3 -c 'import json, statistics' || die "python3 is needed to read the JSON reports"

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
run() {  # run SIDE PAIR
    local dir env=()
    if [ "$1" = a ]; then dir=$A; env=("${ENV_A[@]}"); else dir=$B; env=("${ENV_B[@]}"); fi
    env "${env[@]}" "$dir/benchmarks/bench_dbn" --device cpu --epochs "$EPOCHS" --threads "$THREADS" "${EXTRA[@]}" \
        --json "$TMP/$1.$2.json" >"$TMP/$1.$2.log" 2>&1 || { cat "$TMP/$1.$2.log" >&2; die "bench_dbn ($1, pair $2) failed"; }
}
echo "A: $A/benchmarks/bench_dbn ${ENV_A[*]}"
echo "B: $B/benchmarks/bench_dbn ${ENV_B[*]}"
echo "machine: $(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) CPUs; $(date -u '+%Y-%m-%d %H:%M UTC')"
for i in $(seq 1 "$PAIRS"); do
    run a "$i"
    run b "$i"
done
python3 - "$TMP" "$PAIRS" "$MEASURE" <<'PY'
import json, statistics, sys
tmp, pairs, measure = sys.argv[1], int(sys.argv[2]), sys.argv[3]
key, unit = {"epoch": ("median_epoch_s", "s/epoch"), "load": ("load_s", "s load"), "total": ("total_s", "s total")}[measure]
def read(side, i):
    d = json.load(open(f"{tmp}/{side}.{i}.json"))
    return d["timing"][key], d["test"]["accuracy"]
rows = [(read("a", i), read("b", i)) for i in range(1, pairs + 1)]
print(f"| pair | A {unit} | B {unit} | B/A | A accuracy | B accuracy |")
print("| ---: | ---: | ---: | ---: | ---: | ---: |")
for i, ((ta, aa), (tb, ab)) in enumerate(rows, 1):
    print(f"| {i} | {ta:.3f} | {tb:.3f} | {tb / ta:.3f} | {aa:.4f} | {ab:.4f} |")
ratios = [tb / ta for (ta, _), (tb, _) in rows]
a = [ta for (ta, _), _ in rows]
b = [tb for _, (tb, _) in rows]
print(f"\nA median {statistics.median(a):.3f} {unit} (min {min(a):.3f}); "
      f"B median {statistics.median(b):.3f} (min {min(b):.3f})")
print(f"B/A per pair: median **{statistics.median(ratios):.3f}**, B faster in {sum(r < 1 for r in ratios)} of {pairs}")
PY

#!/usr/bin/env bash
# Run cudl's bench_vgg and the PyTorch peer (benchmarks/peers/vgg_torch.py) side by side in one
# run: same device, network, input size, batch, iterations and threads, alternating the two
# programs (round 1 cudl first, round 2 torch first, ...) so that drift in the machine hits both.
# Prints a table of images/s and the ratio cudl/torch; on the GPU for fp32, tf32 and bf16 (cudl's
# bf16 products beside the peer under torch.autocast). Every precision's round 1 runs before any
# round 2, so a --budget cut leaves one whole round.
set -uo pipefail

usage() {
    cat <<EOF
usage: $0 [options]

  --device cpu|gpu     where both run (default cpu)
  --precision LIST     space- or comma-separated precisions of fp32, tf32, bf16 (default: "fp32 tf32 bf16"
                       on the GPU, fp32 on the CPU; the CPU runs tf32 as fp32, and bf16 emulated, slowly)
  --size S             input SxS (default 224 on the GPU, 32 on the CPU)
  --batch N            images per step (default 64 on the GPU, 16 on the CPU)
  --warmup N           untimed steps per run (default: each program's, 5 on the GPU, 2 on the CPU)
  --iters N            timed steps per run (default 20 on the GPU, 10 on the CPU)
  --threads N          CPU threads for both (default: nproc = $(nproc))
  --rounds R           runs of each program per precision, alternating (default 2)
  --build DIR          cudl build directory holding benchmarks/bench_vgg (default: build in the repository root)
  --python PY          Python with torch for the peer (default: \$PYTHON, else python3)
  --timeout S          limit for each run in seconds (default 600)
  --budget S           stop starting runs after S seconds, and cap each run by what is left (default: none)
  --layers             also profile each layer in every run (each program's --layers: --iters more steps,
                       every layer's forward and backward timed on the device's queue) and print, per
                       precision, the two programs' per-layer times side by side (from the first round
                       where both ran)
  --json-dir DIR       keep every run's JSON and log and the comparison (compare.json, compare.md) in DIR
  --out FILE           also write the comparison as markdown to FILE
Exit status: 0 all runs succeeded, 1 a run failed (the table shows the others), 2 bad usage.
EOF
}

die() { echo "compare_vgg.sh: $*" >&2; exit 2; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$ROOT/build
DEVICE=cpu
PRECISIONS=
SIZE=
BATCH=
WARMUP=
ITERS=
THREADS=$(nproc)
ROUNDS=2
PY=${PYTHON:-python3}
TIMEOUT=600
BUDGET=
KEEP=
OUT=
LAYERS=

while [ $# -gt 0 ]; do
    case "$1" in
        -h|--help) usage; exit 0 ;;
        --layers) LAYERS=1; shift; continue ;;
        --device|--precision|--size|--batch|--warmup|--iters|--threads|--rounds|--build|--python|--timeout|--budget|\
        --json-dir|--out)
            [ $# -ge 2 ] || { usage >&2; die "$1 needs a value"; }
            case "$1" in
                --device) DEVICE=$2 ;;
                --precision) PRECISIONS=${2//,/ } ;;
                --size) SIZE=$2 ;;
                --batch) BATCH=$2 ;;
                --warmup) WARMUP=$2 ;;
                --iters) ITERS=$2 ;;
                --threads) THREADS=$2 ;;
                --rounds) ROUNDS=$2 ;;
                --build) BUILD=$2 ;;
                --python) PY=$2 ;;
                --timeout) TIMEOUT=$2 ;;
                --budget) BUDGET=$2 ;;
                --json-dir) KEEP=$2 ;;
                --out) OUT=$2 ;;
            esac
            shift 2 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done

positive() { [[ $2 =~ ^[1-9][0-9]*$ ]] || die "$1 must be a positive integer, got '$2'"; }
case "$DEVICE" in cpu|gpu) ;; *) die "--device must be cpu or gpu, got '$DEVICE'" ;; esac
[ -n "$PRECISIONS" ] || { [ "$DEVICE" = gpu ] && PRECISIONS="fp32 tf32 bf16" || PRECISIONS=fp32; }
for p in $PRECISIONS; do
    case "$p" in fp32|tf32|bf16) ;; *) die "--precision: expected fp32, tf32 or bf16, got '$p'" ;; esac
done
[ -z "$SIZE" ] || positive --size "$SIZE"
[ -z "$BATCH" ] || positive --batch "$BATCH"
[ -z "$WARMUP" ] || [[ $WARMUP =~ ^[0-9]+$ ]] || die "--warmup must be a whole number, got '$WARMUP'"
[ -z "$ITERS" ] || positive --iters "$ITERS"
positive --threads "$THREADS"
positive --rounds "$ROUNDS"
positive --timeout "$TIMEOUT"
[ -z "$BUDGET" ] || positive --budget "$BUDGET"

BENCH=$BUILD/benchmarks/bench_vgg
PEER=$ROOT/benchmarks/peers/vgg_torch.py
[ -x "$BENCH" ] || die "$BENCH not found; build it first: cmake --build build --target bench_vgg  (or pass --build DIR)"
"$PY" -c 'import torch' 2>/dev/null || die "$PY cannot import torch; pass --python PY (a Python with PyTorch)"

if [ -n "$KEEP" ]; then
    mkdir -p "$KEEP" || die "cannot create $KEEP"
    DIR=$(cd "$KEEP" && pwd)
else
    DIR=$(mktemp -d)
    trap 'rm -rf "$DIR"' EXIT
fi

# The settings both programs get (each fills in its own device defaults for the rest, the same).
COMMON=(--device "$DEVICE" --threads "$THREADS")
[ -n "$SIZE" ] && COMMON+=(--size "$SIZE")
[ -n "$BATCH" ] && COMMON+=(--batch "$BATCH")
[ -n "$WARMUP" ] && COMMON+=(--warmup "$WARMUP")
[ -n "$ITERS" ] && COMMON+=(--iters "$ITERS")
[ -n "$LAYERS" ] && COMMON+=(--layers)

CPU=$(grep -m1 -i '^model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//')
GPU=
[ "$DEVICE" = gpu ] && GPU=$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)
DATE=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
START=$(date +%s)
FAILED=0
: > "$DIR/runs.tsv"   # precision program round rc json log wall_s own_cpu_s other_cpu_s command

# CPU seconds that every process on this machine has used since boot (user, nice, system, irq,
# softirq): its growth during a run, less the run's own CPU time, is what other processes took.
TICKS=$(getconf CLK_TCK 2>/dev/null || echo 100)
busy_s() { awk -v hz="$TICKS" '/^cpu / { printf "%.2f", ($2 + $3 + $4 + $7 + $8) / hz }' /proc/stat 2>/dev/null; }

# run_one PRECISION PROGRAM ROUND: one run, its output shown and kept; skipped (exit status
# "skipped") when less than 20 s of the budget is left.
run_one() {
    local precision=$1 program=$2 round=$3 base cmd rc limit=$TIMEOUT left b0 b1 t0 wall='' own='' other=''
    base=$DIR/$program-$precision-r$round
    if [ -n "$BUDGET" ]; then
        left=$((START + BUDGET - $(date +%s)))
        [ "$left" -lt "$limit" ] && limit=$left
    fi
    if [ "$program" = cudl ]; then
        cmd=("$BENCH" "${COMMON[@]}" --precision "$precision" --json "$base.json")
    else
        cmd=("$PY" "$PEER" "${COMMON[@]}" --precision "$precision" --json "$base.json")
    fi
    rm -f "$base.json"
    if [ "$limit" -lt 20 ]; then
        echo "== $program $precision round $round: skipped, out of time (--budget $BUDGET)"
        rc=skipped
    else
        echo "== $program $precision round $round: $(printf '%q ' "${cmd[@]}")"
        b0=$(busy_s)
        t0=$(date +%s.%N)
        local TIMEFORMAT='%3U %3S'   # bash's time: the run's user and system CPU seconds
        { time { timeout --kill-after=10 "$limit" "${cmd[@]}" 2>&1 | tee "$base.log"; rc=${PIPESTATUS[0]}; }; } \
            2> "$base.cpu"
        b1=$(busy_s)
        wall=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
        own=$(awk '{ printf "%.2f", $1 + $2 }' "$base.cpu" 2>/dev/null)
        [ -n "$b0" ] && [ -n "$b1" ] && [ -n "$own" ] &&
            other=$(awk -v a="$b0" -v b="$b1" -v o="$own" 'BEGIN { x = b - a - o; printf "%.2f", x < 0 ? 0 : x }')
        [ "$rc" = 0 ] || { FAILED=1; echo "== $program $precision round $round failed: exit $rc (124: timed out)"; }
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$precision" "$program" "$round" "$rc" "$base.json" \
        "$base.log" "$wall" "$own" "$other" "$(printf '%q ' "${cmd[@]}")" >> "$DIR/runs.tsv"
    echo
}

for ((round = 1; round <= ROUNDS; round++)); do
    if ((round % 2)); then order=(cudl torch); else order=(torch cudl); fi
    for precision in $PRECISIONS; do
        for program in "${order[@]}"; do run_one "$precision" "$program" "$round"; done
    done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)

# Every run's JSON -> the table (median over rounds of each run's median images/s).
if ! DEVICE=$DEVICE CPU="$CPU" GPU="$GPU" DATE="$DATE" LOAD_BEFORE="$LOAD_BEFORE" LOAD_AFTER="$LOAD_AFTER" \
     THREADS=$THREADS python3 - "$DIR" <<'EOF'
import json, os, statistics, sys

d = sys.argv[1]
runs = []
for line in open(os.path.join(d, "runs.tsv")):
    precision, program, rnd, rc, path, log, wall, own, other, cmd = line.rstrip("\n").split("\t")
    try:
        data = json.load(open(path))
    except (OSError, ValueError):
        data = None
    ok = rc == "0" and data is not None and data.get("status") == "ok"
    number = lambda t: float(t) if t else None
    runs.append({"precision": precision, "program": program, "round": int(rnd), "rc": rc, "ok": ok,
                 "wall_s": number(wall), "own_cpu_s": number(own), "other_cpu_s": number(other),
                 "command": cmd.strip(), "result": data})


def med(xs):
    return statistics.median(xs) if xs else None


def fmt(x, f):
    return format(x, f) if isinstance(x, (int, float)) else "–"


def ips(x):
    """images/s with three significant digits or more (1.52, 58.7, 1234.5)."""
    return fmt(x, ".3g" if isinstance(x, (int, float)) and x < 10 else ".1f")


first = next((r["result"] for r in runs if r["ok"]), None) or {}
s = first.get("settings", {})
env = os.environ
lines = [f"- date: {env['DATE']}",
         f"- device: {env['DEVICE']}" + (f", {env['GPU']}" if env["GPU"] else "")
         + f"; host CPU {env['CPU']} ({os.cpu_count()} logical CPUs), {env['THREADS']} threads",
         f"- VGG16 (configuration D) on 3×{s.get('size', '?')}×{s.get('size', '?')} synthetic images, "
         f"{s.get('classes', '?')} classes, batch {s.get('batch', '?')}; {s.get('warmup', '?')} warm-up + "
         f"{s.get('iters', '?')} timed steps per run (forward, softmax cross-entropy, backward, SGD update)",
         f"- load average before: {env['LOAD_BEFORE']}; after: {env['LOAD_AFTER']}", ""]
for r in runs:
    if r["program"] == "cudl" and r["ok"]:
        lines.insert(2, f"- cudl: {r['result']['device']['description']}")
        break
for r in runs:
    if r["program"] == "torch" and r["ok"]:
        lines.insert(3, f"- torch: {r['result']['device']['description']}; "
                        f"{r['result'].get('torch', {}).get('optimizer', '')}")
        break

lines += ["| precision | program | runs ok | images/s per run (median of its steps) | median images/s "
          "| ms/step | GFLOP/s | mean loss | others' CPU share per run |",
          "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | --- |"]


def percent(x):
    return fmt(100 * x, ".0f") + "%" if x is not None else "–"


def others_share(r):
    """The share of the machine's CPU time that other processes used during the run."""
    if r["other_cpu_s"] is None or not r["wall_s"]:
        return None
    return r["other_cpu_s"] / (r["wall_s"] * (os.cpu_count() or 1))


summary = {}
for precision in dict.fromkeys(r["precision"] for r in runs):
    summary[precision] = {}
    for program in ("cudl", "torch"):
        mine = [r for r in runs if r["precision"] == precision and r["program"] == program]
        good = [r["result"] for r in mine if r["ok"]]
        per_run = [g["images_per_s"]["median"] for g in good]
        ms = [g["ms_per_iteration"]["median"] for g in good]
        m_ips, m_ms = med(per_run), med(ms)
        flop = good[0]["flop_per_iteration"] if good else None
        gflops = flop / (m_ms * 1e-3) * 1e-9 if flop and m_ms else None
        loss = med([g["mean_loss"] for g in good if isinstance(g.get("mean_loss"), (int, float))])
        summary[precision][program] = {"images_per_s": m_ips, "ms": m_ms, "runs": len(mine), "ok": len(good),
                                       "per_run": per_run, "gflops": gflops}
        lines.append(f"| {precision} | {program} | {len(good)}/{len(mine)} | "
                     f"{', '.join(map(ips, per_run)) or '–'} | {ips(m_ips)} | {fmt(m_ms, '.2f')} "
                     f"| {fmt(gflops, '.0f')} | {fmt(loss, '.3f')} "
                     f"| {', '.join(percent(others_share(r)) for r in mine)} |")
lines += ["", "Others' CPU share: CPU time used by other processes during the run (/proc/stat, less the run's own), "
          "over wall time × logical CPUs; 0% on a quiet machine.",
          "", "| precision | cudl/torch images/s | per round |", "| --- | ---: | --- |"]
ratios = {}
for precision, p in summary.items():
    c, t = p["cudl"]["images_per_s"], p["torch"]["images_per_s"]
    ratio = c / t if c and t else None
    ratios[precision] = ratio
    per_round = []
    for rnd in sorted({r["round"] for r in runs if r["precision"] == precision}):
        pair = {r["program"]: r for r in runs if r["precision"] == precision and r["round"] == rnd}
        if all(k in pair and pair[k]["ok"] for k in ("cudl", "torch")):
            per_round.append(pair["cudl"]["result"]["images_per_s"]["median"]
                             / pair["torch"]["result"]["images_per_s"]["median"])
    lines.append(f"| {precision} | **{fmt(ratio, '.3f')}** | {', '.join(fmt(x, '.3f') for x in per_round) or '–'} |")
for precision in summary:  # --layers: the first round where both programs ran and profiled
    rounds = sorted({r["round"] for r in runs if r["precision"] == precision})
    pair = None
    for rnd in rounds:
        got = {r["program"]: r["result"] for r in runs if r["precision"] == precision and r["round"] == rnd
               and r["ok"] and r["result"].get("layers")}
        if len(got) == 2:
            pair = (rnd, got["cudl"], got["torch"])
            break
    if pair is None:
        continue
    rnd, c, t = pair
    lines += ["", f"Per layer, {precision}, round {rnd}: mean ms per step, each layer timed on the device's queue "
              "(cudl: Network::set_layer_timing; torch: module and tensor hooks; CUDA events on a GPU, "
              "the clock on the CPU)", "",
              "| # | cudl layer | torch modules | cudl fwd | torch fwd | cudl bwd | torch bwd | cudl/torch time |",
              "| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    sums = [0.0, 0.0, 0.0, 0.0]
    for i, (a, b) in enumerate(zip(c["layers"], t["layers"])):
        v = [a["forward_ms"], b["forward_ms"], a["backward_ms"], b["backward_ms"]]
        sums = [x + y for x, y in zip(sums, v)]
        both = (v[1] + v[3])
        lines.append(f"| {i} | {a['layer']} | {b['layer']} | " + " | ".join(fmt(x, ".3f") for x in v)
                     + f" | {fmt((v[0] + v[2]) / both if both else None, '.2f')} |")
    rest = [c["layered_step_ms"] - sums[0] - sums[2], t["layered_step_ms"] - sums[1] - sums[3]]
    lines.append(f"| | all layers | | " + " | ".join(f"**{fmt(x, '.2f')}**" for x in sums) + " | |")
    lines.append(f"| | rest (loss, update, gaps) | | {fmt(rest[0], '.2f')} | {fmt(rest[1], '.2f')} | | | |")
    lines.append(f"| | step (median of the profiled steps) | | {fmt(c['layered_step_ms'], '.2f')} "
                 f"| {fmt(t['layered_step_ms'], '.2f')} | | | |")
    if len(c["layers"]) != len(t["layers"]):
        lines.append(f"\n(cudl lists {len(c['layers'])} layers, torch {len(t['layers'])} groups: rows paired in order)")
failed = [r for r in runs if not r["ok"]]
if failed:
    lines += [""] + [f"- {r['program']} {r['precision']} round {r['round']}: "
                     + ("skipped, out of time" if r["rc"] == "skipped" else f"failed (exit {r['rc']}); see its log")
                     for r in failed]
lines += ["", "Commands (one after the other; each program's JSON has every step's time):", "", "```"]
lines += [r["command"] for r in runs if r["rc"] != "skipped"] + ["```"]
text = "\n".join(lines) + "\n"
open(os.path.join(d, "compare.md"), "w").write(text)
with open(os.path.join(d, "compare.json"), "w") as f:
    json.dump({"date": env["DATE"], "device": env["DEVICE"], "gpu": env["GPU"], "cpu": env["CPU"],
               "load_before": env["LOAD_BEFORE"], "load_after": env["LOAD_AFTER"], "summary": summary,
               "ratio_cudl_over_torch": ratios, "runs": runs}, f, indent=1)
    f.write("\n")
print(text, end="")
EOF
then
    echo "compare_vgg.sh: could not summarise the runs in $DIR" >&2
    exit 1
fi

if [ -n "$OUT" ]; then
    { echo "# cudl vs PyTorch: VGG16 training throughput"; echo; cat "$DIR/compare.md"; } > "$OUT" && echo "wrote $OUT"
fi
exit "$FAILED"

#!/usr/bin/env bash
# The whole GPU session in one call: build cudl with CUDA, run the tests and compute-sanitizer,
# time bench_dbn (CPU, GPU fp32/tf32, MNIST t10k) and the PyTorch peer (eager/graph, fp32/tf32),
# the CUDA primitives (the 2014 step's, then convolution/pooling/dropout), then VGG16 beside
# PyTorch (benchmarks/compare_vgg.sh, fp32 and tf32), and print a summary table LAST (only the
# tail of the output comes back).
#
#   bash benchmarks/run_device.sh              # from the repository root, on the GPU machine
#   bash benchmarks/run_device.sh --dry-run    # print every command, run none
#   bash benchmarks/run_device.sh --summarise DIR   # only rerun the summary on DIR (manifest.tsv + JSON)
#
# Expects .device/prefix (Eigen, GoogleTest, Google Benchmark) and .device/data/{fashion-mnist,mnist}
# staged by the caller. Writes at most 8 files under $OUT (default ./device-out): system.txt,
# build.log, tests.log, sanitizer.log, bench.log, primitives.log, results.md, results.json.
# Environment: OUT, STAGED (default .device), PYTHON (default python3), BUDGET_S, OPTIONAL_S, VGG_S,
# VGG_ROUNDS. Stays within BUDGET_S seconds (default 530): every step's timeout is capped by what
# is left, and the optional steps (sanitizers, primitives, the 10-epoch CPU run) are skipped after
# OPTIONAL_S seconds (default 420) and leave VGG_S seconds (default 150) to the VGG16 comparison,
# which runs last (VGG_ROUNDS rounds of each program, default 2; VGG_S=0 skips it).
set -uo pipefail

usage() { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; }

DRY=0
SUMMARISE_DIR=
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) DRY=1; shift ;;
        --summarise) [ $# -ge 2 ] || { usage >&2; exit 2; }; SUMMARISE_DIR=$2; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "run_device.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
    esac
done

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 2
OUT=${OUT:-$ROOT/device-out}
if [ "$DRY" = 0 ]; then
    mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd) || exit 2
fi
BUDGET_S=${BUDGET_S:-530}
OPTIONAL_S=${OPTIONAL_S:-420}
VGG_S=${VGG_S:-150}
VGG_ROUNDS=${VGG_ROUNDS:-2}
RESERVE=0   # seconds that cap() keeps back for a later step (the VGG16 comparison)
START=$(date +%s)
DEADLINE=$((START + BUDGET_S))
BUILD=build-device
STAGED=${STAGED:-.device}        # staged by the caller: prefix/ and data/{fashion-mnist,mnist}
STAGED_ABS=$(cd "$STAGED" 2>/dev/null && pwd) || STAGED_ABS=$ROOT/$STAGED
PREFIX=$STAGED_ABS/prefix
FASHION=$STAGED/data/fashion-mnist
MNIST=$STAGED/data/mnist
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1

SYSINFO=$OUT/system.txt
BUILD_LOG=$OUT/build.log
TESTS_LOG=$OUT/tests.log
SAN_LOG=$OUT/sanitizer.log
BENCH_LOG=$OUT/bench.log
PRIM_LOG=$OUT/primitives.log

if [ -n "$SUMMARISE_DIR" ]; then
    WORK=$(cd "$SUMMARISE_DIR" && pwd) || exit 2
else
    WORK=$(mktemp -d)
    trap 'rm -rf "$WORK"' EXIT
fi
MANIFEST=$WORK/manifest.tsv     # one line per timed run: name program device mode precision data rc wall_s json note
STATUS=$WORK/status.tsv         # one line per check: name state detail

elapsed() { echo $(($(date +%s) - START)); }
say() { printf '[%3ds] %s\n' "$(elapsed)" "$*"; }
now() { date +%s.%N; }
seconds_since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
record() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >> "$STATUS"; }

# Seconds a step may take: at most $1, and never past the deadline (less a margin for the summary
# and the RESERVE kept for a later step). Prints 0 when too little is left.
cap() {
    local want=$1 left
    left=$((DEADLINE - $(date +%s) - 15 - RESERVE))
    [ "$left" -lt "$want" ] && want=$left
    [ "$want" -lt 10 ] && want=0
    echo "$want"
}

# Optional steps run only before OPTIONAL_S seconds have passed.
optional_ok() { [ "$(elapsed)" -lt "$OPTIONAL_S" ]; }

# run_logged LOG LIMIT CMD...: appends the command and its output to LOG, under timeout LIMIT.
# Sets RC (124 = timed out), WALL (seconds) and LOG_START (LOG's line count before this run).
# In --dry-run mode only prints the command.
run_logged() {
    local log=$1 limit=$2 t0
    shift 2
    if [ "$DRY" = 1 ]; then
        printf '+ (timeout %s, >> %s) %s\n' "$limit" "${log#"$ROOT"/}" "$(printf '%q ' "$@")"
        RC=0; WALL=0; LOG_START=0
        return 0
    fi
    LOG_START=$( (cat "$log" 2>/dev/null || true) | wc -l)
    { echo; echo "===== $(date -u +%H:%M:%S) $(printf '%q ' "$@")"; } >> "$log"
    t0=$(now)
    timeout --kill-after=10 "$limit" "$@" >> "$log" 2>&1
    RC=$?
    WALL=$(seconds_since "$t0")
    echo "===== exit $RC after ${WALL}s" >> "$log"
}

# bench NAME PROGRAM DEVICE MODE PRECISION DATA LIMIT CMD...: a timed run with --json into WORK.
bench() {
    local name=$1 program=$2 device=$3 mode=$4 precision=$5 data=$6 limit json
    limit=$(cap "$7")
    shift 7
    json=$WORK/$name.json
    if [ "$limit" = 0 ]; then
        say "skip $name: out of time"
        printf '%s\t%s\t%s\t%s\t%s\t%s\tskipped\t\t\n' "$name" "$program" "$device" "$mode" "$precision" "$data" >> "$MANIFEST"
        return
    fi
    run_logged "$BENCH_LOG" "$limit" "$@" --json "$json"
    [ -s "$json" ] || json=
    local note=
    if [ "$RC" != 0 ] && [ "$DRY" = 0 ]; then   # the run's last line of output before the exit marker
        note=$(tail -n 2 "$BENCH_LOG" | head -n 1 | tr '\t|' '  ' | cut -c1-200)
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$program" "$device" "$mode" "$precision" "$data" \
        "$RC" "$WALL" "$json" "$note" >> "$MANIFEST"
    say "$name: exit $RC, ${WALL}s${note:+: $note}"
}

summarise() {
    GPU_NAME=${GPU_NAME:-unknown} GPU_DRIVER=${GPU_DRIVER:-unknown} GIT_COMMIT=${GIT_COMMIT:-unknown} \
    "$PY" - "$WORK" "$OUT" <<'PYEOF'
"""Reads WORK/manifest.tsv, WORK/status.tsv and the runs' JSON; writes OUT/results.md and OUT/results.json."""
import datetime, json, os, statistics, sys

work, out = sys.argv[1], sys.argv[2]
runs = []
if os.path.exists(os.path.join(work, "manifest.tsv")):
    for line in open(os.path.join(work, "manifest.tsv")):
        f = line.rstrip("\n").split("\t")
        if len(f) < 9:
            continue
        r = dict(zip(("name", "program", "device", "mode", "precision", "dataset", "rc", "wall_s", "json", "note"), f))
        r.setdefault("note", "")
        r["data"] = None            # the run's own JSON
        try:
            r["data"] = json.load(open(f[8])) if f[8] else None
        except (OSError, ValueError) as e:
            r["json_error"] = str(e)
        runs.append(r)
checks = []
if os.path.exists(os.path.join(work, "status.tsv")):
    for line in open(os.path.join(work, "status.tsv")):
        f = line.rstrip("\n").split("\t") + ["", ""]
        checks.append({"check": f[0], "state": f[1], "detail": f[2]})


def epochs_of(r):
    d = r["data"] or {}
    return d.get("epochs") or []


def seconds(r):
    return [e["seconds"] for e in epochs_of(r) if isinstance(e.get("seconds"), (int, float))]


def median_later(r):
    s = seconds(r)
    return statistics.median(s[1:]) if len(s) > 1 else (s[0] if s else None)


def first_epoch(r):
    s = seconds(r)
    return s[0] if s else None


def accuracy(r):
    d = r["data"] or {}
    if r["program"] == "cudl":
        t = d.get("test")
        return t.get("accuracy") if isinstance(t, dict) else None
    return d.get("test_accuracy")


def status_of(r):
    if r["rc"] == "skipped":
        return "skipped"
    d = r["data"] or {}
    s = d.get("status") or ("ok" if r["rc"] == "0" else None)
    if r["rc"] in ("124", "137"):
        return "timeout"
    if r["rc"] != "0":
        return f"exit {r['rc']}" + (f" ({s})" if s and s != "ok" else "")
    return s or "no json"


def ms(x):
    return f"{x * 1e3:.2f}" if isinstance(x, (int, float)) else "–"


def num(x, fmt):
    return format(x, fmt) if isinstance(x, (int, float)) else "–"


def find(name):
    for r in runs:
        if r["name"] == name:
            return r
    return None


def ratio(slow, fast):
    a, b = find(slow), find(fast)
    if not a or not b or median_later(a) is None or median_later(b) in (None, 0):
        return None
    return median_later(a) / median_later(b)


rows = []
for r in runs:
    d = r["data"] or {}
    process = d.get("process_seconds") if r["program"] == "torch" else (d.get("timing") or {}).get("total_s")
    rows.append({"run": r["name"], "program": r["program"], "device": r["device"], "mode": r["mode"],
                 "precision": r["precision"], "dataset": r["dataset"], "status": status_of(r),
                 "epochs": len(epochs_of(r)), "epoch1_s": first_epoch(r), "median_s": median_later(r),
                 "accuracy": accuracy(r), "wall_s": float(r["wall_s"]) if r["wall_s"] else None,
                 "self_reported_s": process, "warmup_s": d.get("warmup_seconds")})

ratios = {
    "torch eager fp32 / cudl gpu fp32": ratio("torch-eager-fp32", "cudl-gpu-fp32"),
    "torch graph fp32 / cudl gpu fp32": ratio("torch-graph-fp32", "cudl-gpu-fp32"),
    "torch eager tf32 / cudl gpu tf32": ratio("torch-eager-tf32", "cudl-gpu-tf32"),
    "torch graph tf32 / cudl gpu tf32": ratio("torch-graph-tf32", "cudl-gpu-tf32"),
    "cudl cpu / cudl gpu fp32": ratio("cudl-cpu", "cudl-gpu-fp32"),
    "cudl gpu fp32 / cudl gpu tf32": ratio("cudl-gpu-fp32", "cudl-gpu-tf32"),
    "cudl gpu eager fp32 / cudl gpu captured fp32": ratio("cudl-gpu-fp32-eager", "cudl-gpu-fp32"),
}


def med(name):
    r = find(name)
    return median_later(r) if r else None


def verdict(value, ok):
    if value is None:
        return "not measured"
    return "met" if ok(value) else "missed"


walls = [x["wall_s"] for x in rows if x["run"] in ("cudl-gpu-fp32", "cudl-gpu-fp32-again")
         and x["status"] == "ok" and x["wall_s"] is not None]
best_wall = min(walls) if walls else None
acc_gpu = accuracy(find("cudl-gpu-fp32")) if find("cudl-gpu-fp32") else None
acc_cpu_run = find("cudl-cpu-10") or None
acc_cpu = accuracy(acc_cpu_run) if acc_cpu_run else None
acc_diff = abs(acc_gpu - acc_cpu) if acc_gpu is not None and acc_cpu is not None else None
# Same seed and minibatches: the trajectories should agree over the CPU run's epochs.
traj = None
gpu_e, cpu_e = epochs_of(find("cudl-gpu-fp32") or {"data": None}), epochs_of(find("cudl-cpu") or {"data": None})
if gpu_e and cpu_e:
    n = min(len(gpu_e), len(cpu_e))
    traj = max(abs(gpu_e[i]["loss"] - cpu_e[i]["loss"]) / max(abs(cpu_e[i]["loss"]), 1e-12) for i in range(n))

fp32, tf32 = med("cudl-gpu-fp32"), med("cudl-gpu-tf32")
r_eager, r_graph = ratios["torch eager fp32 / cudl gpu fp32"], ratios["torch graph fp32 / cudl gpu fp32"]
targets = [
    ("fp32 ms/epoch ≤ 20 (stretch 10)", ms(fp32),
     "not measured" if fp32 is None else ("stretch met" if fp32 <= 0.010 else verdict(fp32, lambda v: v <= 0.020))),
    ("tf32 ms/epoch ≤ 8 (stretch 5)", ms(tf32),
     "not measured" if tf32 is None else ("stretch met" if tf32 <= 0.005 else verdict(tf32, lambda v: v <= 0.008))),
    ("≥ 10× faster than torch eager (fp32)", num(r_eager, ".1f") + "×", verdict(r_eager, lambda v: v >= 10)),
    ("≥ 1.5× faster than torch graph (fp32)", num(r_graph, ".2f") + "×", verdict(r_graph, lambda v: v >= 1.5)),
    ("whole bench_dbn gpu fp32 process ≤ 1.0 s", num(best_wall, ".2f") + " s", verdict(best_wall, lambda v: v <= 1.0)),
    ("test accuracy equal to CPU within noise (difference ≤ 0.005)",
     f"gpu {num(acc_gpu, '.4f')} vs cpu {num(acc_cpu, '.4f')}", verdict(acc_diff, lambda v: v <= 0.005)),
    ("loss trajectory gpu fp32 vs cpu (first epochs, max rel. diff)", num(traj, ".2e"),
     "info" if traj is not None else "not measured"),
]

# VGG16 beside PyTorch (step 7): compare_vgg.sh's table and JSON, if it ran.
vgg, vgg_md = None, None
try:
    vgg = json.load(open(os.path.join(work, "vgg", "compare.json")))
    vgg_md = open(os.path.join(work, "vgg", "compare.md")).read()
except (OSError, ValueError):
    pass
vgg_settings = next(((r.get("result") or {}).get("settings") for r in (vgg or {}).get("runs", []) if r.get("ok")),
                    None)
vgg_shape = (f"{vgg_settings['size']}×{vgg_settings['size']} batch {vgg_settings['batch']}, {vgg['device']}"
             if vgg_settings else "224×224 batch 64")
for precision in ("fp32", "tf32"):
    v = ((vgg or {}).get("ratio_cudl_over_torch") or {}).get(precision)
    targets.append((f"VGG16 {vgg_shape} {precision}: images/s within 10% of PyTorch (cudl/torch ≥ 0.90)",
                    num(v, ".3f"), verdict(v, lambda x: x >= 0.90)))

date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
gpu, driver, commit = os.environ["GPU_NAME"], os.environ["GPU_DRIVER"], os.environ["GIT_COMMIT"]
md = [f"# cudl on the GPU: {gpu}", "",
      f"{date}, driver {driver}, commit {commit}. Times: median of epochs 2..N (epoch 1 apart); "
      "wall = the whole process, measured outside it; warm-up = the torch peer's undone warm-up "
      "steps and graph capture, outside its epoch times.", "",
      "| run | device | mode | precision | data | status | epochs | epoch 1 ms | median ms/epoch | test acc | wall s | warm-up s |",
      "| --- | --- | --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
for x in rows:
    md.append(f"| {x['run']} | {x['device']} | {x['mode']} | {x['precision']} | {os.path.basename(x['dataset'])} "
              f"| {x['status']} | {x['epochs']} | {ms(x['epoch1_s'])} | {ms(x['median_s'])} "
              f"| {num(x['accuracy'], '.4f')} | {num(x['wall_s'], '.2f')} | {num(x['warmup_s'], '.2f')} |")
failed = [r for r in runs if r["rc"] not in ("0", "skipped")]
if failed:
    md += [""] + [f"- {r['name']} failed (exit {r['rc']}): {r['note'] or 'see bench.log'}" for r in failed]
md += ["", "| ratio (median s/epoch) | value |", "| --- | ---: |"]
md += [f"| {k} | {num(v, '.2f')}× |" for k, v in ratios.items()]
md += ["", "| target | measured | verdict |", "| --- | --- | --- |"]
md += [f"| {t} | {m} | {v} |" for t, m, v in targets]
md += ["", "| check | state | detail |", "| --- | --- | --- |"]
md += [f"| {c['check']} | {c['state']} | {c['detail']} |" for c in checks]
if vgg_md:
    md += ["", "## VGG16 beside PyTorch (benchmarks/compare_vgg.sh)", "", vgg_md.rstrip()]
text = "\n".join(md) + "\n"
with open(os.path.join(out, "results.md"), "w") as f:
    f.write(text)
with open(os.path.join(out, "results.json"), "w") as f:
    json.dump({"date": date, "gpu": gpu, "driver": driver, "commit": commit, "rows": rows,
               "ratios": ratios, "targets": [dict(zip(("target", "measured", "verdict"), t)) for t in targets],
               "checks": checks, "vgg16": vgg,
               "runs": [{k: v for k, v in r.items() if k != "data"} | {"result": r["data"]} for r in runs]},
              f, indent=1)
    f.write("\n")
PYEOF
}

if [ -n "$SUMMARISE_DIR" ]; then
    summarise && cat "$OUT/results.md"
    exit
fi

# ---------------------------------------------------------------------------------------------
# 1. System information; cuDNN from PyTorch's wheel.
[ -d /usr/local/cuda/bin ] && case ":$PATH:" in *:/usr/local/cuda/bin:*) ;; *) PATH=$PATH:/usr/local/cuda/bin ;; esac
GIT_COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ "$GIT_COMMIT" != unknown ] && ! git diff --quiet HEAD 2>/dev/null; then GIT_COMMIT="$GIT_COMMIT+changes"; fi
GPU_CSV=$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1)
GPU_NAME=${GPU_CSV%%,*}
GPU_DRIVER=${GPU_CSV#*, }
[ -n "$GPU_CSV" ] || { GPU_NAME=unknown; GPU_DRIVER=unknown; }
CUDNN_PATH=$("$PY" -c 'import nvidia.cudnn as m; print(list(m.__path__)[0])' 2>/dev/null) || CUDNN_PATH=
export GIT_COMMIT GPU_NAME GPU_DRIVER CUDNN_PATH
if [ -n "$CUDNN_PATH" ]; then
    export LD_LIBRARY_PATH="$CUDNN_PATH/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
if [ "$DRY" = 1 ]; then
    echo "+ (>> system.txt) nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv;" \
         "nvcc --version; cmake --version; ninja --version; compute-sanitizer --version; $PY -c 'import torch ...'"
else {
    echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "commit: $GIT_COMMIT"
    echo "host: $(uname -srm); $(nproc) CPUs; $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//')"
    echo; echo "## nvidia-smi"
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1
    echo; echo "## nvcc"
    nvcc --version 2>&1
    echo; echo "## cmake / ninja / compute-sanitizer"
    cmake --version 2>&1 | head -1
    echo "ninja $(ninja --version 2>&1)"
    compute-sanitizer --version 2>&1 | tail -1
    echo; echo "## python"
    "$PY" -c 'import sys, torch, numpy; print(sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, "numpy", numpy.__version__)' 2>&1
    echo "CUDNN_PATH=${CUDNN_PATH:-<not found: python3 -c import nvidia.cudnn failed>}"
    echo; echo "## staged inputs"
    ls -d "$PREFIX" "$FASHION" "$MNIST" 2>&1
} > "$SYSINFO" 2>&1
fi
say "GPU: $GPU_NAME (driver $GPU_DRIVER); commit $GIT_COMMIT; cuDNN: ${CUDNN_PATH:-NOT FOUND}"
[ -n "$CUDNN_PATH" ] || record cudnn missing "python3 -c 'import nvidia.cudnn' failed; configure will likely fail"

# ---------------------------------------------------------------------------------------------
# 2. Configure and build.
CONFIGURE=(cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release "-DCMAKE_PREFIX_PATH=$PREFIX"
           -DCMAKE_CUDA_ARCHITECTURES=90 -DCUDL_CUDA=ON "-DCUDNN_PATH=$CUDNN_PATH")
t_build=$(now)
run_logged "$BUILD_LOG" "$(cap 150)" "${CONFIGURE[@]}"
if [ "$RC" = 0 ]; then
    run_logged "$BUILD_LOG" "$(cap 300)" cmake --build "$BUILD" -j16
fi
if [ "$RC" != 0 ]; then
    record build FAILED "exit $RC; see build.log"
    echo
    echo "BUILD FAILED (exit $RC; 124 = timed out). Last 60 lines of $BUILD_LOG:"
    tail -n 60 "$BUILD_LOG"
    summarise >/dev/null 2>&1
    echo
    echo "run_device.sh: stopped: the build failed, nothing was run. Logs in $OUT."
    exit 1
fi
record build ok "$(seconds_since "$t_build") s (configure + build)"
say "build ok"

# ---------------------------------------------------------------------------------------------
# 3. Tests (the sanitizers run later, after the timed runs: they are slow and optional).
run_logged "$TESTS_LOG" "$(cap 180)" ctest --test-dir "$BUILD" -j8 --output-on-failure --timeout 120
CTEST_LINE=$(grep -E 'tests passed|tests failed' "$TESTS_LOG" 2>/dev/null | tail -1)
if [ "$RC" = 0 ]; then record ctest ok "${CTEST_LINE:-}"; else record ctest "FAILED (exit $RC)" "${CTEST_LINE:-see tests.log}"; fi
say "ctest: exit $RC; ${CTEST_LINE:-}"

# ---------------------------------------------------------------------------------------------
# 4. bench_dbn.
BENCH_DBN=$BUILD/benchmarks/bench_dbn
bench cudl-gpu-fp32 cudl gpu - fp32 "$FASHION" 90 "$BENCH_DBN" --device gpu --precision fp32 --data "$FASHION"
bench cudl-gpu-fp32-again cudl gpu - fp32 "$FASHION" 90 "$BENCH_DBN" --device gpu --precision fp32 --data "$FASHION"
bench cudl-gpu-tf32 cudl gpu - tf32 "$FASHION" 90 "$BENCH_DBN" --device gpu --precision tf32 --data "$FASHION"
bench cudl-gpu-fp32-eager cudl gpu eager fp32 "$FASHION" 90 "$BENCH_DBN" --device gpu --precision fp32 --launch eager --data "$FASHION"
bench cudl-cpu cudl cpu - fp32 "$FASHION" 120 "$BENCH_DBN" --device cpu --threads 16 --data "$FASHION" --epochs 3
bench cudl-gpu-fp32-mnist cudl gpu - fp32 "$MNIST" 90 "$BENCH_DBN" --device gpu --precision fp32 --data "$MNIST"

# ---------------------------------------------------------------------------------------------
# 5. The PyTorch peer, same data and settings (most wanted first, in case time runs short).
PEER=benchmarks/peers/dbn_torch.py
for run in eager-fp32 graph-fp32 graph-tf32 eager-tf32; do
    mode=${run%-*}
    precision=${run#*-}
    bench "torch-$run" torch cuda "$mode" "$precision" "$FASHION" 150 \
        "$PY" "$PEER" --device cuda --mode "$mode" --precision "$precision" --data "$FASHION" --epochs 10
done

# ---------------------------------------------------------------------------------------------
# 6. Optional, shortest first: the CUDA primitives, a 10-epoch CPU run (accuracy next to the
#    GPU's), compute-sanitizer on the CUDA parity tests. Each skipped once OPTIONAL_S seconds have
#    passed, and each leaves VGG_S seconds for step 7.
[ "$VGG_S" -gt 0 ] 2>/dev/null && RESERVE=$VGG_S

# The CUDA primitives: bench_cuda_primitives if built, else bench_primitives' CUDA cases if any.
# The convolution, pooling and dropout cases run on their own, after the others, so that one
# failing there (a primitive not yet written, a cuDNN error) loses none of the others.
CNN_FILTER='Conv2d|Pool2d|Dropout|Channel'
prim_run() {   # prim_run NAME LIMIT MIN_TIME BINARY [FILTER]
    local name=$1 limit=$2 min_time=$3 bin=$4 filter=${5:-}
    local args=("$bin" "--benchmark_min_time=$min_time")   # a plain number: seconds, in old and new versions
    [ -n "$filter" ] && args+=("--benchmark_filter=$filter")
    run_logged "$PRIM_LOG" "$(cap "$limit")" "${args[@]}"
    local errors
    errors=$(tail -n "+$((LOG_START + 1))" "$PRIM_LOG" 2>/dev/null | grep -c 'ERROR OCCURRED')
    record "$name" "$([ "$RC" = 0 ] && echo ok || echo "exit $RC")" \
        "$(basename "$bin")${filter:+ (filter $filter)}: ${errors:-0} cases reported an error; see primitives.log"
}
if ! optional_ok || [ "$(cap 60)" = 0 ]; then
    record primitives skipped "out of time"
elif [ -x "$BUILD/benchmarks/bench_cuda_primitives" ] || [ "$DRY" = 1 ]; then
    prim_run primitives 120 0.2 "$BUILD/benchmarks/bench_cuda_primitives" "-$CNN_FILTER"
    if optional_ok && [ "$(cap 60)" != 0 ]; then
        prim_run "primitives (conv, pool, dropout)" 150 0.1 "$BUILD/benchmarks/bench_cuda_primitives" "$CNN_FILTER"
    else
        record "primitives (conv, pool, dropout)" skipped "out of time"
    fi
elif [ -x "$BUILD/benchmarks/bench_primitives" ] &&
     "$BUILD/benchmarks/bench_primitives" --benchmark_list_tests=true 2>/dev/null | grep -qiE 'cuda|gpu'; then
    prim_run primitives 120 0.2 "$BUILD/benchmarks/bench_primitives" '[Cc][Uu][Dd][Aa]|[Gg][Pp][Uu]'
else
    record primitives "no GPU cases" "neither bench_cuda_primitives nor CUDA cases in bench_primitives"
fi
say "primitives done"

if optional_ok; then
    bench cudl-cpu-10 cudl cpu - fp32 "$FASHION" 90 "$BENCH_DBN" --device cpu --threads 16 --data "$FASHION"
else
    say "skip cudl-cpu-10: out of time"
fi

# The parity tests under compute-sanitizer: the 2014 step's primitives, then the convolutional
# ones (cuDNN's autotuning off there: it would time every engine under the sanitizer).
for tool in memcheck racecheck; do
  for unit in test_cuda_parity test_cuda_parity_conv test_cuda_parity_bn; do
    PARITY=$BUILD/tests/$unit
    name=$tool
    [ "$unit" = test_cuda_parity ] || name="$tool-${unit#test_cuda_parity_}"
    if [ ! -x "$PARITY" ] && [ "$DRY" = 0 ]; then
        record "$name" absent "$PARITY was not built"
        continue
    fi
    if ! optional_ok || [ "$(cap 150)" = 0 ]; then
        record "$name" skipped "out of time (${OPTIONAL_S}s budget for optional steps)"
        say "skip $name: out of time"
        continue
    fi
    run_logged "$SAN_LOG" "$(cap 150)" env CUDL_CUDNN_AUTOTUNE=0 compute-sanitizer --tool "$tool" --print-limit 50 \
        "$PARITY" --gtest_brief=1
    summary=$(tail -n "+$((LOG_START + 1))" "$SAN_LOG" 2>/dev/null | grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' |
              tail -1 | sed 's/^=* *//')
    if [ "$RC" = 124 ]; then
        record "$name" timeout "killed after the time limit; ${summary:-no summary}"
    elif grep -qE 'ERROR SUMMARY: 0 errors|RACECHECK SUMMARY: .*\(0 errors' <<< "$summary"; then
        record "$name" clean "${summary} (test exit $RC)"
    else
        record "$name" errors "${summary:-no summary line} (test exit $RC); see sanitizer.log"
    fi
    say "$name: exit $RC; ${summary:-}"
  done
done

# ---------------------------------------------------------------------------------------------
# 7. VGG16 beside PyTorch on this GPU (benchmarks/compare_vgg.sh: 224×224, batch 64, fp32 then
#    tf32, alternating the programs), last: its failure or timeout loses nothing above, and its
#    table lands in results.md (the runs' output in bench.log).
RESERVE=0
VGG_DIR=$WORK/vgg
if [ "$VGG_S" -le 0 ] 2>/dev/null; then
    record vgg16 skipped "VGG_S=$VGG_S"
elif [ ! -x "$BUILD/benchmarks/bench_vgg" ] && [ "$DRY" = 0 ]; then
    record vgg16 absent "$BUILD/benchmarks/bench_vgg was not built"
elif [ "$(cap "$VGG_S")" = 0 ]; then
    record vgg16 skipped "out of time"
    say "skip vgg16: out of time"
else
    limit=$(cap "$VGG_S")
    run_logged "$BENCH_LOG" "$limit" bash benchmarks/compare_vgg.sh --device gpu --build "$BUILD" --python "$PY" \
        --size 224 --batch 64 --rounds "$VGG_ROUNDS" --budget "$((limit > 30 ? limit - 10 : limit))" \
        --json-dir "$VGG_DIR"
    ratios=$("$PY" -c 'import json, sys
r = json.load(open(sys.argv[1]))["ratio_cudl_over_torch"]
print(", ".join(f"{p} {v:.3f}" if v else f"{p} -" for p, v in r.items()))' "$VGG_DIR/compare.json" 2>/dev/null)
    record vgg16 "$([ "$RC" = 0 ] && echo ok || echo "exit $RC")" \
        "cudl/torch images/s: ${ratios:-not measured}; runs in bench.log"
    say "vgg16: exit $RC; cudl/torch ${ratios:-not measured}"
fi

# ---------------------------------------------------------------------------------------------
# 8. Summary, printed last.
if [ "$DRY" = 1 ]; then
    echo "+ summarise $WORK -> $OUT/results.md, $OUT/results.json (python3 heredoc)"
    exit 0
fi
record "total time" "$(elapsed) s" "budget ${BUDGET_S} s"
if ! summarise; then
    echo "run_device.sh: the summariser failed; raw logs are in $OUT"
    exit 1
fi
echo
cat "$OUT/results.md"

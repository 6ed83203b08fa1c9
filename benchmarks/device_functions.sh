# Helpers of benchmarks/run_device.sh, sourced by it after its settings (DRY, ROOT, START,
# DEADLINE, RESERVE, OPTIONAL_S, WORK, MANIFEST, STATUS, the logs, BUILD, PY): timing, logging,
# the timed runs' manifest, the kernels' gates and the primitives' runs. Not run on its own.
# shellcheck shell=bash
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
    if ! [ "$limit" -gt 0 ] 2>/dev/null; then   # `timeout 0` would mean no limit at all
        { echo; echo "===== skipped (no time left): $(printf '%q ' "$@")"; } >> "$log"
        RC=124; WALL=0
        return 0
    fi
    { echo; echo "===== $(date -u +%H:%M:%S) $(printf '%q ' "$@")"; } >> "$log"
    t0=$(now)
    timeout --kill-after=10 "$limit" "$@" >> "$log" 2>&1
    RC=$?
    WALL=$(seconds_since "$t0")
    echo "===== exit $RC after ${WALL}s" >> "$log"
}

# bench NAME PROGRAM DEVICE MODE PRECISION DATA LIMIT CMD...: a timed run with --json into WORK.
# PROGRAM lenet (mnist_lenet) writes no JSON: its output is kept as WORK/NAME.log instead, and
# device_summary.py reads its epochs and test accuracy from that.
bench() {
    local name=$1 program=$2 device=$3 mode=$4 precision=$5 data=$6 limit json
    limit=$(cap "$7")
    shift 7
    json=$WORK/$name.json
    if [ "$limit" = 0 ]; then
        say "skip $name: out of time"
        printf '%s\t%s\t%s\t%s\t%s\t%s\tskipped\t\t\n' "$name" "$program" "$device" "$mode" "$precision" "$data" \
            >> "$MANIFEST"
        return
    fi
    if [ "$program" = lenet ]; then
        json=$WORK/$name.log
        run_logged "$BENCH_LOG" "$limit" "$@"
        [ "$DRY" = 1 ] || tail -n "+$((LOG_START + 1))" "$BENCH_LOG" > "$json"
    else
        run_logged "$BENCH_LOG" "$limit" "$@" --json "$json"
    fi
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
    VGG_PRECISIONS=$VGG_PRECISIONS "$PY" "$ROOT/benchmarks/device_summary.py" "$WORK" "$OUT"
}

# A kernel of cudl's own gated by its test: where the test fails or times out, every later step
# runs without the kernel (the variable given), so that a wrong kernel costs no other result.
gate() {   # gate NAME TEST VAR=VALUE: 0 passed, 1 failed (VAR exported), 2 not built
    [ -x "$BUILD/tests/$2" ] || [ "$DRY" = 1 ] || return 2
    run_logged "$TESTS_LOG" "$(cap 60)" "$BUILD/tests/$2"
    say "$1: exit $RC"
    [ "$RC" = 0 ] && { record "$1" ok "$2 passed: cudl's kernel is used"; return 0; }
    export "${3?}"
    record "$1" "$([ "$RC" = 124 ] && echo "timed out or skipped" || echo "FAILED (exit $RC)")" \
        "later steps run with $3 (except ctest's entries that force a mode); see tests.log"
    return 1
}

# Cases of bench_cuda_primitives (or bench_primitives) into PRIM_LOG, with how many reported an error.
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

#!/usr/bin/env bash
# resume.sh <bench_dbn> <data dir>: bench_dbn's checkpoints end to end. A run saved after 2 epochs
# and resumed to 4, and a run stopped by SIGINT inside an epoch and resumed, must print the same
# epoch losses and test accuracy as the run done in one go; the stopped run must exit 130 and
# write a --json marked "interrupted" with its finished epochs.
set -euo pipefail
bench=$1
data=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
run() { "$bench" --data "$data" --layers 784,100,10 --threads 2 "$@"; }
# The lines a resumed run must reproduce: every epoch's loss and err, then the accuracy.
results() { grep -E '^  (loss|err) |^test accuracy' "$1"; }

run --epochs 4 >"$dir/straight.txt"
run --epochs 2 --checkpoint "$dir/run.ckpt" >"$dir/first.txt"
run --epochs 4 --resume "$dir/run.ckpt" --json "$dir/resumed.json" >"$dir/resumed.txt"
grep -q "resuming $dir/run.ckpt: 2 epochs done" "$dir/resumed.txt"
diff <(results "$dir/straight.txt" | tail -n 5) <(results "$dir/resumed.txt" | tail -n 5)
grep -q '"resumed_epochs": 2' "$dir/resumed.json"

epochs=200  # long enough that the signal lands while training
run --epochs $epochs >"$dir/straight_long.txt"
# bench_dbn itself in the background (not through run(), whose subshell would take the signal);
# bash starts background jobs with SIGINT ignored, and bench_dbn installs its handler over that.
"$bench" --data "$data" --layers 784,100,10 --threads 2 --epochs $epochs --checkpoint "$dir/stop.ckpt" \
  --json "$dir/stopped.json" >"$dir/stopped.txt" 2>&1 &
pid=$!
for _ in $(seq 100); do  # until training has started
  grep -q 'Epoch 2:' "$dir/stopped.txt" 2>/dev/null && break
  sleep 0.05
done
kill -INT "$pid"
status=0
wait "$pid" || status=$?
if [ "$status" -ne 130 ]; then
  echo "the interrupted run exited $status, not 130"; tail -n 20 "$dir/stopped.txt"; exit 1
fi
grep -q '"status": "interrupted"' "$dir/stopped.json"
grep -q 'checkpoint written to' "$dir/stopped.txt"
run --epochs $epochs --resume "$dir/stop.ckpt" >"$dir/resumed_long.txt"
diff <(results "$dir/straight_long.txt" | tail -n 3) <(results "$dir/resumed_long.txt" | tail -n 3)
echo "ok: resumed runs equal the uninterrupted ones"

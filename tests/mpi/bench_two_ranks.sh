#!/usr/bin/env bash
# bench_two_ranks.sh JSON MPIRUN... BENCH_DBN ARGS...: bench_dbn started by mpirun with two ranks
# (the command after JSON, which must write --json JSON). Rank 0 alone prints the report, with
# the ranks in its header and in --json, and the figures are global: 2 × 64 rows per step make
# 52 minibatches of the 6,700 training rows of tests/data/mnist. With --pretrain-epochs 1, the
# three RBMs' pretraining is printed once too, and the --json has their epochs.
set -u
json=$1
shift
rm -f "$json"
out=$("$@" 2>&1)
status=$?
fail() { printf '%s\n--- output of: %s\n%s\n' "$1" "$*" "$out"; exit 1; }
[ "$status" -eq 0 ] || fail "exit status $status"
grep -q 'ranks 2 (mpi: ' <<<"$out" || fail "no 'ranks 2 (mpi: …)' in the header"
grep -q 'batch 64 per rank × 2 ranks, 1 epochs of 52 minibatches' <<<"$out" || fail "settings line without the global batch"
[ "$(grep -c '^\(\[1,0\]<stdout>:\)\?test accuracy 0\.[6-9]' <<<"$out")" -eq 1 ] || fail "not one 'test accuracy' line (rank 0 alone prints)"
grep -q '"ranks": 2, "communicator": "mpi: ' "$json" || fail "--json without \"ranks\": 2"
grep -q '"minibatches": 52' "$json" || fail "--json without the 52 minibatches"
if [[ " $* " == *" --pretrain-epochs 1 "* ]]; then
  [ "$(grep -c '^\(\[1,0\]<stdout>:\)\?Pretraining layer [1-3] ' <<<"$out")" -eq 3 ] ||
    fail "not three 'Pretraining layer' headers (rank 0 alone prints, one per RBM)"
  [ "$(grep -c '^\(\[1,0\]<stdout>:\)\?  Epoch 1: reconstruction error [0-9]' <<<"$out")" -eq 3 ] ||
    fail "not three pretraining epochs with a finite reconstruction error"
  [ "$(grep -c '{"layer": [1-3], "visible"' "$json")" -eq 3 ] || fail "--json without the three RBMs' pretraining"
fi
echo "ok: two ranks, one report, global figures"

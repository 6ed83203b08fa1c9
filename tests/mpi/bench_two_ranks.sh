#!/usr/bin/env bash
# bench_two_ranks.sh JSON MPIRUN... BENCH_DBN ARGS...: bench_dbn started by mpirun with two ranks
# (the command after JSON, which must write --json JSON). Rank 0 alone prints the report, with
# the ranks in its header and in --json, and the figures are global: 2 × 64 rows per step make
# 52 minibatches of the 6,700 training rows of tests/data/mnist.
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
echo "ok: two ranks, one report, global figures"

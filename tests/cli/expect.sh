#!/usr/bin/env bash
# expect.sh <exit status> <extended regex> <command...>: runs the command and passes when it
# exits with that status and its output (stdout and stderr) matches the regex. For end-to-end
# checks of bench_dbn's command line and error paths.
set -u
want=$1
pattern=$2
shift 2
out=$("$@" 2>&1)
got=$?
if [ "$got" -ne "$want" ]; then
  printf 'expected exit status %s, got %s from: %s\n%s\n' "$want" "$got" "$*" "$out"
  exit 1
fi
if ! grep -Eq -- "$pattern" <<<"$out"; then
  printf 'output of "%s" does not match /%s/:\n%s\n' "$*" "$pattern" "$out"
  exit 1
fi
echo "ok: exit $got, output matches /$pattern/"

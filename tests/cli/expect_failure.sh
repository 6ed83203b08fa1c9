#!/usr/bin/env bash
# expect_failure.sh <extended regex> <command...>: passes when the command exits with a non-zero
# status (any: an aborted MPI job's status depends on the launcher) and its output (stdout and
# stderr) matches the regex.
set -u
pattern=$1
shift
out=$("$@" 2>&1)
got=$?
if [ "$got" -eq 0 ]; then
  printf 'expected a failure, got exit status 0 from: %s\n%s\n' "$*" "$out"
  exit 1
fi
if ! grep -Eq -- "$pattern" <<<"$out"; then
  printf 'output of "%s" does not match /%s/:\n%s\n' "$*" "$pattern" "$out"
  exit 1
fi
echo "ok: exit $got, output matches /$pattern/"

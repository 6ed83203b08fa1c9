# shellcheck shell=bash disable=SC2034  # AWS_OUT and AWS_CODE are read by the other files
# launch-bench's shared helpers: messages, the aws command, the state file. Sourced, not run.

# say MESSAGE: to stderr and the run's log; never fails (the terminal may be gone after SIGHUP).
say() {
  printf 'launch-bench: %s\n' "$*" >&2 2> /dev/null || true
  if [ -n "${LOG_FILE:-}" ]; then printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >> "$LOG_FILE" 2> /dev/null || true; fi
}
warn() { say "warning: $*"; }
# die MESSAGE [STATUS]: says what went wrong and exits (default status 1); the EXIT trap tears down.
die() { say "error: $1"; exit "${2:-1}"; }
usage_error() { printf 'launch-bench: %s\n' "$1" >&2; printf "Run 'launch-bench --help' for the options.\n" >&2; exit 2; }

# bg_wait CMD...: runs CMD as a child and waits for it. bash runs a trap only between commands, so
# a signal that arrives while a foreground child runs (ssh for an hour, aws ec2 wait) is acted on
# only when the child ends; `wait` returns at once instead, the trap runs and the EXIT trap stops
# the child (CHILD_PID). The child keeps the caller's stdin (<&0: a background command's would
# otherwise be /dev/null).
CHILD_PID=""
bg_wait() {
  local rc=0
  "$@" <&0 &
  CHILD_PID=$!
  wait "$CHILD_PID" || rc=$?
  CHILD_PID=""
  return "$rc"
}
# stop_child: ends the child bg_wait is waiting for, if any (from the EXIT trap).
stop_child() {
  [ -n "$CHILD_PID" ] || return 0
  kill -TERM "$CHILD_PID" 2> /dev/null || true
  wait "$CHILD_PID" 2> /dev/null || true
  CHILD_PID=""
}

# The aws command: CUDL_EC2_AWS (a test hook: a wrapper that injects faults) or the CLI on PATH.
# AWS_ENDPOINT_URL, read by the CLI itself, points it at another endpoint (the tests' moto server).
AWS_BIN=${CUDL_EC2_AWS:-aws}

# aws_try SERVICE OPERATION ARGS...: runs one AWS call in $REGION; its stdout goes to AWS_OUT, its
# stderr to AWS_ERR, and the error code (e.g. InsufficientInstanceCapacity) to AWS_CODE. Returns
# the CLI's status. The call runs as a child that the launcher waits for (bg_wait), so a signal is
# acted on at once and the call ended. AWS_UNINTERRUPTED=1, for the calls that create something,
# lets the call finish instead (a second or two): an asynchronous child ignores Ctrl-C, and the
# launcher waits again when a signal interrupts its wait; critical_begin/end hold the signal until
# the new resource's id is recorded.
aws_try() {
  local rc=0 pid
  if [ "${AWS_UNINTERRUPTED:-0}" = 1 ]; then
    "$AWS_BIN" "$@" --region "${AWS_CALL_REGION:-$REGION}" <&0 > "$TMPD/aws.out" 2> "$TMPD/aws.err" &
    pid=$!
    while true; do
      rc=0
      wait "$pid" || rc=$?
      if (( rc > 128 )) && kill -0 "$pid" 2> /dev/null; then continue; fi   # a signal, not the end
      break
    done
  else
    bg_wait "$AWS_BIN" "$@" --region "${AWS_CALL_REGION:-$REGION}" > "$TMPD/aws.out" 2> "$TMPD/aws.err" || rc=$?
  fi
  AWS_OUT=$(cat "$TMPD/aws.out")
  AWS_ERR=$(cat "$TMPD/aws.err")
  AWS_CODE=""
  if [ "$rc" -ne 0 ]; then
    AWS_CODE=$(sed -n 's/.*An error occurred (\([A-Za-z0-9.]*\)).*/\1/p' "$TMPD/aws.err" | head -n 1)
  fi
  return "$rc"
}
# aws_message: the AWS error text of the last failed aws_try, on one line.
aws_message() {
  local m
  m=$(printf '%s\n' "$AWS_ERR" | grep -v '^[[:space:]]*$' | tail -n 1)
  printf '%s' "${m:-the aws command failed without a message}"
}
# aws_do WHAT SERVICE OPERATION ARGS...: aws_try that dies with WHAT and the AWS message on failure.
aws_do() {
  local what=$1
  shift
  aws_try "$@" || die "$what failed: $(aws_message)"
}

# --- The state file ---------------------------------------------------------------------------------
# One KEY=VALUE line per fact, appended before each resource is created (its name) and after (its id),
# so `launch-bench down --run-id ID` can finish the job after the launcher was killed. Later lines win.
STATE_DIR=${CUDL_EC2_STATE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cudl-ec2}

state_path() { printf '%s/%s.state' "$STATE_DIR" "$1"; }
state_dir_init() { { mkdir -p "$STATE_DIR" && chmod 700 "$STATE_DIR"; } || die "cannot create the state directory $STATE_DIR"; }
# state_claim: creates RUN_ID's state file, failing if it exists (noclobber opens it O_EXCL, so of two
# launches given the same id at the same moment only one gets it), and records who holds it.
state_claim() {
  state_dir_init
  STATE_FILE=$(state_path "$RUN_ID")
  ( set -o noclobber; : > "$STATE_FILE" ) 2> /dev/null || return 1
  STATE_OWNED=1
  state_set RUN_ID "$RUN_ID"
  state_set LAUNCHER_PID "$$"
  state_set LAUNCHER_HOST "$(hostname 2> /dev/null || echo unknown)"
  state_set LAUNCHER_START "$(process_start "$$")"
}
# process_start PID: when PID started, as ps says (with the pid, this tells a reused pid apart).
process_start() { ps -o lstart= -p "$1" 2> /dev/null | tr -s ' ' | sed 's/^ //; s/ $//'; }
# launcher_alive FILE: whether the launcher recorded in the state file FILE is still running on
# this machine. A launcher recorded on another host counts as alive (it cannot be checked from here).
launcher_alive() {
  local pid host start
  pid=$(state_get LAUNCHER_PID "$1"); host=$(state_get LAUNCHER_HOST "$1"); start=$(state_get LAUNCHER_START "$1")
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  if [ -n "$host" ] && [ "$host" != "$(hostname 2> /dev/null || echo unknown)" ]; then return 0; fi
  kill -0 "$pid" 2> /dev/null || return 1
  [ -z "$start" ] || [ "$(process_start "$pid")" = "$start" ]
}
# launcher_text FILE: "pid P on HOST, started T" for messages.
launcher_text() {
  printf 'pid %s on %s, started %s' "$(state_get LAUNCHER_PID "$1")" "$(state_get LAUNCHER_HOST "$1")" \
    "$(state_get STARTED "$1" | sed 's/^$/(not yet)/')"
}
state_set() {
  case "$2" in *$'\n'*) die "internal: state value for $1 has a newline" ;; esac
  [ -n "${STATE_FILE:-}" ] && [ -f "$STATE_FILE" ] || return 0   # `down` without a state file makes none
  printf '%s=%s\n' "$1" "$2" >> "$STATE_FILE" || warn "could not record $1 in $STATE_FILE"
}
# state_get KEY [FILE]: the last value recorded for KEY (empty when none).
state_get() {
  local f=${2:-$STATE_FILE}
  [ -r "$f" ] || return 0
  sed -n "s/^$1=//p" "$f" | tail -n 1
}
# state_all KEY: every value recorded for KEY, one per line, without repeats.
state_all() {
  [ -r "$STATE_FILE" ] || return 0
  sed -n "s/^$1=//p" "$STATE_FILE" | awk 'NF && !seen[$0]++'
}

# --- Small checks -----------------------------------------------------------------------------------
# is_none VALUE: whether an aws --output text answer is empty or None.
is_none() { [ -z "$1" ] || [ "$1" = None ]; }
valid_run_id() { [[ "$1" =~ ^[A-Za-z0-9][A-Za-z0-9-]{0,47}$ ]]; }
# valid_ipv4 TEXT: four decimal numbers 0-255 joined by dots, without leading zeros (08.1.2.3 and
# 010.0.0.1 are refused: read as octal by some tools, as decimal by others). No arithmetic on
# unchecked text: each part is matched first.
valid_ipv4() {
  local part='(0|[1-9][0-9]?|1[0-9][0-9]|2[0-4][0-9]|25[0-5])'
  [[ "$1" =~ ^$part\.$part\.$part\.$part$ ]]
}
# shell_words ARGS...: prints each argument after a space, single-quoted when the shell needs it.
shell_words() {
  local a
  for a in "$@"; do
    if [[ "$a" =~ ^[A-Za-z0-9_./:=,@+-]+$ ]]; then printf ' %s' "$a"; else printf " '%s'" "${a//\'/\'\\\'\'}"; fi
  done
}
# json_str TEXT: TEXT as a JSON string literal.
json_str() {
  local s=$1
  s=${s//\\/\\\\}; s=${s//\"/\\\"}; s=${s//$'\n'/\\n}; s=${s//$'\t'/\\t}; s=${s//$'\r'/}
  printf '"%s"' "$s"
}
# confirm QUESTION: asks on the terminal; succeeds on y/yes. Without a terminal it refuses.
confirm() {
  local answer=""
  if [ ! -t 0 ]; then
    die "no terminal to confirm on: rerun with --yes to accept (this launches resources that cost money)" 2
  fi
  printf '%s [y/N] ' "$1" >&2
  read -r answer || answer=""
  case "$answer" in y|Y|yes|YES|Yes) return 0 ;; *) return 1 ;; esac
}

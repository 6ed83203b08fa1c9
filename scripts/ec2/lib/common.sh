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

# The aws command: CUDL_EC2_AWS (a test hook: a wrapper that injects faults) or the CLI on PATH.
# AWS_ENDPOINT_URL, read by the CLI itself, points it at another endpoint (the tests' moto server).
AWS_BIN=${CUDL_EC2_AWS:-aws}

# aws_try SERVICE OPERATION ARGS...: runs one AWS call in $REGION; its stdout goes to AWS_OUT, its
# stderr to AWS_ERR, and the error code (e.g. InsufficientInstanceCapacity) to AWS_CODE. Returns
# the CLI's status.
aws_try() {
  local rc=0
  AWS_OUT=$("$AWS_BIN" "$@" --region "${AWS_CALL_REGION:-$REGION}" 2> "$TMPD/aws.err") || rc=$?
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
state_init() {
  { mkdir -p "$STATE_DIR" && chmod 700 "$STATE_DIR"; } || die "cannot create the state directory $STATE_DIR"
  STATE_FILE=$(state_path "$RUN_ID")
  : >> "$STATE_FILE" || die "cannot write the state file $STATE_FILE"
}
state_set() {
  case "$2" in *$'\n'*) die "internal: state value for $1 has a newline" ;; esac
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
valid_ipv4() {
  local IFS=. a b c d
  [[ "$1" =~ ^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$ ]] || return 1
  read -r a b c d <<< "$1"
  (( a <= 255 && b <= 255 && c <= 255 && d <= 255 ))
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

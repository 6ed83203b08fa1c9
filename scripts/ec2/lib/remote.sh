# shellcheck shell=bash disable=SC2029  # remote commands are built here on purpose, quoted with q
# launch-bench on the instance: SSH, the source copy, the remote benchmark, the results brought home.
# Sourced, not run.

# Where the source and the results go on the instance (relative paths are under the login's home).
REMOTE_DIR=${CUDL_EC2_REMOTE_DIR:-cudl-bench}
POLL_SECONDS=${CUDL_EC2_POLL_SECONDS:-5}

# ssh_setup: SSH_OPTS and SSH_TARGET for the run's key; the host key goes to a known_hosts file of
# the run's own (accepted on first use), never to ~/.ssh/known_hosts.
ssh_setup() {
  local host=${CUDL_EC2_SSH_HOST:-$PUBLIC_IP} port=${CUDL_EC2_SSH_PORT:-22}
  KNOWN_HOSTS="$STATE_DIR/$RUN_ID.known_hosts"
  SSH_OPTS=(-i "$KEY_FILE" -p "$port" -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=accept-new
            -o "UserKnownHostsFile=$KNOWN_HOSTS" -o ConnectTimeout=10 -o ServerAliveInterval=30
            -o ServerAliveCountMax=6 -o LogLevel=ERROR)
  SSH_TARGET="$SSH_USER@$host"
}
q() { printf '%q' "$1"; }

# wait_for_ssh: retries until the instance accepts the key, or SSH_TIMEOUT seconds pass.
wait_for_ssh() {
  local start now last=0
  start=$(date +%s)
  say "waiting for SSH on $SSH_TARGET (up to $SSH_TIMEOUT s; cloud-init takes a minute or two)"
  until ssh "${SSH_OPTS[@]}" -n "$SSH_TARGET" true 2> "$TMPD/ssh.err"; do
    now=$(date +%s)
    if (( now - start >= SSH_TIMEOUT )); then
      die "SSH to $SSH_TARGET did not answer within $SSH_TIMEOUT s ($(tail -n 1 "$TMPD/ssh.err")); if your address changed since launch, the security group no longer admits it"
    fi
    if (( now - last >= 30 )); then say "  still waiting for SSH ($(( now - start )) s)"; last=$now; fi
    sleep "$POLL_SECONDS"
  done
  say "SSH is up"
}

# source_files: the project's files to copy (tracked and untracked-but-not-ignored), NUL-separated.
source_files() {
  local f
  if git -C "$ROOT" rev-parse --is-inside-work-tree > /dev/null 2>&1; then
    git -C "$ROOT" ls-files -z -co --exclude-standard | while IFS= read -r -d '' f; do
      [ -f "$ROOT/$f" ] && printf '%s\0' "$f"
    done
  else
    (cd "$ROOT" && find . -type f ! -path './.git/*' ! -path './build*' ! -path './data/*' \
       ! -path './results/*' -print0)
  fi
}

# copy_source: the working tree (with SOURCE.txt naming its commit) into REMOTE_DIR/cudl.
copy_source() {
  local rdir
  rdir=$(q "$REMOTE_DIR")
  say "copying the source to $SSH_TARGET:$REMOTE_DIR/cudl"
  {
    git -C "$ROOT" describe --always --dirty --abbrev=12 2> /dev/null || echo "not a git checkout"
    echo "copied by launch-bench, run $RUN_ID, $(date -u '+%Y-%m-%dT%H:%M:%SZ')"
  } > "$TMPD/SOURCE.txt"
  source_files > "$TMPD/files"
  [ -s "$TMPD/files" ] || die "found no source files to copy under $ROOT"
  (cd "$ROOT" && tar --null -T "$TMPD/files" -czf -) |
    ssh "${SSH_OPTS[@]}" "$SSH_TARGET" "rm -rf $rdir/cudl $rdir/out && mkdir -p $rdir/cudl && tar -xzf - -C $rdir/cudl" ||
    die "copying the source to the instance failed"
  ssh "${SSH_OPTS[@]}" "$SSH_TARGET" "cat > $rdir/cudl/SOURCE.txt" < "$TMPD/SOURCE.txt" ||
    die "writing SOURCE.txt on the instance failed"
}

# run_remote: the benchmark on the instance, its output shown and kept in remote-console.log.
# Sets REMOTE_STATUS. CUDL_EC2_REMOTE_CMD (a test hook) replaces remote-bench.sh with a command of
# its own; CUDL_EC2_REMOTE_ARGS (a test hook) adds arguments to remote-bench.sh.
run_remote() {
  local rdir cmd
  rdir=$(q "$REMOTE_DIR")
  if [ -n "${CUDL_EC2_REMOTE_CMD:-}" ]; then
    cmd="export CUDL_REMOTE_OUT=$rdir/out; $CUDL_EC2_REMOTE_CMD"
  else
    cmd="bash $rdir/cudl/scripts/ec2/remote-bench.sh --out $rdir/out --epochs $EPOCHS"
    (( RUN_TESTS )) || cmd="$cmd --no-tests"
    cmd="$cmd ${CUDL_EC2_REMOTE_ARGS:-}"
  fi
  state_set PHASE remote
  say "running the benchmark on the instance (output also in $RESULTS/remote-console.log)"
  REMOTE_STATUS=0
  ssh "${SSH_OPTS[@]}" -n "$SSH_TARGET" "$cmd" 2>&1 | tee -a "$RESULTS/remote-console.log" >&2 || REMOTE_STATUS=$?
  if (( REMOTE_STATUS == 0 )); then say "the benchmark finished"
  else say "the benchmark on the instance FAILED with status $REMOTE_STATUS"; fi
}

# fetch_results: REMOTE_DIR/out from the instance into RESULTS. Fails when there is nothing to fetch.
fetch_results() {
  local rdir
  rdir=$(q "$REMOTE_DIR")
  if ! ssh "${SSH_OPTS[@]}" -n "$SSH_TARGET" "test -d $rdir/out"; then
    warn "the instance has no results directory ($REMOTE_DIR/out): nothing to bring home"
    return 1
  fi
  ssh "${SSH_OPTS[@]}" -n "$SSH_TARGET" "tar -C $rdir/out -czf - ." | tar -xzf - -C "$RESULTS" || {
    warn "bringing the results home failed"; return 1; }
  say "results brought home to $RESULTS"
}

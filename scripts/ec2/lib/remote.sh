# shellcheck shell=bash disable=SC2029  # remote commands are built here on purpose, quoted with q
# launch-bench on the instance: SSH, the source copy, the remote benchmark, the results brought home.
# Sourced, not run.

# Where the source and the results go on the instance (relative paths are under the login's home).
REMOTE_DIR=${CUDL_EC2_REMOTE_DIR:-cudl-bench}
POLL_SECONDS=${CUDL_EC2_POLL_SECONDS:-5}
# SSH keep-alives: a silent instance (powered off, its network gone) is given up after
# ALIVE_SECONDS x 4 without an answer, instead of waiting for TCP to time out.
ALIVE_SECONDS=${CUDL_EC2_SSH_ALIVE_SECONDS:-5}
# The git checkout whose tracked files are sent (a test hook; default this project).
SOURCE_DIR=${CUDL_EC2_SOURCE_DIR:-$ROOT}

# ssh_setup: SSH_OPTS and SSH_TARGET for the run's key; the host key goes to a known_hosts file of
# the run's own (accepted on first use), never to ~/.ssh/known_hosts.
ssh_setup() {
  local host=${CUDL_EC2_SSH_HOST:-$PUBLIC_IP} port=${CUDL_EC2_SSH_PORT:-22}
  KNOWN_HOSTS="$STATE_DIR/$RUN_ID.known_hosts"
  SSH_OPTS=(-i "$KEY_FILE" -p "$port" -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=accept-new
            -o "UserKnownHostsFile=$KNOWN_HOSTS" -o ConnectTimeout=10 -o "ServerAliveInterval=$ALIVE_SECONDS"
            -o ServerAliveCountMax=4 -o LogLevel=ERROR)
  SSH_TARGET="$SSH_USER@$host"
}
q() { printf '%q' "$1"; }

# wait_for_ssh: retries until the instance accepts the key, or SSH_TIMEOUT seconds pass.
wait_for_ssh() {
  local start now last=0
  start=$(date +%s)
  say "waiting for SSH on $SSH_TARGET (up to $SSH_TIMEOUT s; cloud-init takes a minute or two)"
  until bg_wait ssh "${SSH_OPTS[@]}" -n "$SSH_TARGET" true 2> "$TMPD/ssh.err"; do
    now=$(date +%s)
    if (( now - start >= SSH_TIMEOUT )); then
      die "SSH to $SSH_TARGET did not answer within $SSH_TIMEOUT s ($(tail -n 1 "$TMPD/ssh.err")); if your address changed since launch, the security group no longer admits it"
    fi
    if (( now - last >= 30 )); then say "  still waiting for SSH ($(( now - start )) s)"; last=$now; fi
    bg_wait sleep "$POLL_SECONDS"
  done
  say "SSH is up"
}

# human_bytes N: N bytes as "3.2 MB" (powers of 1000, as the byte count beside it is exact).
human_bytes() {
  awk -v b="$1" 'BEGIN { split("bytes kB MB GB TB", u, " "); i = 1; while (b >= 1000 && i < 5) { b /= 1000; i++ }
                         printf (i == 1 ? "%d %s" : "%.1f %s"), b, u[i] }'
}

# prepare_source: the files to send, as a gzipped tar in $TMPD/source.tar.gz: only what git tracks.
# By default the tree of HEAD (committed content); with --uncommitted, the tracked files as they
# are in the working tree (changes staged or not, deletions; files git does not track are never
# part of it). Nothing in the checkout changes: the working-tree snapshot is made in a copy of the
# index. Sets SOURCE_FILES, SOURCE_BYTES, SOURCE_ARCHIVE_BYTES, SOURCE_DESC and SOURCE_LINE.
prepare_source() {
  if [ -z "$SOURCE_DIR" ]; then prepare_installed_source; return; fi
  local g=(git -C "$SOURCE_DIR") head prefix top index tree treeish changed n_changed err="$TMPD/git.err"
  command -v git > /dev/null || die "git is not installed: launch-bench sends only the files git tracks" 2
  if ! "${g[@]}" rev-parse --is-inside-work-tree > /dev/null 2>&1; then
    die "$SOURCE_DIR is not a git checkout: launch-bench sends only the files git tracks at HEAD, and cannot tell them here" 2
  fi
  head=$("${g[@]}" rev-parse --verify -q 'HEAD^{commit}') ||
    die "$SOURCE_DIR has no commit yet: launch-bench sends what git tracks at HEAD; commit the files first" 2
  prefix=$("${g[@]}" rev-parse --show-prefix)
  # From here on, git runs at the top of the checkout (in a subdirectory, ls-tree and archive would
  # see only what is under it, relative to it): the paths are those of SOURCE_DIR.
  top=$("${g[@]}" rev-parse --show-toplevel)
  g=(git -C "$top")
  index=$("${g[@]}" rev-parse --git-path index) || die "cannot find the git index of $SOURCE_DIR"
  [[ "$index" == /* ]] || index="$top/$index"   # relative to the checkout (git before 2.31 has no --path-format)
  # A copy of the index, refreshed: the tracked files whose working-tree content differs from HEAD.
  if [ -f "$index" ]; then cp "$index" "$TMPD/index" || die "cannot copy the git index $index"; fi
  GIT_INDEX_FILE="$TMPD/index" "${g[@]}" update-index -q --refresh > /dev/null 2>&1 || true
  changed=$( { GIT_INDEX_FILE="$TMPD/index" "${g[@]}" diff-files --name-only -- "${prefix:-.}" &&
               GIT_INDEX_FILE="$TMPD/index" "${g[@]}" diff-index --cached --name-only "$head" -- "${prefix:-.}" ; } 2> "$err" | sort -u) ||
    die "git could not compare the working tree with HEAD: $(tail -n 1 "$err")"
  n_changed=$(printf '%s' "$changed" | grep -c . || true)
  if (( UNCOMMITTED )); then
    GIT_INDEX_FILE="$TMPD/index" "${g[@]}" add -u -- "${prefix:-.}" 2> "$err" || die "git add -u (in a copy of the index) failed: $(tail -n 1 "$err")"
    tree=$(GIT_INDEX_FILE="$TMPD/index" "${g[@]}" write-tree 2> "$err") || die "git write-tree failed: $(tail -n 1 "$err")"
    treeish="$tree:$prefix"
    SOURCE_DESC="commit ${head:0:12} (HEAD) plus the uncommitted changes to $n_changed tracked file$( ((n_changed == 1)) || echo s) (--uncommitted)"
    SOURCE_LINE="$("${g[@]}" describe --always --abbrev=12 "$head")"
    if (( n_changed )); then SOURCE_LINE="$SOURCE_LINE-dirty (HEAD and uncommitted changes to $n_changed tracked files)"; fi
  else
    treeish="$head:$prefix"
    SOURCE_DESC="commit ${head:0:12}: what git tracks at HEAD"
    SOURCE_LINE="$("${g[@]}" describe --always --abbrev=12 "$head")"
    if (( n_changed )); then
      warn "$n_changed tracked file$( ((n_changed == 1)) || echo s) with uncommitted changes, sent as committed (--uncommitted sends the changes): $(printf '%s' "$changed" | head -n 5 | tr '\n' ' ')$( ((n_changed > 5)) && echo ...)"
    fi
  fi
  # The count and the bytes: every file (blob) of the tree; a submodule (a commit entry) is not sent.
  "${g[@]}" ls-tree -r -l "$treeish" > "$TMPD/tree" 2> "$err" || die "git ls-tree failed: $(tail -n 1 "$err")"
  read -r SOURCE_FILES SOURCE_BYTES < <(awk -F'\t' '{ split($1, m, " ") }
      m[2] == "blob" { n++; b += m[4] } END { printf "%d %.0f\n", n, b }' "$TMPD/tree")
  if awk -F'\t' '{ split($1, m, " ") } m[2] == "commit" { found = 1 } END { exit !found }' "$TMPD/tree"; then
    warn "the git submodules of $SOURCE_DIR are not sent (only the files of this repository)"
  fi
  (( SOURCE_FILES > 0 )) || die "git tracks no file in $SOURCE_DIR at HEAD: nothing to send" 2
  "${g[@]}" archive --format=tar "$treeish" 2> "$err" | gzip -c > "$TMPD/source.tar.gz" ||
    die "git archive failed: $(tail -n 1 "$err")"
  SOURCE_ARCHIVE_BYTES=$(wc -c < "$TMPD/source.tar.gz" | tr -d ' ')
}

# prepare_installed_source: the same for an installed launch-bench, from the archive that the build
# made of the commit it was built from ($INSTALLED_SOURCE, with source.txt naming the commit).
prepare_installed_source() {
  local line="$HERE/source.txt"
  if [ ! -f "$INSTALLED_SOURCE" ] || [ ! -f "$line" ]; then
    die "no cudl source to send: $INSTALLED_SOURCE is not installed (cudl was built outside a git checkout); set CUDL_EC2_SOURCE_DIR to a cudl checkout" 2
  fi
  (( ! UNCOMMITTED )) ||
    die "--uncommitted: this installed launch-bench sends the source it was installed with; set CUDL_EC2_SOURCE_DIR to a checkout to send its changes" 2
  cp "$INSTALLED_SOURCE" "$TMPD/source.tar.gz" || die "cannot copy $INSTALLED_SOURCE"
  read -r SOURCE_FILES SOURCE_BYTES < <(tar -tvzf "$TMPD/source.tar.gz" |
      awk '$1 ~ /^-/ { n++; b += $3 } END { printf "%d %.0f\n", n, b }') ||
    die "cannot read $INSTALLED_SOURCE"
  (( SOURCE_FILES > 0 )) || die "$INSTALLED_SOURCE holds no file: nothing to send" 2
  SOURCE_LINE=$(head -n 1 "$line")
  SOURCE_DESC="the source this launch-bench was installed from ($INSTALLED_SOURCE)"
  SOURCE_ARCHIVE_BYTES=$(wc -c < "$TMPD/source.tar.gz" | tr -d ' ')
}

# copy_source: the prepared archive into REMOTE_DIR/cudl on the instance, and beside it (not in
# it) SOURCE.txt, naming the commit.
copy_source() {
  local rdir
  rdir=$(q "$REMOTE_DIR")
  {
    echo "$SOURCE_LINE"
    echo "copied by launch-bench, run $RUN_ID, $(date -u '+%Y-%m-%dT%H:%M:%SZ'): $SOURCE_DESC"
  } > "$TMPD/SOURCE.txt"
  say "sending $SOURCE_FILES files, $(human_bytes "$SOURCE_BYTES") ($SOURCE_BYTES bytes; $(human_bytes "$SOURCE_ARCHIVE_BYTES") compressed) to $SSH_TARGET:$REMOTE_DIR/cudl: $SOURCE_DESC"
  bg_wait ssh "${SSH_OPTS[@]}" "$SSH_TARGET" "rm -rf $rdir/cudl $rdir/out $rdir/SOURCE.txt && mkdir -p $rdir/cudl && tar -xzf - -C $rdir/cudl" \
    < "$TMPD/source.tar.gz" || die "copying the source to the instance failed"
  bg_wait ssh "${SSH_OPTS[@]}" "$SSH_TARGET" "cat > $rdir/SOURCE.txt" < "$TMPD/SOURCE.txt" ||
    die "writing SOURCE.txt on the instance failed"
}

# run_remote: the benchmark on the instance, its output shown and kept in remote-console.log.
# Sets REMOTE_STATUS. CUDL_EC2_REMOTE_CMD (a test hook) replaces remote-bench.sh with a command of
# its own; CUDL_EC2_REMOTE_ARGS (a test hook) adds arguments to remote-bench.sh.
run_remote() {
  local rdir cmd console tee_pid
  rdir=$(q "$REMOTE_DIR")
  if [ -n "${CUDL_EC2_REMOTE_CMD:-}" ]; then
    cmd="export CUDL_REMOTE_OUT=$rdir/out; $CUDL_EC2_REMOTE_CMD"
  else
    cmd="bash $rdir/cudl/scripts/ec2/remote-bench.sh --out $rdir/out --epochs $EPOCHS"
    (( RUN_TESTS )) || cmd="$cmd --no-tests"
    # The instance type's GPUs (with 2 or more, remote-bench.sh also runs bench_dbn under mpirun on
    # all of them); unknown: remote-bench.sh counts those nvidia-smi lists.
    if [[ "$GPUS" =~ ^[0-9]+$ ]]; then cmd="$cmd --gpus $GPUS"; fi
    cmd="$cmd ${CUDL_EC2_REMOTE_ARGS:-}"
  fi
  state_set PHASE remote
  say "running the benchmark on the instance (output also in $RESULTS/remote-console.log)"
  REMOTE_STATUS=0
  # tee ignores the signals: a Ctrl-C must not cut the output short (the launcher ends ssh itself).
  exec {console}> >(trap '' INT TERM HUP; exec tee -a "$RESULTS/remote-console.log" >&2)
  tee_pid=$!
  bg_wait ssh "${SSH_OPTS[@]}" -n "$SSH_TARGET" "$cmd" >&"$console" 2>&1 || REMOTE_STATUS=$?
  exec {console}>&-
  wait "$tee_pid" 2> /dev/null || true
  if (( REMOTE_STATUS == 0 )); then say "the benchmark finished"
  else say "the benchmark on the instance FAILED with status $REMOTE_STATUS"; fi
}

# fetch_results: REMOTE_DIR/out from the instance into RESULTS. Fails when there is nothing to fetch.
fetch_results() {
  local rdir
  rdir=$(q "$REMOTE_DIR")
  if ! bg_wait ssh "${SSH_OPTS[@]}" -n "$SSH_TARGET" "test -d $rdir/out"; then
    warn "the instance has no results directory ($REMOTE_DIR/out), or did not answer: nothing to bring home"
    return 1
  fi
  if ! bg_wait ssh "${SSH_OPTS[@]}" -n "$SSH_TARGET" "tar -C $rdir/out -czf - ." > "$TMPD/results.tar.gz" ||
     ! tar -xzf "$TMPD/results.tar.gz" -C "$RESULTS"; then
    warn "bringing the results home failed"; return 1
  fi
  say "results brought home to $RESULTS"
}

# shellcheck shell=bash
# launch-bench's teardown: terminate, wait, delete the security group (retrying while it is still in
# use) and the key pair. It deletes only what carries the run's tag cudl:run-id=RUN_ID (instances,
# key pairs and security groups are all tagged at creation): a resource that merely has the run's
# name, or an id in the state file but not the tag, is reported and left alone. Idempotent: it
# looks up what is left before each step, so it can run again, or from `down`, after a killed run.
# Sourced, not run.

SG_WAIT_SECONDS=${CUDL_EC2_SG_WAIT_SECONDS:-300}   # how long DependencyViolation is retried
SG_RETRY_SECONDS=${CUDL_EC2_SG_RETRY_SECONDS:-10}
LIVE_STATES=pending,running,stopping,stopped,shutting-down

# live_instances FILTER...: sets LIVE to the ids (one per line) of the instances matching FILTERs
# that are not yet terminated. Fails when AWS does not answer.
live_instances() {
  LIVE=""
  aws_try ec2 describe-instances --filters "$@" "Name=instance-state-name,Values=$LIVE_STATES" \
    --query 'Reservations[].Instances[].InstanceId' --output text || return 1
  LIVE=$(printf '%s' "$AWS_OUT" | tr '\t' '\n' | awk 'NF && $0 != "None"')
}

# terminate_and_wait IDS...: terminates the instances and waits until they are gone.
terminate_and_wait() {
  (( $# )) || return 0
  say "terminating $*"
  if ! aws_try ec2 terminate-instances --instance-ids "$@" --output text; then
    case "$AWS_CODE" in
      InvalidInstanceID.NotFound) say "  already gone" ; return 0 ;;
      *) warn "terminate-instances failed: $(aws_message)"; return 1 ;;
    esac
  fi
  say "waiting for $* to terminate"
  aws_try ec2 wait instance-terminated --instance-ids "$@" ||
    { warn "waiting for termination failed: $(aws_message)"; return 1; }
  say "terminated $*"
}

# delete_security_group ID: deletes it, retrying while AWS still counts it in use (DependencyViolation:
# the terminated instance's network interface is released a little after termination).
delete_security_group() {
  local id=$1 waited=0
  while true; do
    if aws_try ec2 delete-security-group --group-id "$id"; then say "deleted security group $id"; return 0; fi
    case "$AWS_CODE" in
      InvalidGroup.NotFound|InvalidGroupId.NotFound) say "security group $id: already gone"; return 0 ;;
      DependencyViolation)
        if (( waited >= SG_WAIT_SECONDS )); then
          warn "security group $id is still in use after ${waited} s: $(aws_message)"; return 1
        fi
        say "security group $id still in use (DependencyViolation); retrying in ${SG_RETRY_SECONDS} s"
        sleep "$SG_RETRY_SECONDS"; waited=$((waited + SG_RETRY_SECONDS)) ;;
      *) warn "deleting security group $id failed: $(aws_message)"; return 1 ;;
    esac
  done
}

# instance_by_id ID: sets ID_STATE and ID_RUN (its cudl:run-id tag, "None" when it has none), asking
# by id (a just-launched instance can be missing from tag searches for a moment). Retries while AWS
# does not know the id yet; ID_STATE=gone when it never does.
instance_by_id() {
  local tries=0
  ID_STATE=""; ID_RUN=""
  # shellcheck disable=SC2016  # backticks are JMESPath literals
  until aws_try ec2 describe-instances --instance-ids "$1" \
          --query 'Reservations[].Instances[].[State.Name, Tags[?Key==`cudl:run-id`]|[0].Value]' --output text; do
    case "$AWS_CODE" in
      InvalidInstanceID.NotFound|InvalidInstanceID.Malformed)
        tries=$((tries + 1))
        if (( tries >= 3 )); then ID_STATE=gone; return 0; fi
        bg_wait sleep "$POLL_SECONDS" ;;
      *) return 1 ;;
    esac
  done
  read -r ID_STATE ID_RUN <<< "$AWS_OUT"
  ID_STATE=${ID_STATE:-gone}
}

# tagged RESOURCE FIELDS: lines "ID NAME" of the RESOURCE (security-groups: GroupId GroupName;
# key-pairs: KeyPairId KeyName) tagged cudl:run-id=RUN_ID, into TAGGED. Fails when AWS does not answer.
tagged() {
  TAGGED=""
  aws_try ec2 "describe-$1" --filters "Name=tag:cudl:run-id,Values=$RUN_ID" --query "$2" --output text || return 1
  TAGGED=$(printf '%s\n' "$AWS_OUT" | awk 'NF >= 2 && $1 != "None"')
}
# report_untagged RESOURCE FIELDS FILTER WHAT: says which RESOURCEs match FILTER (the run's name) but
# are not in TAGGED: not created by this run, and so left alone.
report_untagged() {
  local id name
  aws_try ec2 "describe-$1" --filters "$3" --query "$2" --output text || return 0
  while read -r id name; do
    if [ -z "$id" ] || [ "$id" = None ]; then continue; fi
    if printf '%s\n' "$TAGGED" | awk -v id="$id" '$1 == id { found = 1 } END { exit !found }'; then continue; fi
    say "left alone: $4 $id ($name) has the run's name but not the tag cudl:run-id=$RUN_ID: launch-bench did not create it"
  done <<< "$AWS_OUT"
}

# teardown_run: removes everything of run RUN_ID in REGION that carries its tag. Each step either
# succeeds (terminated and waited for; deleted; already gone) or says what is left; returns 0 when
# nothing of the run is left.
teardown_run() {
  local ids="" id bad=0 key_name sg_name sgs="" keys="" found=0 name
  key_name=$(state_get KEY_NAME); key_name=${key_name:-cudl-bench-$RUN_ID}
  sg_name=$(state_get SG_NAME); sg_name=${sg_name:-cudl-bench-$RUN_ID}
  # 1. Instances: those tagged with the run, and those recorded (checked: their tag must match).
  if live_instances "Name=tag:cudl:run-id,Values=$RUN_ID"; then ids=$LIVE
  else warn "could not list the run's instances: $(aws_message)"; bad=1; fi
  for id in $(state_all INSTANCE_ID); do
    if printf '%s\n' "$ids" | grep -qx "$id"; then continue; fi
    if ! instance_by_id "$id"; then warn "could not look up the recorded instance $id: $(aws_message)"; bad=1; continue; fi
    case "$ID_STATE" in gone|terminated) continue ;; esac
    if [ "$ID_RUN" = "$RUN_ID" ]; then ids=$(printf '%s\n%s' "$ids" "$id")
    else say "left alone: instance $id ($ID_STATE) is recorded for run $RUN_ID but does not carry its tag (cudl:run-id=$ID_RUN)"; fi
  done
  ids=$(printf '%s\n' "$ids" | awk 'NF && !s[$0]++')
  [ -z "$ids" ] || found=1
  # shellcheck disable=SC2086  # ids: one instance id per line
  terminate_and_wait $ids || bad=1
  # 2. The security groups tagged with the run; same-named ones without the tag are only reported.
  if tagged security-groups 'SecurityGroups[].[GroupId,GroupName]'; then
    sgs=$TAGGED
    [ -n "$sgs" ] || report_untagged security-groups 'SecurityGroups[].[GroupId,GroupName]' "Name=group-name,Values=$sg_name" "security group"
  else warn "could not list the run's security groups: $(aws_message)"; bad=1; fi
  while read -r id name; do
    [ -n "$id" ] || continue
    found=1
    delete_security_group "$id" || bad=1
  done <<< "$sgs"
  # 3. The key pairs tagged with the run (deleted by name: unique in a region, and just checked).
  if tagged key-pairs 'KeyPairs[].[KeyPairId,KeyName]'; then
    keys=$TAGGED
    [ -n "$keys" ] || report_untagged key-pairs 'KeyPairs[].[KeyPairId,KeyName]' "Name=key-name,Values=$key_name" "key pair"
  else warn "could not list the run's key pairs: $(aws_message)"; bad=1; fi
  while read -r id name; do
    [ -n "$id" ] || continue
    found=1
    if aws_try ec2 delete-key-pair --key-name "$name"; then say "deleted key pair $name ($id)"
    else warn "deleting key pair $name failed: $(aws_message)"; bad=1; fi
  done <<< "$keys"
  if [ -n "${STATE_FILE:-}" ] && [ -f "$STATE_FILE" ]; then
    rm -f "$STATE_DIR/$RUN_ID.pem" "$STATE_DIR/$RUN_ID.known_hosts"
  fi
  if (( bad )); then
    state_set TEARDOWN incomplete
    say "error: teardown of run $RUN_ID is INCOMPLETE (see the warnings above)"
    say "  finish it with: $SELF down --run-id $RUN_ID --region $REGION   (or: $SELF cleanup --region $REGION)"
    return 1
  fi
  TORN_DOWN=$(date -u +%s)
  state_set TEARDOWN "done $(date -u '+%Y-%m-%dT%H:%M:%SZ')"
  state_set TORN_DOWN "$TORN_DOWN"
  if (( found )); then
    say "teardown of run $RUN_ID complete: no instance, security group or key pair of it is left in $REGION"
  else
    say "nothing of run $RUN_ID is left in $REGION (no instance, security group or key pair tagged cudl:run-id=$RUN_ID)"
  fi
}

# cleanup_region: finds everything tagged cudl:run-id in REGION and removes it (after a confirmation
# unless --yes). The resources of a launch that is still running here (its state file names a live
# launcher) are listed and, unless --all, left alone: asked about on a terminal, skipped with --yes.
# Returns 0 when nothing it was to remove is left.
cleanup_region() {
  local inst sgs keys id rid name bad=0 running="" f skip="" n
  # shellcheck disable=SC2016  # backticks are JMESPath literals
  local runid_of='Tags[?Key==`cudl:run-id`]|[0].Value'
  aws_do "listing instances in $REGION" ec2 describe-instances \
    --filters Name=tag-key,Values=cudl:run-id "Name=instance-state-name,Values=$LIVE_STATES" \
    --query "Reservations[].Instances[].[InstanceId, $runid_of]" --output text
  inst=$(printf '%s\n' "$AWS_OUT" | awk 'NF == 2')
  aws_do "listing security groups" ec2 describe-security-groups --filters Name=tag-key,Values=cudl:run-id \
    --query "SecurityGroups[].[GroupId, $runid_of]" --output text
  sgs=$(printf '%s\n' "$AWS_OUT" | awk 'NF == 2')
  aws_do "listing key pairs" ec2 describe-key-pairs --filters Name=tag-key,Values=cudl:run-id \
    --query "KeyPairs[].[KeyName, $runid_of]" --output text
  keys=$(printf '%s\n' "$AWS_OUT" | awk 'NF == 2')
  if [ -z "$inst$sgs$keys" ]; then
    say "nothing tagged by cudl (cudl:run-id) is left in $REGION"; return 0
  fi
  # Running launches: run ids with a state file here whose launcher is alive.
  for rid in $(printf '%s\n%s\n%s\n' "$inst" "$sgs" "$keys" | awk 'NF == 2 { print $2 }' | sort -u); do
    valid_run_id "$rid" || continue
    f=$(state_path "$rid")
    if [ -f "$f" ] && launcher_alive "$f"; then running="$running $rid"; fi
  done
  say "tagged by cudl in $REGION:"
  [ -z "$inst" ] || say "  instances:       $(printf '%s\n' "$inst" | awk '{ printf "%s (run %s) ", $1, $2 }')"
  [ -z "$sgs" ] || say "  security groups: $(printf '%s\n' "$sgs" | awk '{ printf "%s (run %s) ", $1, $2 }')"
  [ -z "$keys" ] || say "  key pairs:       $(printf '%s\n' "$keys" | awk '{ printf "%s (run %s) ", $1, $2 }')"
  if [ -n "$running" ]; then
    say "still running here (their launcher is at work):"
    for rid in $running; do say "  run $rid: $(launcher_text "$(state_path "$rid")")"; done
    if (( ALL )); then
      say "--all: tearing these down too (their launchers will fail)"
    elif ! (( YES )) && [ -t 0 ]; then
      confirm "Tear the running launches down too (their launchers will fail)?" || skip=$running
    else
      skip=$running
    fi
    [ -z "$skip" ] || say "leaving the running launches alone:$skip (--all includes them; or stop them with Ctrl-C)"
  fi
  for rid in $skip; do
    inst=$(printf '%s\n' "$inst" | awk -v r="$rid" 'NF == 2 && $2 != r')
    sgs=$(printf '%s\n' "$sgs" | awk -v r="$rid" 'NF == 2 && $2 != r')
    keys=$(printf '%s\n' "$keys" | awk -v r="$rid" 'NF == 2 && $2 != r')
  done
  if [ -z "$inst$sgs$keys" ]; then say "nothing else to remove in $REGION"; return 0; fi
  n=$(printf '%s\n%s\n%s\n' "$inst" "$sgs" "$keys" | grep -c .)
  if ! (( YES )); then confirm "Terminate and delete these $n resources?" || die "cleanup cancelled: nothing was changed" 1; fi
  trap '' INT TERM HUP   # from here on, finish the job
  # shellcheck disable=SC2046  # one instance id per word
  terminate_and_wait $(printf '%s\n' "$inst" | awk 'NF == 2 { print $1 }') || bad=1
  while read -r id rid; do
    [ -n "$id" ] || continue
    delete_security_group "$id" || bad=1
  done <<< "$sgs"
  while read -r name rid; do
    [ -n "$name" ] || continue
    if aws_try ec2 delete-key-pair --key-name "$name"; then say "deleted key pair $name"
    else warn "deleting key pair $name failed: $(aws_message)"; bad=1; fi
  done <<< "$keys"
  # The runs whose resources were removed: their state files say so, their private keys go.
  for rid in $(printf '%s\n%s\n%s\n' "$inst" "$sgs" "$keys" | awk 'NF == 2 { print $2 }' | sort -u); do
    valid_run_id "$rid" || continue
    f=$(state_path "$rid")
    [ -f "$f" ] || continue
    rm -f "$STATE_DIR/$rid.pem" "$STATE_DIR/$rid.known_hosts"
    printf 'TEARDOWN=done by cleanup %s\n' "$(date -u '+%Y-%m-%dT%H:%M:%SZ')" >> "$f"
  done
  if (( bad )); then say "error: cleanup of $REGION is INCOMPLETE (see the warnings above); run it again"; return 1; fi
  say "cleanup of $REGION complete"
}

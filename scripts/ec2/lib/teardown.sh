# shellcheck shell=bash
# launch-bench's teardown: terminate, wait, delete the security group (retrying while it is still in
# use) and the key pair. Idempotent: it looks up what is left (from the state file and by tag or
# name) before each step, so it can run again, or from `down`, after a killed run. Sourced, not run.

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

# teardown_run: removes everything of run RUN_ID in REGION. Each step either succeeds (terminated and
# waited for; deleted; already gone) or says what is left; returns 0 when nothing is left.
teardown_run() {
  local ids sgs id bad=0 key_name sg_name
  key_name=$(state_get KEY_NAME); key_name=${key_name:-cudl-bench-$RUN_ID}
  sg_name=$(state_get SG_NAME); sg_name=${sg_name:-cudl-bench-$RUN_ID}
  # 1. Instances: those recorded, and any tagged with the run (a kill between launch and record).
  if ! live_instances "Name=tag:cudl:run-id,Values=$RUN_ID"; then
    warn "could not list the run's instances: $(aws_message)"; bad=1
  fi
  ids=$(printf '%s\n%s\n' "$(state_all INSTANCE_ID)" "$LIVE" | awk 'NF && !s[$0]++')
  # shellcheck disable=SC2086  # ids: one instance id per line
  terminate_and_wait $ids || bad=1
  # 2. The security group: the recorded id, else (killed before it was recorded) found by its name.
  sgs=$(state_all SG_ID)
  if [ -z "$sgs" ]; then
    if aws_try ec2 describe-security-groups --filters "Name=group-name,Values=$sg_name" \
         --query 'SecurityGroups[].GroupId' --output text; then
      sgs=$(printf '%s' "$AWS_OUT" | tr '\t' '\n' | awk 'NF && $0 != "None"')
    else
      warn "could not look up the security group $sg_name: $(aws_message)"; bad=1
    fi
  fi
  for id in $sgs; do delete_security_group "$id" || bad=1; done
  # 3. The key pair (deleting a missing key pair succeeds) and its private key here.
  if aws_try ec2 delete-key-pair --key-name "$key_name"; then say "deleted key pair $key_name"
  else warn "deleting key pair $key_name failed: $(aws_message)"; bad=1; fi
  rm -f "$STATE_DIR/$RUN_ID.pem" "$STATE_DIR/$RUN_ID.known_hosts"
  if (( bad )); then
    state_set TEARDOWN incomplete
    say "error: teardown of run $RUN_ID is INCOMPLETE (see the warnings above)"
    say "  finish it with: $SELF down --run-id $RUN_ID --region $REGION   (or: $SELF cleanup --region $REGION)"
    return 1
  fi
  state_set TEARDOWN "done $(date -u '+%Y-%m-%dT%H:%M:%SZ')"
  say "teardown of run $RUN_ID complete: no instance, security group or key pair of it is left in $REGION"
}

# cleanup_region: finds everything tagged cudl:run-id in REGION and removes it (after a confirmation
# unless --yes). Returns 0 when nothing is left.
cleanup_region() {
  local ids sgs keys id bad=0 rid
  live_instances Name=tag-key,Values=cudl:run-id || die "listing instances in $REGION failed: $(aws_message)"
  ids=$LIVE
  aws_do "listing security groups" ec2 describe-security-groups --filters Name=tag-key,Values=cudl:run-id \
    --query 'SecurityGroups[].GroupId' --output text
  sgs=$(printf '%s' "$AWS_OUT" | tr '\t' '\n' | awk 'NF && $0 != "None"')
  aws_do "listing key pairs" ec2 describe-key-pairs --filters Name=tag-key,Values=cudl:run-id \
    --query 'KeyPairs[].KeyName' --output text
  keys=$(printf '%s' "$AWS_OUT" | tr '\t' '\n' | awk 'NF && $0 != "None"')
  if [ -z "$ids$sgs$keys" ]; then
    say "nothing tagged by cudl (cudl:run-id) is left in $REGION"; return 0
  fi
  say "tagged by cudl in $REGION:"
  [ -z "$ids" ] || say "  instances:       $(printf '%s' "$ids" | tr '\n' ' ')"
  [ -z "$sgs" ] || say "  security groups: $(printf '%s' "$sgs" | tr '\n' ' ')"
  [ -z "$keys" ] || say "  key pairs:       $(printf '%s' "$keys" | tr '\n' ' ')"
  if ! (( YES )); then confirm "Terminate and delete all of these?" || die "cleanup cancelled: nothing was changed" 1; fi
  trap '' INT TERM HUP   # from here on, finish the job
  # shellcheck disable=SC2086  # one id per line
  terminate_and_wait $ids || bad=1
  for id in $sgs; do delete_security_group "$id" || bad=1; done
  for id in $keys; do
    if aws_try ec2 delete-key-pair --key-name "$id"; then say "deleted key pair $id"
    else warn "deleting key pair $id failed: $(aws_message)"; bad=1; fi
    rid=${id#cudl-bench-}
    if valid_run_id "$rid" && [ -f "$(state_path "$rid")" ]; then
      rm -f "$STATE_DIR/$rid.pem" "$STATE_DIR/$rid.known_hosts"
      printf 'TEARDOWN=done by cleanup %s\n' "$(date -u '+%Y-%m-%dT%H:%M:%SZ')" >> "$(state_path "$rid")"
    fi
  done
  if (( bad )); then say "error: cleanup of $REGION is INCOMPLETE (see the warnings above); run it again"; return 1; fi
  say "cleanup of $REGION complete"
}

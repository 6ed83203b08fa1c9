# shellcheck shell=bash disable=SC2034  # LAUNCHED_ISO and the like are read by launch-bench
# launch-bench's resources: the key pair, the security group and the instance, each recorded in the
# state file before it is created. Sourced, not run.

tag_list() { printf '{Key=cudl:run-id,Value=%s},{Key=cudl:tool,Value=launch-bench},{Key=Name,Value=cudl-bench-%s}' "$RUN_ID" "$RUN_ID"; }

# create_key_pair: an ed25519 key pair named cudl-bench-RUN_ID, tagged at creation; the private key
# is written with mode 0400. A signal during the call is acted on once the key is saved.
create_key_pair() {
  KEY_NAME="cudl-bench-$RUN_ID"
  KEY_FILE="$STATE_DIR/$RUN_ID.pem"
  state_set KEY_NAME "$KEY_NAME"
  state_set KEY_FILE "$KEY_FILE"
  critical_begin
  AWS_UNINTERRUPTED=1 aws_do "creating the key pair $KEY_NAME" ec2 create-key-pair --key-name "$KEY_NAME" --key-type ed25519 \
    --tag-specifications "ResourceType=key-pair,Tags=[$(tag_list)]" --query KeyMaterial --output text
  rm -f "$KEY_FILE"
  (umask 077 && printf '%s\n' "$AWS_OUT" > "$KEY_FILE") || die "cannot write the private key $KEY_FILE"
  chmod 400 "$KEY_FILE"
  state_set KEY_CREATED 1
  say "key pair $KEY_NAME created; private key $KEY_FILE (mode 0400)"
  critical_end
}

# create_security_group: cudl-bench-RUN_ID in the default VPC, tagged at creation, admitting SSH from
# MY_IP/32 and nothing else.
create_security_group() {
  SG_NAME="cudl-bench-$RUN_ID"
  state_set SG_NAME "$SG_NAME"
  state_set VPC_ID "$VPC_ID"
  critical_begin
  AWS_UNINTERRUPTED=1 aws_do "creating the security group $SG_NAME" ec2 create-security-group --group-name "$SG_NAME" \
    --description "cudl launch-bench run $RUN_ID: SSH from the launching machine only" --vpc-id "$VPC_ID" \
    --tag-specifications "ResourceType=security-group,Tags=[$(tag_list)]" --query GroupId --output text
  SG_ID=$AWS_OUT
  state_set SG_ID "$SG_ID"
  say "security group $SG_ID ($SG_NAME) created"
  critical_end
  aws_do "opening SSH from $MY_IP/32 in $SG_ID" ec2 authorize-security-group-ingress --group-id "$SG_ID" \
    --ip-permissions "[{\"IpProtocol\":\"tcp\",\"FromPort\":22,\"ToPort\":22,\"IpRanges\":[{\"CidrIp\":\"$MY_IP/32\",\"Description\":\"SSH from the machine that ran launch-bench\"}]}]"
  say "security group $SG_ID: inbound SSH from $MY_IP/32 only"
}

# run_args SUBNET MARKET TOKEN: sets RUN_ARGS, the run-instances call for one zone.
# shellcheck disable=SC2054  # the commas are the CLI's own syntax
run_args() {
  local subnet=$1 market=$2 token=$3
  RUN_ARGS=(ec2 run-instances --count 1 --image-id "${AMI_ID:-AMI}" --instance-type "$INSTANCE_TYPE"
    --key-name "cudl-bench-$RUN_ID" --subnet-id "$subnet" --security-group-ids "${SG_ID:-SG}"
    --associate-public-ip-address --instance-initiated-shutdown-behavior terminate
    --user-data "file://$USER_DATA_FILE"
    --metadata-options HttpTokens=required,HttpEndpoint=enabled,HttpPutResponseHopLimit=1
    --block-device-mappings "[{\"DeviceName\":\"${ROOT_DEVICE:-/dev/sda1}\",\"Ebs\":{\"VolumeSize\":$VOLUME_GB,\"VolumeType\":\"gp3\",\"DeleteOnTermination\":true,\"Encrypted\":true}}]"
    --tag-specifications "ResourceType=instance,Tags=[$(tag_list)]" "ResourceType=volume,Tags=[$(tag_list)]"
    --client-token "$token")
  if [ "$market" = spot ]; then
    RUN_ARGS+=(--instance-market-options 'MarketType=spot,SpotOptions={SpotInstanceType=one-time,InstanceInterruptionBehavior=terminate}')
  fi
}

# Error codes of run-instances that mean "not here, not now" (try the next zone) and "not allowed".
is_capacity_error() {
  case "$1" in
    InsufficientInstanceCapacity|InsufficientHostCapacity|InsufficientCapacity|InsufficientReservedInstanceCapacity|\
    InsufficientFreeAddressesInSubnet|Unsupported|SpotMaxPriceTooLow|InsufficientCapacityOnOutpost) return 0 ;;
    *) return 1 ;;
  esac
}
is_quota_error() {
  case "$1" in
    VcpuLimitExceeded|MaxSpotInstanceCountExceeded|InstanceLimitExceeded|PendingVerification) return 0 ;;
    *) return 1 ;;
  esac
}

# quota_for TYPE MARKET: prints "CODE|NAME" of the Service Quotas quota that limits TYPE.
quota_for() {
  local family=${1%%.*} kind name code
  family=${family%%[0-9]*}
  case "$family" in
    g|vt) kind=gvt ;; p) kind=p ;; a|c|d|h|i|m|r|t|z) kind=standard ;; *) kind=other ;;
  esac
  case "$kind:$2" in
    gvt:spot) code=L-3819A6DF; name="All G and VT Spot Instance Requests" ;;
    gvt:*) code=L-DB2E81BA; name="Running On-Demand G and VT instances" ;;
    p:spot) code=L-7212CCBC; name="All P Spot Instance Requests" ;;
    p:*) code=L-417A185B; name="Running On-Demand P instances" ;;
    standard:spot) code=L-34B43A08; name="All Standard (A, C, D, H, I, M, R, T, Z) Spot Instance Requests" ;;
    standard:*) code=L-1216C47A; name="Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances" ;;
    *) code=""; name="the EC2 quota for the $family family" ;;
  esac
  printf '%s|%s' "$code" "$name"
}

# quota_stop MARKET: the quota error's message (the quota to raise, and where), then exit 4.
quota_stop() {
  local market=$1 q code name vcpus other="" row
  q=$(quota_for "$INSTANCE_TYPE" "$market"); code=${q%%|*}; name=${q#*|}
  row=$(gpu_table "$INSTANCE_TYPE"); read -r _ vcpus _ <<< "${row:-1 4 x}"
  if [ -z "$row" ] && aws_try ec2 describe-instance-types --instance-types "$INSTANCE_TYPE" \
       --query 'InstanceTypes[0].VCpuInfo.DefaultVCpus' --output text 2> /dev/null && [[ "$AWS_OUT" =~ ^[0-9]+$ ]]; then
    vcpus=$AWS_OUT
  fi
  say "error: quota: AWS refused to launch $INSTANCE_TYPE ($market) in $REGION: $QUOTA_MESSAGE"
  if [ -n "$code" ]; then
    say "  The limit is the Service Quotas quota $code, \"$name\", in $REGION, counted in vCPUs ($INSTANCE_TYPE needs $vcpus)."
    say "  New accounts often start at 0. Request an increase (approval can take a day or more):"
    say "    console: https://$REGION.console.aws.amazon.com/servicequotas/home/services/ec2/quotas/$code"
    say "    CLI:     aws service-quotas request-service-quota-increase --region $REGION --service-code ec2 --quota-code $code --desired-value $vcpus"
    if [ "$market" = spot ]; then other=$(quota_for "$INSTANCE_TYPE" on-demand); else other=$(quota_for "$INSTANCE_TYPE" spot); fi
    say "  (Spot and on-demand draw on separate quotas: the $([ "$market" = spot ] && echo on-demand || echo spot) one is ${other%%|*}, \"${other#*|}\".)"
  else
    say "  Find the quota for $INSTANCE_TYPE at https://$REGION.console.aws.amazon.com/servicequotas/home/services/ec2/quotas"
  fi
  exit 4
}

# launch_instance: run-instances zone after zone (a capacity error moves on; a quota error stops at
# once; anything else stops with AWS's message). Sets INSTANCE_ID, AZ and MARKET.
launch_instance() {
  local markets=(on-demand) market place z s attempt=0 tried=""
  if (( SPOT )); then markets=(spot); (( SPOT_FALLBACK )) && markets+=(on-demand); fi
  USER_DATA_FILE="$TMPD/user-data.sh"
  user_data > "$USER_DATA_FILE"
  for market in "${markets[@]}"; do
    for place in "${PLACES[@]}"; do
      z=${place%% *}; s=${place#* }
      attempt=$((attempt + 1))
      run_args "$s" "$market" "$RUN_ID-$attempt"
      state_set LAUNCH_ATTEMPT "$RUN_ID-$attempt $z $market"
      say "launching $INSTANCE_TYPE ($market) in $z"
      critical_begin
      if AWS_UNINTERRUPTED=1 aws_try "${RUN_ARGS[@]}" --query 'Instances[0].InstanceId' --output text; then
        INSTANCE_ID=$AWS_OUT; AZ=$z; MARKET=$market
        LAUNCHED=$(date -u +%s); LAUNCHED_ISO=$(date -u '+%Y-%m-%dT%H:%M:%SZ')
        state_set INSTANCE_ID "$INSTANCE_ID"
        state_set LAUNCHED "$LAUNCHED"
        say "instance $INSTANCE_ID launched in $AZ ($MARKET)"
        critical_end
        return 0
      fi
      critical_end
      if is_capacity_error "$AWS_CODE"; then
        say "no $market capacity for $INSTANCE_TYPE in $z ($AWS_CODE): trying the next availability zone"
        tried="${tried:+$tried, }$z $market"
        continue
      fi
      if is_quota_error "$AWS_CODE"; then QUOTA_MESSAGE=$(aws_message); quota_stop "$market"; fi
      die "run-instances failed in $z: $(aws_message)"
    done
    if [ "$market" = spot ] && (( SPOT_FALLBACK )); then
      say "no spot capacity in any zone: falling back to on-demand (--spot-fallback)"
    fi
  done
  die "no capacity for $INSTANCE_TYPE in any availability zone of $REGION (tried: $tried); try again later, another --region or --instance-type$( ((SPOT)) && ! ((SPOT_FALLBACK)) && echo ", or on-demand (without --spot, or with --spot-fallback)")" 5
}

# wait_running: polls describe-instances (every POLL_SECONDS, up to 10 minutes) until the instance
# runs; sets PUBLIC_IP and writes instance.json. An instance that ends first (spot capacity taken
# back, an internal error) stops the run with AWS's reason.
wait_running() {
  local start state ip reason now
  start=$(date +%s)
  say "waiting for $INSTANCE_ID to run"
  while true; do
    if aws_try ec2 describe-instances --instance-ids "$INSTANCE_ID" --output json --query \
         'Reservations[0].Instances[0].{State: State.Name, PublicIp: PublicIpAddress, Reason: StateReason.Message, Instance: @}'; then
      # The CLI indents the top-level keys by 4 spaces: the instance's own keys are deeper.
      state=$(printf '%s\n' "$AWS_OUT" | sed -n 's/^    "State": "\([a-z-]*\)",*$/\1/p')
      ip=$(printf '%s\n' "$AWS_OUT" | sed -n 's/^    "PublicIp": "\([0-9.]*\)",*$/\1/p')
      reason=$(printf '%s\n' "$AWS_OUT" | sed -n 's/^    "Reason": "\(.*\)",*$/\1/p')
      case "$state" in
        running) break ;;
        shutting-down|terminated|stopping|stopped)
          die "$INSTANCE_ID ended before it ran ($state${reason:+: $reason})" ;;
      esac
    elif [ "$AWS_CODE" != InvalidInstanceID.NotFound ]; then  # NotFound: not visible yet, ask again
      die "describing $INSTANCE_ID failed: $(aws_message)"
    fi
    now=$(date +%s)
    (( now - start < 600 )) || die "$INSTANCE_ID did not reach running within 600 s (state: ${state:-unknown})"
    bg_wait sleep "$POLL_SECONDS"
  done
  printf '%s\n' "$AWS_OUT" > "$RESULTS/instance.json"
  PUBLIC_IP=$ip
  if is_none "$PUBLIC_IP"; then die "$INSTANCE_ID has no public IPv4 address: SSH cannot reach it"; fi
  state_set PUBLIC_IP "$PUBLIC_IP"
  say "$INSTANCE_ID is running at $PUBLIC_IP"
}

# shellcheck shell=bash
# launch-bench before anything is created: who is calling, which AMI, which zones, what it costs,
# the user-data guard, and the plan printed for the user (and for --dry-run). Sourced, not run.

# price_table TYPE: on-demand Linux price in USD per hour in us-east-1, from AWS's public list
# (https://aws.amazon.com/ec2/pricing/on-demand/) as published 2024-2025. Used only when the
# Pricing API does not answer; other regions cost up to about a third more. Empty when unknown.
price_table() {
  case "$1" in
    g4dn.xlarge) echo 0.526 ;;  g4dn.2xlarge) echo 0.752 ;; g4dn.4xlarge) echo 1.204 ;;
    g4dn.12xlarge) echo 3.912 ;;
    g5.xlarge) echo 1.006 ;;    g5.2xlarge) echo 1.212 ;;   g5.12xlarge) echo 5.672 ;;
    g6.xlarge) echo 0.8048 ;;   g6.2xlarge) echo 0.9776 ;;
    g6e.xlarge) echo 1.861 ;;   p3.2xlarge) echo 3.06 ;;    p4d.24xlarge) echo 32.7726 ;;
    *) echo "" ;;
  esac
}
# gpu_table TYPE: "GPUS VCPUS GPU-NAME" of the GPU instance types launch-bench knows (AWS's instance
# type pages); empty for the others, which are asked of describe-instance-types at launch.
gpu_table() {
  case "$1" in
    g4dn.xlarge) echo "1 4 NVIDIA T4" ;;        g4dn.2xlarge) echo "1 8 NVIDIA T4" ;;
    g4dn.4xlarge) echo "1 16 NVIDIA T4" ;;      g4dn.12xlarge) echo "4 48 NVIDIA T4" ;;
    g5.xlarge) echo "1 4 NVIDIA A10G" ;;        g5.2xlarge) echo "1 8 NVIDIA A10G" ;;
    g5.12xlarge) echo "4 48 NVIDIA A10G" ;;
    g6.xlarge) echo "1 4 NVIDIA L4" ;;          g6.2xlarge) echo "1 8 NVIDIA L4" ;;
    g6e.xlarge) echo "1 4 NVIDIA L40S" ;;       p3.2xlarge) echo "1 8 NVIDIA V100" ;;
    p4d.24xlarge) echo "8 96 NVIDIA A100" ;;
    *) echo "" ;;
  esac
}
# instance_gpus: sets GPUS (how many GPUs $INSTANCE_TYPE has; empty when unknown) and GPU_NAME, from
# the table, else (not in a dry run) from describe-instance-types.
instance_gpus() {
  local row
  row=$(gpu_table "$INSTANCE_TYPE")
  if [ -n "$row" ]; then read -r GPUS _ GPU_NAME <<< "$row"; return 0; fi
  GPUS=""; GPU_NAME=""
  (( DRY_RUN )) && return 0
  if aws_try ec2 describe-instance-types --instance-types "$INSTANCE_TYPE" \
       --query 'InstanceTypes[0].GpuInfo.Gpus[0].[Count, Manufacturer, Name]' --output text &&
     [[ "$AWS_OUT" =~ ^[0-9]+ ]]; then
    read -r GPUS GPU_NAME <<< "$AWS_OUT"
  fi
  return 0
}
GP3_USD_PER_GB_MONTH=0.08   # us-east-1 list price; a month is 730 hours in AWS's billing
IPV4_USD_PER_HOUR=0.005     # public IPv4 address, charged since February 2024

# pricing_api_price: the on-demand Linux price of $INSTANCE_TYPE in $REGION from the AWS Pricing API
# (served from us-east-1), or nothing when it does not answer.
pricing_api_price() {
  AWS_MAX_ATTEMPTS=1 AWS_CALL_REGION=us-east-1 aws_try pricing get-products --service-code AmazonEC2 \
    --cli-connect-timeout 5 --cli-read-timeout 15 --max-results 10 --output json --query PriceList \
    --filters "Type=TERM_MATCH,Field=instanceType,Value=$INSTANCE_TYPE" \
              "Type=TERM_MATCH,Field=regionCode,Value=$REGION" \
              "Type=TERM_MATCH,Field=operatingSystem,Value=Linux" \
              "Type=TERM_MATCH,Field=tenancy,Value=Shared" \
              "Type=TERM_MATCH,Field=preInstalledSw,Value=NA" \
              "Type=TERM_MATCH,Field=capacitystatus,Value=Used" > /dev/null 2>&1 || return 0
  printf '%s' "$AWS_OUT" | python3 -c '
import json, sys
for item in json.load(sys.stdin) or []:
    product = json.loads(item)
    for term in product.get("terms", {}).get("OnDemand", {}).values():
        for dim in term.get("priceDimensions", {}).values():
            usd = float(dim.get("pricePerUnit", {}).get("USD", "0") or 0)
            if usd > 0:
                print(usd); sys.exit(0)
' 2> /dev/null || true
}

# choose_price: sets PRICE and PRICE_SOURCE (--price, the Pricing API, or the built-in table).
choose_price() {
  local api=""
  if [ -n "$PRICE" ]; then PRICE_SOURCE="--price"; return; fi
  if ! (( DRY_RUN )); then api=$(pricing_api_price); fi
  if [ -n "$api" ]; then
    PRICE=$api; PRICE_SOURCE="AWS Pricing API, on-demand Linux in $REGION"; return
  fi
  PRICE=$(price_table "$INSTANCE_TYPE")
  [ -n "$PRICE" ] || die "no price known for $INSTANCE_TYPE (the Pricing API did not answer and it is not in the built-in table): pass --price USD_PER_HOUR" 2
  PRICE_SOURCE="built-in table: us-east-1 on-demand list price, 2024-2025"
  (( DRY_RUN )) || PRICE_SOURCE="$PRICE_SOURCE (the Pricing API did not answer)"
}

# cost_line: the worst case, hourly price x max-hours, plus the root volume and the public address.
cost_line() {
  awk -v p="$PRICE" -v h="$MAX_HOURS" -v gb="$VOLUME_GB" -v gbm="$GP3_USD_PER_GB_MONTH" -v ip="$IPV4_USD_PER_HOUR" \
    'BEGIN { i = p * h; v = gb * gbm / 730 * h; a = ip * h;
             printf "$%.2f = $%.4g/h x %s h for the instance + $%.2f gp3 %d GiB + $%.2f public IPv4", i + v + a, p, h, v, gb, a }'
}
cost_total() { awk -v p="$PRICE" -v h="$MAX_HOURS" -v gb="$VOLUME_GB" -v gbm="$GP3_USD_PER_GB_MONTH" -v ip="$IPV4_USD_PER_HOUR" \
  'BEGIN { printf "%.2f", p * h + gb * gbm / 730 * h + ip * h }'; }

# caller_identity: sets CALLER_ARN and CALLER_ACCOUNT (sts get-caller-identity).
caller_identity() {
  aws_do "asking AWS who you are (sts get-caller-identity; are credentials configured?)" \
    sts get-caller-identity --query '[Account,Arn]' --output text
  read -r CALLER_ACCOUNT CALLER_ARN <<< "$AWS_OUT"
}

# caller_ip: sets MY_IP, this machine's public IPv4 address, for the security group's only rule:
# --my-ip (or the CUDL_EC2_MY_IP test hook) when given, else the first of the "what is my IP"
# services (IP_URLS) that answers with an IPv4 address.
IP_URLS=${CUDL_EC2_IP_URLS:-https://checkip.amazonaws.com https://api.ipify.org}
caller_ip() {
  local url answer why="" one
  if [ -n "$MY_IP_GIVEN" ]; then
    MY_IP=$MY_IP_GIVEN
    valid_ipv4 "$MY_IP" || die "your public address '$MY_IP' is not an IPv4 address (four numbers 0-255 without leading zeros)" 2
    say "your public IPv4 address: $MY_IP (given)"
    return 0
  fi
  command -v curl > /dev/null || die "curl is not installed: it asks a public service for your IPv4 address (or pass --my-ip A.B.C.D)"
  for url in $IP_URLS; do
    if answer=$(bg_wait curl -fsS --max-time 10 "$url" 2> "$TMPD/ip.err"); then
      answer=$(printf '%s' "$answer" | tr -d '[:space:]')
      if valid_ipv4 "$answer"; then
        MY_IP=$answer
        say "your public IPv4 address: $MY_IP (from $url)"
        return 0
      fi
      case "$answer" in
        *:*) one="answered '${answer:0:60}', an IPv6 address" ;;
        *) one="answered '${answer:0:60}', not an IPv4 address (four numbers 0-255 without leading zeros)" ;;
      esac
    else
      one="did not answer ($(tail -n 1 "$TMPD/ip.err"))"
    fi
    why="${why:+$why; }$url $one"
    warn "cannot learn your public IPv4 address from $url: it $one"
  done
  die "cannot learn your public IPv4 address (the security group admits SSH from it alone): $why. Pass it with --my-ip A.B.C.D; IPv6-only networks are not supported"
}

# check_run_id_unused: refuses RUN_ID when AWS holds resources tagged with it (an earlier run of the
# same id, perhaps from another machine): a run must never share, and so tear down, another's.
check_run_id_unused() {
  local rows="" id name
  live_instances "Name=tag:cudl:run-id,Values=$RUN_ID" || die "looking for instances tagged cudl:run-id=$RUN_ID failed: $(aws_message)"
  for id in $LIVE; do rows="$rows instance $id;"; done
  tagged security-groups 'SecurityGroups[].[GroupId,GroupName]' ||
    die "looking for security groups tagged cudl:run-id=$RUN_ID failed: $(aws_message)"
  while read -r id name; do [ -z "$id" ] || rows="$rows security group $id ($name);"; done <<< "$TAGGED"
  tagged key-pairs 'KeyPairs[].[KeyPairId,KeyName]' || die "looking for key pairs tagged cudl:run-id=$RUN_ID failed: $(aws_message)"
  while read -r id name; do [ -z "$id" ] || rows="$rows key pair $id ($name);"; done <<< "$TAGGED"
  [ -z "$rows" ] ||
    die "run id $RUN_ID is taken: AWS holds resources tagged cudl:run-id=$RUN_ID in $REGION:${rows%;}. Choose another --run-id (or end that run: $SELF down --run-id $RUN_ID --region $REGION)" 2
}

# resolve_ami: sets AMI_ID, AMI_NAME, AMI_SOURCE, ROOT_DEVICE and ROOT_SNAPSHOT_GB.
resolve_ami() {
  local ssm_error="" sizes
  # shellcheck disable=SC2016  # backticks are JMESPath literals
  local fields='Name, RootDeviceName, join(`,`, BlockDeviceMappings[?Ebs].join(`=`, [DeviceName, to_string(Ebs.VolumeSize)]))'
  if [ -n "$AMI_ID" ]; then
    AMI_SOURCE="--ami"
  elif aws_try ssm get-parameter --name "$AMI_PARAM" --query Parameter.Value --output text; then
    AMI_ID=$AWS_OUT; AMI_SOURCE="SSM parameter $AMI_PARAM"
  else
    ssm_error=$(aws_message)
    say "the SSM parameter $AMI_PARAM did not answer ($ssm_error); looking for the newest image named '$AMI_NAME_PATTERN' owned by amazon instead"
    aws_do "looking for the Deep Learning AMI (describe-images)" ec2 describe-images --owners amazon \
      --filters "Name=name,Values=$AMI_NAME_PATTERN" Name=state,Values=available Name=architecture,Values=x86_64 \
      --query "sort_by(Images, &CreationDate)[-1].[ImageId, $fields]" --output text
    ! is_none "$AWS_OUT" ||
      die "no AMI: the SSM parameter $AMI_PARAM failed ($ssm_error) and no image named '$AMI_NAME_PATTERN' owned by amazon is in $REGION; pass --ami ami-..."
    IFS=$'\t' read -r AMI_ID AMI_NAME ROOT_DEVICE sizes <<< "$AWS_OUT"
    AMI_SOURCE="describe-images fallback ('$AMI_NAME_PATTERN', owner amazon)"
  fi
  if [ "$AMI_SOURCE" != "describe-images fallback ('$AMI_NAME_PATTERN', owner amazon)" ]; then
    aws_do "describing the AMI $AMI_ID" ec2 describe-images --image-ids "$AMI_ID" --query "Images[0].[$fields]" --output text
    ! is_none "$AWS_OUT" || die "the AMI $AMI_ID does not exist in $REGION"
    IFS=$'\t' read -r AMI_NAME ROOT_DEVICE sizes <<< "$AWS_OUT"
  fi
  ! is_none "$ROOT_DEVICE" || ROOT_DEVICE=/dev/sda1
  ROOT_SNAPSHOT_GB=$(printf '%s' "$sizes" | tr ',' '\n' | sed -n "s|^$ROOT_DEVICE=||p" | head -n 1)
  if [[ "$ROOT_SNAPSHOT_GB" =~ ^[0-9]+$ ]] && (( ROOT_SNAPSHOT_GB > VOLUME_GB )); then
    say "the AMI's root snapshot is $ROOT_SNAPSHOT_GB GiB: the root volume grows from $VOLUME_GB to $ROOT_SNAPSHOT_GB GiB"
    VOLUME_GB=$ROOT_SNAPSHOT_GB
  fi
}

# find_places: sets VPC_ID and PLACES, the "zone subnet" pairs to try in order: the zones that offer
# $INSTANCE_TYPE and have a default subnet (only availability zones have those), by name, --az first.
find_places() {
  local zones offered subnets z s first=() rest=()
  aws_do "listing where $INSTANCE_TYPE is offered" ec2 describe-instance-type-offerings \
    --location-type availability-zone --filters "Name=instance-type,Values=$INSTANCE_TYPE" \
    --query 'InstanceTypeOfferings[].Location' --output text
  offered=" $(printf '%s' "$AWS_OUT" | tr '\t\n' '  ') "
  aws_do "listing the default VPC's subnets" ec2 describe-subnets --filters Name=default-for-az,Values=true \
    --query 'Subnets[].[AvailabilityZone,SubnetId,VpcId]' --output text
  subnets=$AWS_OUT
  zones=$(printf '%s\n' "$subnets" | awk 'NF == 3 { print $1 }' | sort -u)
  VPC_ID=$(printf '%s\n' "$subnets" | awk 'NF == 3 { print $3; exit }')
  ! is_none "$VPC_ID" ||
    die "$REGION has no default VPC (no default subnets); create one with: aws ec2 create-default-vpc --region $REGION"
  PLACES=()
  for z in $zones; do
    [[ "$offered" == *" $z "* ]] || continue
    s=$(printf '%s\n' "$subnets" | awk -v z="$z" '$1 == z { print $2; exit }')
    [ -n "$s" ] || continue
    if [ "$z" = "$AZ_FIRST" ]; then first=("$z $s"); else rest+=("$z $s"); fi
  done
  PLACES=("${first[@]}" "${rest[@]}")
  (( ${#PLACES[@]} > 0 )) ||
    die "$INSTANCE_TYPE is not offered in any availability zone of $REGION with a default subnet (offered in:${offered% }); try another --region or --instance-type"
  if [ -n "$AZ_FIRST" ] && (( ${#first[@]} == 0 )); then
    warn "--az $AZ_FIRST does not offer $INSTANCE_TYPE (or has no default subnet); trying the others"
  fi
}

# user_data: the max-hours guard, run by cloud-init at first boot. Powering off terminates the
# instance (it is launched with instance-initiated-shutdown-behavior terminate), so it ends itself
# even when the machine that launched it is gone. Three independent timers, in case one is lost.
user_data() {
  cat <<EOF
#!/bin/bash
# cudl launch-bench max-hours guard for run $RUN_ID: power off after $MAX_MINUTES minutes, no matter
# what; the shutdown behaviour is terminate, so powering off ends (and stops billing) the instance.
MAX_MINUTES=$MAX_MINUTES
shutdown -P "+\$MAX_MINUTES" "cudl launch-bench: max-hours ($MAX_HOURS h) reached" || true
deadline=\$(date -u -d "+\$MAX_MINUTES minutes" '+%Y-%m-%d %H:%M:%S')
cat > /etc/systemd/system/cudl-max-hours.service <<UNIT
[Unit]
Description=cudl launch-bench max-hours guard: power off
[Service]
Type=oneshot
ExecStart=/usr/bin/systemctl poweroff --force
UNIT
cat > /etc/systemd/system/cudl-max-hours.timer <<UNIT
[Unit]
Description=cudl launch-bench max-hours guard (\$deadline UTC), also after a reboot
[Timer]
OnCalendar=\$deadline UTC
Persistent=true
[Install]
WantedBy=timers.target
UNIT
systemctl daemon-reload && systemctl enable --now cudl-max-hours.timer || true
nohup sh -c "sleep \$((MAX_MINUTES * 60)); poweroff -f" > /dev/null 2>&1 &
EOF
}

# print_plan: everything the run will do, with what was looked up so far (instance_gpus first).
print_plan() {
  local market=on-demand ami zones ssh_from caller root_dev tests="" after spot_note="" gpus ranks=""
  if (( SPOT )); then
    market="spot (one-time, terminated on interruption)"
    (( SPOT_FALLBACK )) && market="$market, falling back to on-demand when no zone has spot capacity"
    spot_note="; spot is billed at most this on-demand price"
  fi
  if [ -n "$AMI_ID" ]; then ami="$AMI_ID${AMI_NAME:+ ($AMI_NAME)} from $AMI_SOURCE"
  else ami="from the SSM parameter $AMI_PARAM (fallback: the newest image named '$AMI_NAME_PATTERN' owned by amazon)"; fi
  if (( ${#PLACES[@]} )); then zones=$(printf '%s, ' "${PLACES[@]%% *}"); zones="in this order: ${zones%, }"
  else zones="the zones of $REGION that offer $INSTANCE_TYPE, looked up at launch"; fi
  ssh_from="${MY_IP:-${MY_IP_GIVEN:-your public IPv4 address (looked up at launch)}}/32"
  caller="${CALLER_ARN:-(looked up at launch: sts get-caller-identity)}${CALLER_ACCOUNT:+ (account $CALLER_ACCOUNT)}"
  root_dev=${ROOT_DEVICE:-"the AMI's root device"}
  (( RUN_TESTS )) && tests="run the tests; "
  if [ -z "$GPUS" ]; then gpus="not in launch-bench's table (asked of AWS at launch)"
  elif (( GPUS < 2 )); then gpus="$GPUS ($GPU_NAME)"
  else
    gpus="$GPUS ($GPU_NAME); bench_dbn runs on one of them, then data parallel on all $GPUS"
    ranks=$'\n'"  data parallel     then mpirun -np $GPUS bench_dbn --device gpu --batch $((64 / GPUS)) --json: one rank per GPU,"
    ranks+=$'\n'"                    each with $((64 / GPUS)) of the 64 rows of a step (the 2014 batch$( ((64 % GPUS == 0)) || echo ", floored"))"
  fi
  if (( KEEP )); then after="the instance is KEPT running (until '$SELF down --run-id $RUN_ID' or the max-hours guard)"
  else after="terminate, wait, delete the security group and the key pair (also on failure and Ctrl-C)"; fi
  cat <<EOF
cudl launch-bench plan, run $RUN_ID
  caller            $caller
  region            $REGION
  instance          $INSTANCE_TYPE, $market
  GPUs              $gpus
  zones             $zones; a capacity error moves to the next one
  AMI               $ami
  root volume       $VOLUME_GB GiB gp3 on $root_dev, encrypted, deleted on termination
  key pair          cudl-bench-$RUN_ID (ed25519), private key $STATE_DIR/$RUN_ID.pem, mode 0400
  security group    cudl-bench-$RUN_ID in the default VPC: inbound SSH (tcp/22) from $ssh_from only, nothing else
  metadata          IMDSv2 required (HttpTokens=required, hop limit 1)
  max-hours guard   user-data powers the instance off after $MAX_HOURS h ($MAX_MINUTES min); shutdown behaviour terminate
  tags              cudl:run-id=$RUN_ID, cudl:tool=launch-bench, Name=cudl-bench-$RUN_ID
  source            $SOURCE_FILES files, $(human_bytes "$SOURCE_BYTES") ($SOURCE_BYTES bytes), $SOURCE_DESC;
                    files git does not track (untracked or ignored) are never sent
  on the instance   wait for SSH as $SSH_USER; copy the source; install the build's packages; fetch MNIST
                    (checksums verified); build for the GPU's architecture; ${tests}bench_dbn
                    --device cpu and --device gpu, --epochs $EPOCHS, --json; collect nvidia-smi and every log$ranks
  results           $RESULTS_ROOT/$RUN_ID/: JSON, logs, report.md (2014 figures beside ours), chart.png
  afterwards        $after
  worst-case cost   $(cost_line)
                    price: $PRICE_SOURCE$spot_note
EOF
}

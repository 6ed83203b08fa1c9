"""launch-bench against a moto server (the real aws CLI pointed at it) and a loopback sshd standing
in for the instance. Every test asserts from moto's request recorder, moto's state or the fake aws
command's log, and ends by checking that nothing tagged by cudl is left."""

import base64
import os
import signal
import stat
import subprocess
import unittest

import harness
from harness import MY_IP, REGION

WORLD = None
QUICK_REMOTE = 'mkdir -p "$CUDL_REMOTE_OUT" && echo made-on-the-instance > "$CUDL_REMOTE_OUT/marker.txt"'


def setUpModule():
    global WORLD
    WORLD = harness.World()


def tearDownModule():
    if WORLD:
        WORLD.stop()


class LaunchBenchTest(unittest.TestCase):
    maxDiff = None

    def start(self, name, args, remote_cmd=None, remote_args=None, faults=None, before=None):
        """launch-bench run ARGS in a fresh world (BEFORE, if given, prepares moto first)."""
        self.dir, self.env = WORLD.fresh(name)
        if before:
            before()
        if remote_cmd:
            self.env["CUDL_EC2_REMOTE_CMD"] = remote_cmd
        if remote_args:
            self.env["CUDL_EC2_REMOTE_ARGS"] = remote_args
        if faults:
            self.env["CUDL_FAKE_FAULTS"] = faults
        base = ["--region", REGION, "--ssh-user", _whoami(), "--ssh-timeout", "60",
                "--results", os.path.join(self.dir, "results")]
        return harness.Run(self.env, ["run"] + base + args, os.path.join(self.dir, "out.txt"))

    def again(self, args, name):
        """Another launch-bench command in the same test's world (down, cleanup, ssh)."""
        return harness.Run(self.env, args, os.path.join(self.dir, "out-%s.txt" % name))

    def run_id(self, out):
        for line in out.splitlines():
            if line.startswith("cudl launch-bench plan, run "):
                return line.rsplit(" ", 1)[1]
        self.fail("no run id in the output:\n" + out)

    def actions(self, name):
        return [r for r in WORLD.moto.requests() if r["action"] == name]

    def assertNothingLeft(self, out=""):
        self.assertEqual(WORLD.leftovers(), {"instances": [], "security_groups": [], "key_pairs": []},
                         "resources tagged by cudl are left; launch-bench said:\n" + out)
        self.assertEqual([p for p in os.listdir(os.path.join(self.dir, "state")) if p.endswith(".pem")], [],
                         "the private key is still on disk")

    def assertRunInstancesRequest(self, p, spot):
        """The run-instances request as the issue asks for it."""
        self.assertEqual(p["InstanceInitiatedShutdownBehavior"], "terminate")
        self.assertEqual(p["MetadataOptions.HttpTokens"], "required")
        self.assertEqual(p["BlockDeviceMapping.1.Ebs.VolumeType"], "gp3")
        self.assertEqual(p["BlockDeviceMapping.1.Ebs.DeleteOnTermination"], "true")
        self.assertEqual(p["InstanceType"], "g4dn.xlarge")
        user_data = base64.b64decode(p["UserData"]).decode()
        self.assertIn("MAX_MINUTES=120", user_data)
        self.assertIn('shutdown -P "+$MAX_MINUTES"', user_data)
        self.assertIn("OnCalendar=$deadline UTC", user_data)
        tags = {(p["TagSpecification.%d.Tag.%d.Key" % (s, t)], p["TagSpecification.%d.Tag.%d.Value" % (s, t)])
                for s in (1, 2) for t in (1, 2, 3)}
        self.assertIn(("cudl:tool", "launch-bench"), tags)
        self.assertEqual({p["TagSpecification.1.ResourceType"], p["TagSpecification.2.ResourceType"]},
                         {"instance", "volume"})
        if spot:
            self.assertEqual(p["InstanceMarketOptions.MarketType"], "spot")
            self.assertEqual(p["InstanceMarketOptions.SpotOptions.SpotInstanceType"], "one-time")
            self.assertEqual(p["InstanceMarketOptions.SpotOptions.InstanceInterruptionBehavior"], "terminate")
        else:
            self.assertFalse([k for k in p if k.startswith("InstanceMarketOptions")])

    def assertIngressIsCallerOnly(self):
        calls = self.actions("AuthorizeSecurityGroupIngress")
        self.assertEqual(len(calls), 1)
        rule = {k: v for k, v in calls[0]["params"].items() if k.startswith("IpPermissions")}
        self.assertEqual({k: v for k, v in rule.items() if not k.endswith("Description")}, {
            "IpPermissions.1.IpProtocol": "tcp", "IpPermissions.1.FromPort": "22", "IpPermissions.1.ToPort": "22",
            "IpPermissions.1.IpRanges.1.CidrIp": MY_IP + "/32"})

    # --- The tests ---------------------------------------------------------------------------------

    def test_dry_run_makes_no_request(self):
        run = self.start("dry-run", ["--dry-run", "--spot", "--max-hours", "3"])
        self.assertEqual(run.wait(30), 0, run.output())
        out = run.output()
        for text in ("g4dn.xlarge", "spot (one-time", "max-hours guard   user-data powers the instance off after 3 h",
                     "/32 only", "IMDSv2 required", "worst-case cost   $1.63 = $0.526/h x 3 h", "aws ec2 run-instances",
                     "--instance-initiated-shutdown-behavior terminate", "shutdown -P", "no AWS request was made"):
            self.assertIn(text, out)
        self.assertEqual(WORLD.moto.requests(), [], "the dry run reached the AWS endpoint")
        self.assertEqual(WORLD.aws_calls(self.dir), [], "the dry run ran the aws command")
        self.assertEqual(os.listdir(os.path.join(self.dir, "state")), [])

    def test_refuses_without_yes_and_terminal_before_any_request(self):
        run = self.start("no-yes", [])
        self.assertEqual(run.wait(30), 2)
        self.assertIn("no terminal to confirm on: rerun with --yes", run.output())
        for n, (bad, message) in enumerate(((["--max-hours", "0"], "--max-hours: expected more than 0"),
                                            (["--max-hours", "25"], "at most 24 hours, found '25'"),
                                            (["--instance-type", "G4DN"], "--instance-type: expected an instance type"),
                                            (["--frobnicate"], "unknown option '--frobnicate'"),
                                            (["--spot-fallback"], "--spot-fallback: only with --spot"))):
            run = self.again(["run", "--yes"] + bad, "usage-%d" % n)
            self.assertEqual(run.wait(30), 2, run.output())
            self.assertIn(message, run.output())
        self.assertEqual(WORLD.moto.requests(), [])
        self.assertEqual(WORLD.aws_calls(self.dir), [])

    @unittest.skipUnless(harness.prebuilt_dir(), "no build of bench_dbn (run scripts/run_tests.sh first)")
    def test_success_runs_the_real_remote_script_and_tears_down(self):
        remote_args = ("--prebuilt %s --gpu optional --tests-regex 'Philox|BenchDbn.Help' "
                       "--mnist-mirrors file:///nonexistent/" % harness.prebuilt_dir())
        run = self.start("success", ["--yes", "--epochs", "1"], remote_args=remote_args)
        rc = run.wait(180)
        out = run.output()
        self.assertEqual(rc, 0, out)
        run_id = self.run_id(out)
        results = os.path.join(self.dir, "results", run_id)
        # The AMI came from the describe-images fallback (moto cannot hold the public SSM parameter).
        self.assertEqual(len(self.actions("GetParameter")), 1)
        images = [r for r in self.actions("DescribeImages") if r["params"].get("Owner.1") == "amazon"]
        self.assertEqual(len(images), 1)
        launches = self.actions("RunInstances")
        self.assertEqual(len(launches), 1)
        self.assertEqual(launches[0]["params"]["ImageId"], "ami-0d1a00000000000a2")
        self.assertRunInstancesRequest(launches[0]["params"], spot=False)
        self.assertIngressIsCallerOnly()
        # The real remote script ran bench_dbn for real: CPU ok, GPU refused (no GPU here), recorded.
        steps = read(os.path.join(results, "steps.tsv"))
        self.assertRegex(steps, r"bench_cpu\tok\t0")
        self.assertRegex(steps, r"tests\tok\t0")
        self.assertRegex(steps, r"bench_gpu\tfailed\t2\t[0-9.]+\tbench_dbn: cannot use the GPU")
        self.assertIn('"status": "ok"', read(os.path.join(results, "bench_cpu.json")))
        report = read(os.path.join(results, "report.md"))
        self.assertIn("| 2014 seed, nolearn/gdbn, GPU | AWS g2.2xlarge (GRID K520) | ~8 s | 97–98%", report)
        self.assertRegex(report, r"cudl CPU .*\*\*[0-9.]+ s\*\* \(median of 1\)")
        self.assertIn("Teardown: done", report)
        self.assertEqual(read(os.path.join(results, "chart.png"), "rb")[:8], b"\x89PNG\r\n\x1a\n")
        for name in ("run.json", "plan.txt", "launch.log", "remote-console.log", "instance.json", "nvidia-smi.txt",
                     "logs/bench_cpu.log", "logs/bench_gpu.log", "logs/tests.log"):
            self.assertTrue(os.path.exists(os.path.join(results, name)), name)
        # Teardown: terminated, waited for, security group and key pair deleted.
        for action in ("TerminateInstances", "DeleteSecurityGroup", "DeleteKeyPair"):
            self.assertEqual(len(self.actions(action)), 1, action)
        self.assertEqual([i["State"]["Name"] for i in WORLD.instances()], ["terminated"])
        self.assertNothingLeft(out)

    def test_spot_with_ssm_ami_and_security_group_still_in_use(self):
        def put_parameter():
            WORLD.ssm.put_parameter(Name="/cudl-test/dlami/ami-id", Value="ami-0d1a00000000000b1", Type="String")
        run = self.start("spot", ["--yes", "--spot", "--ami-param", "/cudl-test/dlami/ami-id"],
                         remote_cmd=QUICK_REMOTE, faults="delete-security-group=in-use:2 get-products=price:1",
                         before=put_parameter)
        rc = run.wait(120)
        out = run.output()
        self.assertEqual(rc, 0, out)
        # The price came from the (canned) Pricing API answer, on-demand as the worst case for spot.
        self.assertIn("worst-case cost   $1.27 = $0.617/h x 2 h", out)
        self.assertIn("price: AWS Pricing API, on-demand Linux in us-east-1; spot is billed at most", out)
        launches = self.actions("RunInstances")
        self.assertEqual(len(launches), 1)
        self.assertEqual(launches[0]["params"]["ImageId"], "ami-0d1a00000000000b1")
        self.assertEqual([r for r in self.actions("DescribeImages") if r["params"].get("Owner.1")], [])
        self.assertRunInstancesRequest(launches[0]["params"], spot=True)
        self.assertEqual([i.get("InstanceLifecycle") for i in WORLD.instances()], ["spot"])
        # The security group was "still in use" twice: retried, then deleted.
        deletes = [k for k, argv in WORLD.aws_calls(self.dir) if "delete-security-group" in argv]
        self.assertEqual(deletes, ["FAULT in-use", "FAULT in-use", "CALL"])
        self.assertIn("still in use (DependencyViolation); retrying", out)
        run_id = self.run_id(out)
        marker = os.path.join(self.dir, "results", run_id, "marker.txt")
        self.assertEqual(read(marker), "made-on-the-instance\n")
        self.assertNothingLeft(out)

    def test_remote_benchmark_failing_still_brings_logs_home_and_tears_down(self):
        run = self.start("remote-fails", ["--yes", "--epochs", "1", "--no-tests"],
                         remote_args="--prebuilt /nonexistent/build --mnist-mirrors file:///nonexistent/")
        rc = run.wait(120)
        out = run.output()
        self.assertEqual(rc, 3, out)
        self.assertIn("the benchmark failed on the instance (status 1)", out)
        results = os.path.join(self.dir, "results", self.run_id(out))
        steps = read(os.path.join(results, "steps.tsv"))
        self.assertIn("build\tfailed\t-\t0\t--prebuilt /nonexistent/build has no benchmarks/bench_dbn", steps)
        self.assertIn("bench_cpu\tskipped", steps)
        self.assertIn("skipped: no bench_dbn: the build failed", read(os.path.join(results, "report.md")))
        self.assertNothingLeft(out)

    def test_sigint_mid_run_tears_down_and_a_second_sigint_does_not_stop_it(self):
        run = self.start("sigint", ["--yes"], remote_cmd="echo REMOTE-IS-RUNNING; sleep 30")
        run.wait_for("REMOTE-IS-RUNNING", 90)
        # Mid-run, the resources are as the issue asks: check them in moto's state.
        (instance,) = WORLD.instances()
        iid = instance["InstanceId"]
        self.assertEqual(instance["MetadataOptions"]["HttpTokens"], "required")
        tags = {t["Key"]: t["Value"] for t in instance["Tags"]}
        run_id = tags["cudl:run-id"]
        self.assertEqual(tags["Name"], "cudl-bench-" + run_id)
        self.assertEqual(WORLD.ec2.describe_instance_attribute(InstanceId=iid, Attribute="instanceInitiatedShutdownBehavior")
                         ["InstanceInitiatedShutdownBehavior"]["Value"], "terminate")
        user_data = base64.b64decode(WORLD.ec2.describe_instance_attribute(InstanceId=iid, Attribute="userData")
                                     ["UserData"]["Value"]).decode()
        self.assertIn("poweroff", user_data)
        self.assertIn("MAX_MINUTES=120", user_data)
        (group,) = WORLD.ec2.describe_security_groups(Filters=[{"Name": "tag:cudl:run-id", "Values": [run_id]}])["SecurityGroups"]
        self.assertEqual(group["IpPermissions"], [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "UserIdGroupPairs": [],
                                                   "IpRanges": [{"CidrIp": MY_IP + "/32", "Description": "SSH from the machine that ran launch-bench"}],
                                                   "Ipv6Ranges": [], "PrefixListIds": []}])
        key = os.path.join(self.dir, "state", run_id + ".pem")
        self.assertEqual(stat.S_IMODE(os.stat(key).st_mode), 0o400)
        state = read(os.path.join(self.dir, "state", run_id + ".state"))
        for line in ("KEY_NAME=cudl-bench-" + run_id, "SG_ID=" + group["GroupId"], "INSTANCE_ID=" + iid, "PHASE=remote"):
            self.assertIn(line + "\n", state)
        # Ctrl-C to the whole process group, then again once the teardown has begun.
        run.signal_group(signal.SIGINT)
        run.wait_for("tearing down run", 30)
        run.signal_group(signal.SIGINT)
        during = len(run.output())
        rc = run.wait(120)
        out = run.output()
        self.assertEqual(rc, 130, out)
        self.assertIn("interrupted by SIGINT", out)
        self.assertNotIn("teardown of run", out[:during], "the second SIGINT came too late to test anything")
        self.assertIn("teardown of run %s complete" % run_id, out[during:])
        self.assertNothingLeft(out)

    def test_quota_error_stops_at_once_naming_the_quota(self):
        for spot, fault, code, other in ((False, "quota", "L-DB2E81BA", "L-3819A6DF"),
                                         (True, "spot-quota", "L-3819A6DF", "L-DB2E81BA")):
            run = self.start("quota", ["--yes"] + (["--spot"] if spot else []), remote_cmd=QUICK_REMOTE,
                             faults="run-instances=%s:9" % fault)
            rc = run.wait(120)
            out = run.output()
            self.assertEqual(rc, 4, out)
            self.assertIn("The limit is the Service Quotas quota %s" % code, out)
            self.assertIn("aws service-quotas request-service-quota-increase --region %s --service-code ec2 "
                          "--quota-code %s --desired-value 4" % (REGION, code), out)
            self.assertIn("servicequotas/home/services/ec2/quotas/" + code, out)
            self.assertIn(other, out)
            launches = [k for k, argv in WORLD.aws_calls(self.dir) if "run-instances" in argv]
            self.assertEqual(launches, ["FAULT " + fault], "a quota error must not move to the next zone")
            self.assertEqual(self.actions("RunInstances"), [])
            self.assertIn("teardown of run", out)
            self.assertNothingLeft(out)

    def test_any_other_launch_error_stops_with_the_aws_message(self):
        run = self.start("invalid", ["--yes"], remote_cmd=QUICK_REMOTE, faults="run-instances=invalid:9")
        rc = run.wait(120)
        out = run.output()
        self.assertEqual(rc, 1, out)
        self.assertIn("error: run-instances failed in us-east-1a: An error occurred (InvalidParameterValue) when "
                      "calling the RunInstances operation: Value (fake) for parameter instanceType is invalid.", out)
        self.assertEqual(len([k for k, argv in WORLD.aws_calls(self.dir) if "run-instances" in argv]), 1)
        self.assertNothingLeft(out)

    def test_capacity_error_moves_to_the_next_zone(self):
        run = self.start("capacity", ["--yes"], remote_cmd=QUICK_REMOTE, faults="run-instances=capacity:1")
        rc = run.wait(120)
        out = run.output()
        self.assertEqual(rc, 0, out)
        subnets = {s["SubnetId"]: s["AvailabilityZone"] for s in WORLD.ec2.describe_subnets()["Subnets"]}
        (refused,) = [argv for k, argv in WORLD.aws_calls(self.dir) if k == "FAULT capacity"]
        refused_subnet = refused[refused.index("--subnet-id") + 1]
        (launched,) = self.actions("RunInstances")
        # --associate-public-ip-address makes the CLI send the subnet inside NetworkInterface.1.
        launched_subnet = launched["params"]["NetworkInterface.1.SubnetId"]
        self.assertNotEqual(subnets[launched_subnet], subnets[refused_subnet])
        self.assertEqual(WORLD.instances()[0]["Placement"]["AvailabilityZone"], subnets[launched_subnet])
        self.assertIn("(InsufficientInstanceCapacity): trying the next availability zone", out)
        self.assertNothingLeft(out)

    def test_no_spot_capacity_anywhere_falls_back_to_on_demand_then_gives_up(self):
        run = self.start("no-capacity", ["--yes", "--spot", "--spot-fallback"], remote_cmd=QUICK_REMOTE,
                         faults="run-instances=capacity:99")
        rc = run.wait(120)
        out = run.output()
        self.assertEqual(rc, 5, out)
        self.assertIn("no spot capacity in any zone: falling back to on-demand", out)
        self.assertIn("no capacity for g4dn.xlarge in any availability zone of us-east-1 "
                      "(tried: us-east-1a spot, us-east-1b spot, us-east-1c spot, us-east-1d spot, us-east-1f spot, "
                      "us-east-1a on-demand, us-east-1b on-demand", out)
        tries = [argv for k, argv in WORLD.aws_calls(self.dir) if "run-instances" in argv]
        spot = ["--instance-market-options" in argv for argv in tries]
        self.assertEqual(spot, [True] * 5 + [False] * 5)
        self.assertEqual(len({argv[argv.index("--subnet-id") + 1] for argv in tries[:5]}), 5)
        self.assertEqual(self.actions("RunInstances"), [])
        self.assertNothingLeft(out)

    def test_killed_run_is_finished_by_down_from_its_state_file(self):
        run = self.start("killed-down", ["--yes"], remote_cmd="echo REMOTE-IS-RUNNING; sleep 30")
        run.wait_for("REMOTE-IS-RUNNING", 90)
        run.signal_group(signal.SIGKILL)
        run.wait(10)
        left = WORLD.leftovers()
        self.assertEqual((len(left["instances"]), len(left["security_groups"]), len(left["key_pairs"])), (1, 1, 1))
        run_id = self.run_id(run.output())
        down = self.again(["down", "--run-id", run_id], "down")
        self.assertEqual(down.wait(120), 0, down.output())
        self.assertNothingLeft(down.output())
        again = self.again(["down", "--run-id", run_id], "down-again")  # idempotent
        self.assertEqual(again.wait(120), 0, again.output())
        self.assertIn("teardown of run %s complete" % run_id, again.output())

    def test_killed_run_is_found_and_removed_by_cleanup(self):
        run = self.start("killed-cleanup", ["--yes", "--spot"], remote_cmd="echo REMOTE-IS-RUNNING; sleep 30")
        run.wait_for("REMOTE-IS-RUNNING", 90)
        run.signal_group(signal.SIGKILL)
        run.wait(10)
        refused = self.again(["cleanup", "--region", REGION], "cleanup-no-yes")
        self.assertEqual(refused.wait(60), 2, refused.output())
        self.assertEqual(len(WORLD.leftovers()["instances"]), 1)
        cleanup = self.again(["cleanup", "--region", REGION, "--yes"], "cleanup")
        self.assertEqual(cleanup.wait(120), 0, cleanup.output())
        self.assertIn("cleanup of %s complete" % REGION, cleanup.output())
        self.assertNothingLeft(cleanup.output())
        again = self.again(["cleanup", "--region", REGION, "--yes"], "cleanup-again")
        self.assertEqual(again.wait(60), 0, again.output())
        self.assertIn("nothing tagged by cudl (cudl:run-id) is left", again.output())

    def test_keep_leaves_the_instance_for_ssh_with_port_forwarding_then_down(self):
        run = self.start("keep", ["--yes", "--keep"], remote_cmd=QUICK_REMOTE)
        rc = run.wait(120)
        out = run.output()
        self.assertEqual(rc, 0, out)
        self.assertIn("the instance is KEPT running", out)
        self.assertEqual(len(WORLD.leftovers()["instances"]), 1)
        run_id = self.run_id(out)
        listing = self.again(["list"], "list")
        self.assertEqual(listing.wait(30), 0)
        self.assertRegex(listing.output(), run_id + r" +us-east-1 +i-[0-9a-f]+ +\(kept\)")
        ssh = self.again(["ssh", "--run-id", run_id, "--", "echo", "hello-from-the-instance"], "ssh")
        self.assertEqual(ssh.wait(30), 0, ssh.output())
        self.assertIn("hello-from-the-instance", ssh.output())
        # -L: reach the moto server through the instance's SSH tunnel.
        port = harness.free_port()
        moto_port = WORLD.moto.port
        tunnel = self.again(["ssh", "--run-id", run_id, "-L", "127.0.0.1:%d:127.0.0.1:%d" % (port, moto_port),
                             "--", "sleep", "8"], "tunnel")
        try:
            harness.wait_until(lambda: _http_ok("http://127.0.0.1:%d/moto-api/" % port), 8, "the -L tunnel")
        finally:
            tunnel.signal_group(signal.SIGTERM)
            tunnel.wait(10)
        down = self.again(["down", "--run-id", run_id], "down")
        self.assertEqual(down.wait(120), 0, down.output())
        self.assertNothingLeft(down.output())


def read(path, mode="r"):
    with open(path, mode) as f:
        return f.read()


def _http_ok(url):
    import urllib.request
    try:
        urllib.request.urlopen(url, timeout=1).read()
        return True
    except OSError:
        return False


def _whoami():
    return subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()


if __name__ == "__main__":
    unittest.main()

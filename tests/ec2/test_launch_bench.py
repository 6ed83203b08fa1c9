"""launch-bench against a moto server (the real aws CLI pointed at it) and a loopback sshd standing
in for the instance. Every test asserts from moto's request recorder, moto's state or the fake aws
command's log, and ends by checking that nothing tagged by cudl is left and that none of the user's
own (untagged) resources was deleted; every test that launches checks that the instance received
exactly the files git tracks."""

import atexit
import base64
import json
import os
import signal
import stat
import struct
import subprocess
import time
import unittest

import harness
from harness import MY_IP, REGION

WORLD = None
QUICK_REMOTE = 'mkdir -p "$CUDL_REMOTE_OUT" && echo made-on-the-instance > "$CUDL_REMOTE_OUT/marker.txt"'


def setUpModule():
    """One world (sshd, checkout) for all the tests this process runs: run_tests.py's workers run
    the tests one at a time, so the module is set up again before each; the world stays."""
    global WORLD
    if WORLD is None:
        WORLD = harness.World()
        atexit.register(WORLD.stop)


class LaunchBenchTest(unittest.TestCase):
    maxDiff = None

    def start(self, name, args, remote_cmd=None, remote_args=None, faults=None, before=None, project=False, env=None):
        """launch-bench run ARGS in a fresh world (BEFORE, if given, prepares moto first). The files
        sent are the test checkout's, or with PROJECT this project's with --uncommitted (so that the
        instance runs the remote-bench.sh being tested, committed or not)."""
        self.dir, self.env = WORLD.fresh(name)
        if before:
            before()
        if project:
            del self.env["CUDL_EC2_SOURCE_DIR"]
            args = args + ["--uncommitted"]
        self.env.update(env or {})
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
        self.assertUntaggedKept(out)
        self.assertEqual([p for p in os.listdir(os.path.join(self.dir, "state")) if p.endswith(".pem")], [],
                         "the private key is still on disk")

    def assertUntaggedKept(self, out="", expected=None):
        self.assertEqual(WORLD.untagged_missing(expected), {"key_pairs": [], "security_groups": [], "instances": []},
                         "launch-bench deleted resources it did not create; it said:\n" + out)

    def assertReceived(self, files):
        """The instance holds exactly FILES ({path: bytes}) in cudl/, scripts/run.sh executable."""
        tree = os.path.join(self.dir, "instance", "cudl")
        got = harness.tree_files(tree)
        self.assertEqual(sorted(got), sorted(files), "the instance did not receive exactly the tracked files")
        for name, data in files.items():
            self.assertEqual(got[name], data, name)
        if "scripts/run.sh" in files:
            self.assertTrue(os.stat(os.path.join(tree, "scripts/run.sh")).st_mode & stat.S_IXUSR)
        for name in WORLD.checkout.NEVER:
            self.assertFalse(os.path.lexists(os.path.join(tree, name)), name + " left the user's machine")

    def assertReceivedTheProject(self):
        """The instance holds this project's tracked files as they are (--uncommitted): no other file,
        except what remote-bench.sh made there since (data/mnist/). Names only: others may be editing
        the files while the tests run."""
        tracked = subprocess.run(["git", "-C", harness.ROOT, "ls-files", "-z"], capture_output=True, check=True).stdout
        want = {p.decode() for p in tracked.split(b"\0") if p and os.path.lexists(os.path.join(harness.ROOT, p.decode()))}
        got = {p for p in harness.tree_files(os.path.join(self.dir, "instance", "cudl"))
               if p in want or not p.startswith("data/mnist/")}
        self.assertEqual(sorted(got - want), [], "files git does not track reached the instance")
        self.assertEqual(sorted(want - got), [], "tracked files did not reach the instance")

    def assertSentBeforeSending(self, out, files):
        """launch-bench said how many files and bytes it sends, before it sent them."""
        size = sum(len(v) for v in files.values())
        line = "sending %d files, %d bytes (%d bytes;" % (len(files), size, size)
        self.assertIn(line, out)
        self.assertLess(out.index(line), out.index("running the benchmark on the instance"))

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
        run = self.start("success", ["--yes", "--epochs", "1"], remote_args=remote_args, project=True)
        rc = run.wait(180)
        out = run.output()
        self.assertEqual(rc, 0, out)
        run_id = self.run_id(out)
        self.assertReceivedTheProject()
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
        self.assertIn("| teardown | done ", report)
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
        self.assertReceived(WORLD.checkout.HEAD_FILES)
        self.assertNothingLeft(out)

    def test_remote_benchmark_failing_still_brings_logs_home_and_tears_down(self):
        run = self.start("remote-fails", ["--yes", "--epochs", "1", "--no-tests"],
                         remote_args="--prebuilt /nonexistent/build --mnist-mirrors file:///nonexistent/", project=True)
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

    def test_sigint_to_the_launcher_alone_tears_down_within_seconds_and_a_second_sigint_does_not_stop_it(self):
        """kill -INT PID (the launcher alone, not its process group) while the remote step runs: the
        teardown starts within seconds, and Ctrl-C during it (SIGINT to the group) does not stop it.
        Here with --uncommitted: the tracked files as they are in the working tree were sent."""
        run = self.start("sigint", ["--yes", "--uncommitted"], remote_cmd="echo REMOTE-IS-RUNNING; sleep 60")
        run.wait_for("REMOTE-IS-RUNNING", 90)
        self.assertReceived(WORLD.checkout.WORKTREE_FILES)
        self.assertSentBeforeSending(run.output(), WORLD.checkout.WORKTREE_FILES)
        self.assertIn("plus the uncommitted changes to 4 tracked files (--uncommitted)", run.output())
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
        # SIGINT to the launcher alone: the teardown starts at once, its ssh child is ended.
        state_dir = os.path.join(self.dir, "state")
        self.assertTrue(harness.processes_mentioning(state_dir), "no ssh child to interrupt")
        sent = time.time()
        run.signal_launcher(signal.SIGINT)
        run.wait_for("tearing down run", 5)
        self.assertLess(time.time() - sent, 5)
        # Ctrl-C (to the whole process group) once the teardown has begun: ignored.
        run.signal_group(signal.SIGINT)
        during = len(run.output())
        rc = run.wait(120)
        out = run.output()
        self.assertEqual(rc, 130, out)
        self.assertIn("interrupted by SIGINT", out)
        self.assertNotIn("teardown of run", out[:during], "the second SIGINT came too late to test anything")
        self.assertIn("teardown of run %s complete" % run_id, out[during:])
        self.assertEqual(harness.processes_mentioning(state_dir), [], "the launcher left its ssh behind")
        self.assertNothingLeft(out)

    def test_ctrl_c_while_a_resource_is_created_lets_it_be_recorded_then_tears_down(self):
        """Ctrl-C (SIGINT to the process group) while create-key-pair is on its way: the call is let
        finish and the key saved and recorded; then the run stops and the key pair is deleted."""
        run = self.start("sigint-create", ["--yes"], remote_cmd=QUICK_REMOTE, faults="create-key-pair=slow:1")
        harness.wait_until(lambda: any(k == "FAULT slow" for k, _ in WORLD.aws_calls(self.dir)), 90, "create-key-pair")
        run.signal_group(signal.SIGINT)
        rc = run.wait(120)
        out = run.output()
        self.assertEqual(rc, 130, out)
        self.assertLess(out.index("key pair cudl-bench-"), out.index("interrupted by SIGINT"))
        run_id = self.run_id(out)
        state = read(os.path.join(self.dir, "state", run_id + ".state"))
        self.assertLess(state.index("KEY_CREATED=1"), state.index("TEARDOWN=done"))
        self.assertEqual(len(self.actions("CreateKeyPair")), 1)
        self.assertEqual([r["params"]["KeyName"] for r in self.actions("DeleteKeyPair")], ["cudl-bench-" + run_id])
        self.assertEqual(self.actions("CreateSecurityGroup") + self.actions("RunInstances"), [])
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

    def test_capacity_error_moves_on_only_tracked_files_are_sent_and_the_report_states_the_cost(self):
        """A multi-GPU type, the caller's address given by --my-ip; the first zone has no capacity.
        What is sent is the tree of HEAD, none of the untracked, ignored or uncommitted files, and
        it is said (files, bytes) before it is sent. The report states what the run cost."""
        run = self.start("capacity", ["--yes", "--instance-type", "g4dn.12xlarge", "--my-ip", "198.51.100.4"],
                         remote_cmd=QUICK_REMOTE, faults="run-instances=capacity:1")
        rc = run.wait(120)
        out = run.output()
        self.assertEqual(rc, 0, out)
        # The capacity error: the second attempt is in another zone.
        subnets = {s["SubnetId"]: s["AvailabilityZone"] for s in WORLD.ec2.describe_subnets()["Subnets"]}
        (refused,) = [argv for k, argv in WORLD.aws_calls(self.dir) if k == "FAULT capacity"]
        refused_subnet = refused[refused.index("--subnet-id") + 1]
        (launched,) = self.actions("RunInstances")
        # --associate-public-ip-address makes the CLI send the subnet inside NetworkInterface.1.
        launched_subnet = launched["params"]["NetworkInterface.1.SubnetId"]
        self.assertNotEqual(subnets[launched_subnet], subnets[refused_subnet])
        self.assertEqual(WORLD.instances()[0]["Placement"]["AvailabilityZone"], subnets[launched_subnet])
        self.assertIn("(InsufficientInstanceCapacity): trying the next availability zone", out)
        # What was sent.
        files = WORLD.checkout.HEAD_FILES
        self.assertReceived(files)
        self.assertSentBeforeSending(out, files)
        self.assertIn("what git tracks at HEAD", out)
        self.assertIn("4 tracked files with uncommitted changes, sent as committed (--uncommitted sends the changes)", out)
        # The multi-GPU type and the given address.
        self.assertIn("GPUs              4 (NVIDIA T4); bench_dbn uses one of them", out)
        self.assertEqual(launched["params"]["InstanceType"], "g4dn.12xlarge")
        self.assertIn("your public IPv4 address: 198.51.100.4 (given)", out)
        rule = self.actions("AuthorizeSecurityGroupIngress")[0]["params"]
        self.assertEqual(rule["IpPermissions.1.IpRanges.1.CidrIp"], "198.51.100.4/32")
        # The report: instance type, region, market, hourly price, wall time and cost, after the teardown.
        results = os.path.join(self.dir, "results", self.run_id(out))
        facts = json.loads(read(os.path.join(results, "run.json")))
        self.assertEqual((facts["instance_type"], facts["region"], facts["market"], facts["price_per_hour"], facts["gpus"]),
                         ("g4dn.12xlarge", REGION, "on-demand", 3.912, 4))
        self.assertTrue(facts["teardown"].startswith("done"), facts)
        self.assertGreater(facts["instance_seconds"], 0)
        self.assertGreaterEqual(facts["wall_seconds"], facts["instance_seconds"])
        # Billed per second with a one-minute minimum (a test run lasts less), with gp3 and IPv4.
        cost = (3.912 + 100 * 0.08 / 730 + 0.005) * max(60, facts["instance_seconds"]) / 3600
        self.assertAlmostEqual(facts["cost_usd"], cost, places=4)
        report = read(os.path.join(results, "report.md"))
        for text in ("| instance type | g4dn.12xlarge: 4 GPUs (NVIDIA T4); bench_dbn used one of them",
                     "| region | us-east-1 (us-east-1", "| market | on-demand |",
                     "| hourly price | $3.912/h (%s) |" % facts["price_source"],
                     "| wall time | %s (launch-bench's start to its end, teardown included) |" % duration(facts["wall_seconds"]),
                     "| cost of the run | about **%s**: %s of instance time from launch to termination at $3.912/h" %
                     (usd(facts["cost_usd"]), duration(facts["instance_seconds"])),
                     "| teardown | done "):
            self.assertIn(text, report)
        self.assertEqual(png_text(os.path.join(results, "chart.png")).get("Description"),
                         "g4dn.12xlarge on-demand in us-east-1 at $3.912/h; wall time %s; cost about %s" %
                         (duration(facts["wall_seconds"]), usd(facts["cost_usd"])))
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
        run_id = self.run_id(run.output())
        # While its launcher runs, `down` refuses (unless --force): the launch would break under it.
        busy = self.again(["down", "--run-id", run_id], "down-busy")
        self.assertEqual(busy.wait(30), 2, busy.output())
        self.assertIn("run %s is still being run by its launcher (pid %d" % (run_id, run.proc.pid), busy.output())
        self.assertIn("down --force", busy.output())
        run.signal_group(signal.SIGKILL)
        run.wait(10)
        left = WORLD.leftovers()
        self.assertEqual((len(left["instances"]), len(left["security_groups"]), len(left["key_pairs"])), (1, 1, 1))
        down = self.again(["down", "--run-id", run_id], "down")
        self.assertEqual(down.wait(120), 0, down.output())
        self.assertNothingLeft(down.output())
        again = self.again(["down", "--run-id", run_id], "down-again")  # idempotent
        self.assertEqual(again.wait(120), 0, again.output())
        self.assertIn("nothing of run %s is left in %s" % (run_id, REGION), again.output())

    def test_killed_run_is_found_and_removed_by_cleanup_which_leaves_running_launches_alone(self):
        run = self.start("killed-cleanup", ["--yes", "--spot"], remote_cmd="echo REMOTE-IS-RUNNING; sleep 30")
        run.wait_for("REMOTE-IS-RUNNING", 90)
        run_id = self.run_id(run.output())
        before = WORLD.leftovers()
        # A second launch given the running one's id is refused before it asks AWS anything.
        calls = len(WORLD.aws_calls(self.dir))
        twin = self.again(["run", "--yes", "--run-id", run_id, "--region", REGION,
                           "--results", os.path.join(self.dir, "results")], "twin")
        self.assertEqual(twin.wait(30), 2, twin.output())
        self.assertIn("run id %s is in use by a launch that is still running (pid %d" % (run_id, run.proc.pid), twin.output())
        self.assertEqual(len(WORLD.aws_calls(self.dir)), calls, "the refused launch made AWS calls")
        # cleanup lists the running launch and leaves it alone (--yes without --all).
        busy = self.again(["cleanup", "--region", REGION, "--yes"], "cleanup-busy")
        self.assertEqual(busy.wait(60), 0, busy.output())
        self.assertIn("still running here (their launcher is at work):", busy.output())
        self.assertIn("  run %s: pid %d" % (run_id, run.proc.pid), busy.output())
        self.assertIn("leaving the running launches alone: %s (--all includes them" % run_id, busy.output())
        self.assertEqual(WORLD.leftovers(), before)
        self.assertIsNone(run.proc.poll(), "the launch ended while cleanup left it alone")
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
        self.assertReceived(WORLD.checkout.HEAD_FILES)
        listing = self.again(["list"], "list")
        self.assertEqual(listing.wait(30), 0)
        self.assertRegex(listing.output(), run_id + r" +us-east-1 +i-[0-9a-f]+ +\(kept\)")
        # A new run given the kept run's id is refused, before any AWS call; the kept key is intact.
        key = os.path.join(self.dir, "state", run_id + ".pem")
        key_before = read(key)
        calls = len(WORLD.aws_calls(self.dir))
        clash = self.again(["run", "--yes", "--run-id", run_id, "--region", REGION,
                            "--results", os.path.join(self.dir, "results")], "clash")
        self.assertEqual(clash.wait(30), 2, clash.output())
        self.assertIn("run id %s belongs to a kept run" % run_id, clash.output())
        self.assertEqual(len(WORLD.aws_calls(self.dir)), calls)
        self.assertEqual((read(key), stat.S_IMODE(os.stat(key).st_mode)), (key_before, 0o400))
        self.assertEqual(len(WORLD.leftovers()["instances"]), 1)
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

    # --- Issue 18: what leaves the machine, what is deleted, run ids, interrupts, addresses ----------

    def test_an_instance_that_stops_answering_is_noticed_within_seconds(self):
        """The instance goes silent without closing the connection (its sshd stopped): the SSH
        keep-alives (here every second, 4 unanswered) end the remote step, and the run tears down."""
        run = self.start("silent", ["--yes"], remote_cmd="echo SESSION=$PPID; sleep 60",
                         env={"CUDL_EC2_SSH_ALIVE_SECONDS": "1"})
        run.wait_for("SESSION=", 90)
        session = int(run.output().split("SESSION=")[1].split()[0])
        os.kill(session, signal.SIGSTOP)
        try:
            stopped = time.time()
            run.wait_for("the benchmark on the instance FAILED with status 255", 20)
            self.assertLess(time.time() - stopped, 15)
        finally:
            os.kill(session, signal.SIGCONT)
        rc = run.wait(120)
        out = run.output()
        self.assertEqual(rc, 3, out)
        self.assertIn("SSH lost the connection (the instance stopped answering", out)
        self.assertNothingLeft(out)

    def test_down_deletes_only_what_carries_the_run_tag_and_twice_finds_nothing_left(self):
        """Without a state file: the resources tagged cudl:run-id=oldrun go; those merely named like a
        run (the user's own, untagged), and another run's, stay. A run refuses the taken id."""
        self.dir, self.env = WORLD.fresh("down-tags")
        ec2 = WORLD.ec2
        # The user's own key pair and security group, named as launch-bench would name run myrun.
        namesakes = {"key_pairs": {ec2.create_key_pair(KeyName="cudl-bench-myrun")["KeyPairId"]},
                     "security_groups": {ec2.create_security_group(GroupName="cudl-bench-myrun", Description="mine")["GroupId"]},
                     "instances": set()}
        def tags(rid, kind):
            return [{"ResourceType": kind, "Tags": [{"Key": "cudl:run-id", "Value": rid}, {"Key": "cudl:tool", "Value": "launch-bench"}]}]
        ec2.create_key_pair(KeyName="cudl-bench-oldrun", TagSpecifications=tags("oldrun", "key-pair"))
        ec2.create_security_group(GroupName="cudl-bench-oldrun", Description="x", TagSpecifications=tags("oldrun", "security-group"))
        image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, TagSpecifications=tags("oldrun", "instance"))
        other = {"key_pairs": {ec2.create_key_pair(KeyName="cudl-bench-other", TagSpecifications=tags("other", "key-pair"))["KeyPairId"]},
                 "security_groups": set(), "instances": set()}
        WORLD.restart_recording()
        # A launch given the taken id refuses, naming what holds it, and creates nothing.
        taken = self.again(["run", "--yes", "--run-id", "oldrun", "--region", REGION, "--results",
                            os.path.join(self.dir, "results")], "taken")
        self.assertEqual(taken.wait(60), 2, taken.output())
        self.assertIn("run id oldrun is taken: AWS holds resources tagged cudl:run-id=oldrun in us-east-1:", taken.output())
        for kind in ("key pair key-", "security group sg-", "instance i-"):
            self.assertIn(kind, taken.output())
        self.assertEqual([r for r in WORLD.moto.requests() if r["action"].startswith(("Create", "RunInstances", "Delete", "Terminate"))], [])
        self.assertEqual(os.listdir(os.path.join(self.dir, "state")), [])
        self.assertFalse(os.path.exists(os.path.join(self.dir, "results", "oldrun")))
        for n in (1, 2):
            down = self.again(["down", "--run-id", "oldrun", "--region", REGION], "down-oldrun-%d" % n)
            self.assertEqual(down.wait(120), 0, down.output())
            if n == 1:
                self.assertIn("teardown of run oldrun complete", down.output())
            else:
                self.assertIn("nothing of run oldrun is left in us-east-1", down.output())
            self.assertEqual(WORLD.leftovers()["instances"], [])
            self.assertEqual(sorted(k["KeyName"] for k in ec2.describe_key_pairs(
                Filters=[{"Name": "tag-key", "Values": ["cudl:run-id"]}])["KeyPairs"]), ["cudl-bench-other"])
            self.assertUntaggedKept(down.output(), namesakes)
            self.assertUntaggedKept(down.output(), other)
            self.assertUntaggedKept(down.output())
        # `down` of a run that only has namesakes: they are reported and left alone.
        down = self.again(["down", "--run-id", "myrun", "--region", REGION], "down-myrun")
        self.assertEqual(down.wait(120), 0, down.output())
        self.assertIn("left alone: security group sg-", down.output())
        self.assertIn("left alone: key pair key-", down.output())
        self.assertIn("(cudl-bench-myrun) has the run's name but not the tag cudl:run-id=myrun", down.output())
        self.assertIn("nothing of run myrun is left in us-east-1", down.output())
        self.assertUntaggedKept(down.output(), namesakes)
        self.assertEqual(os.listdir(os.path.join(self.dir, "state")), [], "down without a state file made one")
        deletes = [r for r in WORLD.moto.requests() if r["action"] in ("DeleteKeyPair", "DeleteSecurityGroup")]
        self.assertEqual(sorted((r["action"], r["params"].get("KeyName") or r["params"].get("GroupId")[:3]) for r in deletes),
                         [("DeleteKeyPair", "cudl-bench-oldrun"), ("DeleteSecurityGroup", "sg-")])

    def test_running_launches_are_left_alone_unless_cleanup_all_or_down_force(self):
        """Two launches "still running" (state files naming a live process of this machine, with its
        start time) and one whose recorded pid now belongs to another process (start times differ).
        cleanup on a terminal asks about the running ones (answered no) and removes the rest; down
        refuses a running one without --force; cleanup --all takes the last."""
        self.dir, self.env = WORLD.fresh("running")
        ec2, state = WORLD.ec2, os.path.join(self.dir, "state")
        sleeper = subprocess.Popen(["sleep", "300"])
        self.addCleanup(sleeper.kill)
        start = subprocess.run(["ps", "-o", "lstart=", "-p", str(sleeper.pid)], capture_output=True, text=True).stdout
        start = " ".join(start.split())
        host = subprocess.run(["hostname"], capture_output=True, text=True).stdout.strip()
        for rid, when in (("busy1", start), ("busy2", start), ("stale", "Thu Jan  1 00:00:00 1970")):
            tags = [{"Key": "cudl:run-id", "Value": rid}, {"Key": "cudl:tool", "Value": "launch-bench"}]
            ec2.create_key_pair(KeyName="cudl-bench-" + rid, TagSpecifications=[{"ResourceType": "key-pair", "Tags": tags}])
            ec2.create_security_group(GroupName="cudl-bench-" + rid, Description="x",
                                      TagSpecifications=[{"ResourceType": "security-group", "Tags": tags}])
            with open(os.path.join(state, rid + ".state"), "w") as f:
                f.write("RUN_ID=%s\nLAUNCHER_PID=%d\nLAUNCHER_HOST=%s\nLAUNCHER_START=%s\nREGION=%s\n" %
                        (rid, sleeper.pid, host, when, REGION))
        WORLD.restart_recording()

        def runs_left():
            tagged = [{"Name": "tag-key", "Values": ["cudl:run-id"]}]
            return sorted({t["Value"] for r in ec2.describe_key_pairs(Filters=tagged)["KeyPairs"] +
                           ec2.describe_security_groups(Filters=tagged)["SecurityGroups"]
                           for t in r["Tags"] if t["Key"] == "cudl:run-id"})
        listing = self.again(["list"], "list")
        self.assertEqual(listing.wait(30), 0, listing.output())
        self.assertRegex(listing.output(), r"busy1 .*\(running: pid %d on " % sleeper.pid)
        self.assertNotIn("running", [line for line in listing.output().splitlines() if line.startswith("stale")][0])
        # cleanup on a terminal: asked about busy1 and busy2 (no), then about stale's two resources (yes).
        master, slave = os.openpty()
        with open(os.path.join(self.dir, "out-cleanup-tty.txt"), "w") as out:
            tty = subprocess.Popen([harness.LAUNCH, "cleanup", "--region", REGION], env=self.env, stdin=slave,
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=harness.ROOT)
        os.close(slave)
        said = lambda: read(os.path.join(self.dir, "out-cleanup-tty.txt"))
        harness.wait_until(lambda: "Tear the running launches down too" in said(), 60, "the question on running launches")
        os.write(master, b"n\n")
        harness.wait_until(lambda: "Terminate and delete these 2 resources?" in said(), 60, "the confirmation")
        os.write(master, b"y\n")
        self.assertEqual(tty.wait(120), 0, said())
        os.close(master)
        self.assertIn("  run busy1: pid %d on %s" % (sleeper.pid, host), said())
        self.assertIn("leaving the running launches alone: busy1 busy2", said())
        self.assertEqual(runs_left(), ["busy1", "busy2"])
        # down refuses a running launch unless --force.
        down = self.again(["down", "--run-id", "busy2"], "down-busy2")
        self.assertEqual(down.wait(30), 2, down.output())
        self.assertIn("run busy2 is still being run by its launcher (pid %d" % sleeper.pid, down.output())
        self.assertEqual(runs_left(), ["busy1", "busy2"])
        forced = self.again(["down", "--run-id", "busy2", "--force"], "down-force")
        self.assertEqual(forced.wait(60), 0, forced.output())
        self.assertIn("tearing it down anyway (--force)", forced.output())
        self.assertEqual(runs_left(), ["busy1"])
        # cleanup --all includes the running launch.
        everything = self.again(["cleanup", "--region", REGION, "--yes", "--all"], "cleanup-all")
        self.assertEqual(everything.wait(60), 0, everything.output())
        self.assertIn("--all: tearing these down too", everything.output())
        self.assertEqual(runs_left(), [])
        self.assertIsNone(sleeper.poll(), "launch-bench ended the process it took for a launcher")
        self.assertNothingLeft(everything.output())

    def test_the_callers_address_is_parsed_strictly(self):
        """--my-ip and the "what is my IP" answers: four numbers 0-255 without leading zeros; the
        second service is asked when the first fails; IPv6 is refused, saying so. No AWS call is
        made and nothing is left behind on a bad address."""
        self.dir, self.env = WORLD.fresh("address")
        results = os.path.join(self.dir, "results")
        base = ["run", "--yes", "--region", REGION, "--results", results]
        for n, bad in enumerate(("08.1.2.3", "010.0.0.1", "256.1.1.1", "1.2.3", "1.2.3.4.5", "1.2.3.4/32")):
            run = self.again(base + ["--my-ip", bad], "my-ip-%d" % n)
            self.assertEqual(run.wait(30), 2, run.output())
            self.assertIn("--my-ip: expected an IPv4 address such as 203.0.113.7 (four numbers 0-255 without "
                          "leading zeros), found '%s'" % bad, run.output())
        del self.env["CUDL_EC2_MY_IP"]
        answer = os.path.join(self.dir, "my-ip.txt")
        self.env["CUDL_EC2_IP_URLS"] = "file:///nonexistent/checkip file://" + answer
        for n, (text, why) in enumerate((("08.1.2.3\n", "answered '08.1.2.3', not an IPv4 address (four numbers 0-255 "
                                                        "without leading zeros)"),
                                         ("2001:db8::7\n", "answered '2001:db8::7', an IPv6 address"))):
            with open(answer, "w") as f:
                f.write(text)
            run = self.again(base, "service-%d" % n)
            self.assertEqual(run.wait(30), 1, run.output())
            out = run.output()
            self.assertIn("error: cannot learn your public IPv4 address (the security group admits SSH from it alone): "
                          "file:///nonexistent/checkip did not answer (", out)
            self.assertIn("file://%s %s. Pass it with --my-ip A.B.C.D; IPv6-only networks are not supported" % (answer, why), out)
        self.assertEqual(WORLD.aws_calls(self.dir), [])
        self.assertEqual(os.listdir(os.path.join(self.dir, "state")), [], "a refused run kept its run id")
        self.assertFalse(os.path.exists(results) and os.listdir(results), "a refused run left a results directory")
        # The first service failing, the second answers: its address is used (the run then stops at
        # an injected sts error, before creating anything).
        with open(answer, "w") as f:
            f.write("198.51.100.23\n")
        self.env["CUDL_FAKE_FAULTS"] = "get-caller-identity=invalid:1"
        run = self.again(base, "second-service")
        self.assertEqual(run.wait(60), 1, run.output())
        self.assertIn("your public IPv4 address: 198.51.100.23 (from file://%s)" % answer, run.output())
        self.assertEqual([kind for kind, _ in WORLD.aws_calls(self.dir)], ["FAULT invalid"])
        self.assertEqual(WORLD.moto.requests(), [])
        self.assertNothingLeft(run.output())

    def test_multi_gpu_instance_types_are_accepted(self):
        """The dry run of each multi-GPU type: its price, its GPUs, and that bench_dbn uses one."""
        self.dir, self.env = WORLD.fresh("multi-gpu")
        for itype, price, gpus in (("g4dn.12xlarge", "3.912", "4 (NVIDIA T4)"), ("g5.12xlarge", "5.672", "4 (NVIDIA A10G)"),
                                   ("p4d.24xlarge", "32.77", "8 (NVIDIA A100)")):
            run = self.again(["--dry-run", "--instance-type", itype], "dry-" + itype)
            self.assertEqual(run.wait(30), 0, run.output())
            self.assertIn("instance          %s, on-demand" % itype, run.output())
            self.assertIn("GPUs              %s; bench_dbn uses one of them (training on several GPUs is not available yet)"
                          % gpus, run.output())
            self.assertIn("= $%s/h x 2 h" % price, run.output())
            self.assertIn("--instance-type %s" % itype, run.output())
        self.assertEqual(WORLD.aws_calls(self.dir), [])


def read(path, mode="r"):
    with open(path, mode) as f:
        return f.read()


def png_text(path):
    """The tEXt chunks of a PNG, as {key: text}."""
    data, pos, out = read(path, "rb"), 8, {}
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        if data[pos + 4:pos + 8] == b"tEXt":
            key, _, text = data[pos + 8:pos + 8 + length].partition(b"\0")
            out[key.decode("latin-1")] = text.decode("latin-1")
        pos += 12 + length
    return out


def usd(v):
    """As report.py writes an amount of dollars."""
    return "$%.2f" % v if v >= 0.995 or v == 0 else "$%.3f" % v


def duration(seconds):
    """As report.py writes a duration."""
    s = int(round(seconds))
    return "%d h %d min" % (s // 3600, s % 3600 // 60) if s >= 3600 else "%d min %d s" % (s // 60, s % 60) if s >= 60 else "%d s" % s


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

"""launch-bench run against a moto server (the real aws CLI pointed at it) and a loopback sshd
standing in for the instance: the dry run, the refusals before any request, a successful launch
(on-demand, spot), a failing remote benchmark, SIGINT and Ctrl-C, quota, capacity and other launch
errors, the caller's address and the multi-GPU types. Tearing down, cleanup, kept instances and what
launch-bench may delete are in test_launch_bench_safety.py; what both share is in launch_bench_case.py.
Every test asserts from moto's request recorder, moto's state or the fake aws command's log, and
ends by checking that nothing tagged by cudl is left and that none of the user's own (untagged)
resources was deleted; every test that launches checks that the instance received exactly the
files git tracks."""

import base64
import json
import os
import signal
import stat
import tempfile
import time
import unittest

import harness
import launch_bench_case
from harness import MY_IP, REGION
from launch_bench_case import QUICK_REMOTE, duration, png_text, read, usd

WORLD = None


def setUpModule():
    """The world shared with test_launch_bench_safety.py (see launch_bench_case.set_up_world)."""
    global WORLD
    WORLD = launch_bench_case.set_up_world()


class LaunchBenchTest(launch_bench_case.LaunchBenchCase):
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
        self.assertIn("GPUs              4 (NVIDIA T4); bench_dbn runs on one of them, then data parallel on all 4", out)
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

    # --- Issue 18: what leaves the machine, what is deleted, run ids, interrupts, addresses ----------

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
        """The dry run of each multi-GPU type: its price, its GPUs, and the data-parallel run on all of them."""
        self.dir, self.env = WORLD.fresh("multi-gpu")
        for itype, price, n, name in (("g4dn.12xlarge", "3.912", 4, "NVIDIA T4"), ("g5.12xlarge", "5.672", 4, "NVIDIA A10G"),
                                      ("p4d.24xlarge", "32.77", 8, "NVIDIA A100")):
            run = self.again(["--dry-run", "--instance-type", itype], "dry-" + itype)
            self.assertEqual(run.wait(30), 0, run.output())
            self.assertIn("instance          %s, on-demand" % itype, run.output())
            self.assertIn("GPUs              %d (%s); bench_dbn runs on one of them, then data parallel on all %d"
                          % (n, name, n), run.output())
            self.assertIn("  data parallel     then mpirun -np %d bench_dbn --device gpu --batch %d --json: one rank per GPU,\n"
                          "                    each with %d of the 64 rows of a step (the 2014 batch)\n" % (n, 64 // n, 64 // n),
                          run.output())
            self.assertIn("= $%s/h x 2 h" % price, run.output())
            self.assertIn("--instance-type %s" % itype, run.output())
        run = self.again(["--dry-run"], "dry-one-gpu")
        self.assertEqual(run.wait(30), 0, run.output())
        self.assertIn("GPUs              1 (NVIDIA T4)\n", run.output())
        self.assertNotIn("data parallel", run.output())
        self.assertEqual(WORLD.aws_calls(self.dir), [])

    def test_a_4_gpu_instance_runs_the_data_parallel_benchmark_and_reports_it(self):
        """--instance-type g4dn.12xlarge: the real remote-bench.sh is asked for 4 GPUs (--gpus 4: the
        loopback "instance" has no nvidia-smi to count them) and runs, on a fake build (fixture
        numbers), bench_dbn on the CPU, on one GPU, then mpirun -np 4 with 16 rows per rank; the
        results come home, the report shows the run on 4 GPUs beside the one on one GPU."""
        build = harness.fake_build(os.path.join(tempfile.mkdtemp(prefix="fake-build-", dir=WORLD.tmp), "build"))
        run = self.start("four-gpus", ["--yes", "--instance-type", "g4dn.12xlarge", "--epochs", "2", "--no-tests"],
                         remote_args="--prebuilt %s --mnist-mirrors file:///nonexistent/" % build, project=True)
        rc = run.wait(180)
        out = run.output()
        self.assertEqual(rc, 0, out)
        self.assertReceivedTheProject()
        self.assertEqual(self.actions("RunInstances")[0]["params"]["InstanceType"], "g4dn.12xlarge")
        results = os.path.join(self.dir, "results", self.run_id(out))
        console = read(os.path.join(results, "remote-console.log"))
        self.assertIn("bench_gpu_ranks: 4 GPUs (--gpus 4): the data-parallel benchmark, one rank per GPU", console)
        (argv, _) = read(os.path.join(build, "bin", "mpirun.calls")).splitlines()
        self.assertRegex(argv, r"^ARGV -np 4 \S+/benchmarks/bench_dbn --device gpu --batch 16 --epochs 2 --json "
                               r"\S+/out/bench_gpu_ranks\.json$")
        # What came home: its step and log, rank 0's JSON.
        self.assertRegex(read(os.path.join(results, "steps.tsv")), r"bench_gpu\tok\t0\t[0-9.]+\t\nbench_gpu_ranks\tok\t0\t")
        self.assertIn("fake mpirun (tests/ec2): starting rank 0 of 4 alone", read(os.path.join(results, "logs", "bench_gpu_ranks.log")))
        ranks = json.loads(read(os.path.join(results, "bench_gpu_ranks.json")))
        self.assertEqual((ranks["device"]["ranks"], ranks["settings"]["batch"], len(ranks["epochs"])), (4, 16, 2))
        self.assertIn("ranks\t4\n", read(os.path.join(results, "info.tsv")))
        # The report (the GPU's name is nvidia-smi's where the loopback "instance" has one, else AWS's).
        report = read(os.path.join(results, "report.md"))
        for pattern in (r"\| instance type \| g4dn\.12xlarge: [0-9]+ GPUs \([^)]+\); bench_dbn ran on one of them, "
                        r"then data parallel on 4 \(mpirun\) \|",
                        r"\| cudl GPU \(`--device gpu`\), this run \| g4dn\.12xlarge, [^|]+ \| \*\*0\.500 s\*\* \(median of 2\) \|",
                        r"\| cudl 4 GPUs \(`mpirun -np 4`, `--device gpu --batch 16`\), this run \| g4dn\.12xlarge, 4 × [^|]+ \| "
                        r"\*\*0\.200 s\*\* \(median of 2\) \| 97\.5% \|"):
            self.assertRegex(report, pattern)
        for text in ("an epoch takes 0.200 s, on one GPU 0.500 s: a speed-up of **2.50×**",
                     "| bench_gpu_ranks | ok |", "| 4 GPUs s | 4 GPUs loss |"):
            self.assertIn(text, report)
        self.assertNothingLeft(out)

if __name__ == "__main__":
    unittest.main()

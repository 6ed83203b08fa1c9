"""launch-bench's teardown and safety against a moto server (the real aws CLI pointed at it) and a
loopback sshd standing in for the instance: a killed run finished by down or cleanup, --keep then
ssh and down, an instance that stops answering, down deleting only what carries the run's tag, and
running launches left alone. The launches themselves are tested in test_launch_bench.py; what both
share is in launch_bench_case.py. Every test ends by checking that nothing tagged by cudl is left
and that none of the user's own (untagged) resources was deleted."""

import os
import signal
import stat
import subprocess
import time
import unittest

import harness
import launch_bench_case
from harness import REGION
from launch_bench_case import QUICK_REMOTE, _http_ok, read

WORLD = None


def setUpModule():
    """The world shared with test_launch_bench.py (see launch_bench_case.set_up_world)."""
    global WORLD
    WORLD = launch_bench_case.set_up_world()


class LaunchBenchSafetyTest(launch_bench_case.LaunchBenchCase):
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

if __name__ == "__main__":
    unittest.main()

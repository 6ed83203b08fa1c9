"""What the launch-bench tests share (test_launch_bench.py: running a launch; test_launch_bench_safety.py:
tearing down, cleanup, kept instances and what launch-bench may delete): the world they run in,
LaunchBenchCase (a base class with helpers and assertions, no test of its own) and a few functions.

launch-bench runs against a moto server (the real aws CLI pointed at it) and a loopback sshd standing
in for the instance. Every test asserts from moto's request recorder, moto's state or the fake aws
command's log, and ends by checking that nothing tagged by cudl is left and that none of the user's
own (untagged) resources was deleted; every test that launches checks that the instance received
exactly the files git tracks."""

import atexit
import base64
import os
import stat
import struct
import subprocess
import unittest

import harness
from harness import MY_IP, REGION

WORLD = None
QUICK_REMOTE = 'mkdir -p "$CUDL_REMOTE_OUT" && echo made-on-the-instance > "$CUDL_REMOTE_OUT/marker.txt"'


def set_up_world():
    """One world (sshd, checkout) for all the tests this process runs, of every module that uses it:
    run_tests.py's workers run the tests one at a time, so each module's setUpModule calls this
    again before each; the world stays. Returns it (the test modules keep it as their WORLD)."""
    global WORLD
    if WORLD is None:
        WORLD = harness.World()
        atexit.register(WORLD.stop)
    return WORLD


class LaunchBenchCase(unittest.TestCase):
    """The helpers of the launch-bench tests; it holds no test, so that none runs twice."""

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

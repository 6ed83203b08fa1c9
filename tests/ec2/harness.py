"""Stand-ins for AWS and for the instance, for the launch-bench tests: a moto server on loopback
(the real aws CLI is pointed at it) with its request recorder, and a private sshd on loopback that
accepts the key launch-bench creates. A small git checkout whose files launch-bench sends (tracked,
changed, untracked and ignored files, each known here), and resources of "the user's own" in every
fresh moto (untagged) that no test may see deleted. Plus helpers to run launch-bench and read what
it did."""

import base64
import glob
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
LAUNCH = os.path.join(ROOT, "scripts", "ec2", "launch-bench")
FAKE_AWS = os.path.join(HERE, "fake-aws")
REGION = "us-east-1"
MY_IP = "203.0.113.7"  # TEST-NET-3, a documentation address

# A job started in the background by a non-interactive shell (`cmd &`, nohup, some CI runners)
# inherits SIGINT ignored, and a signal ignored at entry can't be trapped by the launcher's bash:
# the SIGINT tests would then see it carry on. A handler here (not an ignore) is reset to the
# default at exec, so every launcher this harness starts can trap SIGINT as a user's shell gives it.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))


def real_aws():
    """The aws CLI that fake-aws runs: the one installed beside this Python when there is one (a
    version manager's shim in front of it costs a fifth of a second a call), else aws on PATH."""
    beside = os.path.join(os.path.dirname(os.path.realpath(sys.executable)), "aws")
    return beside if os.access(beside, os.X_OK) else "aws"


def git(cwd, *args, **kw):
    env = dict(os.environ, GIT_AUTHOR_NAME="tests", GIT_AUTHOR_EMAIL="tests@example.invalid",
               GIT_COMMITTER_NAME="tests", GIT_COMMITTER_EMAIL="tests@example.invalid",
               GIT_CONFIG_NOSYSTEM="1", HOME=cwd)
    return subprocess.run(["git", "-C", cwd] + list(args), env=env, check=True, capture_output=True, **kw)


class Checkout:
    """A git checkout of the user's, in every state a file can be in. HEAD holds COMMITTED; then a
    tracked file is changed and not staged, one is changed and staged, one is new and staged, one is
    deleted, and untracked and ignored files (a secret among them) are added. HEAD_FILES is what
    launch-bench may send by default (the tree of HEAD), WORKTREE_FILES what it may send with
    --uncommitted (the tracked files as they are now); NEVER lists what must never be sent."""

    COMMITTED = {
        "README.md": b"a checkout of the user's, for tests/ec2\n",
        ".gitignore": b"*.key\nbuild/\n",
        "src/main.c": b"int main(void) { return 0; }\n",
        "docs/a name with spaces.txt": b"spaces in a file name\n",
        "scripts/run.sh": b"#!/bin/sh\necho run\n",
        "old.txt": b"deleted in the working tree, not committed\n",
    }
    EXECUTABLE = {"scripts/run.sh"}
    NEVER = {".env": b"AWS_SECRET_ACCESS_KEY=untracked-and-not-ignored\n", "notes/todo.txt": b"untracked\n",
             "id.key": b"ignored\n", "build/out.o": b"ignored\n"}

    def __init__(self, path):
        self.path = path
        os.makedirs(path)
        git(path, "init", "-q")
        for name, data in self.COMMITTED.items():
            self.write(name, data)
        os.chmod(os.path.join(path, "scripts/run.sh"), 0o755)
        git(path, "add", "-A")
        git(path, "commit", "-q", "-m", "the user's work")
        self.head = git(path, "rev-parse", "HEAD", text=True).stdout.strip()
        self.write("src/main.c", b"int main(void) { return 1; }  /* changed, not staged */\n")
        self.write("README.md", b"changed and staged\n")
        self.write("new.txt", b"new and staged\n")
        git(path, "add", "README.md", "new.txt")
        os.remove(os.path.join(path, "old.txt"))
        for name, data in self.NEVER.items():
            self.write(name, data)
        self.HEAD_FILES = dict(self.COMMITTED)
        self.WORKTREE_FILES = {k: v for k, v in self.COMMITTED.items() if k != "old.txt"}
        self.WORKTREE_FILES.update({"src/main.c": self.read("src/main.c"), "README.md": b"changed and staged\n",
                                    "new.txt": b"new and staged\n"})

    def write(self, name, data):
        full = os.path.join(self.path, name)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as f:
            f.write(data)

    def read(self, name):
        with open(os.path.join(self.path, name), "rb") as f:
            return f.read()


def tree_files(root):
    """{relative path: bytes} of the regular files under ROOT (symbolic links as 'link -> target')."""
    out = {}
    for d, _, files in os.walk(root):
        for name in files:
            full = os.path.join(d, name)
            rel = os.path.relpath(full, root)
            if os.path.islink(full):
                out[rel] = ("link -> " + os.readlink(full)).encode()
            else:
                with open(full, "rb") as f:
                    out[rel] = f.read()
    return out


def processes_mentioning(text):
    """The (pid, command line) of the processes whose command line contains TEXT."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if text in cmd and int(pid) != os.getpid():
            out.append((int(pid), cmd))
    return out


def fake_build(path, mpirun=True, mpiexec_cached=None):
    """A stand-in for a cudl build, for remote-bench.sh --prebuilt PATH: benchmarks/bench_dbn is
    fake-bench-dbn (fixture numbers), and CMakeCache.txt names the MPI launcher as CMake's FindMPI
    does (MPIEXEC_EXECUTABLE): bin/mpirun, a fake-mpirun (with MPIRUN), else MPIEXEC_CACHED (or
    nothing). Each fake logs its calls to <its path>.calls. Returns PATH."""
    os.makedirs(os.path.join(path, "benchmarks"))
    os.symlink(os.path.join(HERE, "fake-bench-dbn"), os.path.join(path, "benchmarks", "bench_dbn"))
    cached = mpiexec_cached
    if mpirun:
        os.makedirs(os.path.join(path, "bin"))
        cached = os.path.join(path, "bin", "mpirun")
        os.symlink(os.path.join(HERE, "fake-mpirun"), cached)
    with open(os.path.join(path, "CMakeCache.txt"), "w") as f:
        f.write("# fake build (tests/ec2)\nCUDL_HAVE_MPI:INTERNAL=ON\n")
        if cached:
            f.write("MPIEXEC_EXECUTABLE:FILEPATH=%s\n" % cached)
    return path


def prebuilt_dir():
    """The build whose bench_dbn the tests run (CI's build-ci via CUDL_BUILD_DIR, else build/)."""
    d = os.environ.get("CUDL_BUILD_DIR") or os.path.join(ROOT, "build")
    return d if os.access(os.path.join(d, "benchmarks", "bench_dbn"), os.X_OK) else None


class MotoServer:
    """moto_server on a free loopback port, serving the fixture AMIs, recording every request.
    One per test: moto's /moto-api/reset cannot reload AMIs given by MOTO_AMIS_PATH (it re-parses
    their creation dates, already parsed, and fails), so a fresh server is the clean slate."""

    def __init__(self, workdir):
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        env = dict(os.environ, MOTO_AMIS_PATH=os.path.join(HERE, "fixtures", "moto-amis.json"),
                   MOTO_RECORDER_FILEPATH=os.path.join(workdir, "moto-recording.jsonl"))
        cmd = ["moto_server"] if shutil.which("moto_server") else ["python3", "-m", "moto.server"]
        self.log = open(os.path.join(workdir, "moto.log"), "w")
        self.proc = subprocess.Popen(cmd + ["-H", "127.0.0.1", "-p", str(self.port)], env=env,
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        wait_until(self._up, 30, "moto_server on port %d" % self.port)
        self.post("/moto-api/recorder/reset-recording")
        self.post("/moto-api/recorder/start-recording")

    def _up(self):
        if self.proc.poll() is not None:
            raise AssertionError("moto_server exited with %s: see moto.log" % self.proc.returncode)
        try:
            urllib.request.urlopen(self.url + "/moto-api/", timeout=1).read()
            return True
        except OSError:
            return False

    def post(self, path):
        urllib.request.urlopen(urllib.request.Request(self.url + path, data=b"", method="POST"), timeout=10).read()

    def requests(self):
        """The AWS requests recorded since the start: dicts with 'action' and 'params' (query
        protocol, flattened keys) or 'target' and 'json' (JSON protocol)."""
        text = urllib.request.urlopen(self.url + "/moto-api/recorder/download-recording", timeout=10).read().decode()
        out = []
        for line in text.splitlines():
            if not line.strip():
                continue
            entry = json.loads(line)
            body = entry.get("body") or ""
            if entry.get("body_encoded"):
                body = base64.b64decode(body).decode("utf-8", "replace")
            headers = {k.lower(): v for k, v in (entry.get("headers") or {}).items()}
            if "x-amz-target" in headers:
                out.append({"action": headers["x-amz-target"].split(".")[-1], "target": headers["x-amz-target"],
                            "json": json.loads(body or "{}"), "params": {}})
            else:
                params = {k: v[0] for k, v in urllib.parse.parse_qs(body, keep_blank_values=True).items()}
                query = urllib.parse.urlparse(entry["url"]).query
                params.update({k: v[0] for k, v in urllib.parse.parse_qs(query).items()})
                out.append({"action": params.get("Action", entry["method"] + " " + entry["url"]), "params": params})
        return out

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


class Sshd:
    """A private sshd on loopback, as this user, standing in for the instance. It accepts the keys
    in its authorized_keys file, which watch() fills with the public half of every key launch-bench
    writes into a state directory."""

    def __init__(self, workdir):
        self.dir = os.path.join(workdir, "sshd")
        os.makedirs(self.dir)
        self.port = free_port()
        self.keys = os.path.join(self.dir, "authorized_keys")
        open(self.keys, "w").close()
        os.chmod(self.keys, 0o600)
        hostkey = os.path.join(self.dir, "host_ed25519")
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", hostkey], check=True)
        config = os.path.join(self.dir, "sshd_config")
        with open(config, "w") as f:
            f.write("\n".join([
                "Port %d" % self.port, "ListenAddress 127.0.0.1", "HostKey " + hostkey,
                "PidFile " + os.path.join(self.dir, "sshd.pid"), "AuthorizedKeysFile " + self.keys,
                "StrictModes no", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
                "PubkeyAuthentication yes", "PermitRootLogin prohibit-password", "UsePAM no",
                "AllowTcpForwarding local", "LogLevel VERBOSE", ""]))
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege separation directory
        self.log = open(os.path.join(self.dir, "sshd.log"), "w")
        self.proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", config], stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        wait_until(self._up, 20, "sshd on port %d" % self.port)
        self._seen = set()
        self._stop = threading.Event()
        self._watch_dir = None
        threading.Thread(target=self._watch, daemon=True).start()

    def _up(self):
        if self.proc.poll() is not None:
            raise AssertionError("sshd exited with %s: see %s/sshd.log" % (self.proc.returncode, self.dir))
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
            return True
        except OSError:
            return False

    def watch(self, state_dir):
        self._watch_dir = state_dir

    def _watch(self):
        while not self._stop.wait(0.1):
            for pem in glob.glob(os.path.join(self._watch_dir or "/nonexistent", "*.pem")):
                if pem in self._seen:
                    continue
                pub = subprocess.run(["ssh-keygen", "-y", "-f", pem], capture_output=True, text=True)
                if pub.returncode == 0 and pub.stdout.startswith("ssh-"):
                    self._seen.add(pem)
                    with open(self.keys, "a") as f:
                        f.write(pub.stdout)

    def stop(self):
        self._stop.set()
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.log.close()


class Run:
    """One launch-bench process in its own process group, its output in a file."""

    def __init__(self, env, args, out_path):
        self.out_path = out_path
        self.out = open(out_path, "w")
        self.proc = subprocess.Popen([LAUNCH] + args, env=env, stdin=subprocess.DEVNULL, stdout=self.out,
                                     stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT)

    def output(self):
        with open(self.out_path) as f:
            return f.read()

    def wait_for(self, text, timeout=60):
        def seen():
            if self.proc.poll() is not None and text not in self.output():
                raise AssertionError("launch-bench exited (%s) before printing %r:\n%s" %
                                     (self.proc.returncode, text, self.output()))
            return text in self.output()
        wait_until(seen, timeout, repr(text))

    def signal_group(self, sig):
        os.killpg(self.proc.pid, sig)

    def signal_launcher(self, sig):
        """SIG to the launcher's process alone, not its children (as kill PID does)."""
        os.kill(self.proc.pid, sig)

    def wait(self, timeout=120):
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.signal_group(signal.SIGKILL)
            raise AssertionError("launch-bench did not finish in %ss:\n%s" % (timeout, self.output()))
        self.out.close()
        return rc


class World:
    """The sshd and the user's checkout for a whole test run; per test, a fresh moto server (with
    the user's own untagged resources in it), state dir and instance dir."""

    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="cudl-ec2-tests-")
        self.moto = None
        self.sshd = Sshd(self.tmp)
        self.checkout = Checkout(os.path.join(self.tmp, "checkout"))
        self.n = 0

    def fresh(self, name):
        """A new moto server, recording; returns (test dir, environment for launch-bench)."""
        import boto3
        self.n += 1
        d = os.path.join(self.tmp, "%02d-%s" % (self.n, name))
        for sub in ("state", "instance", "fake", "results", "tmp"):
            os.makedirs(os.path.join(d, sub))
        if self.moto:
            self.moto.stop()
        self.moto = MotoServer(d)
        self.ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=self.moto.url,
                                aws_access_key_id="testing", aws_secret_access_key="testing")
        self.ssm = boto3.client("ssm", region_name=REGION, endpoint_url=self.moto.url,
                                aws_access_key_id="testing", aws_secret_access_key="testing")
        self.sshd.watch(os.path.join(d, "state"))
        self.bystanders = self.make_bystanders()
        self.restart_recording()
        aws_config = os.path.join(d, "aws-config")
        open(aws_config, "w").close()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CUDL_"))}
        env.update({
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION,
            "AWS_ENDPOINT_URL": self.moto.url, "AWS_CONFIG_FILE": aws_config,
            "AWS_SHARED_CREDENTIALS_FILE": aws_config,
            "CUDL_EC2_AWS": FAKE_AWS, "CUDL_FAKE_LOG": os.path.join(d, "aws-calls.log"), "CUDL_FAKE_REAL_AWS": real_aws(),
            "CUDL_EC2_SOURCE_DIR": self.checkout.path,
            "CUDL_FAKE_STATE": os.path.join(d, "fake"),
            "CUDL_EC2_MY_IP": MY_IP, "CUDL_EC2_SSH_HOST": "127.0.0.1", "CUDL_EC2_SSH_PORT": str(self.sshd.port),
            "CUDL_EC2_STATE_DIR": os.path.join(d, "state"), "CUDL_EC2_REMOTE_DIR": os.path.join(d, "instance"),
            "TMPDIR": os.path.join(d, "tmp"),  # what a killed launcher leaves stays in the test's files
            "CUDL_EC2_POLL_SECONDS": "0.2", "CUDL_EC2_SG_RETRY_SECONDS": "1", "CUDL_EC2_SG_WAIT_SECONDS": "20",
        })
        return d, env

    def aws_calls(self, d):
        """The calls the fake aws saw: (kind, argv) with kind CALL or FAULT (and its fault kind)."""
        try:
            with open(os.path.join(d, "aws-calls.log")) as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            words = shlex.split(line)
            if words[0] == "FAULT":
                out.append(("FAULT " + words[1], words[2:]))
            else:
                out.append(("CALL", words[1:]))
        return out

    def restart_recording(self):
        """Forgets the requests recorded so far (the tests' own setup): the tests see launch-bench's."""
        self.moto.post("/moto-api/recorder/reset-recording")
        self.moto.post("/moto-api/recorder/start-recording")

    def make_bystanders(self, name="users-own"):
        """The user's own key pair, security group and instance, untagged by cudl; returns their ids."""
        key = self.ec2.create_key_pair(KeyName=name + "-key")["KeyPairId"]
        sg = self.ec2.create_security_group(GroupName=name + "-sg", Description="the user's own")["GroupId"]
        image = self.ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        inst = self.ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.micro",
                                      TagSpecifications=[{"ResourceType": "instance", "Tags": [
                                          {"Key": "Name", "Value": name}]}])["Instances"][0]["InstanceId"]
        return {"key_pairs": {key}, "security_groups": {sg}, "instances": {inst}}

    def untagged_missing(self, expected=None):
        """Which of the user's own resources (EXPECTED, default the bystanders) are gone or ended."""
        expected = expected or self.bystanders
        keys = {k["KeyPairId"] for k in self.ec2.describe_key_pairs()["KeyPairs"]}
        sgs = {g["GroupId"] for g in self.ec2.describe_security_groups()["SecurityGroups"]}
        live = {i["InstanceId"] for r in self.ec2.describe_instances()["Reservations"] for i in r["Instances"]
                if i["State"]["Name"] in ("pending", "running")}
        return {"key_pairs": sorted(expected["key_pairs"] - keys), "security_groups": sorted(expected["security_groups"] - sgs),
                "instances": sorted(expected["instances"] - live)}

    def leftovers(self):
        """Everything tagged by cudl that is still there: live instances, security groups, key pairs."""
        tag = [{"Name": "tag-key", "Values": ["cudl:run-id"]}]
        live = [i["InstanceId"] for r in self.ec2.describe_instances(Filters=tag)["Reservations"]
                for i in r["Instances"] if i["State"]["Name"] != "terminated"]
        sgs = [g["GroupId"] for g in self.ec2.describe_security_groups(Filters=tag)["SecurityGroups"]]
        keys = [k["KeyName"] for k in self.ec2.describe_key_pairs(Filters=tag)["KeyPairs"]]
        return {"instances": live, "security_groups": sgs, "key_pairs": keys}

    def instances(self):
        tag = [{"Name": "tag-key", "Values": ["cudl:run-id"]}]
        return [i for r in self.ec2.describe_instances(Filters=tag)["Reservations"] for i in r["Instances"]]

    def stop(self):
        self.sshd.stop()
        if self.moto:
            self.moto.stop()
        if os.environ.get("CUDL_EC2_KEEP_TEST_FILES"):
            print("tests/ec2: files kept in", self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

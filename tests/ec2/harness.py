"""Stand-ins for AWS and for the instance, for the launch-bench tests: a moto server on loopback
(the real aws CLI is pointed at it) with its request recorder, and a private sshd on loopback that
accepts the key launch-bench creates. Plus helpers to run launch-bench and read what it did."""

import base64
import glob
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
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

    def wait(self, timeout=120):
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.signal_group(signal.SIGKILL)
            raise AssertionError("launch-bench did not finish in %ss:\n%s" % (timeout, self.output()))
        self.out.close()
        return rc


class World:
    """The sshd for a whole test run; per test, a fresh moto server, state dir and instance dir."""

    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="cudl-ec2-tests-")
        self.moto = None
        self.sshd = Sshd(self.tmp)
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
        aws_config = os.path.join(d, "aws-config")
        open(aws_config, "w").close()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CUDL_"))}
        env.update({
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION,
            "AWS_ENDPOINT_URL": self.moto.url, "AWS_CONFIG_FILE": aws_config,
            "AWS_SHARED_CREDENTIALS_FILE": aws_config,
            "CUDL_EC2_AWS": FAKE_AWS, "CUDL_FAKE_LOG": os.path.join(d, "aws-calls.log"),
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

"""The scripts themselves: they parse (bash -n), pass shellcheck where it is installed, and
launch-bench's usage names every option and test hook."""

import glob
import os
import shutil
import subprocess
import unittest

import harness

EC2 = os.path.join(harness.ROOT, "scripts", "ec2")
SHELL_SCRIPTS = [os.path.join(EC2, "launch-bench"), os.path.join(EC2, "remote-bench.sh"),
                 os.path.join(harness.HERE, "fake-aws"), os.path.join(harness.HERE, "fake-mpirun")] + \
    sorted(glob.glob(os.path.join(EC2, "lib", "*.sh")))


class ScriptsTest(unittest.TestCase):
    def test_bash_parses_every_script(self):
        for path in SHELL_SCRIPTS:
            r = subprocess.run(["bash", "-n", path], capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, path + ": " + r.stderr)

    @unittest.skipUnless(shutil.which("shellcheck"), "shellcheck is not installed (apt-get install shellcheck)")
    def test_shellcheck_is_clean(self):
        r = subprocess.run(["shellcheck", "-x", "-P", EC2] + SHELL_SCRIPTS, capture_output=True, text=True, cwd=EC2)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_usage_lists_the_options_and_the_test_hooks(self):
        r = subprocess.run([os.path.join(EC2, "launch-bench"), "--help"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        for word in ("--region", "--instance-type", "--spot", "--spot-fallback", "--max-hours", "--yes", "--dry-run",
                     "--keep", "--ami", "--ami-param", "ssh --run-id", "down --run-id", "cleanup", "Test hooks",
                     "AWS_ENDPOINT_URL", "CUDL_EC2_AWS", "CUDL_EC2_MY_IP", "CUDL_EC2_SSH_HOST", "CUDL_EC2_SSH_PORT",
                     "CUDL_EC2_STATE_DIR", "CUDL_EC2_REMOTE_DIR", "CUDL_EC2_REMOTE_CMD", "CUDL_EC2_REMOTE_ARGS",
                     "--my-ip", "--uncommitted", "--force", "--all", "g4dn.12xlarge", "p4d.24xlarge",
                     "CUDL_EC2_IP_URLS", "CUDL_EC2_SOURCE_DIR", "CUDL_EC2_SSH_ALIVE_SECONDS",
                     "mpirun -np N bench_dbn --device gpu --batch 64/N", "bench_gpu_ranks.json"):
            self.assertIn(word, r.stdout)


if __name__ == "__main__":
    unittest.main()

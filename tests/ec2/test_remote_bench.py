"""scripts/ec2/remote-bench.sh run directly on this machine (no AWS, no SSH): the GPU architecture
it reads from nvidia-smi (a stand-in nvidia-smi on PATH), and a real 1-epoch bench_dbn run where
there is no usable GPU: the CPU benchmark runs, the GPU failure is recorded with bench_dbn's words."""

import os
import shutil
import stat
import subprocess
import tempfile
import unittest

import harness

SCRIPT = os.path.join(harness.ROOT, "scripts", "ec2", "remote-bench.sh")


def path_without_nvidia_smi():
    return os.pathsep.join(d for d in os.environ.get("PATH", "").split(os.pathsep)
                           if d and not os.path.exists(os.path.join(d, "nvidia-smi")))


class RemoteBenchTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="cudl-remote-bench-")
        self.bin = os.path.join(self.tmp, "bin")
        os.makedirs(self.bin)

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def fake_nvidia_smi(self, compute_cap, name="Tesla T4", cap_status=0):
        """An nvidia-smi that answers --query-gpu=compute_cap with COMPUTE_CAP (exit CAP_STATUS) and
        --query-gpu=name with NAME."""
        path = os.path.join(self.bin, "nvidia-smi")
        with open(path, "w") as f:
            f.write('#!/bin/sh\ncase "$*" in\n'
                    '  *compute_cap*) printf "%s" \'%s\'; exit %d ;;\n'
                    '  *name*) echo \'%s\' ;;\n'
                    '  *driver_version*) echo 999.99 ;;\n'
                    '  *) echo "fake nvidia-smi (tests/ec2)" ;;\nesac\n' % ("%s", compute_cap, cap_status, name))
        os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)

    def run_script(self, args, with_fake=True, timeout=120):
        env = dict(os.environ, PATH=(self.bin + os.pathsep if with_fake else "") + path_without_nvidia_smi())
        return subprocess.run(["bash", SCRIPT] + args, env=env, capture_output=True, text=True, timeout=timeout)

    def detect(self, with_fake=True):
        r = self.run_script(["--detect-arch"], with_fake)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout.strip(), r.stderr

    def test_architecture_from_nvidia_smi(self):
        for caps, want in (("7.5\n", "75"), ("8.6\n8.6\n", "86"), ("7.5\n8.9\n", "75;89"), ("9.0\n", "90")):
            self.fake_nvidia_smi(caps)
            self.assertEqual(self.detect()[0], want, caps)

    def test_architecture_from_the_gpu_name_when_the_driver_is_old(self):
        self.fake_nvidia_smi('Field "compute_cap" is not a valid field to query.\n', name="NVIDIA A10G", cap_status=2)
        self.assertEqual(self.detect()[0], "86")

    def test_no_gpu_is_none_with_the_reason(self):
        arch, why = self.detect(with_fake=False)
        self.assertEqual(arch, "none")
        self.assertIn("nvidia-smi not found", why)
        self.fake_nvidia_smi("[N/A]\n", name="Some Future GPU")
        arch, why = self.detect()
        self.assertEqual(arch, "none")
        self.assertIn("no GPU whose compute capability is known", why)

    def test_bad_usage_is_exit_2_naming_the_problem(self):
        for args, message in ((["--epochs", "0"], "--epochs: expected a positive integer, found '0'"),
                              (["--arch", "sm75"], "--arch: expected auto, none or a list"),
                              (["--gpu", "maybe"], "--gpu: expected required or optional"),
                              (["--frobnicate"], "unknown option '--frobnicate'")):
            r = self.run_script(args)
            self.assertEqual(r.returncode, 2, args)
            self.assertIn(message, r.stderr)

    @unittest.skipUnless(harness.prebuilt_dir(), "no build of bench_dbn (run scripts/run_tests.sh first)")
    def test_without_a_usable_gpu_the_cpu_benchmark_still_runs(self):
        out = os.path.join(self.tmp, "out")
        common = ["--prebuilt", harness.prebuilt_dir(), "--epochs", "1", "--no-tests",
                  "--mnist-mirrors", "file:///nonexistent/"]
        # Four GPUs that nvidia-smi names (T4s, as on a g4dn.12xlarge), but a build without the CUDA
        # backend: GPU optional. All four are counted; bench_dbn uses one.
        self.fake_nvidia_smi("7.5\n" * 4, name="Tesla T4\n" * 4)
        r = self.run_script(["--out", out, "--gpu", "optional"] + common)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        info = dict(line.split("\t", 1) for line in read(os.path.join(out, "info.tsv")).splitlines())
        self.assertEqual((info["cuda_arch"], info["gpu_name"], info["gpu_driver"], info["gpu_count"]),
                         ("75", "Tesla T4", "999.99", "4"))
        steps = read(os.path.join(out, "steps.tsv"))
        self.assertRegex(steps, r"mnist\tfailed\t1\t[0-9.]+\tfetch_mnist.sh: could not fetch")
        self.assertRegex(steps, r"bench_cpu\tok\t0\t")
        self.assertRegex(steps, r"bench_gpu\tfailed\t2\t[0-9.]+\tbench_dbn: cannot use the GPU: ")
        self.assertIn('"status": "ok"', read(os.path.join(out, "bench_cpu.json")))
        self.assertIn('"status": "error"', read(os.path.join(out, "bench_gpu.json")))
        self.assertIn("fake nvidia-smi", read(os.path.join(out, "nvidia-smi.txt")))
        # No nvidia-smi at all, GPU required: the CPU benchmark still runs; the run fails, saying why.
        out2 = os.path.join(self.tmp, "out2")
        r = self.run_script(["--out", out2] + common, with_fake=False)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("GPU architecture: none (nvidia-smi not found", r.stdout)
        self.assertIn("remote-bench: FAILED: bench_gpu", r.stdout)
        self.assertRegex(read(os.path.join(out2, "steps.tsv")), r"bench_cpu\tok\t0\t")
        self.assertIn("no NVIDIA driver", read(os.path.join(out2, "nvidia-smi.txt")))


def read(path):
    with open(path) as f:
        return f.read()


if __name__ == "__main__":
    unittest.main()

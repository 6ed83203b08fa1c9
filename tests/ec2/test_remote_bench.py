"""scripts/ec2/remote-bench.sh run directly on this machine (no AWS, no SSH): the GPU architecture
it reads from nvidia-smi (a stand-in nvidia-smi on PATH), a real 1-epoch bench_dbn run where
there is no usable GPU: the CPU benchmark runs, the GPU failure is recorded with bench_dbn's words;
and the data-parallel step (mpirun -np N bench_dbn --device gpu --batch 64/N on N >= 2 GPUs) with a
fake build (fake-bench-dbn, fake-mpirun): its command line, its record, and its failures."""

import json
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


def path_without(names, scratch):
    """PATH with none of the programs NAMES: a directory holding one is replaced by a directory of
    symbolic links (made under SCRATCH) to everything else in it."""
    out = []
    for n, d in enumerate(p for p in os.environ.get("PATH", "").split(os.pathsep) if p):
        if not any(os.path.lexists(os.path.join(d, name)) for name in names):
            out.append(d)
            continue
        mirror = os.path.join(scratch, "path-%d" % n)
        os.makedirs(mirror)
        for entry in os.listdir(d):
            if entry not in names:
                os.symlink(os.path.join(d, entry), os.path.join(mirror, entry))
        out.append(mirror)
    return os.pathsep.join(out)


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

    def run_script(self, args, with_fake=True, timeout=120, path=None):
        env = dict(os.environ, PATH=(self.bin + os.pathsep if with_fake else "") + (path or path_without_nvidia_smi()))
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
                              (["--mnist-dir", ""], "--mnist-dir: expected a directory, found ''"),
                              (["--frobnicate"], "unknown option '--frobnicate'")):
            r = self.run_script(args)
            self.assertEqual(r.returncode, 2, args)
            self.assertIn(message, r.stderr)

    @unittest.skipUnless(harness.prebuilt_dir(), "no build of bench_dbn (run scripts/run_tests.sh first)")
    def test_without_a_usable_gpu_the_cpu_benchmark_still_runs(self):
        out = os.path.join(self.tmp, "out")
        # Its own MNIST folder: the project's data/mnist is shared with the tests of the other worker.
        mnist = os.path.join(self.tmp, "mnist")
        common = ["--prebuilt", harness.prebuilt_dir(), "--epochs", "1", "--no-tests",
                  "--mnist-mirrors", "file:///nonexistent/", "--mnist-dir", mnist]
        # Four GPUs that nvidia-smi names (T4s, as on a g4dn.12xlarge), but a build without the CUDA
        # backend: GPU optional. All four are counted; bench_dbn uses one, then all four under mpirun.
        self.fake_nvidia_smi("7.5\n" * 4, name="Tesla T4\n" * 4)
        r = self.run_script(["--out", out, "--gpu", "optional"] + common)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        info = dict(line.split("\t", 1) for line in read(os.path.join(out, "info.tsv")).splitlines())
        self.assertEqual((info["cuda_arch"], info["gpu_name"], info["gpu_driver"], info["gpu_count"]),
                         ("75", "Tesla T4", "999.99", "4"))
        steps = read(os.path.join(out, "steps.tsv"))
        self.assertRegex(steps, r"mnist\tfailed\t1\t[0-9.]+\tfetch_mnist.sh: could not fetch")
        self.assertIn("into %s" % mnist, read(os.path.join(out, "logs", "mnist.log")))
        self.assertFalse(os.path.exists(mnist), "fetch_mnist.sh left the empty folder it made")
        self.assertRegex(steps, r"bench_cpu\tok\t0\t")
        self.assertRegex(steps, r"bench_gpu\tfailed\t2\t[0-9.]+\tbench_dbn: cannot use the GPU: ")
        # The data-parallel step fails too, for whichever reason comes first here: too few cores for
        # 4 ranks (Open MPI's slots), no GPU, a build without MPI, or no mpirun at all.
        self.assertRegex(steps, r"bench_gpu_ranks\tfailed\t[-0-9]+\t[0-9.]+\t(bench_dbn: |There are not enough slots|"
                                r"mpirun is not installed)")
        self.assertIn("bench_gpu_ranks: 4 GPUs (nvidia-smi lists 4)", r.stdout)
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
        self.assertNotIn("bench_gpu_ranks", read(os.path.join(out2, "steps.tsv")))
        self.assertIn("no NVIDIA driver", read(os.path.join(out2, "nvidia-smi.txt")))

    # --- The data-parallel benchmark, with a fake build (fake-bench-dbn) and a fake mpirun ---------

    def fake_run(self, name, gpus, extra=(), build=None, path=None):
        """remote-bench.sh on a fake build (fake-mpirun as its MPI launcher, unless BUILD is given)
        with GPUS fake T4s; returns (result, out dir, build dir)."""
        build = build or harness.fake_build(os.path.join(self.tmp, "build-" + name))
        self.fake_nvidia_smi("7.5\n" * gpus, name="Tesla T4\n" * gpus)
        out = os.path.join(self.tmp, "out-" + name)
        r = self.run_script(["--out", out, "--prebuilt", build, "--epochs", "2", "--no-tests",
                             "--mnist-mirrors", "file:///nonexistent/", "--mnist-dir", os.path.join(self.tmp, "mnist")]
                            + list(extra), path=path)
        return r, out, build

    def mpirun_calls(self, build):
        path = os.path.join(build, "bin", "mpirun.calls")
        return read(path).splitlines() if os.path.exists(path) else []

    def test_four_gpus_run_mpirun_np_4_with_a_quarter_of_the_batch_each(self):
        r, out, build = self.fake_run("four", 4)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        argv, root_env = self.mpirun_calls(build)
        # -np 4, 16 rows per rank (the 2014 step of 64), into bench_gpu_ranks.json; no --oversubscribe,
        # no --allow-run-as-root: as root, Open MPI's environment variables instead.
        self.assertEqual(argv, "ARGV -np 4 %s/benchmarks/bench_dbn --device gpu --batch 16 --epochs 2 --json %s/bench_gpu_ranks.json"
                         % (build, out))
        root = os.geteuid() == 0
        self.assertEqual(root_env, "ROOT-ENV OMPI_ALLOW_RUN_AS_ROOT=%s OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=%s"
                         % (("1", "1") if root else ("", "")))
        # Its own step, after the one-GPU run, with its log; rank 0 (the fake) wrote the JSON.
        steps = [line.split("\t") for line in read(os.path.join(out, "steps.tsv")).splitlines()]
        self.assertEqual([s[0] for s in steps], ["mnist", "build", "tests", "bench_cpu", "bench_gpu", "bench_gpu_ranks"])
        self.assertEqual(steps[-1][1:3], ["ok", "0"])
        self.assertIn("fake mpirun (tests/ec2): starting rank 0 of 4 alone", read(os.path.join(out, "logs", "bench_gpu_ranks.log")))
        ranks = json.loads(read(os.path.join(out, "bench_gpu_ranks.json")))
        self.assertEqual((ranks["device"]["ranks"], ranks["settings"]["batch"], ranks["settings"]["epochs"]), (4, 16, 2))
        info = dict(line.split("\t", 1) for line in read(os.path.join(out, "info.tsv")).splitlines())
        self.assertEqual((info["gpu_count"], info["ranks"], info["ranks_batch"]), ("4", "4", "16"))
        self.assertIn("bench_gpu_ranks: 4 GPUs (nvidia-smi lists 4): the data-parallel benchmark, one rank per GPU", r.stdout)
        # The one-GPU run kept the 2014 batch (bench_dbn's default, 64), outside mpirun.
        bench = [json.loads(line) for line in read(os.path.join(build, "benchmarks", "bench_dbn.calls")).splitlines()]
        self.assertEqual([(c["argv"][:2], c["ranks"], "--batch" in c["argv"]) for c in bench],
                         [(["--device", "cpu"], 1, False), (["--device", "gpu"], 1, False), (["--device", "gpu"], 4, True)])

    def test_gpus_option_wins_and_a_batch_64_does_not_divide_is_floored_saying_so(self):
        r, out, build = self.fake_run("three", 4, ["--gpus", "3"])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("warning: --gpus 3, but nvidia-smi lists 4 GPUs here: the data-parallel benchmark runs 3 ranks", r.stdout)
        self.assertIn("bench_gpu_ranks: 64 rows are not divisible by 3 ranks: --batch 21 per rank, 63 rows a step "
                      "(64 in the one-GPU run)", r.stdout)
        self.assertIn(" -np 3 ", self.mpirun_calls(build)[0])
        self.assertIn(" --batch 21 ", self.mpirun_calls(build)[0])

    def test_one_gpu_runs_no_mpirun(self):
        for name, gpus, extra in (("one", 1, []), ("given-one", 4, ["--gpus", "1"]), ("none", 0, [])):
            r, out, build = self.fake_run(name, gpus, extra)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertEqual(self.mpirun_calls(build), [], name)
            self.assertNotIn("bench_gpu_ranks", read(os.path.join(out, "steps.tsv")), name)
            self.assertFalse(os.path.exists(os.path.join(out, "bench_gpu_ranks.json")), name)
            self.assertRegex(read(os.path.join(out, "steps.tsv")), r"bench_gpu\tok\t0\t")

    def test_without_mpirun_the_step_fails_saying_why_as_the_gpu_rule_says(self):
        build = harness.fake_build(os.path.join(self.tmp, "build-no-mpi"), mpirun=False,
                                   mpiexec_cached="/nonexistent/bin/mpiexec")
        path = path_without(("nvidia-smi", "mpirun"), self.tmp)
        why = ("mpirun is not installed: the build's MPI launcher /nonexistent/bin/mpiexec (MPIEXEC_EXECUTABLE in "
               "CMakeCache.txt) does not exist, and no mpirun is on PATH; scripts/setup.sh installs openmpi-bin and "
               "libopenmpi-dev")
        for gpu, status in (("required", 1), ("optional", 0)):
            r, out, _ = self.fake_run("no-mpi-" + gpu, 4, ["--gpu", gpu], build=build, path=path)
            self.assertEqual(r.returncode, status, r.stdout + r.stderr)
            self.assertIn("bench_gpu_ranks\tfailed\t-\t0\t" + why + "\n", read(os.path.join(out, "steps.tsv")))
            self.assertIn("bench_gpu_ranks: FAILED: " + why, r.stdout)
            self.assertEqual("remote-bench: FAILED: bench_gpu_ranks" in r.stdout, gpu == "required", r.stdout)
        # The build names no launcher (configured without MPI) and none is on PATH: said so.
        with open(os.path.join(build, "CMakeCache.txt"), "w") as f:
            f.write("CUDL_HAVE_MPI:INTERNAL=OFF\n")
        r, out, _ = self.fake_run("no-mpi-at-all", 2, build=build, path=path)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("mpirun is not installed: the build names none (no MPIEXEC_EXECUTABLE in %s/CMakeCache.txt: "
                      "configured without MPI?), and no mpirun is on PATH" % build, read(os.path.join(out, "steps.tsv")))

    def test_a_failing_data_parallel_run_is_recorded_with_bench_dbns_words(self):
        build = harness.fake_build(os.path.join(self.tmp, "build-fails"))
        os.remove(os.path.join(build, "benchmarks", "bench_dbn"))
        with open(os.path.join(build, "benchmarks", "bench_dbn"), "w") as f:
            f.write('#!/bin/sh\nif [ -n "$OMPI_COMM_WORLD_SIZE" ]; then\n'
                    '  echo "bench_dbn: started as $OMPI_COMM_WORLD_SIZE ranks by an MPI launcher, but this build has no MPI" >&2; exit 2\nfi\n')
        os.chmod(os.path.join(build, "benchmarks", "bench_dbn"), 0o755)
        r, out, _ = self.fake_run("fails", 2, ["--gpu", "optional"], build=build)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn(" -np 2 ", self.mpirun_calls(build)[0])
        self.assertIn(" --batch 32 ", self.mpirun_calls(build)[0])
        self.assertRegex(read(os.path.join(out, "steps.tsv")), r"bench_gpu_ranks\tfailed\t2\t[0-9.]+\tbench_dbn: started as 2 "
                                                               r"ranks by an MPI launcher, but this build has no MPI\n")
        r, out, _ = self.fake_run("fails-required", 2, build=build)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("remote-bench: FAILED: bench_gpu_ranks", r.stdout)

    def test_bad_gpus_is_usage_error(self):
        for bad in ("four", "-1", "2.5", ""):
            r = self.run_script(["--gpus", bad])
            self.assertEqual(r.returncode, 2, bad)
            self.assertIn("--gpus: expected auto or a number of GPUs such as 4, found '%s'" % bad, r.stderr)


def read(path):
    with open(path) as f:
        return f.read()


if __name__ == "__main__":
    unittest.main()

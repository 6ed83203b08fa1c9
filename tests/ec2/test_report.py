"""scripts/ec2/report.py: the markdown table (the 2014 figures beside this run's) and the PNG chart,
checked by decoding the PNG with the standard library. The GPU-success case uses the checked-in
fixtures (invented numbers, labelled as such); the real CPU case is in test_launch_bench.py.
These tests draw the chart with the dependency-free png_chart.py (CUDL_NO_MATPLOTLIB=1), so they run
everywhere; the matplotlib chart is checked in test_plot_run.py where matplotlib is installed."""

import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest
import zlib

import harness

sys.path.insert(0, os.path.join(harness.ROOT, "scripts", "ec2"))
import png_chart  # noqa: E402

REPORT = os.path.join(harness.ROOT, "scripts", "ec2", "report.py")
FIXTURES = os.path.join(harness.HERE, "fixtures")
BLUE, ORANGE, GRAY, GREEN = (52, 101, 164), (230, 120, 20), (150, 150, 150), (78, 154, 6)


def png_chunks(data):
    """{chunk type: [bodies]} of a PNG."""
    pos, out = 8, {}
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        out.setdefault(data[pos + 4:pos + 8], []).append(data[pos + 8:pos + 8 + length])
        pos += 12 + length
    return out


def decode_png(data):
    """(width, height, rows of RGB bytes) of an 8-bit RGB, unfiltered PNG; checks every CRC."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, chunks = 8, {}
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert zlib.crc32(kind + body) & 0xFFFFFFFF == crc, "bad CRC in %r" % kind
        chunks[kind] = chunks.get(kind, b"") + body
        pos += 12 + length
    width, height, depth, color, _, _, _ = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    assert (depth, color) == (8, 2), "expected 8-bit RGB"
    raw = zlib.decompress(chunks[b"IDAT"])
    stride = 1 + 3 * width
    assert len(raw) == stride * height
    return width, height, [raw[y * stride + 1:(y + 1) * stride] for y in range(height)]


def colors(rows):
    seen = set()
    for row in rows:
        for x in range(0, len(row), 3):
            seen.add(tuple(row[x:x + 3]))
    return seen


class ReportTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="cudl-report-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def report(self):
        env = dict(os.environ, CUDL_NO_MATPLOTLIB="1")  # the fallback chart, decodable here
        r = subprocess.run(["python3", REPORT, self.dir], capture_output=True, text=True, env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(os.path.join(self.dir, "report.md")) as f:
            md = f.read()
        with open(os.path.join(self.dir, "chart.png"), "rb") as f:
            return md, decode_png(f.read())

    def test_gpu_and_cpu_results_beside_the_2014_figures(self):
        shutil.copy(os.path.join(FIXTURES, "bench_cpu.fixture.json"), os.path.join(self.dir, "bench_cpu.json"))
        shutil.copy(os.path.join(FIXTURES, "bench_gpu.fixture.json"), os.path.join(self.dir, "bench_gpu.json"))
        with open(os.path.join(self.dir, "run.json"), "w") as f:
            json.dump({"run_id": "fixture-run", "instance_type": "g4dn.12xlarge", "region": "us-east-1",
                       "availability_zone": "us-east-1c", "market": "on-demand", "price_per_hour": 3.912,
                       "max_hours": 2, "worst_case_usd": 7.85, "price_source": "fixture", "volume_gb": 100,
                       "gpus": 4, "gpu_name": "NVIDIA T4", "wall_seconds": 1383, "instance_seconds": 1201,
                       "cost_usd": 1.3084, "kept": False, "teardown": "done 2026-12-05T08:00:00Z",
                       "source": "6dd45d2a1b2c", "source_files": 235, "source_bytes": 3204644}, f)
        with open(os.path.join(self.dir, "info.tsv"), "w") as f:
            f.write("gpu_name\tFIXTURE GPU\ngpu_count\t4\ncuda_arch\t75\ncpus\t4\n")
        with open(os.path.join(self.dir, "steps.tsv"), "w") as f:
            f.write("build\tok\t0\t100.0\t\nbench_gpu\tok\t0\t2.0\t\n")
        md, (width, height, rows) = self.report()
        self.assertIn("# bench_dbn on EC2, run fixture-run", md)
        # What the run was and what it cost.
        for row in ("| instance type | g4dn.12xlarge: 4 GPUs (FIXTURE GPU); bench_dbn used one of them |",
                    "| region | us-east-1 (us-east-1c) |", "| market | on-demand |", "| hourly price | $3.912/h (fixture) |",
                    "| wall time | 23 min 3 s (launch-bench's start to its end, teardown included) |",
                    "| cost of the run | about **$1.31**: 20 min 1 s of instance time from launch to termination at "
                    "$3.912/h (per second, one minute at least), with the 100 GiB gp3 volume and the public IPv4 address |",
                    "| worst case | $7.85 (2 h at most, the max-hours guard) |", "| teardown | done 2026-12-05T08:00:00Z |",
                    "from source 6dd45d2a1b2c (235 files, 3204644 bytes)"):
            self.assertIn(row, md)
        facts = ["g4dn.12xlarge on-demand in us-east-1 at $3.912/h", "wall time 23 min 3 s; cost about $1.31"]
        with open(os.path.join(self.dir, "chart.png"), "rb") as f:
            chunks = png_chunks(f.read())
        self.assertEqual(chunks[b"tEXt"], [b"Description\0" + "; ".join(facts).encode()])
        # The same two lines are drawn at the foot of the chart, pixel for pixel.
        expected = png_chart.Canvas(width, height)
        for n, line in enumerate(facts):
            expected.centered_text(width / 2, png_chart.footnote_top(height, 2, n), line, png_chart.FOOTNOTE_COLOR, 2)
        foot = png_chart.footnote_top(height, 2, 0)
        self.assertEqual(b"".join(rows[foot:]), bytes(expected.pixels[foot * width * 3:]))
        self.assertIn(png_chart.FOOTNOTE_COLOR, colors(rows[foot:]))
        self.assertIn("| 2014 seed, nolearn/gdbn, CPU | a 2014 CPU | ~25 s | 97–98% |", md)
        self.assertIn("| 2014 seed, nolearn/gdbn, GPU | AWS g2.2xlarge (GRID K520) | ~8 s | 97–98% |", md)
        self.assertIn("| cudl CPU (`--device cpu`), this run | g4dn.12xlarge, FIXTURE CPU (not a measurement) | "
                      "**2.000 s** (median of 3) | 97.5% | MNIST, 46,900 train / 23,100 test rows |", md)
        self.assertIn("| cudl GPU (`--device gpu`), this run | g4dn.12xlarge, FIXTURE GPU | **0.500 s** (median of 3) | 97.6% |", md)
        self.assertIn("**4.00×** faster on the GPU", md)
        self.assertIn("| 3 | 2.000 | 0.1000 | 0.500 | 0.1000 |", md)
        self.assertNotIn("not comparable", md)  # MNIST: comparable with 2014
        self.assertIn("chart.png (drawn by scripts/ec2/png_chart.py, the dependency-free fallback: "
                      "install python3-matplotlib", md)
        self.assertEqual((width, height), (960, 544))  # 500 and two lines of facts
        self.assertTrue({BLUE, ORANGE, GRAY} <= colors(rows), "the chart lacks a bar")
        # No data-parallel run (no bench_gpu_ranks.json, no such step): nothing about one.
        for text in ("mpirun", "Data parallel", "GPUs s", "bench_gpu_ranks"):
            self.assertNotIn(text, md)
        self.assertNotIn(GREEN, colors(rows))

    def data_parallel_run(self, steps, ranks_json=True):
        """The fixtures of a g4dn.12xlarge run: CPU, one GPU and 4 ranks (RANKS_JSON: True for the
        fixture, a dict to write instead, False for none); STEPS: steps.tsv."""
        names = ["bench_cpu", "bench_gpu"] + (["bench_gpu_ranks"] if ranks_json is True else [])
        for name in names:
            shutil.copy(os.path.join(FIXTURES, name + ".fixture.json"), os.path.join(self.dir, name + ".json"))
        if isinstance(ranks_json, dict):
            with open(os.path.join(self.dir, "bench_gpu_ranks.json"), "w") as f:
                json.dump(ranks_json, f)
        with open(os.path.join(self.dir, "run.json"), "w") as f:
            json.dump({"run_id": "fixture-ranks", "instance_type": "g4dn.12xlarge", "region": "us-east-1",
                       "market": "on-demand", "price_per_hour": 3.912, "max_hours": 2, "worst_case_usd": 7.85,
                       "gpus": 4, "gpu_name": "NVIDIA T4"}, f)
        with open(os.path.join(self.dir, "info.tsv"), "w") as f:
            f.write("gpu_name\tFIXTURE GPU\ngpu_count\t4\nranks\t4\nranks_batch\t16\n")
        with open(os.path.join(self.dir, "steps.tsv"), "w") as f:
            f.write(steps)
        return self.report()

    def test_data_parallel_run_beside_the_one_gpu_run(self):
        md, (_, _, rows) = self.data_parallel_run("bench_gpu\tok\t0\t2.0\t\nbench_gpu_ranks\tok\t0\t1.5\t\n")
        self.assertIn("| instance type | g4dn.12xlarge: 4 GPUs (FIXTURE GPU); bench_dbn ran on one of them, then data "
                      "parallel on 4 (mpirun) |", md)
        # Its row follows the one-GPU row, in the same form.
        self.assertIn("| cudl GPU (`--device gpu`), this run | g4dn.12xlarge, FIXTURE GPU | **0.500 s** (median of 3) | 97.6% | "
                      "MNIST, 46,900 train / 23,100 test rows |\n"
                      "| cudl 4 GPUs (`mpirun -np 4`, `--device gpu --batch 16`), this run | g4dn.12xlarge, 4 × FIXTURE GPU | "
                      "**0.200 s** (median of 3) | 97.5% | MNIST, 46,900 train / 23,100 test rows |\n", md)
        # The ratio to the one-GPU run, the communicator, and the all-reduces (queued on a stream: untimed).
        self.assertIn("Data parallel: on 4 GPUs (`mpirun -np 4`, `--batch 16` per rank: 64 rows a step) an epoch takes "
                      "0.200 s, on one GPU 0.500 s: a speed-up of **2.50×** (62% of the ideal 4×). Communicator: FIXTURE "
                      "nccl: 4 ranks on 1 host (not a measurement). The 2196 gradient all-reduces were queued on the GPU "
                      "stream, so not timed apart.", md)
        self.assertIn("| epoch | CPU s | CPU loss | GPU s | GPU loss | 4 GPUs s | 4 GPUs loss |\n"
                      "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n", md)
        self.assertIn("| 3 | 2.000 | 0.1000 | 0.500 | 0.1000 | 0.200 | 0.1000 |", md)
        self.assertIn("bench_cpu.json, bench_gpu.json and bench_gpu_ranks.json (bench_dbn --json; the last under mpirun), chart.png", md)
        self.assertTrue({BLUE, ORANGE, GRAY, GREEN} <= colors(rows), "the chart lacks the data-parallel bar")

    def test_data_parallel_timed_all_reduces_slower_runs_and_a_floored_batch_say_so(self):
        with open(os.path.join(FIXTURES, "bench_gpu_ranks.fixture.json")) as f:
            ranks = json.load(f)
        ranks["device"].update(ranks=3, communicator="mpi: Open MPI v4.1.6, 3 ranks on 1 host")
        ranks["settings"]["batch"] = 21
        ranks["timing"].update(median_epoch_s=0.8, allreduce_s=1.25, allreduce_calls=2232, train_s=2.4)
        md, _ = self.data_parallel_run("bench_gpu_ranks\tok\t0\t3.0\t\n", ranks_json=ranks)
        self.assertIn("| cudl 3 GPUs (`mpirun -np 3`, `--device gpu --batch 21`), this run | g4dn.12xlarge, 3 × FIXTURE GPU | "
                      "**0.800 s** (median of 3) |", md)
        self.assertIn("on 3 GPUs (`mpirun -np 3`, `--batch 21` per rank: 63 rows a step, not the 2014 run's 64: 64 is not "
                      "divisible by 3) an epoch takes 0.800 s, on one GPU 0.500 s: a speed-up of **0.62×** (slower than one "
                      "GPU). Communicator: mpi: Open MPI v4.1.6, 3 ranks on 1 host. Rank 0's gradient all-reduces took "
                      "1.250 s of the 2.400 s of training (2232 calls).", md)

    def test_a_failed_data_parallel_run_is_a_row_saying_why(self):
        why = "mpirun is not installed: the build names none (no MPIEXEC_EXECUTABLE in /b/CMakeCache.txt: configured without MPI?)"
        md, (_, _, rows) = self.data_parallel_run("bench_gpu_ranks\tfailed\t-\t0\t%s\n" % why, ranks_json=False)
        self.assertIn("| cudl 4 GPUs (`mpirun -np 4`, `--device gpu --batch 16`), this run | g4dn.12xlarge, 4 × FIXTURE GPU | "
                      "failed: %s | | |" % why, md)
        self.assertIn("| bench_gpu_ranks | failed | 0 | %s |" % why, md)
        self.assertNotIn("Data parallel:", md)
        self.assertNotIn("4 GPUs s", md)
        self.assertNotIn(GREEN, colors(rows))

    def test_spot_kept_and_never_launched_runs_say_so(self):
        base = {"run_id": "r", "instance_type": "g4dn.xlarge", "region": "eu-west-1", "price_per_hour": 0.526,
                "price_source": "fixture", "max_hours": 2, "worst_case_usd": 1.08, "volume_gb": 100, "gpus": 1,
                "gpu_name": "NVIDIA T4", "wall_seconds": 45, "teardown": ""}
        for extra, want in (
                ({"market": "spot", "instance_seconds": 30, "cost_usd": 0.0088, "kept": True},
                 ["| market | spot (one-time) |", "| hourly price | $0.526/h (fixture); spot is billed at most this |",
                  "| cost of the run | about **$0.009** at most (spot): 30 s of instance time so far, still running (--keep)",
                  "| teardown | none yet: the instance was kept (--keep); end it with launch-bench down --run-id r |",
                  "| instance type | g4dn.xlarge: 1 GPU (NVIDIA T4) |", "| wall time | 45 s (launch-bench's start to its end) |"]),
                ({"market": "", "instance_seconds": 0, "cost_usd": 0, "kept": False, "teardown": "done 2026-12-05T08:00:00Z"},
                 ["| market | not launched |", "| cost of the run | $0: no instance was launched |"])):
            with open(os.path.join(self.dir, "run.json"), "w") as f:
                json.dump(dict(base, **extra), f)
            md, _ = self.report()
            for text in want:
                self.assertIn(text, md)

    def test_missing_results_are_reported_as_missing(self):
        md, (_, _, rows) = self.report()
        self.assertIn("| cudl CPU (`--device cpu`), this run | this machine, CPU | no result | | |", md)
        self.assertIn("| cudl GPU (`--device gpu`), this run | this machine, no GPU found | no result | | |", md)
        self.assertNotIn(BLUE, colors(rows))
        self.assertIn(GRAY, colors(rows))

    def test_usage(self):
        r = subprocess.run(["python3", REPORT], capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
        self.assertIn("Usage: scripts/ec2/report.py RESULTS_DIR", r.stderr)
        r = subprocess.run(["python3", REPORT, os.path.join(self.dir, "nope")], capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
        self.assertIn("no such directory", r.stderr)


if __name__ == "__main__":
    unittest.main()

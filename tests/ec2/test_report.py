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
import tempfile
import unittest
import zlib

import harness

REPORT = os.path.join(harness.ROOT, "scripts", "ec2", "report.py")
FIXTURES = os.path.join(harness.HERE, "fixtures")
BLUE, ORANGE, GRAY = (52, 101, 164), (230, 120, 20), (150, 150, 150)


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
            json.dump({"run_id": "fixture-run", "instance_type": "g4dn.xlarge", "region": "us-east-1",
                       "market": "on-demand", "price_per_hour": 0.526, "max_hours": 2, "worst_case_usd": 1.08,
                       "price_source": "fixture"}, f)
        with open(os.path.join(self.dir, "info.tsv"), "w") as f:
            f.write("gpu_name\tFIXTURE GPU\ncuda_arch\t75\ncpus\t4\n")
        with open(os.path.join(self.dir, "steps.tsv"), "w") as f:
            f.write("build\tok\t0\t100.0\t\nbench_gpu\tok\t0\t2.0\t\n")
        md, (width, height, rows) = self.report()
        self.assertIn("# bench_dbn on EC2, run fixture-run", md)
        self.assertIn("| 2014 seed, nolearn/gdbn, CPU | a 2014 CPU | ~25 s | 97–98% |", md)
        self.assertIn("| 2014 seed, nolearn/gdbn, GPU | AWS g2.2xlarge (GRID K520) | ~8 s | 97–98% |", md)
        self.assertIn("| cudl CPU (`--device cpu`), this run | g4dn.xlarge, FIXTURE CPU (not a measurement) | "
                      "**2.000 s** (median of 3) | 97.5% | MNIST, 46,900 train / 23,100 test rows |", md)
        self.assertIn("| cudl GPU (`--device gpu`), this run | g4dn.xlarge, FIXTURE GPU | **0.500 s** (median of 3) | 97.6% |", md)
        self.assertIn("**4.00×** faster on the GPU", md)
        self.assertIn("| 3 | 2.000 | 0.1000 | 0.500 | 0.1000 |", md)
        self.assertNotIn("not comparable", md)  # MNIST: comparable with 2014
        self.assertIn("chart.png (drawn by scripts/ec2/png_chart.py, the dependency-free fallback: "
                      "install python3-matplotlib", md)
        self.assertEqual((width, height), (960, 500))
        self.assertTrue({BLUE, ORANGE, GRAY} <= colors(rows), "the chart lacks a bar")

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

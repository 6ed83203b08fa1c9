"""scripts/plot_run.py: reading bench_dbn, peer and device-summary JSON (always), its usage errors
(always), and the charts it draws, alone and as scripts/ec2/report.py's chart.png (only where
matplotlib can be imported by this Python; skipped, saying so, elsewhere). The bench_dbn inputs are
the checked-in fixtures (invented numbers, labelled as such) and small JSON written here."""

import contextlib
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import harness

SCRIPTS = os.path.join(harness.ROOT, "scripts")
PLOT_RUN = os.path.join(SCRIPTS, "plot_run.py")
REPORT = os.path.join(SCRIPTS, "ec2", "report.py")
FIXTURES = os.path.join(harness.HERE, "fixtures")
CPU, GPU = os.path.join(FIXTURES, "bench_cpu.fixture.json"), os.path.join(FIXTURES, "bench_gpu.fixture.json")
BLUE, ORANGE, GRAY = (52, 101, 164), (230, 120, 20), (150, 150, 150)
HAVE_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None

sys.path.insert(0, SCRIPTS)
import plot_run  # noqa: E402


def epochs(seconds, **extra):
    return [dict({"epoch": i + 1, "loss": 1.0 / (i + 1), "err": 0.5 / (i + 1), "seconds": s}, **extra)
            for i, s in enumerate(seconds)]


def load(path):
    """plot_run.load(PATH), its notes on stderr kept out of the test output."""
    with contextlib.redirect_stderr(io.StringIO()):
        return plot_run.load(path)


def pixels_of(path, color):
    """How many pixels of PATH (a PNG, read by matplotlib) have exactly COLOR."""
    import matplotlib.image
    import numpy
    rgb = (matplotlib.image.imread(path)[..., :3] * 255).round().astype(int)
    return int((rgb == numpy.array(color)).all(axis=-1).sum())


class PlotRunTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="cudl-plot-run-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def write(self, name, data):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(data if isinstance(data, str) else json.dumps(data))
        return path

    def plot(self, *args, env=None):
        return subprocess.run([sys.executable, PLOT_RUN] + list(args), capture_output=True, text=True,
                              env=dict(os.environ, **(env or {})))

    def test_the_2014_figures_agree_with_report_py(self):
        spec = importlib.util.spec_from_file_location("ec2_report", REPORT)
        report = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(report)
        self.assertEqual([s["seconds"] for s in report.SEED_2014], [v for _, v in plot_run.SEED_2014])

    def test_bench_dbn_json(self):
        (s,), datasets, _ = load(CPU)
        self.assertEqual((s["label"], s["speed"], s["accuracy"], s["color"]), ("cudl cpu fp32", 2.0, 0.975, BLUE))
        self.assertEqual(len(s["epochs"]), 3)
        self.assertEqual(datasets, {"mnist"})
        # Epoch 1 apart: the median of 9, 1, 3, 2 is that of 1, 3, 2. Fewer rows are said in the label.
        path = self.write("b.json", {"tool": "bench_dbn", "status": "ok", "epochs": epochs([9, 1, 3, 2]),
                                     "device": {"kind": "gpu", "precision": "tf32", "captured_steps": False},
                                     "dataset": {"name": "MNIST", "train_rows": 6700}, "test": None})
        (s,), _, _ = load(path)
        self.assertEqual((s["label"], s["speed"], s["accuracy"], s["color"]),
                         ("cudl gpu tf32 eager (6,700 train rows)", 2, None, ORANGE))

    def test_peer_json_and_a_failed_run(self):
        path = self.write("t.json", {"peer": "torch", "status": "ok", "device": "cuda", "mode": "graph",
                                     "precision": "fp32", "train_rows": 46900, "test_accuracy": 0.9,
                                     "epochs": epochs([5, 4])})
        (s,), _, _ = load(path)
        self.assertEqual((s["label"], s["speed"], s["accuracy"]), ("torch cuda graph fp32", 4, 0.9))
        path = self.write("f.json", {"tool": "bench_dbn", "status": "failed", "error": "x", "epochs": epochs([1, 2]),
                                     "device": {"kind": "cpu"}})
        (s,), _, _ = load(path)
        self.assertIsNone(s["speed"])  # its curves are shown, its time is not
        self.assertEqual(load(self.write("e.json", {"tool": "bench_dbn", "epochs": []}))[0], [])

    def test_device_summary(self):
        path = self.write("results.json", {"gpu": "GPU X", "date": "today", "rows": [
            {"run": "cudl-gpu-fp32", "program": "cudl", "device": "gpu", "status": "ok", "median_s": 0.07,
             "dataset": "d/fashion-mnist", "accuracy": 0.88},
            {"run": "torch-eager-fp32", "program": "torch", "device": "cuda", "status": "timeout", "median_s": 0.5},
            {"run": "cudl-cpu", "program": "cudl", "device": "cpu", "status": "ok", "median_s": None},
            {"run": "torch-graph-bf16", "program": "torch", "device": "cuda", "precision": "bf16", "status": "ok",
             "median_s": 0.05},
            {"run": "lenet-gpu-bf16", "program": "lenet", "device": "gpu", "precision": "bf16", "status": "ok",
             "median_s": 0.3, "dataset": "d/mnist", "accuracy": 0.97}],
            "runs": [{"name": "cudl-gpu-fp32", "result": {"status": "ok", "epochs": epochs([0.2, 0.07, 0.08])}},
                     {"name": "lenet-gpu-bf16", "result": {"status": "ok", "epochs": epochs([0.9, 0.3])}}]})
        series, datasets, hint = load(path)
        self.assertEqual([(s["label"], s["speed"], len(s["epochs"])) for s in series],
                         [("cudl-gpu-fp32", 0.07, 3), ("torch-eager-fp32", None, 0), ("cudl-cpu", None, 0),
                          ("torch-graph-bf16", 0.05, 0), ("lenet-gpu-bf16", 0.3, 2)])
        self.assertEqual(series[-1]["color"], ORANGE)  # mnist_lenet is cudl on the GPU
        self.assertEqual((datasets, hint), ({"fashion-mnist", "mnist"}, "GPU X, today"))

    def test_usage_errors(self):
        r = self.plot()
        self.assertEqual(r.returncode, 2)
        self.assertIn("no input files", r.stderr)
        r = self.plot(os.path.join(self.dir, "nope.json"))
        self.assertEqual(r.returncode, 2)
        self.assertIn("nope.json: unreadable", r.stderr)
        r = self.plot(self.write("bad.json", "{nope"))
        self.assertEqual(r.returncode, 2)
        self.assertIn("bad.json: unreadable", r.stderr)
        r = self.plot(self.write("other.json", {"something": "else"}), self.write("list.json", [1]))
        self.assertEqual(r.returncode, 2)
        self.assertIn("nothing to plot", r.stderr)
        r = self.plot(CPU, env={"CUDL_NO_MATPLOTLIB": "1"})
        self.assertEqual(r.returncode, 2)
        self.assertIn("install python3-matplotlib", r.stderr)

    @unittest.skipUnless(HAVE_MATPLOTLIB, "matplotlib is not importable by this Python (python3-matplotlib)")
    def test_charts(self):
        valid = self.write("valid.json", {"tool": "bench_dbn", "status": "ok", "device": {"kind": "cpu"},
                                          "epochs": epochs([3, 2, 2], valid_loss=0.5, valid_err=0.2)})
        out = os.path.join(self.dir, "out")
        r = self.plot("--out", out, "--title", "fixtures", CPU, GPU, valid)
        self.assertEqual(r.returncode, 0, r.stderr)
        for name in ("curves.png", "speed.png"):
            with open(os.path.join(out, name), "rb") as f:
                self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
        speed = os.path.join(out, "speed.png")
        for color in (BLUE, ORANGE, GRAY):
            self.assertGreater(pixels_of(speed, color), 1000, "a bar of colour %s is missing" % (color,))
        r = self.plot("--out", out, "--no-2014", CPU)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertLess(pixels_of(speed, GRAY), 1000, "--no-2014 still drew the 2014 bars")
        self.assertGreater(pixels_of(speed, BLUE), 1000)

    @unittest.skipUnless(HAVE_MATPLOTLIB, "matplotlib is not importable by this Python (python3-matplotlib)")
    def test_report_chart_with_matplotlib(self):
        shutil.copy(CPU, os.path.join(self.dir, "bench_cpu.json"))
        shutil.copy(GPU, os.path.join(self.dir, "bench_gpu.json"))
        r = subprocess.run([sys.executable, REPORT, self.dir], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(os.path.join(self.dir, "report.md")) as f:
            self.assertRegex(f.read(), r"chart\.png \(drawn with matplotlib [0-9.]+ by scripts/plot_run\.py\)")
        for color in (BLUE, ORANGE, GRAY):
            self.assertGreater(pixels_of(os.path.join(self.dir, "chart.png"), color), 1000)


if __name__ == "__main__":
    unittest.main()

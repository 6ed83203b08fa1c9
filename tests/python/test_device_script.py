#!/usr/bin/env python3
"""The GPU session's script without a GPU: benchmarks/run_device.sh --dry-run plans issue 20's bf16
runs (bench_dbn, LeNet, the PyTorch peer under autocast, VGG16, the bf16 tests under the
sanitizers), and benchmarks/device_summary.py summarises such runs: the bf16 rows and ratios, the
LeNet accuracies and their target, what each run reports it ran. The runs' JSON is made up here;
mnist_lenet's output (it writes no JSON) is the real program's where its path is given.

    test_device_script.py [MNIST_LENET]      (ctest passes the built mnist_lenet)
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUN_DEVICE = os.path.join(ROOT, "benchmarks", "run_device.sh")
SUMMARY = os.path.join(ROOT, "benchmarks", "device_summary.py")
MNIST = os.path.join(ROOT, "tests", "data", "mnist")
LENET = sys.argv.pop(1) if len(sys.argv) > 1 else None


def epochs(seconds, loss=0.5):
    return [{"epoch": i + 1, "loss": loss / (i + 1), "err": 0.1, "seconds": s} for i, s in enumerate(seconds)]


def cudl_json(precision, accuracy, seconds):
    return {"tool": "bench_dbn", "status": "ok", "device": {"kind": "gpu", "precision": precision},
            "epochs": epochs(seconds), "test": {"accuracy": accuracy}, "timing": {"total_s": 1.0}}


def lenet_text(precision, accuracy, seconds):
    """mnist_lenet's lines that the summary reads, as its printf calls write them."""
    lines = ["cudl mnist_lenet | MNIST from d (--data) | 10000 rows, split 6700 train / 3300 test | cuda: X",
             "settings: learn rate 0.05 ×0.9/epoch, momentum 0.9, L2 0.0001, batch 64, 2 epochs, seed 2014, "
             "precision " + precision]
    for e in epochs(seconds):
        lines += [f"Epoch {e['epoch']}:", f"  loss {e['loss']:.6g}", f"  err  {e['err']:.6g}",
                  f"  ({e['seconds']:.2f}s)"]
    lines += ["             precision    recall  f1-score   support", "",
              f"test accuracy {accuracy:.4f} | train 1.00 s (0.500 s/epoch)", "===== exit 0 after 3.1s"]
    return "\n".join(lines) + "\n"


class DeviceScriptTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="cudl-device-script-")
        self.work = os.path.join(self.dir, "work")
        os.makedirs(os.path.join(self.work, "vgg"))
        self.manifest = []

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def run_row(self, name, program, device, mode, precision, dataset, result, rc="0"):
        """One manifest line, its result written as WORK/NAME.json (a dict) or WORK/NAME.log (text)."""
        path = os.path.join(self.work, name + (".log" if isinstance(result, str) else ".json"))
        with open(path, "w") as f:
            f.write(result if isinstance(result, str) else json.dumps(result))
        self.manifest.append([name, program, device, mode, precision, dataset, rc, "2.5", path, ""])

    def summarise(self, **env):
        with open(os.path.join(self.work, "manifest.tsv"), "w") as f:
            f.writelines("\t".join(row) + "\n" for row in self.manifest)
        with open(os.path.join(self.work, "status.tsv"), "w") as f:
            f.write("bf16 tests\tok\t3 of 3 passed, 0 failed (the rest skipped); see tests.log\n")
        env = dict({k: v for k, v in os.environ.items() if k != "VGG_PRECISIONS"}, GPU_NAME="GPU X",
                   GPU_DRIVER="1", GIT_COMMIT="abc", **env)
        r = subprocess.run([sys.executable, SUMMARY, self.work, self.dir], capture_output=True, text=True, env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(os.path.join(self.dir, "results.md")) as f, open(os.path.join(self.dir, "results.json")) as j:
            return f.read(), json.load(j)

    def test_dry_run_plans_the_bf16_runs(self):
        r = subprocess.run(["bash", RUN_DEVICE, "--dry-run"], capture_output=True, text=True, cwd=ROOT,
                           env=dict(os.environ, VGG_PRECISIONS="fp32 bf16"))
        self.assertEqual(r.returncode, 0, r.stderr)
        for planned in ("benchmarks/bench_dbn --device gpu --precision bf16 --data .device/data/fashion-mnist",
                        "examples/mnist_lenet --device gpu --precision fp32 --data .device/data/mnist --epochs 2",
                        "examples/mnist_lenet --device gpu --precision bf16 --data .device/data/mnist --epochs 2",
                        "dbn_torch.py --device cuda --mode graph --precision bf16",
                        "dbn_torch.py --device cuda --mode eager --precision bf16",
                        "compute-sanitizer --tool memcheck --print-limit 50 build-device/tests/test_cuda_parity_bf16",
                        "compare_vgg.sh --device gpu", "--precision fp32\\ bf16 --budget"):
            self.assertIn(planned, r.stdout)

    def test_summary_of_bf16_and_lenet_runs(self):
        fashion = ".device/data/fashion-mnist"
        self.run_row("cudl-gpu-fp32", "cudl", "gpu", "-", "fp32", fashion, cudl_json("fp32", 0.889, [0.2, 0.07, 0.07]))
        self.run_row("cudl-gpu-bf16", "cudl", "gpu", "-", "bf16", fashion, cudl_json("bf16", 0.887, [0.2, 0.05, 0.05]))
        self.run_row("cudl-cpu", "cudl", "cpu", "-", "tf32", fashion, cudl_json("fp32", 0.886, [1.4, 1.3]))
        self.run_row("torch-graph-bf16", "torch", "cuda", "graph", "bf16", fashion,
                     {"peer": "torch", "status": "ok", "precision": "bf16", "autocast": "bfloat16",
                      "epochs": epochs([0.3, 0.1, 0.1]), "test_accuracy": 0.888, "warmup_seconds": 0.5})
        mnist = ".device/data/mnist"
        self.run_row("lenet-gpu-fp32", "lenet", "gpu", "-", "fp32", mnist, lenet_text("fp32", 0.9730, [0.9, 0.3]))
        self.run_row("lenet-gpu-bf16", "lenet", "gpu", "-", "bf16", mnist, lenet_text("bf16", 0.9709, [0.8, 0.2]))
        with open(os.path.join(self.work, "vgg", "compare.json"), "w") as f:
            json.dump({"device": "gpu", "ratio_cudl_over_torch": {"fp32": 0.65, "bf16": 0.95},
                       "runs": [{"ok": True, "result": {"settings": {"size": 224, "batch": 64}}}]}, f)
        md, results = self.summarise(VGG_PRECISIONS="fp32 bf16")
        self.assertIn("| cudl-gpu-bf16 | gpu | - | bf16 | fashion-mnist | ok | 3 | 200.00 | 50.00 | 0.8870 |", md)
        self.assertIn("| lenet-gpu-bf16 | gpu | - | bf16 | mnist | ok | 2 | 800.00 | 200.00 | 0.9709 |", md)
        self.assertIn("| cudl-cpu | cpu | - | tf32 (ran fp32) |", md)
        self.assertIn("| torch graph bf16 / cudl gpu bf16 | 2.00× |", md)
        self.assertIn("| cudl gpu fp32 / cudl gpu bf16 | 1.40× |", md)
        self.assertRegex(md, r"\| LeNet, MNIST digits, 2 epochs: bf16 test accuracy within 0\.5 points of fp32's .*"
                             r"\| fp32 0\.9730 vs bf16 0\.9709 \| met \|")
        self.assertIn("| bench_dbn gpu test accuracy, bf16 vs fp32 | bf16 0.8870 vs fp32 0.8890 | info |", md)
        self.assertRegex(md, r"VGG16 224×224 batch 64, gpu bf16: .* \| 0\.950 \| met \|")
        self.assertRegex(md, r"VGG16 224×224 batch 64, gpu fp32: .* \| 0\.650 \| missed \|")
        self.assertNotIn("gpu tf32: images/s", md)  # only the precisions VGG_PRECISIONS names
        self.assertIn("| bf16 tests | ok | 3 of 3 passed", md)
        row = next(x for x in results["rows"] if x["run"] == "cudl-cpu")
        self.assertEqual((row["precision"], row["precision_run"]), ("tf32", "fp32"))

    def test_lenet_more_than_half_a_point_behind_misses(self):
        self.run_row("lenet-gpu-fp32", "lenet", "gpu", "-", "fp32", "m", lenet_text("fp32", 0.9730, [0.9, 0.3]))
        self.run_row("lenet-gpu-bf16", "lenet", "gpu", "-", "bf16", "m", lenet_text("bf16", 0.9600, [0.8, 0.2]))
        md, _ = self.summarise()
        self.assertRegex(md, r"\| fp32 0\.9730 vs bf16 0\.9600 \| missed \|")
        self.assertRegex(md, r"VGG16 224×224 batch 64 bf16: images/s within 10% .* \| – \| not measured \|")

    @unittest.skipUnless(LENET, "no mnist_lenet given (ctest passes the built one)")
    def test_summary_reads_mnist_lenets_own_output(self):
        r = subprocess.run([LENET, "--data", MNIST, "--epochs", "1", "--precision", "tf32"], capture_output=True,
                           text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.run_row("lenet-cpu-tf32", "lenet", "cpu", "-", "tf32", MNIST, r.stdout)
        _, results = self.summarise()
        (row,) = results["rows"]
        self.assertEqual((row["status"], row["epochs"], row["precision_run"]), ("ok", 1, "fp32"))
        self.assertGreater(row["accuracy"], 0.8)


if __name__ == "__main__":
    unittest.main()

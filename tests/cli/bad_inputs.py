#!/usr/bin/env python3
"""bad_inputs.py BENCH_DBN MNIST_DIR: bench_dbn's bad-input catalogue (issue 12).

Every case runs bench_dbn on a bad input and checks its exit status, that its message names the
problem, that no sanitizer reported anything (in a sanitizer build, a report would also change
the exit status), and that it stayed within bounded time and memory. The hostile files (a gzip
bomb, a truncated file, an out-of-range label, a damaged checkpoint) are written to a temporary
folder from the real digits in MNIST_DIR.
"""
import gzip
import os
import re
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time

TIME_LIMIT_S = 60
# Peak RSS allowed per case. A sanitizer build maps more (ASan's shadow memory counts toward
# RSS as it is touched), so the limit there is looser; a failure to bound memory (the bomb
# expanding to floats) is gigabytes either way.
RSS_LIMIT_MB = 1024


def idx_images(count, rows, cols, pixels=b""):
    return struct.pack(">IIII", 0x803, count, rows, cols) + pixels


def idx_labels(labels):
    return struct.pack(">II", 0x801, len(labels)) + bytes(labels)


def write(path, data, compress=True):
    with (gzip.open(path, "wb") if compress else open(path, "wb")) as f:
        f.write(data)


def make_cases(tmp, mnist):
    real_images = os.path.join(mnist, "t10k-images-idx3-ubyte.gz")
    real_labels = os.path.join(mnist, "t10k-labels-idx1-ubyte.gz")

    def folder(name, images, labels):
        d = os.path.join(tmp, name)
        os.makedirs(d)
        write(os.path.join(d, "t10k-images-idx3-ubyte.gz"), images)
        write(os.path.join(d, "t10k-labels-idx1-ubyte.gz"), labels)
        return d

    with gzip.open(real_images, "rb") as f:
        pixels = f.read()[16:]
    with gzip.open(real_labels, "rb") as f:
        labels = list(f.read()[8:])
    # A 2 MB gzip of zeros whose header claims 2.7 million images.
    bomb = folder("bomb", idx_images(2_700_000, 28, 28, bytes(8_000_000)), idx_labels([0] * 1000))
    truncated = folder("truncated", idx_images(10000, 28, 28, pixels[: len(pixels) // 2]), idx_labels(labels))
    bad_label = folder("bad_label", idx_images(10000, 28, 28, pixels), idx_labels(labels[:41] + [200] + labels[42:]))
    mismatch = folder("mismatch", idx_images(10000, 28, 28, pixels), idx_labels(labels[:9000]))
    not_gzip = os.path.join(tmp, "not_gzip")
    os.makedirs(not_gzip)
    with open(os.path.join(not_gzip, "t10k-images-idx3-ubyte.gz"), "wb") as f:
        f.write(b"\x1f\x8b\x08\x00garbage that is no deflate stream")
    write(os.path.join(not_gzip, "t10k-labels-idx1-ubyte.gz"), idx_labels(labels))
    json_dir = os.path.join(tmp, "a_directory")
    os.makedirs(json_dir)
    damaged = os.path.join(tmp, "damaged.ckpt")
    return [
        # (name, args, exit status, message regex)
        ("parameter count beyond memory", ["--data", mnist, "--layers", "784,5033370,916220332710,10", "--epochs", "1"],
         2, r"floats exceed any memory"),
        ("gzip bomb", ["--data", bomb], 2, r"2700000 images of 28×28.*over the cap"),
        ("data over a lowered cap", ["--data", mnist, "--max-data-mib", "1"], 2,
         r"31360000 bytes, over the cap of 1048576 bytes \(--max-data-mib 1; raise it"),
        ("zero data cap", ["--max-data-mib", "0"], 2, r"--max-data-mib: expected a whole number in \[1, "),
        ("truncated images", ["--data", truncated], 2, r"truncated|ends after|too short|fewer"),
        ("label out of range", ["--data", bad_label], 2, r"label 200"),
        ("image/label count mismatch", ["--data", mismatch], 2, r"10000.*9000|9000.*10000"),
        ("corrupt gzip stream", ["--data", not_gzip], 2, r"gzip|inflate|corrupt"),
        ("epochs beyond an int", ["--epochs", "4294967296"], 2, r"--epochs: expected a whole number in \[0, 2147483647\]"),
        ("absurd thread count", ["--threads", "2147483648"], 2, r"--threads: expected a whole number in \[0, 4096\]"),
        ("fractional epochs", ["--epochs", "2.5"], 2, r"--epochs: expected a whole number"),
        ("text for a number", ["--epochs", "abc"], 2, r"--epochs: expected a number, found 'abc'"),
        ("negative seed", ["--seed", "-1"], 2, r"--seed: expected a whole number"),
        ("zero batch", ["--batch", "0"], 2, r"--batch: expected a whole number in \[1,"),
        ("negative learning rate", ["--learn-rate", "-1"], 2, r"--learn-rate: must be positive"),
        ("test size out of range", ["--test-size", "1.5"], 2, r"--test-size: must be in \(0, 1\)"),
        ("unknown device", ["--device", "tpu"], 2, r"--device: expected cpu or gpu"),
        ("unknown precision", ["--precision", "fp16"], 2, r"--precision: expected fp32, tf32 or bf16"),
        ("one layer size", ["--layers", "784"], 2, r"--layers: expected at least input and output sizes"),
        ("wrong input layer", ["--data", mnist, "--layers", "700,10"], 2, r"the first size must be the 784 input features"),
        ("unknown flag", ["--frobnicate", "1"], 2, r"unknown option '--frobnicate'"),
        ("flag without a value", ["--epochs"], 2, r"^bench_dbn: --epochs: 1 required N missing$"),
        ("missing data folder", ["--data", os.path.join(tmp, "nowhere")], 2, r"no IDX files there"),
        ("--json naming a directory", ["--json", json_dir], 2, r"it is a directory"),
        ("unwritable --json", ["--json", os.path.join(tmp, "nowhere", "out.json")], 2, r"cannot write --json file"),
        ("--checkpoint-every alone", ["--checkpoint-every", "2"], 2, r"needs --checkpoint FILE"),
        ("resume of a missing file", ["--data", mnist, "--resume", os.path.join(tmp, "none.ckpt")], 2, r"none\.ckpt"),
        ("resume of a damaged checkpoint", ["--data", mnist, "--resume", damaged], 2, r"CRC mismatch"),
        ("resume with --pretrain-epochs", ["--resume", damaged, "--pretrain-epochs", "1"], 2,
         r"--resume: the checkpoint holds the pretrained weights"),
        ("divergence", ["--data", mnist, "--learn-rate", "50", "--epochs", "1", "--layers", "784,100,10"], 3,
         r"training diverged at epoch 1, minibatch [0-9]+"),
    ], damaged


def run(bench, args):
    """Runs bench_dbn; returns (exit status, output, seconds, the child's peak RSS in MB)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.monotonic()
    p = subprocess.run([bench] + args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=TIME_LIMIT_S)
    seconds = time.monotonic() - t0
    # ru_maxrss of RUSAGE_CHILDREN is the largest of any waited-for child so far: it rises only
    # when this child went higher than every earlier one, which is what a limit check needs.
    peak = max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before) / 1024
    return p.returncode, p.stdout.decode(errors="replace"), seconds, peak


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    bench, mnist = sys.argv[1], sys.argv[2]
    tmp = tempfile.mkdtemp(prefix="cudl_bad_inputs_")
    failures = []
    try:
        cases, damaged = make_cases(tmp, mnist)
        # A real checkpoint with one data byte flipped.
        status, out, _, _ = run(bench, ["--data", mnist, "--layers", "784,30,10", "--epochs", "1",
                                        "--checkpoint", damaged])
        if status != 0:
            sys.exit("could not write the checkpoint to damage:\n" + out)
        with open(damaged, "r+b") as f:
            f.seek(-3, os.SEEK_END)
            b = f.read(1)
            f.seek(-3, os.SEEK_END)
            f.write(bytes([b[0] ^ 0x40]))
        for name, args, want, pattern in cases:
            try:
                status, out, seconds, peak = run(bench, args)
            except subprocess.TimeoutExpired:
                failures.append(f"{name}: still running after {TIME_LIMIT_S} s")
                continue
            problems = []
            if status != want:
                problems.append(f"exit {status}, expected {want}")
            if not re.search(pattern, out):
                problems.append(f"output does not match /{pattern}/")
            if re.search(r"runtime error:|AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer", out):
                problems.append("a sanitizer reported")
            if peak > RSS_LIMIT_MB:
                problems.append(f"peak RSS {peak:.0f} MB > {RSS_LIMIT_MB} MB")
            line = f"{name}: exit {status}, {seconds:.2f} s"
            if problems:
                failures.append(f"{line}: {'; '.join(problems)}\n    {' '.join(args)}\n    " +
                                "\n    ".join(out.strip().splitlines()[-6:]))
            else:
                print(f"ok  {line}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        print("\n".join(["FAILED " + f for f in failures]))
        sys.exit(1)
    print(f"all {len(cases)} bad inputs refused cleanly")


if __name__ == "__main__":
    main()

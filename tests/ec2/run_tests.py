#!/usr/bin/env python3
"""Runs the tests of scripts/ec2 (launch-bench, remote-bench.sh, report.py, and scripts/plot_run.py,
which report.py uses) without AWS: a moto server stands in for AWS and a loopback sshd for the
instance. Needs moto (server mode), boto3, the aws CLI and openssh-server; the tests that run
bench_dbn need a build ($CUDL_BUILD_DIR, else build/), and the matplotlib charts need matplotlib
importable by this Python (python3-matplotlib): without them those tests skip, saying so.

The tests are spread over --jobs worker processes (default 2: most of the time goes to starting
the aws CLI, which is CPU-bound), each with its own moto servers and sshd, each taking the next
test when it is done with one; each test's line ends with the seconds it took. The last line is
"ec2: N passed, N failed, N skipped"; the exit status is 0 only when none failed.

Usage: tests/ec2/run_tests.py [--jobs N] [-k REGEX]
  Environment: CUDL_EC2_KEEP_TEST_FILES=1 keeps every test's files (the path is printed).
"""

import argparse
import collections
import json
import os
import re
import selectors
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
MODULES = ["test_scripts", "test_report", "test_plot_run", "test_remote_bench", "test_launch_bench",
           "test_launch_bench_safety"]
# The launch-bench modules (AWS flows, the slow ones), and the tests among them that take longest
# (two launches, or bench_dbn for real): started first.
LAUNCH_BENCH = ("test_launch_bench.", "test_launch_bench_safety.")
LONGEST = ("quota", "success", "killed", "keep", "remote_benchmark_failing", "sigint", "capacity_error")


def test_ids(pattern):
    sys.path.insert(0, HERE)
    suite = unittest.defaultTestLoader.loadTestsFromNames(MODULES)
    ids = []

    def walk(s):
        for t in s:
            if isinstance(t, unittest.TestSuite):
                walk(t)
            else:
                ids.append(t.id())
    walk(suite)
    return [i for i in ids if not pattern or re.search(pattern, i)]


class TimedResult(unittest.TextTestResult):
    """unittest's verbose result, each test's line ending with the seconds it took."""

    def startTest(self, test):
        self._t0 = time.time()
        super().startTest(test)

    def _write_status(self, test, status):
        super()._write_status(test, "%s (%.1f s)" % (status, time.time() - self._t0))


def worker():
    """Runs the test ids read from stdin, one at a time: after each, its report and a line
    "WORKER-DONE {counts}", which asks the parent for the next id (stdin closed: no more)."""
    sys.path.insert(0, HERE)
    for line in sys.stdin:
        result = TimedResult(unittest.runner._WritelnDecorator(sys.stdout), True, 2)
        unittest.defaultTestLoader.loadTestsFromName(line.strip())(result)
        result.printErrors()
        bad = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
        print("WORKER-DONE " + json.dumps({"run": result.testsRun, "failed": bad, "skipped": len(result.skipped)}),
              flush=True)
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("-k", dest="pattern", default="", help="only the tests whose id matches the regular expression PATTERN")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker()
    ids = test_ids(args.pattern)
    if not ids:
        print("ec2: no test matches %r" % args.pattern)
        return 1
    # Each worker takes the next test when it is done with one. The AWS flows dominate: they go
    # first, the longest (those that launch twice or run bench_dbn) at the head; then the rest.
    slow = [i for i in ids if i.startswith(LAUNCH_BENCH)]
    slow.sort(key=lambda i: not any(w in i for w in LONGEST))
    queue = collections.deque(slow + [i for i in ids if i not in slow])
    jobs = max(1, min(args.jobs, len(ids)))
    start = time.time()
    procs = [subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=HERE)
             for _ in range(jobs)]
    given = {p: None for p in procs}
    totals = {"run": 0, "failed": 0, "skipped": 0}

    def feed(p):
        if queue:
            given[p] = queue.popleft()
            p.stdin.write((given[p] + "\n").encode())
            p.stdin.flush()
        else:
            given[p] = None
            p.stdin.close()

    sel = selectors.DefaultSelector()
    pending = {}
    for p in procs:
        sel.register(p.stdout, selectors.EVENT_READ, p)
        pending[p] = b""
        feed(p)
    open_pipes = len(procs)
    while open_pipes:
        for key, _ in sel.select():
            p = key.data
            n = procs.index(p) + 1
            chunk = os.read(p.stdout.fileno(), 65536)  # not readline: select cannot see Python's buffer
            if not chunk:  # the worker exited: a test it had not finished counts as failed
                sel.unregister(p.stdout)
                open_pipes -= 1
                if given[p] is not None:
                    totals["run"] += 1
                    totals["failed"] += 1
                    print("[worker %d] exited with %s during %s" % (n, p.wait(), given[p]), flush=True)
                continue
            pending[p] += chunk
            *lines, pending[p] = pending[p].split(b"\n")
            for line in (raw.decode("utf-8", "replace") for raw in lines):
                if line.startswith("WORKER-DONE "):
                    for k, v in json.loads(line[len("WORKER-DONE "):]).items():
                        totals[k] += v
                    feed(p)
                elif line.strip():
                    print("[worker %d] %s" % (n, line), flush=True)
    for p in procs:
        p.wait()
    passed = totals["run"] - totals["failed"] - totals["skipped"]
    print("tests/ec2 took %.0f s with %d workers" % (time.time() - start, len(procs)))
    print("ec2: %d passed, %d failed, %d skipped" % (passed, totals["failed"], totals["skipped"]))
    return 0 if totals["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

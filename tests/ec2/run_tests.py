#!/usr/bin/env python3
"""Runs the tests of scripts/ec2 (launch-bench, remote-bench.sh, report.py, and scripts/plot_run.py,
which report.py uses) without AWS: a moto server stands in for AWS and a loopback sshd for the
instance. Needs moto (server mode), boto3, the aws CLI and openssh-server; the tests that run
bench_dbn need a build ($CUDL_BUILD_DIR, else build/), and the matplotlib charts need matplotlib
importable by this Python (python3-matplotlib): without them those tests skip, saying so.

The tests are spread over --jobs worker processes (default 2: most of the time goes to starting
the aws CLI, which is CPU-bound), each with its own moto servers and sshd. The last line is
"ec2: N passed, N failed, N skipped"; the exit status is 0 only when none failed.

Usage: tests/ec2/run_tests.py [--jobs N] [-k REGEX]
  Environment: CUDL_EC2_KEEP_TEST_FILES=1 keeps every test's files (the path is printed).
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
MODULES = ["test_scripts", "test_report", "test_plot_run", "test_remote_bench", "test_launch_bench"]


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


def worker(ids):
    """Runs IDS here, prints the usual unittest report and then one JSON line of counts."""
    sys.path.insert(0, HERE)
    suite = unittest.defaultTestLoader.loadTestsFromNames(ids)
    result = unittest.TextTestRunner(stream=sys.stdout, verbosity=2).run(suite)
    bad = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    print("WORKER-RESULT " + json.dumps({"run": result.testsRun, "failed": bad, "skipped": len(result.skipped)}))
    return 0 if bad == 0 else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("-k", dest="pattern", default="", help="only the tests whose id matches the regular expression PATTERN")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker)
    ids = test_ids(args.pattern)
    if not ids:
        print("ec2: no test matches %r" % args.pattern)
        return 1
    # The AWS flows dominate: deal them out first, one worker after the other, then the rest.
    slow = [i for i in ids if i.startswith("test_launch_bench")]
    fast = [i for i in ids if i not in slow]
    jobs = max(1, min(args.jobs, len(ids)))
    shares = [[] for _ in range(jobs)]
    for n, i in enumerate(slow + fast):
        shares[n % jobs].append(i)
    start = time.time()
    procs = [subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker"] + share,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=HERE)
             for share in shares if share]
    totals = {"run": 0, "failed": 0, "skipped": 0}
    for n, p in enumerate(procs):
        out, _ = p.communicate()
        counted = False
        for line in out.splitlines():
            if line.startswith("WORKER-RESULT "):
                for k, v in json.loads(line[len("WORKER-RESULT "):]).items():
                    totals[k] += v
                counted = True
            else:
                print("[worker %d] %s" % (n + 1, line))
        if not counted:  # the worker died before reporting: count its tests as failed
            totals["run"] += len(shares[n])
            totals["failed"] += len(shares[n])
            print("[worker %d] exited with %s before reporting" % (n + 1, p.returncode))
    passed = totals["run"] - totals["failed"] - totals["skipped"]
    print("tests/ec2 took %.0f s with %d workers" % (time.time() - start, len(procs)))
    print("ec2: %d passed, %d failed, %d skipped" % (passed, totals["failed"], totals["skipped"]))
    return 0 if totals["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

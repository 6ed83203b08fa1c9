#!/usr/bin/env python3
"""Writes report.md (the 2014 figures beside this run's) and chart.png (seconds per epoch, CPU vs
GPU) into a launch-bench results directory, from what is there: run.json (what launch-bench
launched), bench_cpu.json and bench_gpu.json (bench_dbn --json), bench_gpu_ranks.json (bench_dbn
under mpirun on all the GPUs of a multi-GPU instance, when it ran), steps.tsv and info.tsv
(remote-bench.sh). Missing files are reported as missing, never filled in. chart.png is drawn with
matplotlib (scripts/plot_run.py) where it can be imported, else with the dependency-free
png_chart.py beside this file (also when CUDL_NO_MATPLOTLIB is set); report.md says which.

Usage: scripts/ec2/report.py RESULTS_DIR
"""

import json
import os
import struct
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]
import png_chart  # noqa: E402  (next to this file)
import plot_run  # noqa: E402  (scripts/plot_run.py: imports matplotlib only when it draws)

# The 2014 run this project reproduces (nolearn/gdbn, 784-800-800-10, 10 epochs, MNIST 46,900 train
# rows), as its write-up reports it: about 25 s/epoch on a CPU, about 8 s/epoch on an AWS
# g2.2xlarge GPU (GRID K520), 97-98% test accuracy on both. scripts/plot_run.py has a copy of the
# two times (tests/ec2/test_plot_run.py checks that they agree).
SEED_2014 = [
    {"run": "2014 seed, nolearn/gdbn, CPU", "machine": "a 2014 CPU", "seconds": 25.0, "accuracy": "97–98%"},
    {"run": "2014 seed, nolearn/gdbn, GPU", "machine": "AWS g2.2xlarge (GRID K520)", "seconds": 8.0, "accuracy": "97–98%"},
]
RANKS_COLOR = plot_run.GREEN  # the data-parallel run's bar (CPU blue, one GPU orange, 2014 gray)


def load_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        print("report.py: %s: unreadable (%s)" % (path, e), file=sys.stderr)
        return None


def load_tsv(path, columns):
    rows = []
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if len(parts) >= 2:
                    rows.append(dict(zip(columns, parts + [""] * (len(columns) - len(parts)))))
    except FileNotFoundError:
        pass
    return rows


def median_epoch(bench):
    """The median epoch time of a successful bench_dbn run, else None."""
    if not bench or bench.get("status") != "ok":
        return None
    t = (bench.get("timing") or {}).get("median_epoch_s")
    if t:
        return float(t)
    secs = sorted(e["seconds"] for e in bench.get("epochs", []))
    return secs[len(secs) // 2] if secs else None


def accuracy(bench):
    test = (bench or {}).get("test")
    return None if not test else float(test["accuracy"])


def dataset_text(bench):
    d = (bench or {}).get("dataset") or {}
    if not d.get("name"):
        return ""
    return "%s, %s train / %s test rows" % (d["name"], "{:,}".format(d.get("train_rows", 0)),
                                           "{:,}".format(d.get("test_rows", 0)))


def bench_row(name, bench, machine, step):
    """One table row for this run's CPU or GPU benchmark, or why there is none."""
    if bench is None:
        why = "no result"
        if step and step.get("status") in ("failed", "skipped"):
            why = "%s: %s" % (step["status"], step.get("note") or "exit %s" % step.get("exit"))
        return "| %s | %s | %s | | |" % (name, machine, why)
    t = median_epoch(bench)
    if t is None:
        return "| %s | %s | failed: %s | | %s |" % (name, machine, bench.get("error") or bench.get("status"),
                                                    dataset_text(bench))
    epochs = len(bench.get("epochs", []))
    acc = accuracy(bench)
    return "| %s | %s | **%.3f s** (median of %d) | %s | %s |" % (
        name, machine, t, epochs, "%.1f%%" % (100 * acc) if acc is not None else "", dataset_text(bench))


def ranks_facts(bench, step, info, run):
    """(ranks, per-rank batch) of the data-parallel run (bench_gpu_ranks: mpirun on all the GPUs),
    from its --json, else remote-bench.sh's info.tsv, else the instance's GPUs; None when it did not
    run (no bench_gpu_ranks.json and no such step: a one-GPU instance, or an older remote-bench.sh)."""
    if bench is None and step is None:
        return None
    n = None
    for v in (((bench or {}).get("device") or {}).get("ranks"), info.get("ranks"), info.get("gpu_count"), run.get("gpus")):
        try:
            if v and int(v) > 1:
                n = int(v)
                break
        except (TypeError, ValueError):
            pass
    if n is None:
        return None  # nothing says how many ranks ran: no row rather than a guessed count
    batch = ((bench or {}).get("settings") or {}).get("batch") or info.get("ranks_batch")
    try:
        batch = int(batch)
    except (TypeError, ValueError):
        batch = max(1, 64 // n)
    return n, batch


def ranks_text(bench, t_gpu, n, batch):
    """What the data-parallel run measured beside the one-GPU run, in a sentence (None if it failed)."""
    t = median_epoch(bench)
    if t is None:
        return None
    rows = n * batch
    out = "Data parallel: on %d GPUs (`mpirun -np %d`, `--batch %d` per rank: %d rows a step%s) an epoch takes %.3f s" % (
        n, n, batch, rows, "" if rows == 64 else ", not the 2014 run's 64: 64 is not divisible by %d" % n, t)
    if t_gpu:
        speedup = t_gpu / t
        out += ", on one GPU %.3f s: a speed-up of **%.2f×** (%s)" % (
            t_gpu, speedup, "%.0f%% of the ideal %d×" % (100 * speedup / n, n) if speedup >= 1 else "slower than one GPU")
    out += "."
    device = bench.get("device") or {}
    timing = bench.get("timing") or {}
    if device.get("communicator"):
        out += " Communicator: %s." % device["communicator"]
    calls = timing.get("allreduce_calls")
    if calls and timing.get("allreduce_s") is not None:
        out += " Rank 0's gradient all-reduces took %.3f s of the %.3f s of training (%d calls)." % (
            float(timing["allreduce_s"]), float(timing.get("train_s") or 0), calls)
    elif calls:
        out += " The %d gradient all-reduces were queued on the GPU stream, so not timed apart." % calls
    return out


def duration_text(seconds):
    """1 h 2 min, 14 min 3 s, 42 s."""
    s = int(round(seconds))
    if s >= 3600:
        return "%d h %d min" % (s // 3600, s % 3600 // 60)
    if s >= 60:
        return "%d min %d s" % (s // 60, s % 60)
    return "%d s" % s


def usd(v):
    return "$%.2f" % v if v >= 0.995 or v == 0 else "$%.3f" % v


def gpu_text(run, info, ranks=None):
    """How many GPUs the instance has, and how many bench_dbn used (RANKS: the ranks of the
    data-parallel run, when there was one)."""
    try:
        n = int(info.get("gpu_count") or run.get("gpus") or 0)
    except ValueError:
        n = 0
    name = info.get("gpu_name") or run.get("gpu_name") or ""
    if n > 1 and ranks:
        return "%d GPUs (%s); bench_dbn ran on one of them, then data parallel on %d (mpirun)" % (n, name, ranks)
    if n > 1:
        return "%d GPUs (%s); bench_dbn used one of them" % (n, name)
    if n == 1:
        return "1 GPU (%s)" % name
    return "unknown"


def run_facts(run, info, ranks=None):
    """The table of what the run was and what it cost (run.json, from launch-bench)."""
    market = run.get("market") or "not launched"
    spot = market == "spot"
    price = run.get("price_per_hour")
    rows = [("instance type", "%s: %s" % (run.get("instance_type", "?"), gpu_text(run, info, ranks))),
            ("region", "%s%s" % (run.get("region", "?"),
                                 " (%s)" % run["availability_zone"] if run.get("availability_zone") else "")),
            ("market", "spot (one-time)" if spot else market),
            ("hourly price", "$%s/h (%s)%s" % (price, run.get("price_source") or "?",
                                              "; spot is billed at most this" if spot else "")),
            ("wall time", "%s (launch-bench's start to its end%s)" % (
                duration_text(run["wall_seconds"]), ", teardown included" if run.get("teardown") else "")
             if run.get("wall_seconds") is not None else "unknown")]
    secs = run.get("instance_seconds") or 0
    if run.get("cost_usd") is not None and secs > 0:
        rows.append(("cost of the run", "about **%s**%s: %s of instance time%s at $%s/h (per second, one minute at least), "
                     "with the %s GiB gp3 volume and the public IPv4 address" % (
                         usd(float(run["cost_usd"])), " at most (spot)" if spot else "", duration_text(secs),
                         " so far, still running (--keep)" if run.get("kept") else " from launch to termination",
                         price, run.get("volume_gb", "?"))))
    elif run.get("cost_usd") is not None:
        rows.append(("cost of the run", "$0: no instance was launched"))
    rows.append(("worst case", "$%s (%s h at most, the max-hours guard)" % (run.get("worst_case_usd"), run.get("max_hours"))))
    if run.get("kept"):
        rows.append(("teardown", "none yet: the instance was kept (--keep); end it with launch-bench down --run-id %s"
                     % run.get("run_id", "ID")))
    elif run.get("teardown"):
        rows.append(("teardown", run["teardown"]))
    out = ["| item | this run |", "| --- | --- |"]
    out += ["| %s | %s |" % (k, str(v).replace("|", "\\|")) for k, v in rows]
    return out + [""]


def chart_facts(run):
    """Two lines for the chart: the instance and its price; the wall time and the cost."""
    line1 = "%s %s in %s at $%s/h" % (run.get("instance_type", "?"), run.get("market") or "not launched",
                                        run.get("region", "?"), run.get("price_per_hour"))
    parts = []
    if run.get("wall_seconds") is not None:
        parts.append("wall time %s" % duration_text(run["wall_seconds"]))
    if run.get("cost_usd") is not None:
        parts.append("cost %sabout %s" % ("at most " if run.get("market") == "spot" else "", usd(float(run["cost_usd"]))))
    return [line1] + (["; ".join(parts)] if parts else [])


def add_png_text(path, key, text):
    """Adds a tEXt chunk KEY=TEXT (Latin-1) before the PNG's IEND chunk, so the facts drawn in the
    chart can also be read from the file."""
    if not text:
        return
    with open(path, "rb") as f:
        data = f.read()
    end = data.rfind(b"IEND") - 4
    if end < 8:
        return
    body = key.encode("latin-1") + b"\0" + text.encode("latin-1", "replace")
    chunk = struct.pack(">I", len(body)) + b"tEXt" + body + struct.pack(">I", zlib.crc32(b"tEXt" + body) & 0xFFFFFFFF)
    with open(path, "wb") as f:
        f.write(data[:end] + chunk + data[end:])


def write_report(results):
    run = load_json(os.path.join(results, "run.json")) or {}
    cpu = load_json(os.path.join(results, "bench_cpu.json"))
    gpu = load_json(os.path.join(results, "bench_gpu.json"))
    dp = load_json(os.path.join(results, "bench_gpu_ranks.json"))
    steps = load_tsv(os.path.join(results, "steps.tsv"), ["step", "status", "exit", "seconds", "note"])
    info = {r["step"]: r["status"] for r in load_tsv(os.path.join(results, "info.tsv"), ["step", "status"])}
    step = {s["step"]: s for s in steps}
    itype = run.get("instance_type", "this machine")
    cpu_desc = ((cpu or {}).get("device") or {}).get("description") or info.get("cpu_model") or "CPU"
    cpu_machine = "%s, %s" % (itype, cpu_desc[5:] if cpu_desc.startswith("cpu: ") else cpu_desc)
    gpu_machine = "%s, %s" % (itype, info.get("gpu_name") or "no GPU found")
    ranks = ranks_facts(dp, step.get("bench_gpu_ranks"), info, run)

    out = ["# bench_dbn on EC2, run %s" % run.get("run_id", os.path.basename(os.path.abspath(results))), ""]
    if run:
        out += run_facts(run, info, ranks and ranks[0])
        out.append("AMI %s (%s), from source %s%s. Started %s, finished %s." % (
            run.get("ami_id") or "?", run.get("ami_name") or "name unknown", run.get("source") or "?",
            " (%s files, %s bytes)" % (run["source_files"], run["source_bytes"]) if run.get("source_files") else "",
            run.get("started") or "?", run.get("finished") or "?"))
        out.append("")
    if info:
        out.append("GPU: %s, driver %s, built for CUDA architecture %s (CUDA backend built: %s). CPU: %s, %s vCPUs." % (
            info.get("gpu_name") or "none found", info.get("gpu_driver") or "?", info.get("cuda_arch") or "?",
            info.get("cuda_backend") or "?", info.get("cpu_model") or "?", info.get("cpus") or "?"))
        out.append("")

    out += ["| run | machine | time per epoch | test accuracy | data |",
            "| --- | --- | ---: | ---: | --- |"]
    for s in SEED_2014:
        out.append("| %s | %s | ~%g s | %s | MNIST, 46,900 train rows |" % (s["run"], s["machine"], s["seconds"], s["accuracy"]))
    out.append(bench_row("cudl CPU (`--device cpu`), this run", cpu, cpu_machine, step.get("bench_cpu")))
    out.append(bench_row("cudl GPU (`--device gpu`), this run", gpu, gpu_machine, step.get("bench_gpu")))
    if ranks:
        out.append(bench_row("cudl %d GPUs (`mpirun -np %d`, `--device gpu --batch %d`), this run" % (ranks[0], ranks[0], ranks[1]),
                             dp, "%s, %d × %s" % (itype, ranks[0], info.get("gpu_name") or "no GPU found"),
                             step.get("bench_gpu_ranks")))
    out.append("")

    t_cpu, t_gpu = median_epoch(cpu), median_epoch(gpu)
    if t_cpu and t_gpu:
        out.append("This run: the GPU takes %.3f s per epoch, the CPU %.3f s: **%.2f×** %s. "
                   "The 2014 GPU was %.1f× faster than its CPU." % (
                       t_gpu, t_cpu, max(t_cpu, t_gpu) / min(t_cpu, t_gpu),
                       "faster on the GPU" if t_gpu < t_cpu else "faster on the CPU", 25.0 / 8.0))
        out.append("")
    t_dp = median_epoch(dp)
    if ranks and t_dp:
        out += [ranks_text(dp, t_gpu, *ranks), ""]
    names = {((b or {}).get("dataset") or {}).get("name") for b in (cpu, gpu, dp)} - {None, ""}
    if any(n != "MNIST" for n in names):
        out.append("Note: this run used %s, not MNIST (MNIST could not be fetched: see logs/mnist.log); "
                   "its accuracy is not comparable with the 2014 figures." % ", ".join(sorted(names)))
        out.append("")

    if steps:
        out += ["## Steps on the instance", "", "| step | status | seconds | note |", "| --- | --- | ---: | --- |"]
        for s in steps:
            out.append("| %s | %s | %s | %s |" % (s["step"], s["status"], s["seconds"], s["note"].replace("|", "\\|")))
        out.append("")
    elif run:
        out += ["No steps.tsv came back from the instance: see remote-console.log.", ""]

    runs = [cpu, gpu]
    head = "| epoch | CPU s | CPU loss | GPU s | GPU loss |"
    if ranks and (dp or {}).get("epochs"):
        runs.append(dp)
        head += " %d GPUs s | %d GPUs loss |" % (ranks[0], ranks[0])
    rows = max(len((b or {}).get("epochs", [])) for b in runs)
    if rows:
        out += ["## Epochs", "", head, "|" + " ---: |" * (1 + 2 * len(runs))]
        for i in range(rows):
            cells = []
            for b in runs:
                e = (b or {}).get("epochs", [])
                cells += ["%.3f" % e[i]["seconds"], "%.4f" % e[i]["loss"]] if i < len(e) else ["", ""]
            out.append("| %d | %s |" % (i + 1, " | ".join(cells)))
        out.append("")

    ranks_bar = None
    if ranks:
        ranks_bar = {"label": ["cudl %d GPUs" % ranks[0], itype], "value": t_dp, "color": RANKS_COLOR,
                     "note": ("%.2f s" % t_dp) if t_dp else "failed"}
    drawn_by = write_chart(results, itype, t_cpu, t_gpu, info, names, chart_facts(run) if run else [], ranks_bar)
    out += ["## Files", "",
            "%s, chart.png (drawn %s), run.json, steps.tsv, "
            "info.tsv, system.txt, nvidia-smi.txt, logs/ (per step), remote-console.log and launch.log." % (
                "bench_cpu.json, bench_gpu.json and bench_gpu_ranks.json (bench_dbn --json; the last under mpirun)"
                if dp is not None else "bench_cpu.json and bench_gpu.json (bench_dbn --json)", drawn_by), ""]
    with open(os.path.join(results, "report.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(out))


def write_chart(results, itype, t_cpu, t_gpu, info, names, facts, ranks_bar=None):
    """Writes chart.png, with matplotlib (plot_run.speed_chart) where it can, else with png_chart;
    FACTS (lines: the instance, its price, the wall time and the cost) go below the chart, and into
    the PNG's Description text chunk; RANKS_BAR, when given, is the data-parallel run's bar, drawn
    last. Returns what drew it, for report.md."""
    path = os.path.join(results, "chart.png")
    bars = [
        {"label": ["2014 CPU", "nolearn"], "value": 25.0, "color": plot_run.GRAY, "note": "~25 s"},
        {"label": ["2014 GPU", "g2.2xlarge"], "value": 8.0, "color": plot_run.GRAY, "note": "~8 s"},
        {"label": ["cudl CPU", itype], "value": t_cpu, "color": plot_run.BLUE,
         "note": ("%.2f s" % t_cpu) if t_cpu else "failed"},
        {"label": ["cudl GPU", itype], "value": t_gpu, "color": plot_run.ORANGE,
         "note": ("%.2f s" % t_gpu) if t_gpu else ("no GPU" if not info.get("gpu_name") else "failed")},
    ] + ([ranks_bar] if ranks_bar else [])
    title = "bench_dbn: seconds per epoch (lower is better)"
    subtitle = "784-800-800-10, %s" % (", ".join(sorted(names)) if names else "no data")
    if plot_run.available():
        try:
            import matplotlib
            plot_run.speed_chart(bars, path, title, subtitle + "; median epoch, as in report.md",
                                 footnote="; ".join(facts) or None)
            add_png_text(path, "Description", "; ".join(facts))
            return "with matplotlib %s by scripts/plot_run.py" % matplotlib.__version__
        except Exception as e:  # a broken matplotlib must not cost the report its chart
            print("report.py: matplotlib failed (%s: %s); drawing chart.png with png_chart.py" %
                  (type(e).__name__, e), file=sys.stderr)
    with open(path, "wb") as f:
        f.write(png_chart.bar_chart(bars, title, subtitle, "s/epoch", footnote=facts))
    add_png_text(path, "Description", "; ".join(facts))
    return ("by scripts/ec2/png_chart.py, the dependency-free fallback: install python3-matplotlib "
            "for a clearer one")


def main(argv):
    if len(argv) != 2 or argv[1] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stderr if len(argv) != 2 else sys.stdout)
        return 0 if len(argv) == 2 else 2
    results = argv[1]
    if not os.path.isdir(results):
        print("report.py: %s: no such directory" % results, file=sys.stderr)
        return 2
    write_report(results)
    print("report.py: wrote %s and %s" % (os.path.join(results, "report.md"), os.path.join(results, "chart.png")))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

#!/usr/bin/env python3
"""Writes report.md (the 2014 figures beside this run's) and chart.png (seconds per epoch, CPU vs
GPU) into a launch-bench results directory, from what is there: run.json (what launch-bench
launched), bench_cpu.json and bench_gpu.json (bench_dbn --json), steps.tsv and info.tsv
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


def gpu_text(run, info):
    """How many GPUs the instance has, and that bench_dbn used one of them."""
    try:
        n = int(info.get("gpu_count") or run.get("gpus") or 0)
    except ValueError:
        n = 0
    name = info.get("gpu_name") or run.get("gpu_name") or ""
    if n > 1:
        return "%d GPUs (%s); bench_dbn used one of them (training on several GPUs is not available yet)" % (n, name)
    if n == 1:
        return "1 GPU (%s)" % name
    return "unknown"


def run_facts(run, info):
    """The table of what the run was and what it cost (run.json, from launch-bench)."""
    market = run.get("market") or "not launched"
    spot = market == "spot"
    price = run.get("price_per_hour")
    rows = [("instance type", "%s: %s" % (run.get("instance_type", "?"), gpu_text(run, info))),
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
    steps = load_tsv(os.path.join(results, "steps.tsv"), ["step", "status", "exit", "seconds", "note"])
    info = {r["step"]: r["status"] for r in load_tsv(os.path.join(results, "info.tsv"), ["step", "status"])}
    step = {s["step"]: s for s in steps}
    itype = run.get("instance_type", "this machine")
    cpu_desc = ((cpu or {}).get("device") or {}).get("description") or info.get("cpu_model") or "CPU"
    cpu_machine = "%s, %s" % (itype, cpu_desc[5:] if cpu_desc.startswith("cpu: ") else cpu_desc)
    gpu_machine = "%s, %s" % (itype, info.get("gpu_name") or "no GPU found")

    out = ["# bench_dbn on EC2, run %s" % run.get("run_id", os.path.basename(os.path.abspath(results))), ""]
    if run:
        out += run_facts(run, info)
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
    out.append("")

    t_cpu, t_gpu = median_epoch(cpu), median_epoch(gpu)
    if t_cpu and t_gpu:
        out.append("This run: the GPU takes %.3f s per epoch, the CPU %.3f s: **%.2f×** %s. "
                   "The 2014 GPU was %.1f× faster than its CPU." % (
                       t_gpu, t_cpu, max(t_cpu, t_gpu) / min(t_cpu, t_gpu),
                       "faster on the GPU" if t_gpu < t_cpu else "faster on the CPU", 25.0 / 8.0))
        out.append("")
    names = {((b or {}).get("dataset") or {}).get("name") for b in (cpu, gpu)} - {None, ""}
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

    rows = max(len((cpu or {}).get("epochs", [])), len((gpu or {}).get("epochs", [])))
    if rows:
        out += ["## Epochs", "", "| epoch | CPU s | CPU loss | GPU s | GPU loss |", "| ---: | ---: | ---: | ---: | ---: |"]
        for i in range(rows):
            cells = []
            for b in (cpu, gpu):
                e = (b or {}).get("epochs", [])
                cells += ["%.3f" % e[i]["seconds"], "%.4f" % e[i]["loss"]] if i < len(e) else ["", ""]
            out.append("| %d | %s |" % (i + 1, " | ".join(cells)))
        out.append("")

    drawn_by = write_chart(results, itype, t_cpu, t_gpu, info, names, chart_facts(run) if run else [])
    out += ["## Files", "",
            "bench_cpu.json and bench_gpu.json (bench_dbn --json), chart.png (drawn %s), run.json, steps.tsv, "
            "info.tsv, system.txt, nvidia-smi.txt, logs/ (per step), remote-console.log and launch.log." % drawn_by, ""]
    with open(os.path.join(results, "report.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(out))


def write_chart(results, itype, t_cpu, t_gpu, info, names, facts):
    """Writes chart.png, with matplotlib (plot_run.speed_chart) where it can, else with png_chart;
    FACTS (lines: the instance, its price, the wall time and the cost) go below the chart, and into
    the PNG's Description text chunk. Returns what drew it, for report.md."""
    path = os.path.join(results, "chart.png")
    bars = [
        {"label": ["2014 CPU", "nolearn"], "value": 25.0, "color": plot_run.GRAY, "note": "~25 s"},
        {"label": ["2014 GPU", "g2.2xlarge"], "value": 8.0, "color": plot_run.GRAY, "note": "~8 s"},
        {"label": ["cudl CPU", itype], "value": t_cpu, "color": plot_run.BLUE,
         "note": ("%.2f s" % t_cpu) if t_cpu else "failed"},
        {"label": ["cudl GPU", itype], "value": t_gpu, "color": plot_run.ORANGE,
         "note": ("%.2f s" % t_gpu) if t_gpu else ("no GPU" if not info.get("gpu_name") else "failed")},
    ]
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

#!/usr/bin/env python3
"""Draws bench_dbn results as PNG charts, for people who would rather look than read JSON.

Usage: scripts/plot_run.py [--out DIR] [--no-2014] [--title TEXT] FILE...

Each FILE is one of:
  - bench_dbn --json output (cudl: "device", "epochs", "test", "timing", ...);
  - a peer's --json output (benchmarks/peers/dbn_torch.py or dbn_numpy.py: "peer", "epochs", ...);
  - a device run summary, results.json from benchmarks/device_summary.py ("rows": one per run, with
    "median_s"; "runs": each run's own JSON, whose epochs give the curves).
Writes into DIR (default: the current directory):
  curves.png  training loss and training error per epoch (two panels), one line per run, plus the
              validation loss/err as dotted lines where the epochs carry "valid_loss"/"valid_err";
  speed.png   seconds per epoch, the median of epochs 2..N (epoch 1, with its warm-up, apart, as
              the project reports it), one bar per run on a log scale, beside the 2014 figures
              (leave those out with --no-2014).
What a file lacks is left out and said on stderr; no number is made up. Needs matplotlib (Debian:
python3-matplotlib). Exit status: 0 drawn, 2 bad usage, an unreadable file, nothing to plot, or no
matplotlib. scripts/ec2/report.py draws its chart.png with speed_chart() when matplotlib is there.
"""

import argparse
import json
import os
import statistics
import sys

# The 2014 run this project reproduces (nolearn/gdbn, 784-800-800-10, MNIST 46,900 train rows):
# copied from SEED_2014 in scripts/ec2/report.py (tests/ec2/test_plot_run.py checks they agree).
SEED_2014 = [("2014 CPU, nolearn/gdbn", 25.0), ("2014 GPU, AWS g2.2xlarge (GRID K520)", 8.0)]

# Training rows per epoch in the 2014 split (70,000 MNIST rows, a third held out): a run on fewer
# rows does less work per epoch, so its label says how many it had.
FULL_TRAIN_ROWS = 46900

# Bar colours (RGB 0-255), the same as the dependency-free chart of scripts/ec2/report.py.
GRAY, BLUE, ORANGE, PURPLE, GREEN = (150, 150, 150), (52, 101, 164), (230, 120, 20), (117, 80, 123), (78, 154, 6)


def warn(msg):
    print("plot_run.py: " + msg, file=sys.stderr)


def die(msg):
    warn(msg)
    sys.exit(2)


def available():
    """True when matplotlib can be imported (and CUDL_NO_MATPLOTLIB is not set, which tests use)."""
    if os.environ.get("CUDL_NO_MATPLOTLIB"):
        return False
    try:
        import matplotlib.pyplot  # noqa: F401  (a broken install fails here, not only with ImportError)
    except Exception:
        return False
    return True


def pyplot():
    import matplotlib
    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt
    return plt


def num(x):
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def seconds_text(s):
    """1.32 s, 28.0 s, 69.4 ms: three significant digits or so, in the unit people read."""
    return ("%.1f s" if s >= 10 else "%.2f s") % s if s >= 1 else "%.3g ms" % (s * 1e3)


def color_of(program, device):
    if program in ("cudl", "lenet"):  # lenet: cudl's mnist_lenet in a device summary
        return BLUE if device == "cpu" else ORANGE
    return PURPLE if program == "torch" else GREEN


def run_series(label, data, source, program, device, accuracy=None):
    """One run's curves and speed from its JSON (bench_dbn or a peer), or None when it has no epochs."""
    epochs = [e for e in data.get("epochs") or [] if isinstance(e, dict)]
    if not epochs:
        why = " (%s: %s)" % (data.get("status"), data.get("error")) if data.get("status") not in (None, "ok") else ""
        warn("%s: %s: no epochs%s" % (source, label, why))
        return None
    secs = [s for s in (num(e.get("seconds")) for e in epochs) if s is not None]
    speed = statistics.median(secs[1:]) if len(secs) > 1 else (secs[0] if secs else None)
    if data.get("status") not in (None, "ok"):
        warn("%s: %s: status %r, so no speed bar" % (source, label, data.get("status")))
        speed = None
    elif len(secs) == 1:
        label += " (1 epoch)"
    rows = num((data.get("dataset") if isinstance(data.get("dataset"), dict) else data).get("train_rows"))
    if rows is not None and rows != FULL_TRAIN_ROWS:
        label += " ({:,} train rows)".format(int(rows))
    return {"label": label, "source": source, "epochs": epochs, "speed": speed,
            "color": color_of(program, device), "accuracy": accuracy}


def bench_label(data):
    """'cudl gpu tf32' for bench_dbn, 'torch cuda graph fp32' for a peer, None for neither."""
    if isinstance(data.get("device"), dict):  # bench_dbn
        d = data["device"]
        eager = d.get("kind") == "gpu" and d.get("captured_steps") is False
        return " ".join(x for x in ("cudl", d.get("kind"), d.get("precision"), "eager" if eager else "") if x)
    if data.get("peer"):
        return " ".join(str(data[k]) for k in ("peer", "device", "mode", "precision") if data.get(k))
    return None


def load(path):
    """(series list, dataset names, title hint) from one file; exits 2 when it cannot be read."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        die("%s: unreadable (%s)" % (path, e))
    if not isinstance(data, dict):
        warn("%s: not a JSON object, skipped" % path)
        return [], set(), None
    if isinstance(data.get("rows"), list):  # device_summary.py's results.json
        results = {r.get("name"): r.get("result") or {} for r in data.get("runs") or [] if isinstance(r, dict)}
        series = []
        for row in data["rows"]:
            run = row.get("run") or "?"
            program, device = row.get("program"), row.get("device")
            s = run_series(run, results.get(run) or {}, path, program, device, num(row.get("accuracy")))
            s = s or {"label": run, "source": path, "epochs": [], "color": color_of(program, device)}
            s["speed"] = num(row.get("median_s")) if row.get("status") == "ok" else None
            if s["speed"] is None:
                warn("%s: %s: no median (status %s)" % (path, run, row.get("status")))
            series.append(s)
        sets = {os.path.basename(str(r.get("dataset"))).lower() for r in data["rows"] if r.get("dataset")}
        hint = ", ".join(str(data[k]) for k in ("gpu", "date") if data.get(k)) or None
        return series, sets, hint
    label = bench_label(data) or os.path.splitext(os.path.basename(path))[0]
    if "epochs" not in data:
        warn("%s: neither bench_dbn/peer JSON nor a device summary: nothing to plot" % path)
        return [], set(), None
    test = data.get("test") if isinstance(data.get("test"), dict) else {}
    program = "cudl" if isinstance(data.get("device"), dict) else data.get("peer")
    device = (data.get("device") or {}).get("kind") if program == "cudl" else data.get("device")
    s = run_series(label, data, path, program, device, num(test.get("accuracy", data.get("test_accuracy"))))
    ds = data.get("dataset")
    dataset = ds.get("name") if isinstance(ds, dict) else data.get("dataset_dir")
    return ([s] if s else []), ({os.path.basename(str(dataset)).lower()} if dataset else set()), None


def speed_chart(bars, path, title, subtitle=None, footnote=None):
    """Horizontal bars, top to bottom in the given order, on a log scale of seconds per epoch.
    BARS: dicts with 'label' (text, or a list of lines), 'value' (seconds, or None: no bar, 'note'
    in red instead), 'color' (RGB 0-255), 'note' (text beside the bar; default the value)."""
    plt = pyplot()
    from matplotlib.ticker import FuncFormatter
    values = [b["value"] for b in bars if b.get("value")]
    fig, ax = plt.subplots(figsize=(9, max(2.8, 1.5 + 0.42 * len(bars))), dpi=100)
    lo, hi = (min(values), max(values)) if values else (0.1, 10.0)
    ax.set_xscale("log")
    ax.set_xlim(min(lo / 3, hi / 20), hi * 5)  # two decades at least; room on the right for the labels
    for i, b in enumerate(bars):
        if b.get("value"):
            ax.barh(i, b["value"], height=0.65, color=[c / 255 for c in b["color"]])
            ax.text(b["value"] * 1.08, i, b.get("note") or seconds_text(b["value"]), va="center", fontsize=9)
        else:
            ax.text(ax.get_xlim()[0] * 1.1, i, b.get("note") or "no value", va="center", color="#be1e1e", fontsize=9)
    ax.set_yticks(range(len(bars)))
    ax.set_yticklabels(["\n".join(b["label"]) if isinstance(b["label"], list) else b["label"] for b in bars])
    ax.set_ylim(len(bars) - 0.4, -0.6)  # first bar at the top
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: "%g s" % v if v >= 1 else "%g ms" % (v * 1e3)))
    ax.grid(axis="x", which="major", color="#dddddd")
    ax.set_axisbelow(True)
    ax.set_xlabel("seconds per epoch (log scale; shorter is faster)")
    fig.suptitle(title, fontweight="bold")
    if subtitle:
        ax.set_title(subtitle, fontsize=9, color="#444444")
    if footnote:
        fig.text(0.01, 0.005, footnote, fontsize=7.5, color="#555555", va="bottom")
    fig.tight_layout(rect=(0, 0.03 if footnote else 0, 1, 1))
    fig.savefig(path)
    plt.close(fig)


def curves_chart(series, path, title):
    """Two panels sharing the epoch axis: loss and error, one line per series (validation dotted)."""
    plt = pyplot()
    from matplotlib.ticker import MaxNLocator
    fig, (ax_loss, ax_err) = plt.subplots(2, 1, sharex=True, figsize=(9, 7.5), dpi=100)
    for n, s in enumerate(series):
        color = "C%d" % (n % 10)
        style = ["-", "--", "-."][n // 10 % 3]  # beyond ten lines the colours repeat; dotted is validation
        acc = " (test %.1f%%)" % (100 * s["accuracy"]) if s.get("accuracy") is not None else ""
        for ax, key in ((ax_loss, "loss"), (ax_err, "err")):
            for prefix, dashes, extra in (("", style, acc), ("valid_", ":", " validation")):
                pts = [(e.get("epoch", i + 1), num(e.get(prefix + key))) for i, e in enumerate(s["epochs"])]
                pts = [(x, y) for x, y in pts if y is not None]
                if pts:
                    ax.plot(*zip(*pts), linestyle=dashes, marker="o", markersize=3, color=color,
                            label=s["label"] + extra if key == "loss" else None)
    ax_loss.set_ylabel("loss")
    ax_err.set_ylabel("error (fraction wrong)")
    ax_err.set_xlabel("epoch")
    ax_err.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in (ax_loss, ax_err):
        ax.grid(color="#dddddd")
    ax_loss.legend(fontsize=8, ncol=2 if len(series) > 6 else 1)
    fig.suptitle(title, fontweight="bold")
    valid = any("valid_loss" in e or "valid_err" in e for s in series for e in s["epochs"])
    ax_loss.set_title("per epoch: training" + (" (solid), validation (dotted)" if valid else " rows"),
                      fontsize=9, color="#444444")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def unique_labels(series):
    """Adds the file name to labels that more than one input would otherwise share."""
    counts = {}
    for s in series:
        counts[s["label"]] = counts.get(s["label"], 0) + 1
    for s in series:
        if counts[s["label"]] > 1:
            s["label"] += " [%s]" % os.path.basename(s["source"])


def main(argv=None):
    p = argparse.ArgumentParser(description="Draws curves.png and speed.png from bench_dbn --json files "
                                "(also PyTorch-peer JSON and device-run results.json).")
    p.add_argument("files", nargs="*", metavar="FILE")
    p.add_argument("--out", default=".", help="directory for curves.png and speed.png (default: .)")
    p.add_argument("--no-2014", dest="seed", action="store_false", help="leave out the 2014 reference bars")
    p.add_argument("--title", help="the charts' title (default: from the input)")
    a = p.parse_args(argv)
    if not a.files:
        p.print_usage(sys.stderr)
        die("no input files: give one or more bench_dbn --json files (or results.json)")
    series, datasets, hints = [], set(), []
    for path in a.files:
        s, d, hint = load(path)
        series += s
        datasets |= d
        hints += [hint] if hint else []
    unique_labels(series)
    curves = [s for s in series if s["epochs"]]
    bars = [{"label": s["label"], "value": s["speed"], "color": s["color"]} for s in series if s.get("speed")]
    if not curves and not bars:
        die("nothing to plot in %s" % ", ".join(a.files))
    if not available():
        die("matplotlib is not importable: install python3-matplotlib (apt-get install python3-matplotlib)")
    title = a.title or "bench_dbn" + (": " + hints[0] if len(hints) == 1 else "")
    os.makedirs(a.out, exist_ok=True)
    drawn = []
    if curves:
        curves_chart(curves, os.path.join(a.out, "curves.png"), title)
        drawn.append("curves.png")
    else:
        warn("no epochs in any input: no curves.png")
    if bars:
        if a.seed:
            bars += [{"label": lab, "value": v, "color": GRAY, "note": "~%g s" % v} for lab, v in SEED_2014]
        bars.sort(key=lambda b: b["value"])  # fastest at the top
        foot = "data: " + (", ".join(sorted(datasets)) if datasets else "not recorded")
        foot += "; 2014: MNIST, 46,900 training rows, as its write-up reports" if a.seed else ""
        speed_chart(bars, os.path.join(a.out, "speed.png"), title,
                    "seconds per epoch: median of epochs 2..N (epoch 1 apart)", foot)
        drawn.append("speed.png")
    else:
        warn("no epoch times in any input: no speed.png")
    print("plot_run.py: wrote " + ", ".join(os.path.join(a.out, d) for d in drawn))
    return 0


if __name__ == "__main__":
    sys.exit(main())

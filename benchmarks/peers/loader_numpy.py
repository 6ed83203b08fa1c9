"""The Python peer of bench_loader (benchmarks/bench_loader.cpp): reads the files bench_loader wrote
(bench_loader --dir DIR --keep) the way a Python user would, and times the same things, on the same
rows in the same order (DIR/order.npy):

  npy-u8  np.load(mmap_mode='r'), then per batch x[idx].astype(np.float32) / 255 and y[idx]
  npy-f4  np.load(mmap_mode='r'), then per batch x[idx] and y[idx] (already float32)
  csv     np.loadtxt(delimiter=',', skiprows=1, dtype=np.float32) (the open), then x[idx], y[idx]
          from the parsed array; and pandas.read_csv(...).to_numpy(np.float32) (open only)
  png     open: list the class folders and PIL.Image.open every file (its header); per batch
          np.stack of np.asarray(Image.open(path), dtype=np.float32) / 255 per row (Pillow)

The fill pass runs on 1 thread and on T threads (concurrent.futures threads taking one batch at a
time, under the GIL). The page cache is warm: each format is opened and filled once, untimed,
first. A reader whose module is missing (Pillow, pandas) is reported as absent, never timed.
"""
import argparse
import json
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peer_common import cpu_name  # noqa: E402

import numpy as np  # noqa: E402

try:
    from PIL import Image
    import PIL
    PIL_VERSION = PIL.__version__
except ImportError:
    Image, PIL_VERSION = None, None
try:
    import pandas as pd
    PANDAS_VERSION = pd.__version__
except ImportError:
    pd, PANDAS_VERSION = None, None


def fill_pass(fill_batch, order, batch, threads):
    """Seconds for one pass over order in batches of `batch`, on `threads` threads."""
    starts = range(0, len(order), batch)
    t0 = time.perf_counter()
    if threads == 1:
        for s in starts:
            fill_batch(order[s:s + batch])
    else:
        with ThreadPoolExecutor(threads) as pool:
            for _ in pool.map(lambda s: fill_batch(order[s:s + batch]), starts):
                pass
    return time.perf_counter() - t0


def npy_reader(d, x_name, scale):
    def open_():
        return np.load(os.path.join(d, x_name), mmap_mode="r"), np.load(os.path.join(d, "y.npy"), mmap_mode="r")

    def fill_for(data):
        x, y = data
        if scale:
            return lambda idx: (x[idx].astype(np.float32) / 255, y[idx])
        return lambda idx: (x[idx], y[idx])
    return open_, fill_for


def csv_reader(d):
    path = os.path.join(d, "data.csv")

    def open_():
        a = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float32)
        return a[:, 1:], a[:, 0]

    def fill_for(data):
        x, y = data
        return lambda idx: (x[idx], y[idx])
    return open_, fill_for


def pandas_reader(d):
    path = os.path.join(d, "data.csv")

    def open_():
        a = pd.read_csv(path).to_numpy(dtype=np.float32)
        return a[:, 1:], a[:, 0]
    return open_, None


def png_reader(d):
    root = os.path.join(d, "png")

    def open_():
        paths, labels = [], []
        for k, c in enumerate(sorted(e for e in os.listdir(root) if os.path.isdir(os.path.join(root, e)))):
            for f in sorted(os.listdir(os.path.join(root, c))):
                p = os.path.join(root, c, f)
                with Image.open(p) as im:
                    if im.size[0] <= 0:
                        raise ValueError(p)
                paths.append(p)
                labels.append(k)
        return paths, np.array(labels, dtype=np.int64)

    def fill_for(data):
        paths, labels = data

        def fill(idx):
            rows = []
            for i in idx:
                with Image.open(paths[i]) as im:
                    rows.append(np.asarray(im, dtype=np.float32) / 255)
            return np.stack(rows), labels[idx]
        return fill
    return open_, fill_for


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dir", required=True, help="the folder bench_loader --dir DIR --keep wrote")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--json", metavar="FILE")
    a = p.parse_args()
    if a.threads < 1 or a.rounds < 1 or a.batch < 1:
        p.error("--threads, --rounds and --batch must be positive")
    order = np.load(os.path.join(a.dir, "order.npy"))
    n = len(order)

    # (format, short name, what is timed, open, fill)
    readers = [("npy-u8", "numpy mmap", "np.load(mmap_mode='r'); x[idx].astype(float32)/255",
                *npy_reader(a.dir, "x.npy", True)),
               ("npy-f4", "numpy mmap", "np.load(mmap_mode='r'); x[idx]", *npy_reader(a.dir, "x_f4.npy", False)),
               ("csv", "np.loadtxt", "np.loadtxt(delimiter=',', skiprows=1, dtype=float32); then x[idx] in memory",
                *csv_reader(a.dir))]
    absent = {}
    if pd is not None:
        readers.append(("csv-pandas", "pandas.read_csv", "pd.read_csv(path).to_numpy(dtype=float32)",
                        *pandas_reader(a.dir)))
    else:
        absent["csv-pandas"] = "pandas is not importable"
    if Image is not None:
        readers.append(("png", "Pillow", "Image.open per file (open); np.asarray(Image.open(p), float32)/255 "
                        "per row, np.stack per batch", *png_reader(a.dir)))
    else:
        absent["png"] = "Pillow (PIL) is not importable"

    results = {name: {"name": name, "short": short, "how": how, "open_seconds": [], "fill_seconds_1": [],
                      "fill_seconds_t": []} for name, short, how, _, _ in readers}
    for name, _, _, open_, fill_for in readers:  # untimed: warms the page cache
        data = open_()
        if fill_for:
            fill_pass(fill_for(data), order, a.batch, a.threads)
        del data
    for _ in range(a.rounds):
        for name, _, _, open_, fill_for in readers:
            t0 = time.perf_counter()
            data = open_()
            r = results[name]
            r["open_seconds"].append(time.perf_counter() - t0)
            if fill_for:
                fill = fill_for(data)
                r["fill_seconds_1"].append(fill_pass(fill, order, a.batch, 1))
                r["fill_seconds_t"].append(fill_pass(fill, order, a.batch, a.threads))
            del data

    def rate(xs):
        return n / statistics.median(xs) if xs else None

    print(f"rows: {n}, numpy {np.__version__}, Python {sys.version.split()[0]}, {cpu_name()}; "
          f"batches of {a.batch}, medians of {a.rounds} rounds, page cache warm")
    print(f"| format | how | open rows/s | fill rows/s, 1 thread | fill rows/s, {a.threads} threads |")
    print("| --- | --- | ---: | ---: | ---: |")
    for name, _, how, _, _ in readers:
        r = results[name]
        cells = [f"{v:.0f}" if v else "—" for v in (rate(r["open_seconds"]), rate(r["fill_seconds_1"]),
                                                   rate(r["fill_seconds_t"]))]
        print(f"| {name} | {how} | " + " | ".join(cells) + " |")
    for name, why in absent.items():
        print(f"| {name} | absent: {why} | — | — | — |")
    if a.json:
        out = {"tool": "loader_numpy.py", "python": sys.version.split()[0], "numpy_version": np.__version__,
               "pillow_version": PIL_VERSION, "pandas_version": PANDAS_VERSION, "cpu": cpu_name(), "rows": n,
               "batch": a.batch, "threads": a.threads, "rounds": a.rounds,
               "formats": list(results.values()), "absent": absent}
        with open(a.json + ".tmp", "w") as f:
            json.dump(out, f, indent=1)
        os.replace(a.json + ".tmp", a.json)


if __name__ == "__main__":
    main()

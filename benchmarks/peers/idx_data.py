"""IDX dataset loading and the train/test split shared by the Python peers of bench_dbn.

Import it only after the BLAS thread variables are set (it imports numpy).
"""
import gzip
import math
import os
import struct
import sys

import numpy as np


def read_idx(path):
    """One IDX file (plain or .gz) as a uint8 array of its stored shape."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def find_idx(directory, stem):
    for name in (stem + ".gz", stem):
        path = os.path.join(directory, name)
        if os.path.exists(path):
            return path
    return None


def load_dataset(directory):
    """X (rows×784 float32 pixels/255) and y (int64). Rows = train then t10k when both
    splits exist, else t10k only."""
    files = {prefix: (find_idx(directory, prefix + "-images-idx3-ubyte"),
                      find_idx(directory, prefix + "-labels-idx1-ubyte")) for prefix in ("train", "t10k")}
    if not all(files["t10k"]):
        sys.exit(f"error: no t10k-images-idx3-ubyte / t10k-labels-idx1-ubyte(.gz) in {directory}")
    prefixes = ["train", "t10k"] if all(files["train"]) else ["t10k"]
    splits = [(read_idx(files[p][0]), read_idx(files[p][1])) for p in prefixes]
    X = np.concatenate([x.reshape(len(x), -1) for x, _ in splits]).astype(np.float32) / 255
    y = np.concatenate([y for _, y in splits]).astype(np.int64)
    return X, y


def split_rows(n_rows, rng, test_size=0.33):
    """(test, train) row indices: one permutation drawn from rng (a numpy Generator, which
    the caller goes on using), the first ceil(test_size·n_rows) rows held out."""
    perm = rng.permutation(n_rows)
    n_test = math.ceil(test_size * n_rows)
    return perm[:n_test], perm[n_test:]

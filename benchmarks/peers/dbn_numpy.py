#!/usr/bin/env python3
"""Straightforward numpy peer of cudl's bench_dbn ("2014 run" training algorithm).

A 784-800-800-10 ReLU/ReLU/softmax network trained with gdbn-style Nesterov
momentum and L2 weight decay on minibatches drawn with replacement, written the
way a competent person would with plain numpy (vectorised per minibatch).

    python3 benchmarks/peers/dbn_numpy.py --epochs 2 --threads 2 --json out.json
"""
from peer_args import common_parser
import json
import math
import os
import statistics
import sys
import time


def parse_args():
    p = common_parser(__doc__.splitlines()[0], "BLAS threads (default: nproc)")
    return p.parse_args()


# The BLAS thread count is read when numpy is imported, so set it first.
ARGS = parse_args()
for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)

import numpy as np  # noqa: E402

from idx_data import load_dataset, split_rows  # noqa: E402  (imports numpy)


def blas_name():
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:
        return "unknown BLAS"


def forward(Ws, bs, X):
    """Activations of every layer; ReLU on hidden layers, the last entry is the logits."""
    acts = [X]
    for i, (W, b) in enumerate(zip(Ws, bs)):
        z = acts[-1] @ W + b
        acts.append(np.maximum(z, 0) if i < len(Ws) - 1 else z)
    return acts


def log_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def loss_and_grads(Ws, bs, X, y):
    """Summed cross-entropy, #errors and gradients of the summed loss."""
    acts = forward(Ws, bs, X)
    logp = log_softmax(acts[-1])
    rows = np.arange(len(y))
    loss = -logp[rows, y].sum()
    errors = np.count_nonzero(logp.argmax(axis=1) != y)
    delta = np.exp(logp)
    delta[rows, y] -= 1                      # d loss / d logits
    gWs, gbs = [None] * len(Ws), [None] * len(Ws)
    for i in reversed(range(len(Ws))):
        gWs[i] = acts[i].T @ delta
        gbs[i] = delta.sum(axis=0)
        if i > 0:
            delta = (delta @ Ws[i].T) * (acts[i] > 0)
    return float(loss), int(errors), gWs, gbs


def main(a):
    layers = [int(s) for s in a.layers.split(",")]
    print(f"numpy {np.__version__} ({blas_name()}), threads {a.threads}")
    X, y = load_dataset(a.data)
    rng = np.random.default_rng(a.seed)
    test, train = split_rows(len(X), rng)
    n_test = len(test)
    X_train, y_train, X_test, y_test = X[train], y[train], X[test], y[test]
    print(f"data {a.data}: {len(X)} rows, {len(train)} train, {n_test} test; layers {layers}")

    Ws = [(0.05 * rng.standard_normal((n_in, n_out))).astype(np.float32)
          for n_in, n_out in zip(layers[:-1], layers[1:])]
    bs = [np.zeros(n_out, dtype=np.float32) for n_out in layers[1:]]
    Vs = [np.zeros_like(W) for W in Ws]
    vs = [np.zeros_like(b) for b in bs]

    B, mu, l2, lr = a.batch, a.momentum, a.l2, a.learn_rate
    n_batches = len(train) // B
    history = []
    for epoch in range(1, a.epochs + 1):
        total_loss, total_err = 0.0, 0
        start = time.perf_counter()
        for k in range(n_batches):
            idx = rng.integers(0, len(train), size=B)
            # Nesterov as in gdbn: step to the look-ahead point W + mu*V ...
            for i in range(len(Ws)):
                Vs[i] *= mu
                vs[i] *= mu
                Ws[i] += Vs[i]
                bs[i] += vs[i]
            # ... take the gradient there ...
            loss, err, gWs, gbs = loss_and_grads(Ws, bs, X_train[idx], y_train[idx])
            if not math.isfinite(loss):
                sys.exit(f"error: diverged (loss {loss}) in epoch {epoch}, minibatch {k + 1}; "
                         f"try a smaller --learn-rate than {a.learn_rate}")
            total_loss += loss
            total_err += err
            # ... and apply the correction to both velocity and weights.
            for i in range(len(Ws)):
                D = lr * (-gWs[i] / B - l2 * Ws[i])
                d = (lr / B) * -gbs[i]
                Vs[i] += D
                vs[i] += d
                Ws[i] += D
                bs[i] += d
        seconds = time.perf_counter() - start
        n_seen = n_batches * B
        history.append({"epoch": epoch, "loss": total_loss / n_seen,
                        "err": total_err / n_seen, "seconds": seconds})
        print(f"Epoch {epoch}:\n  loss {total_loss / n_seen:.4f}\n  err  {total_err / n_seen:.4f}\n"
              f"  ({seconds:.2f}s)", flush=True)
        lr *= a.decay

    correct = 0
    for s in range(0, n_test, 1000):
        logits = forward(Ws, bs, X_test[s:s + 1000])[-1]
        correct += np.count_nonzero(logits.argmax(axis=1) == y_test[s:s + 1000])
    accuracy = correct / n_test
    median = statistics.median(h["seconds"] for h in history) if history else None
    print(f"test accuracy {accuracy:.4f} ({n_test} rows); median epoch "
          + (f"{median:.2f}s" if median is not None else "n/a"))

    if a.json:
        result = {"peer": "numpy", "numpy_version": np.__version__, "blas": blas_name(),
                  "threads": a.threads, "dataset_dir": a.data, "rows": len(X),
                  "train_rows": len(train), "test_rows": n_test, "layers": layers,
                  "learn_rate": a.learn_rate, "epochs": history,
                  "median_epoch_seconds": median, "test_accuracy": accuracy}
        with open(a.json, "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main(ARGS)

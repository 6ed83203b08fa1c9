#!/usr/bin/env python3
"""PyTorch peer of cudl's bench_dbn ("2014 run" training algorithm), eager or one CUDA graph per step.

The same algorithm as dbn_numpy.py (784-800-800-10 ReLU/ReLU/softmax, gdbn's Nesterov momentum
with L2 on weights, minibatches of 64 drawn with replacement), written as a competent PyTorch user
would for speed: float32, manual forward/backward with torch.mm/addmm into preallocated tensors,
all parameters in one flat buffer (weights first) so the update is a few whole-buffer operations,
the training set on the device, minibatch indices drawn on the device, and the epoch's loss and
error count accumulated on the device and read once per epoch.

    python3 benchmarks/peers/dbn_torch.py --device cuda --mode graph --precision tf32 --json out.json
    python3 benchmarks/peers/dbn_torch.py --device cpu --epochs 1 --threads 2

Precision: fp32 strict, tf32 tensor cores (GPU only: the CPU runs fp32), or bf16: every product
(the forward addmm, the gradients' mm) runs out of place under torch.autocast(dtype=torch.bfloat16),
as autograd would run a forward under autocast and its backward, and its bfloat16 result is copied
into the float32 buffers; parameters, velocities, activations, the loss and the update stay float32
(strict: tf32 off). In graph mode autocast's cache is off (cache_enabled=False), as CUDA graph
capture requires.

The split and the initial weights are drawn exactly as in dbn_numpy.py (numpy's default_rng seeded
with --seed); the minibatch indices come from a torch.Generator on the device seeded with --seed.
Warm-up steps (and, in graph mode, the capture) run before epoch 1 and are then undone (weights,
velocities, statistics and generator restored), so every mode trains the same 732×epochs steps.
Exit status: 0 success, 1 diverged, 2 bad input or unavailable device.
"""
from peer_args import common_parser
from peer_common import PRECISION_HELP, PRECISIONS, autocast, cpu_name, precision_run, set_torch_precision
import json
import math
import os
import statistics
import sys
import time

_MODULE_START = time.perf_counter()


def process_elapsed():
    """Seconds since this process started (interpreter start-up and imports included), from
    /proc (10 ms resolution); since this module started where /proc is not there."""
    try:
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        start_ticks = int(fields[19])          # field 22, starttime, after pid and (comm)
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return time.perf_counter() - _MODULE_START


def parse_args():
    p = common_parser(__doc__.splitlines()[0], "CPU threads (default: nproc)")
    p.add_argument("--device", choices=("cuda", "cpu"), help="default: cuda if available, else cpu")
    p.add_argument("--mode", choices=("eager", "graph"), default="eager",
                   help="eager: one Python call per operation; graph: one CUDA graph per training step")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32", help=PRECISION_HELP)
    p.add_argument("--warmup", type=int, default=3, help="warm-up steps before epoch 1, undone after (default 3)")
    p.add_argument("--sampling", choices=("auto", "step", "epoch"), default="auto",
                   help="step: torch.randint each step (inside the graph); epoch: one randint per epoch "
                        "outside the graph, read through a device counter; auto: step, falling back to "
                        "epoch where a graph's random numbers do not advance between replays")
    a = p.parse_args()
    if a.epochs < 0 or a.batch < 1 or a.warmup < 1 or a.threads < 1 or a.learn_rate <= 0:
        p.error("--epochs ≥ 0, --batch ≥ 1, --warmup ≥ 1, --threads ≥ 1 and --learn-rate > 0 are required")
    return a


ARGS = parse_args()      # before importing torch, so that --help and bad flags answer at once

import numpy as np  # noqa: E402
import torch  # noqa: E402

from idx_data import load_dataset, split_rows  # noqa: E402


def fail(message, status=2):
    print(f"error: {message}", file=sys.stderr)
    sys.exit(status)


class Dbn:
    """Static buffers and one training step of the 2014 run; a step issues no host synchronisation,
    so it can be replayed as a CUDA graph. Shapes: B batch, L layers, K classes."""

    def __init__(self, layers, weights, X_train, y_train, a, sampling, steps, gen, dev):
        B = a.batch
        self.B, self.mu, self.l2, self.gen, self.sampling = B, a.momentum, a.l2, gen, sampling
        self.bf16 = a.precision == "bf16"
        # A fresh autocast context per step (a nullcontext unless bf16); no weight-cast cache in a
        # captured graph (the weights here are no autograd leaves, so eager mode caches nothing either).
        self.products = lambda: autocast(torch, a.precision, dev.type, cache_enabled=a.mode != "graph")
        self.n_train = len(y_train)
        self.X = torch.from_numpy(X_train).to(dev)                 # n_train×784, uploaded once
        self.Y = torch.from_numpy(y_train).to(dev)                 # n_train
        n_w = sum(i * o for i, o in zip(layers[:-1], layers[1:]))
        n_all = n_w + sum(layers[1:])
        self.n_w = n_w
        self.P = torch.zeros(n_all, device=dev)    # parameters: W0, W1, ..., then b0, b1, ...
        self.V = torch.zeros_like(self.P)          # velocities
        self.G = torch.zeros_like(self.P)          # gradients of the summed loss
        self.D = torch.zeros_like(self.P)          # the step lr·(−G/B − λ·W)
        self.W, self.b, self.gW, self.gb = [], [], [], []
        off = 0
        for n_in, n_out in zip(layers[:-1], layers[1:]):
            self.W.append(self.P[off:off + n_in * n_out].view(n_in, n_out))
            self.gW.append(self.G[off:off + n_in * n_out].view(n_in, n_out))
            off += n_in * n_out
        for n_out in layers[1:]:
            self.b.append(self.P[off:off + n_out])
            self.gb.append(self.G[off:off + n_out])
            off += n_out
        for W, w in zip(self.W, weights):
            W.copy_(torch.from_numpy(w))
        self.P0 = self.P.clone()                   # to undo the warm-up steps

        self.idx = torch.zeros(B, dtype=torch.long, device=dev)
        self.x = torch.empty(B, layers[0], device=dev)
        self.y = torch.empty(B, dtype=torch.long, device=dev)
        self.acts = [self.x] + [torch.empty(B, n, device=dev) for n in layers[1:]]   # last: logits B×K
        self.deltas = [torch.empty(B, n, device=dev) for n in layers[1:]]            # dloss/dz per layer
        self.masks = [torch.empty(B, n, dtype=torch.bool, device=dev) for n in layers[1:-1]]
        self.logp = torch.empty(B, layers[-1], device=dev)
        self.minus_one = torch.full((B, 1), -1.0, device=dev)
        self.lr = torch.zeros((), device=dev)                           # set per epoch by fill_
        self.loss_sum = torch.zeros((), dtype=torch.float64, device=dev)
        self.err_sum = torch.zeros((), dtype=torch.long, device=dev)
        self.epoch_idx = torch.zeros(steps, B, dtype=torch.long, device=dev)   # sampling "epoch" only
        self.counter = torch.zeros(1, dtype=torch.long, device=dev)

    def new_epoch(self, lr):
        """Queued before an epoch's steps (outside any graph)."""
        self.lr.fill_(lr)
        self.loss_sum.zero_()
        self.err_sum.zero_()
        if self.sampling == "epoch":
            torch.randint(0, self.n_train, tuple(self.epoch_idx.shape), generator=self.gen,
                          device=self.epoch_idx.device, out=self.epoch_idx)
            self.counter.zero_()

    def product(self, out, op, *args):
        """out ← op(*args) for a product (torch.mm or torch.addmm): in place in fp32 and tf32; in
        bf16 out of place, where autocast can round it (as autograd's products under autocast), the
        bfloat16 result copied into out."""
        if self.bf16:
            out.copy_(op(*args))
        else:
            op(*args, out=out)

    def step(self):
        with self.products():
            self._step()

    def _step(self):
        B, L = self.B, len(self.W)
        # The minibatch: B rows drawn uniformly with replacement.
        if self.sampling == "step":
            torch.randint(0, self.n_train, (B,), generator=self.gen, device=self.idx.device, out=self.idx)
        else:
            torch.index_select(self.epoch_idx, 0, self.counter, out=self.idx.view(1, B))
            self.counter.add_(1)
        torch.index_select(self.X, 0, self.idx, out=self.x)
        torch.index_select(self.Y, 0, self.idx, out=self.y)
        # Nesterov as in gdbn: step to the look-ahead point W + mu*V ...
        self.V.mul_(self.mu)
        self.P.add_(self.V)
        # ... take the gradient there (forward; summed softmax cross-entropy; backward) ...
        for i in range(L):
            self.product(self.acts[i + 1], torch.addmm, self.b[i], self.acts[i], self.W[i])
            if i < L - 1:
                self.acts[i + 1].relu_()
        torch.log_softmax(self.acts[L], 1, out=self.logp)
        y1 = self.y.view(B, 1)
        self.loss_sum.sub_(self.logp.gather(1, y1).sum())
        self.err_sum.add_(self.logp.argmax(1).ne(self.y).sum())
        torch.exp(self.logp, out=self.deltas[L - 1])
        self.deltas[L - 1].scatter_add_(1, y1, self.minus_one)           # softmax − onehot
        for i in reversed(range(L)):
            self.product(self.gW[i], torch.mm, self.acts[i].t(), self.deltas[i])
            torch.sum(self.deltas[i], 0, out=self.gb[i])
            if i > 0:
                self.product(self.deltas[i - 1], torch.mm, self.deltas[i], self.W[i].t())
                torch.gt(self.acts[i], 0, out=self.masks[i - 1])
                self.deltas[i - 1].mul_(self.masks[i - 1])
        # ... and apply the correction D = lr·(−g/B − λW) to both velocity and weights.
        torch.mul(self.G, -1.0 / B, out=self.D)
        self.D[:self.n_w].add_(self.P[:self.n_w], alpha=-self.l2)
        self.D.mul_(self.lr)
        self.V.add_(self.D)
        self.P.add_(self.D)

    def reset(self, seed):
        """Undo warm-up steps: initial weights, zero velocities and statistics, generator reseeded."""
        self.P.copy_(self.P0)
        self.V.zero_()
        self.loss_sum.zero_()
        self.err_sum.zero_()
        self.counter.zero_()
        self.gen.manual_seed(seed)

    def accuracy(self, X_test, y_test):
        correct = 0
        dev = self.P.device
        for s in range(0, len(y_test), 4096):
            h = torch.from_numpy(X_test[s:s + 4096]).to(dev)
            with self.products():
                for i in range(len(self.W)):
                    h = torch.addmm(self.b[i], h, self.W[i])
                    if i < len(self.W) - 1:
                        h.relu_()
            correct += int((h.argmax(1) == torch.from_numpy(y_test[s:s + 4096]).to(dev)).sum())
        return correct / len(y_test)


def capture_graph(net, warmup):
    """Warm-up steps on a side stream, then one step captured as a CUDA graph. Returns the graph."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(warmup):
            net.step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    if net.sampling == "step":
        # A generator other than the default one must be registered with the graph, so that
        # each replay reads its current seed/offset and advances it.
        graph.register_generator_state(net.gen)
    with torch.cuda.graph(graph):
        net.step()
    torch.cuda.synchronize()
    return graph


def replays_advance(net, graph):
    """Whether two replays draw different minibatch indices (the RNG or counter advances)."""
    graph.replay()
    first = net.idx.clone()
    graph.replay()
    torch.cuda.synchronize()
    return not torch.equal(first, net.idx)


def prepare(net, a):
    """Warm-up steps and, in graph mode, the capture of one step, then undone (net.reset).
    Returns (graph or None, whether two replays drew different minibatches or None)."""
    graph, rng_advances = None, None
    net.new_epoch(a.learn_rate)
    if a.mode == "graph":
        try:
            graph = capture_graph(net, a.warmup)
            rng_advances = replays_advance(net, graph)
        except (RuntimeError, AttributeError) as e:
            if a.sampling != "auto":
                raise
            print(f"note: capturing torch.randint with a device generator failed ({e}); "
                  "falling back to one randint per epoch outside the graph", flush=True)
            graph, rng_advances = None, False
            torch.cuda.synchronize()
        if not rng_advances and a.sampling == "auto":
            if graph is not None:
                print("note: the graph's minibatch indices did not change between replays; "
                      "falling back to one randint per epoch outside the graph", flush=True)
            net.sampling = "epoch"
            net.new_epoch(a.learn_rate)
            graph = capture_graph(net, a.warmup)
            rng_advances = replays_advance(net, graph)
        if not rng_advances:
            fail("the captured step draws the same minibatch on every replay", 1)
    else:
        for _ in range(a.warmup):
            net.step()
    net.reset(a.seed)
    return graph, rng_advances


def main(a):
    layers = [int(s) for s in a.layers.split(",")]
    if a.device is None:
        a.device = "cuda" if torch.cuda.is_available() else "cpu"
    if a.device == "cuda" and not torch.cuda.is_available():
        fail("--device cuda: no usable CUDA device (torch.cuda.is_available() is False)")
    if a.mode == "graph" and a.device != "cuda":
        fail("--mode graph needs --device cuda: CUDA graphs do not exist on the CPU (use --mode eager)")
    dev = torch.device(a.device)
    set_torch_precision(torch, a.precision)
    if a.device == "cpu":
        torch.set_num_threads(a.threads)
        device_name = cpu_name()
    else:
        device_name = torch.cuda.get_device_name(dev)
    precision = precision_run(a.precision, a.device)
    print(f"torch {torch.__version__} (CUDA {torch.version.cuda}), device {a.device}: {device_name}, "
          f"mode {a.mode}, precision {precision}, threads {torch.get_num_threads()}")

    load_start = time.perf_counter()
    try:
        X, y = load_dataset(a.data)
    except SystemExit as e:                 # idx_data's message for missing files
        fail(str(e.code).removeprefix("error: "))
    except OSError as e:
        fail(f"--data {a.data}: {e}")
    rng = np.random.default_rng(a.seed)
    test, train = split_rows(len(X), rng)
    n_test = len(test)
    X_train, y_train, X_test, y_test = X[train], y[train], X[test], y[test]
    print(f"data {a.data}: {len(X)} rows, {len(train)} train, {n_test} test; layers {layers}")
    weights = [(0.05 * rng.standard_normal((n_in, n_out))).astype(np.float32)
               for n_in, n_out in zip(layers[:-1], layers[1:])]

    steps = len(train) // a.batch
    if steps < 1:
        fail(f"--batch {a.batch} is larger than the {len(train)} training rows")
    sampling = "step" if a.sampling == "auto" else a.sampling
    gen = torch.Generator(device=dev)
    gen.manual_seed(a.seed)
    net = Dbn(layers, weights, X_train, y_train, a, sampling, steps, gen, dev)

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    sync()
    load_seconds = time.perf_counter() - load_start

    # Warm-up (and capture), excluded from the epoch times and then undone.
    warm_start = time.perf_counter()
    graph, rng_advances = prepare(net, a)
    sync()
    warmup_seconds = time.perf_counter() - warm_start
    print(f"warm-up: {a.warmup} steps" + (", capture and 2 test replays" if graph is not None else "")
          + f", undone: {warmup_seconds:.3f}s; sampling: {net.sampling}", flush=True)

    lr = a.learn_rate
    n_seen = steps * a.batch
    history = []
    status, error = "ok", None
    train_start = time.perf_counter()
    for epoch in range(1, a.epochs + 1):
        sync()
        start = time.perf_counter()
        net.new_epoch(lr)
        if graph is not None:
            for _ in range(steps):
                graph.replay()
        else:
            for _ in range(steps):
                net.step()
        sync()
        seconds = time.perf_counter() - start
        loss = net.loss_sum.item() / n_seen          # the one host read of the epoch
        err = net.err_sum.item() / n_seen
        history.append({"epoch": epoch, "loss": loss, "err": err, "seconds": seconds,
                        "learn_rate": lr, "minibatches": steps})
        print(f"Epoch {epoch}:\n  loss {loss:.4f}\n  err  {err:.4f}\n  ({seconds:.3f}s)", flush=True)
        if not math.isfinite(loss):
            status = "diverged"
            error = (f"diverged: mean loss {loss} in epoch {epoch}; "
                     f"try a smaller --learn-rate than {a.learn_rate}")
            break
        lr *= a.decay
    train_seconds = time.perf_counter() - train_start

    accuracy = net.accuracy(X_test, y_test) if status == "ok" else None
    median = statistics.median(h["seconds"] for h in history) if history else None
    later = [h["seconds"] for h in history[1:]]
    median_later = statistics.median(later) if later else None
    if status == "ok":
        print(f"test accuracy {accuracy:.4f} ({n_test} rows); median epoch "
              + (f"{median * 1e3:.3f} ms" if median is not None else "n/a")
              + (f" (epochs 2+: {median_later * 1e3:.3f} ms)" if median_later is not None else ""))
    process_seconds = process_elapsed()
    print(f"timing: load {load_seconds:.3f} s, warm-up {warmup_seconds:.3f} s, train {train_seconds:.3f} s, "
          f"process so far {process_seconds:.3f} s", flush=True)

    if a.json:
        result = {"peer": "torch", "status": status, "error": error, "mode": a.mode,
                  "precision": precision, "autocast": "bfloat16" if precision == "bf16" else None,
                  "device": a.device, "device_name": device_name,
                  "torch_version": torch.__version__, "cuda_version": torch.version.cuda,
                  "numpy_version": np.__version__, "threads": torch.get_num_threads(),
                  "matmul_fp32_precision": torch.get_float32_matmul_precision(),
                  "sampling": net.sampling, "graph_rng_advances": rng_advances,
                  "dataset_dir": a.data, "rows": len(X), "train_rows": len(train), "test_rows": n_test,
                  "layers": layers, "learn_rate": a.learn_rate, "decay": a.decay, "momentum": a.momentum,
                  "l2": a.l2, "batch": a.batch, "seed": a.seed, "epochs": history,
                  "median_epoch_seconds": median, "median_epoch_seconds_after_first": median_later,
                  "test_accuracy": accuracy, "load_seconds": load_seconds, "warmup_steps": a.warmup,
                  "warmup_seconds": warmup_seconds, "train_seconds": train_seconds,
                  "process_seconds": process_seconds}
        with open(a.json, "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
    if status != "ok":
        fail(error, 1)


if __name__ == "__main__":
    main(ARGS)

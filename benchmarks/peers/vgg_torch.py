#!/usr/bin/env python3
"""PyTorch peer of cudl's bench_vgg: VGG16 training throughput on synthetic data.

The same network (VGG16 configuration D: thirteen 3x3 convolutions with ReLU, five 2x2 max
poolings, Flatten, Linear 4096 + ReLU + Dropout 0.5, Linear 4096 + ReLU + Dropout 0.5, Linear K;
NCHW float32, He-normal weights, zero biases) and the same work per timed iteration: forward,
softmax cross-entropy, backward and one SGD step with Nesterov momentum and L2 weight decay on
the weights only, on one batch of N(0, 1) images and uniform random labels made once on the
device. The device is synchronised before each clock read. Written as a competent PyTorch user
would for speed without changing the model: cudnn.benchmark on, in-place ReLU, gradients set to
None between steps, the fused (else foreach) SGD implementation, no per-step host reads.

    python3 benchmarks/peers/vgg_torch.py --device gpu --precision bf16 --json out.json
    /root/torch-venv/bin/python benchmarks/peers/vgg_torch.py --device cpu --size 32 --batch 16

Precision: fp32 is strict (torch.backends.cuda.matmul.allow_tf32 = False and
torch.backends.cudnn.allow_tf32 = False); tf32 allows tensor cores in both (True, True), on the
GPU only (the CPU runs fp32, and the report says so). bf16 is PyTorch's mixed precision, as a user
writes it: the forward pass and the loss under torch.autocast(dtype=torch.bfloat16), the backward
outside it; parameters, gradients and optimizer state stay float32, and what autocast leaves in
float32 is strict (tf32 off). cudl's --precision bf16 is the same arithmetic for the products.
The update is torch.optim.SGD(nesterov=True), PyTorch's form of Nesterov momentum; cudl's
GdbnNesterov is gdbn's (the look-ahead form). Both are a few elementwise passes over all
parameters, the same memory traffic up to a constant: the iterates differ, the work does not.
Exit status: 0 success, 2 bad input or unavailable device.
"""
import argparse
import datetime
import json
import math
import os
import statistics
import sys
import time

from peer_common import PRECISION_HELP, PRECISIONS, autocast, cpu_name, precision_run, set_torch_precision

FEATURES = [64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0]  # 0: max pooling


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", choices=("cpu", "gpu", "cuda"), default="cpu",
                   help="where to run (default cpu; cuda is the same as gpu)")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32", help=PRECISION_HELP)
    p.add_argument("--size", type=int, help="input SxS, S a multiple of 32 (default 224 on the GPU, 32 on the CPU)")
    p.add_argument("--batch", type=int, help="images per step (default 64 on the GPU, 16 on the CPU)")
    p.add_argument("--classes", type=int, default=1000)
    p.add_argument("--warmup", type=int, help="untimed steps first (default 5 on the GPU, 2 on the CPU)")
    p.add_argument("--iters", type=int, help="timed steps (default 20 on the GPU, 10 on the CPU)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (default: all available)")
    p.add_argument("--seed", type=int, default=2014)
    p.add_argument("--learn-rate", type=float, default=1e-4)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--l2", type=float, default=5e-4)
    p.add_argument("--channels-last", action="store_true",
                   help="NHWC activations and weights (not the default: cudl is NCHW)")
    p.add_argument("--layers", action="store_true",
                   help="after the timed steps, --iters more with each layer's forward and backward timed "
                        "(CUDA events from module and tensor hooks), grouped as cudl's layers")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    a = p.parse_args()
    if a.device == "cuda":
        a.device = "gpu"
    gpu = a.device == "gpu"
    a.size = a.size if a.size is not None else (224 if gpu else 32)
    a.batch = a.batch if a.batch is not None else (64 if gpu else 16)
    a.warmup = a.warmup if a.warmup is not None else (5 if gpu else 2)
    a.iters = a.iters if a.iters is not None else (20 if gpu else 10)
    if a.size < 32 or a.size % 32:
        p.error(f"--size: VGG16 halves the input five times, so S must be a multiple of 32, found {a.size}")
    if a.batch < 1 or a.iters < 1 or a.warmup < 0 or a.classes < 2 or a.threads < 0:
        p.error("--batch ≥ 1, --iters ≥ 1, --warmup ≥ 0, --classes ≥ 2 and --threads ≥ 0 are required")
    if a.learn_rate <= 0 or not 0 <= a.momentum < 1 or a.l2 < 0:
        p.error("--learn-rate > 0, 0 ≤ --momentum < 1 and --l2 ≥ 0 are required")
    return a


ARGS = parse_args()      # before importing torch, so that --help and bad flags answer at once

import torch  # noqa: E402
from torch import nn  # noqa: E402



def fail(message, result=None, path=None):
    print(f"vgg_torch.py: {message}", file=sys.stderr)
    if result is not None and path:
        result.update(status="error", error=message)
        write_json(result, path)
    sys.exit(2)


def write_json(result, path):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def vgg16(size, classes):
    layers, channels = [], 3
    for k in FEATURES:
        if k == 0:
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(channels, k, 3, padding=1), nn.ReLU(inplace=True)]
            channels = k
    side = size // 32
    layers += [nn.Flatten(),
               nn.Linear(channels * side * side, 4096), nn.ReLU(inplace=True), nn.Dropout(0.5),
               nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Dropout(0.5),
               nn.Linear(4096, classes)]
    net = nn.Sequential(*layers)
    weighted = [m for m in net if isinstance(m, (nn.Conv2d, nn.Linear))]
    for i, m in enumerate(weighted):   # He normal (fan-in); the last layer gain 1; biases 0, as bench_vgg
        fan_in = m.weight[0].numel()
        gain = 1.0 if i + 1 == len(weighted) else 2.0
        nn.init.normal_(m.weight, 0.0, math.sqrt(gain / fan_in))
        nn.init.zeros_(m.bias)
    return net


def layer_groups(net):
    """The modules of net grouped as cudl's layers: a ReLU joins the convolution or Linear before
    it (cudl's Conv2d and Dense apply their activation), every other module stands alone. Returns
    [(name, [modules])], 24 groups for VGG16, in cudl's order."""
    groups = []
    for m in net:
        if isinstance(m, nn.ReLU) and groups and isinstance(groups[-1][1][-1], (nn.Conv2d, nn.Linear)):
            name, mods = groups[-1]
            groups[-1] = (name + " + ReLU", mods + [m])
        elif isinstance(m, nn.Conv2d):
            groups.append((f"Conv2d({m.out_channels}, {m.kernel_size[0]}×{m.kernel_size[1]})", [m]))
        elif isinstance(m, nn.Linear):
            groups.append((f"Linear({m.out_features})", [m]))
        elif isinstance(m, nn.MaxPool2d):
            groups.append((f"MaxPool2d({m.kernel_size})", [m]))
        elif isinstance(m, nn.Dropout):
            groups.append((f"Dropout({m.p:g})", [m]))
        else:
            groups.append((type(m).__name__, [m]))
    return groups


class LayerTimer:
    """Per-group forward and backward times of training steps. Forward: a pre-hook on a group's
    first module and a hook on its last mark its start and end. Backward: a tensor hook on the
    group's output marks its start (its gradient is ready); its end is the gradient of its input
    (the previous group's output), or for the first group, whose input needs none, the last of
    its parameters' gradients (post-accumulate hooks). Marks are CUDA events on the current stream
    (the GPU's own time) or, on the CPU, the clock (its work runs as it is called)."""

    def __init__(self, net, gpu):
        self.gpu, self.groups, self.handles = gpu, layer_groups(net), []
        self.forward_ms = [0.0] * len(self.groups)
        self.backward_ms = [0.0] * len(self.groups)
        self.steps = 0
        self.marks = {}
        for i, (_, mods) in enumerate(self.groups):
            self.handles.append(mods[0].register_forward_pre_hook(self._pre(i)))
            self.handles.append(mods[-1].register_forward_hook(self._post(i)))
        for p in self.groups[0][1][0].parameters():
            self.handles.append(p.register_post_accumulate_grad_hook(self._first_done))

    def _now(self):
        if self.gpu:
            e = torch.cuda.Event(enable_timing=True)
            e.record()
            return e
        return time.perf_counter()

    def _pre(self, i):
        def hook(module, inputs):
            self.marks[("f", i)] = self._now()
            if i > 0 and inputs and inputs[0].requires_grad:     # its gradient ends group i's backward
                inputs[0].register_hook(self._tensor_mark(("b_end", i)))
        return hook

    def _post(self, i):
        def hook(module, inputs, output):
            self.marks[("f_end", i)] = self._now()
            if output.requires_grad:
                output.register_hook(self._tensor_mark(("b", i)))
        return hook

    def _tensor_mark(self, key):
        def hook(grad):
            self.marks[key] = self._now()
        return hook

    def _first_done(self, param):
        self.marks[("b_end", 0)] = self._now()    # the last parameter's gradient wins

    def _ms(self, a, b):
        if self.gpu:
            return a.elapsed_time(b)
        return (b - a) * 1e3

    def end_step(self):
        """After a step: adds its marks to the totals (synchronising first)."""
        if self.gpu:
            torch.cuda.synchronize()
        for i in range(len(self.groups)):
            self.forward_ms[i] += self._ms(self.marks[("f", i)], self.marks[("f_end", i)])
            self.backward_ms[i] += self._ms(self.marks[("b", i)], self.marks[("b_end", i)])
        self.steps += 1
        self.marks = {}

    def remove(self):
        for h in self.handles:
            h.remove()

    def rows(self):
        n = max(self.steps, 1)
        return [{"layer": name, "forward_ms": f / n, "backward_ms": b / n, "steps": self.steps}
                for (name, _), f, b in zip(self.groups, self.forward_ms, self.backward_ms)]


def layers_text(rows, step_ms):
    lines = [f"per layer, mean ms per step over {rows[0]['steps']} steps (each layer timed on the device's queue; "
             f"those steps' median {step_ms:.2f} ms):",
             f"  {'#':<3} {'layer':<46} {'forward':>9} {'backward':>9} {'both':>9} {'share':>7}"]
    total = 0.0
    for i, r in enumerate(rows):
        both = r["forward_ms"] + r["backward_ms"]
        total += both
        lines.append(f"  {i:<3} {r['layer']:<46} {r['forward_ms']:9.3f} {r['backward_ms']:9.3f} {both:9.3f} "
                     f"{100 * both / step_ms if step_ms > 0 else 0:6.1f}%")
    rest = step_ms - total
    lines.append(f"  {'':<3} {'rest (loss, update, gaps)':<46} {'':>9} {'':>9} {rest:9.3f} "
                 f"{100 * rest / step_ms if step_ms > 0 else 0:6.1f}%")
    return "\n".join(lines)


def step_flop(size, batch, classes):
    """FLOP (2 per multiply-add) of the convolution and dense products of one training step, as
    bench_vgg counts them: forward, weight gradients, input gradients of all but the first layer."""
    flop, channels, side, first = 0.0, 3, size, True
    for k in FEATURES:
        if k == 0:
            side //= 2
            continue
        flop += 2.0 * batch * k * side * side * channels * 9 * (2 if first else 3)
        first, channels = False, k
    dense = [channels * side * side, 4096, 4096, classes]
    return flop + sum(3 * 2.0 * batch * a * b for a, b in zip(dense[:-1], dense[1:]))


def make_optimizer(net, a, dev):
    """SGD with Nesterov momentum; L2 on the weights only (as cudl decays weights, not biases).
    The fused implementation where this PyTorch has it for the device, else foreach."""
    weights = [p for n, p in net.named_parameters() if n.endswith("weight")]
    biases = [p for n, p in net.named_parameters() if n.endswith("bias")]
    groups = [{"params": weights, "weight_decay": a.l2}, {"params": biases, "weight_decay": 0.0}]
    for impl in ("fused", "foreach"):
        try:
            opt = torch.optim.SGD(groups, lr=a.learn_rate, momentum=a.momentum, nesterov=True, **{impl: True})
            return opt, impl
        except (RuntimeError, TypeError, ValueError):
            continue
    return torch.optim.SGD(groups, lr=a.learn_rate, momentum=a.momentum, nesterov=True), "for-loop"


def main(a):
    start = time.perf_counter()
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    gpu = a.device == "gpu"
    result = {"tool": "vgg_torch", "date": date, "status": "ok", "error": None}
    if gpu and not torch.cuda.is_available():
        fail("--device gpu: no usable CUDA device (torch.cuda.is_available() is False)", result, a.json)
    dev = torch.device("cuda" if gpu else "cpu")
    tf32 = a.precision == "tf32"
    set_torch_precision(torch, a.precision)
    torch.backends.cudnn.benchmark = True
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    name = torch.cuda.get_device_name(dev) if gpu else f"{cpu_name()}, {torch.get_num_threads()} threads"
    precision = precision_run(a.precision, dev.type)
    description = (f"torch {torch.__version__} " + (f"cuda {torch.version.cuda} cudnn {torch.backends.cudnn.version()}"
                                                    if gpu else f"cpu (mkldnn {torch.backends.mkldnn.is_available()})")
                   + f": {name}, {precision}")
    print(f"torch vgg_torch.py | VGG16 (configuration D) on 3×{a.size}×{a.size} images, {a.classes} classes "
          f"| batch {a.batch} | {description}")
    print("data: synthetic (one batch of N(0, 1) images and uniform random labels, made once on the device; "
          "no input pipeline is timed)")

    setup_start = time.perf_counter()
    torch.manual_seed(a.seed)
    memory_format = torch.channels_last if a.channels_last else torch.contiguous_format
    net = vgg16(a.size, a.classes).to(dev, memory_format=memory_format)
    net.train()
    opt, impl = make_optimizer(net, a, dev)
    x = torch.randn(a.batch, 3, a.size, a.size, device=dev).contiguous(memory_format=memory_format)
    y = torch.randint(0, a.classes, (a.batch,), device=dev)
    loss_sum = torch.zeros((), device=dev)
    loss_fn = nn.CrossEntropyLoss()          # the batch mean: cudl sums and its update divides by N
    parameters = sum(p.numel() for p in net.parameters())
    flop = step_flop(a.size, a.batch, a.classes)
    print(f"work per iteration: forward, softmax cross-entropy, backward, SGD update (Nesterov momentum "
          f"{a.momentum:g}, learn rate {a.learn_rate:g}, L2 {a.l2:g} on weights, {impl}); the device is synchronised "
          f"before each clock read; {a.warmup} warm-up + {a.iters} timed iterations, precision {precision}"
          + (", channels-last" if a.channels_last else ""))
    print(f"network: {len(net)} modules, {parameters} parameters")

    def sync():
        if gpu:
            torch.cuda.synchronize()

    def timed_step():
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with autocast(torch, precision, dev.type):
            loss = loss_fn(net(x), y)     # fp32: autocast runs the cross-entropy in float32
        loss.backward()
        opt.step()
        loss_sum.add_(loss.detach())
        sync()
        return (time.perf_counter() - t0) * 1e3

    sync()
    setup_s = time.perf_counter() - setup_start
    try:
        t0 = time.perf_counter()
        warmup_ms = [timed_step() for _ in range(a.warmup)]
        warmup_s = time.perf_counter() - t0
        loss_sum.zero_()
        sync()
        t0 = time.perf_counter()
        iteration_ms = [timed_step() for _ in range(a.iters)]
        timed_s = time.perf_counter() - t0
        mean_loss = loss_sum.item() / a.iters
        layers, layered_ms = None, None
        if a.layers:                      # the per-layer profile, apart from the timed steps it would slow
            timer = LayerTimer(net, gpu)
            layered = []
            for _ in range(a.iters):
                layered.append(timed_step())
                timer.end_step()
            timer.remove()
            layers, layered_ms = timer.rows(), statistics.median(layered)
    except RuntimeError as e:             # out of memory, cuDNN errors
        fail(str(e).splitlines()[0] if str(e) else repr(e), result, a.json)

    med, mean = statistics.median(iteration_ms), statistics.fmean(iteration_ms)
    total_s = time.perf_counter() - start
    print("warm-up ms: " + " ".join(f"{t:.1f}" for t in warmup_ms))
    print("iteration ms: " + " ".join(f"{t:.1f}" for t in iteration_ms))
    print(f"throughput: median {a.batch / med * 1e3:.1f} images/s ({med:.2f} ms/iteration), mean "
          f"{a.batch / mean * 1e3:.1f} images/s ({mean:.2f} ms/iteration); min {min(iteration_ms):.2f} ms, "
          f"max {max(iteration_ms):.2f} ms")
    print(f"arithmetic: {flop * 1e-9:.2f} GFLOP per iteration (convolution and dense products, forward and "
          f"backward), {flop / (med * 1e-3) * 1e-9:.1f} GFLOP/s at the median")
    print(f"mean loss over the timed iterations {mean_loss:.4f} (ln K = {math.log(a.classes):.4f})")
    print(f"timing: setup {setup_s:.3f} s, warm-up {warmup_s:.3f} s, timed {timed_s:.3f} s, total {total_s:.3f} s")
    if layers:
        print(layers_text(layers, layered_ms))

    if a.json:
        result.update({
            "device": {"kind": a.device, "description": description, "threads_requested": a.threads,
                       "threads": torch.get_num_threads(), "precision": precision},
            "settings": {"network": "VGG16-D", "size": a.size, "batch": a.batch, "classes": a.classes,
                         "warmup": a.warmup, "iters": a.iters, "seed": a.seed, "learn_rate": a.learn_rate,
                         "momentum": a.momentum, "l2": a.l2, "data": "synthetic",
                         "work": "forward+loss+backward+update"},
            "network": {"parameters": parameters, "summary": str(net)},
            "torch": {"version": torch.__version__, "cuda": torch.version.cuda,
                      "cudnn": torch.backends.cudnn.version() if gpu else None, "optimizer": f"SGD nesterov ({impl})",
                      "cudnn_benchmark": True, "allow_tf32_matmul": tf32, "allow_tf32_cudnn": tf32,
                      "autocast": "bfloat16" if precision == "bf16" else None,
                      "memory_format": "channels_last" if a.channels_last else "contiguous (NCHW)"},
            "flop_per_iteration": flop,
            "warmup_ms": warmup_ms, "iteration_ms": iteration_ms,
            "ms_per_iteration": {"median": med, "mean": mean, "min": min(iteration_ms), "max": max(iteration_ms)},
            "images_per_s": {"median": a.batch / med * 1e3, "mean": a.batch / mean * 1e3},
            "mean_loss": mean_loss,
            "layers": layers or [], "layered_step_ms": layered_ms,
            "timing": {"setup_s": setup_s, "warmup_s": warmup_s, "timed_s": timed_s, "total_s": total_s},
        })
        write_json(result, a.json)


if __name__ == "__main__":
    main(ARGS)

#!/usr/bin/env python3
# Part of benchmarks/run_device.sh: its summary step. Usage: device_summary.py WORK OUT
# (environment GPU_NAME, GPU_DRIVER, GIT_COMMIT as run_device.sh sets them).
"""Reads WORK/manifest.tsv, WORK/status.tsv and the runs' JSON (mnist_lenet's output, which has no
JSON, as text); writes OUT/results.md and OUT/results.json."""
import datetime, json, os, re, statistics, sys

work, out = sys.argv[1], sys.argv[2]
LENET_EPOCH = re.compile(r"^Epoch (\d+):\n  loss (\S+)\n  err  (\S+)\n  \(([0-9.]+)s\)", re.M)
LENET_ACCURACY = re.compile(r"^test accuracy ([0-9.]+)", re.M)
LENET_PRECISION = re.compile(r"^settings: .*, precision (\w+)$", re.M)


def lenet_result(text):
    """mnist_lenet's output as the fields of bench_dbn's JSON that the summary reads."""
    epochs = [{"epoch": int(e), "loss": float(loss), "err": float(err), "seconds": float(sec)}
              for e, loss, err, sec in LENET_EPOCH.findall(text)]
    acc, precision = LENET_ACCURACY.search(text), LENET_PRECISION.search(text)
    return {"status": "ok" if acc else "incomplete", "epochs": epochs,
            "test": {"accuracy": float(acc.group(1))} if acc else None,
            "device": {"precision": precision.group(1) if precision else None}}


def read_result(path):
    """A run's --json, or (a .log) mnist_lenet's output."""
    with open(path) as f:
        return lenet_result(f.read()) if path.endswith(".log") else json.load(f)


runs = []
if os.path.exists(os.path.join(work, "manifest.tsv")):
    for line in open(os.path.join(work, "manifest.tsv")):
        f = line.rstrip("\n").split("\t")
        if len(f) < 9:
            continue
        r = dict(zip(("name", "program", "device", "mode", "precision", "dataset", "rc", "wall_s", "json", "note"), f))
        r.setdefault("note", "")
        r["data"] = None            # the run's own JSON
        try:
            r["data"] = read_result(f[8]) if f[8] else None
        except (OSError, ValueError) as e:
            r["json_error"] = str(e)
        runs.append(r)
checks = []
if os.path.exists(os.path.join(work, "status.tsv")):
    for line in open(os.path.join(work, "status.tsv")):
        f = line.rstrip("\n").split("\t") + ["", ""]
        checks.append({"check": f[0], "state": f[1], "detail": f[2]})


def epochs_of(r):
    d = r["data"] or {}
    return d.get("epochs") or []


def seconds(r):
    return [e["seconds"] for e in epochs_of(r) if isinstance(e.get("seconds"), (int, float))]


def median_later(r):
    s = seconds(r)
    return statistics.median(s[1:]) if len(s) > 1 else (s[0] if s else None)


def first_epoch(r):
    s = seconds(r)
    return s[0] if s else None


def accuracy(r):
    d = r["data"] or {}
    if r["program"] in ("cudl", "lenet"):
        t = d.get("test")
        return t.get("accuracy") if isinstance(t, dict) else None
    return d.get("test_accuracy")


def precision_run(r):
    """The arithmetic the run reports it ran (its backend's precision; tf32 asked of a CPU runs fp32)."""
    d = r["data"] or {}
    return d["device"].get("precision") if isinstance(d.get("device"), dict) else d.get("precision")


def status_of(r):
    if r["rc"] == "skipped":
        return "skipped"
    d = r["data"] or {}
    s = d.get("status") or ("ok" if r["rc"] == "0" else None)
    if r["rc"] in ("124", "137"):
        return "timeout"
    if r["rc"] != "0":
        return f"exit {r['rc']}" + (f" ({s})" if s and s != "ok" else "")
    return s or "no json"


def ms(x):
    return f"{x * 1e3:.2f}" if isinstance(x, (int, float)) else "–"


def num(x, fmt):
    return format(x, fmt) if isinstance(x, (int, float)) else "–"


def find(name):
    for r in runs:
        if r["name"] == name:
            return r
    return None


def ratio(slow, fast):
    a, b = find(slow), find(fast)
    if not a or not b or median_later(a) is None or median_later(b) in (None, 0):
        return None
    return median_later(a) / median_later(b)


rows = []
for r in runs:
    d = r["data"] or {}
    process = d.get("process_seconds") if r["program"] == "torch" else (d.get("timing") or {}).get("total_s")
    rows.append({"run": r["name"], "program": r["program"], "device": r["device"], "mode": r["mode"],
                 "precision": r["precision"], "precision_run": precision_run(r), "dataset": r["dataset"],
                 "status": status_of(r),
                 "epochs": len(epochs_of(r)), "epoch1_s": first_epoch(r), "median_s": median_later(r),
                 "accuracy": accuracy(r), "wall_s": float(r["wall_s"]) if r["wall_s"] else None,
                 "self_reported_s": process, "warmup_s": d.get("warmup_seconds")})

ratios = {
    "torch eager fp32 / cudl gpu fp32": ratio("torch-eager-fp32", "cudl-gpu-fp32"),
    "torch graph fp32 / cudl gpu fp32": ratio("torch-graph-fp32", "cudl-gpu-fp32"),
    "torch eager tf32 / cudl gpu tf32": ratio("torch-eager-tf32", "cudl-gpu-tf32"),
    "torch graph tf32 / cudl gpu tf32": ratio("torch-graph-tf32", "cudl-gpu-tf32"),
    "cudl cpu / cudl gpu fp32": ratio("cudl-cpu", "cudl-gpu-fp32"),
    "torch eager bf16 / cudl gpu bf16": ratio("torch-eager-bf16", "cudl-gpu-bf16"),
    "torch graph bf16 / cudl gpu bf16": ratio("torch-graph-bf16", "cudl-gpu-bf16"),
    "cudl gpu fp32 / cudl gpu tf32": ratio("cudl-gpu-fp32", "cudl-gpu-tf32"),
    "cudl gpu fp32 / cudl gpu bf16": ratio("cudl-gpu-fp32", "cudl-gpu-bf16"),
    "torch cpu 16 threads / cudl cpu 16 threads": ratio("torch-cpu", "cudl-cpu"),
    "cudl cpu 1 thread / 16 threads": ratio("cudl-cpu-t1", "cudl-cpu"),
    "cudl cpu 1 thread / 8 threads": ratio("cudl-cpu-t1", "cudl-cpu-t8"),
    "cudl gpu eager fp32 / cudl gpu captured fp32": ratio("cudl-gpu-fp32-eager", "cudl-gpu-fp32-captured"),
    "cudl gpu captured fp32 / cudl gpu fp32 (fused step)": ratio("cudl-gpu-fp32-captured", "cudl-gpu-fp32"),
    "cudl gpu captured fp32 all cuBLAS / with cudl's few-row kernel": ratio("cudl-gpu-fp32-cublas",
                                                                             "cudl-gpu-fp32-captured"),
}


def med(name):
    r = find(name)
    return median_later(r) if r else None


def acc(name):
    r = find(name)
    return accuracy(r) if r else None


def apart(a, b):
    return a - b if a is not None and b is not None else None


def verdict(value, ok):
    if value is None:
        return "not measured"
    return "met" if ok(value) else "missed"


walls = [x["wall_s"] for x in rows if x["run"] in ("cudl-gpu-fp32", "cudl-gpu-fp32-again")
         and x["status"] == "ok" and x["wall_s"] is not None]
best_wall = min(walls) if walls else None
acc_gpu, acc_cpu, acc_bf16 = acc("cudl-gpu-fp32"), acc("cudl-cpu-10"), acc("cudl-gpu-bf16")
acc_diff = abs(acc_gpu - acc_cpu) if acc_gpu is not None and acc_cpu is not None else None
lenet_fp32, lenet_bf16 = acc("lenet-gpu-fp32"), acc("lenet-gpu-bf16")
# Same seed and minibatches: the trajectories should agree over the CPU run's epochs.
traj = None
gpu_e, cpu_e = epochs_of(find("cudl-gpu-fp32") or {"data": None}), epochs_of(find("cudl-cpu") or {"data": None})
if gpu_e and cpu_e:
    n = min(len(gpu_e), len(cpu_e))
    traj = max(abs(gpu_e[i]["loss"] - cpu_e[i]["loss"]) / max(abs(cpu_e[i]["loss"]), 1e-12) for i in range(n))

fp32, tf32 = med("cudl-gpu-fp32"), med("cudl-gpu-tf32")
r_eager, r_graph = ratios["torch eager fp32 / cudl gpu fp32"], ratios["torch graph fp32 / cudl gpu fp32"]
targets = [
    ("fp32 ms/epoch ≤ 10 (issue 17)", ms(fp32), verdict(fp32, lambda v: v <= 0.010)),
    ("tf32 ms/epoch ≤ 5 (issue 17)", ms(tf32), verdict(tf32, lambda v: v <= 0.005)),
    ("≥ 10× faster than torch eager (fp32)", num(r_eager, ".1f") + "×", verdict(r_eager, lambda v: v >= 10)),
    ("≥ 2× faster than torch graph (fp32)", num(r_graph, ".2f") + "×", verdict(r_graph, lambda v: v >= 2)),
    ("whole bench_dbn gpu fp32 process ≤ 1.0 s", num(best_wall, ".2f") + " s", verdict(best_wall, lambda v: v <= 1.0)),
    ("test accuracy equal to CPU within noise (difference ≤ 0.005)",
     f"gpu {num(acc_gpu, '.4f')} vs cpu {num(acc_cpu, '.4f')}", verdict(acc_diff, lambda v: v <= 0.005)),
    ("loss trajectory gpu fp32 vs cpu (first epochs, max rel. diff)", num(traj, ".2e"),
     "info" if traj is not None else "not measured"),
    ("LeNet, MNIST digits, 2 epochs: bf16 test accuracy within 0.5 points of fp32's (bf16 ≥ fp32 − 0.005)",
     f"fp32 {num(lenet_fp32, '.4f')} vs bf16 {num(lenet_bf16, '.4f')}",
     verdict(apart(lenet_fp32, lenet_bf16), lambda v: v <= 0.005)),
    ("bench_dbn gpu test accuracy, bf16 vs fp32", f"bf16 {num(acc_bf16, '.4f')} vs fp32 {num(acc_gpu, '.4f')}",
     "info" if apart(acc_bf16, acc_gpu) is not None else "not measured"),
]

# VGG16 beside PyTorch (step 7): compare_vgg.sh's table and JSON, if it ran.
vgg, vgg_md = None, None
try:
    vgg = json.load(open(os.path.join(work, "vgg", "compare.json")))
    vgg_md = open(os.path.join(work, "vgg", "compare.md")).read()
except (OSError, ValueError):
    pass
vgg_settings = next(((r.get("result") or {}).get("settings") for r in (vgg or {}).get("runs", []) if r.get("ok")),
                    None)
vgg_shape = (f"{vgg_settings['size']}×{vgg_settings['size']} batch {vgg_settings['batch']}, {vgg['device']}"
             if vgg_settings else "224×224 batch 64")
for precision in os.environ.get("VGG_PRECISIONS", "fp32 tf32 bf16").split():
    v = ((vgg or {}).get("ratio_cudl_over_torch") or {}).get(precision)
    targets.append((f"VGG16 {vgg_shape} {precision}: images/s within 10% of PyTorch (cudl/torch ≥ 0.90)",
                    num(v, ".3f"), verdict(v, lambda x: x >= 0.90)))

date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
gpu, driver, commit = os.environ["GPU_NAME"], os.environ["GPU_DRIVER"], os.environ["GIT_COMMIT"]
md = [f"# cudl on the GPU: {gpu}", "",
      f"{date}, driver {driver}, commit {commit}. Times: median of epochs 2..N (epoch 1 apart); "
      "wall = the whole process, measured outside it; warm-up = the torch peer's undone warm-up "
      "steps and graph capture, outside its epoch times.", "",
      "| run | device | mode | precision | data | status | epochs | epoch 1 ms | median ms/epoch | test acc | wall s | warm-up s |",
      "| --- | --- | --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
for x in rows:
    ran = x["precision_run"]
    precision = x["precision"] + (f" (ran {ran})" if ran and ran != x["precision"] else "")
    md.append(f"| {x['run']} | {x['device']} | {x['mode']} | {precision} | {os.path.basename(x['dataset'])} "
              f"| {x['status']} | {x['epochs']} | {ms(x['epoch1_s'])} | {ms(x['median_s'])} "
              f"| {num(x['accuracy'], '.4f')} | {num(x['wall_s'], '.2f')} | {num(x['warmup_s'], '.2f')} |")
failed = [r for r in runs if r["rc"] not in ("0", "skipped")]
if failed:
    md += [""] + [f"- {r['name']} failed (exit {r['rc']}): {r['note'] or 'see bench.log'}" for r in failed]
md += ["", "| ratio (median s/epoch) | value |", "| --- | ---: |"]
md += [f"| {k} | {num(v, '.2f')}× |" for k, v in ratios.items()]
md += ["", "| target | measured | verdict |", "| --- | --- | --- |"]
md += [f"| {t} | {m} | {v} |" for t, m, v in targets]
md += ["", "| check | state | detail |", "| --- | --- | --- |"]
md += [f"| {c['check']} | {c['state']} | {c['detail']} |" for c in checks]
# RBM pretraining (the *-rbm runs): each layer's CD-1 epochs, in seconds.
rbm_rows = []
for r in runs:
    for layer in ((r["data"] or {}).get("pretraining") or []):
        secs = [e.get("seconds") for e in layer.get("epochs", [])]
        rbm_rows.append({"run": r["name"], "device": r["device"], "layer": layer.get("layer"),
                         "rbm": f"{layer.get('visible')}-{layer.get('hidden')}", "units": layer.get("units"),
                         "epoch_s": secs})
if rbm_rows:
    md += ["", "## RBM pretraining (CD-1, one epoch = every training row once)", "",
           "| run | device | layer | RBM | units | epoch 1 s | epoch 2 s |", "| --- | --- | ---: | --- | --- | ---: | ---: |"]
    for x in rbm_rows:
        e = x["epoch_s"] + [None, None]
        md.append(f"| {x['run']} | {x['device']} | {x['layer']} | {x['rbm']} | {x['units']} "
                  f"| {num(e[0], '.4f')} | {num(e[1], '.4f')} |")
# The fused step's kernel alone, its phases and the grid barrier (bench_cuda_primitives' lines).
try:
    step_lines = [line.rstrip()[:400] for line in open(os.path.join(out, "primitives.log"))
                  if line.startswith(("BM_CudaMlpStep", "BM_CudaGridBarrier"))]
except OSError:
    step_lines = []
if step_lines:
    md += ["", "## The fused step's kernel (BM_CudaMlpStep, BM_CudaGridBarrier)", "", "```"] + step_lines + ["```"]
if vgg_md:
    md += ["", "## VGG16 beside PyTorch (benchmarks/compare_vgg.sh)", "", vgg_md.rstrip()]
text = "\n".join(md) + "\n"
with open(os.path.join(out, "results.md"), "w") as f:
    f.write(text)
with open(os.path.join(out, "results.json"), "w") as f:
    json.dump({"date": date, "gpu": gpu, "driver": driver, "commit": commit, "rows": rows,
               "ratios": ratios, "targets": [dict(zip(("target", "measured", "verdict"), t)) for t in targets],
               "checks": checks, "vgg16": vgg, "rbm": rbm_rows,
               "runs": [{k: v for k, v in r.items() if k != "data"} | {"result": r["data"]} for r in runs]},
              f, indent=1)
    f.write("\n")

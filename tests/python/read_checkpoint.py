#!/usr/bin/env python3
"""A model file saved by cudl, read from Python: read_checkpoint.py MODEL JSON

Opens MODEL (cudl::save_model's safetensors file) with the `safetensors` package and again with
numpy alone (the few lines a user without the package writes), and checks that both hold exactly
the tensors JSON (tests/checkpoint_fixture.cpp) says cudl saved: names, shapes, float32 values
bit for bit. Checks the metadata (format "cudl", kind "model", the architecture as JSON), that a
numpy forward pass of the architecture gives cudl's own scores, and, where torch is installed,
that the model loaded into a torch.nn.Sequential gives the same scores as numpy.

Exit status: 0 passed, 1 a mismatch (the message names it), 77 skipped (safetensors or numpy is
not installed: ctest reports the test as skipped, never as passed).
"""
import json
import struct
import sys

try:
    import numpy as np
    from safetensors import safe_open
    from safetensors.numpy import load_file
except ImportError as e:
    print(f"skipped: the Python package '{e.name}' is not installed "
          "(python3 -m pip install safetensors numpy)")
    sys.exit(77)


def fail(message):
    print(f"read_checkpoint.py: {message}", file=sys.stderr)
    sys.exit(1)


def read_with_numpy(path):
    """The safetensors layout by hand: a little-endian u64 header length, the JSON header, the data."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    metadata = header.pop("__metadata__", {})
    tensors = {}
    for name, t in header.items():
        if t["dtype"] != "F32":
            fail(f"{path}: tensor {name} has dtype {t['dtype']}, expected F32 in a model")
        begin, end = t["data_offsets"]
        tensors[name] = np.frombuffer(data[begin:end], dtype="<f4").reshape(t["shape"])
    return tensors, metadata


def compare(what, got, expected):
    if sorted(got) != sorted(expected):
        fail(f"{what}: tensors {sorted(got)}, but cudl saved {sorted(expected)}")
    for name, want in expected.items():
        have = np.asarray(got[name])
        if list(have.shape) != list(want.shape):
            fail(f"{what}: {name} has shape {list(have.shape)}, cudl saved {list(want.shape)}")
        if have.dtype != np.float32:
            fail(f"{what}: {name} has dtype {have.dtype}, expected float32")
        bad = np.flatnonzero(have.view(np.uint32).ravel() != want.view(np.uint32).ravel())
        if bad.size:
            i = bad[0]
            h, w = have.ravel()[i], want.ravel()[i]
            fail(f"{what}: {name} differs from what cudl saved at {bad.size} of {want.size} values, "
                 f"first at flat index {i}: {h.item()!r} (0x{h.view(np.uint32):08x}) "
                 f"vs {w.item()!r} (0x{w.view(np.uint32):08x})")
    print(f"ok: {what} gives the {len(expected)} tensors cudl saved, bit for bit")


def numpy_forward(tensors, architecture, x):
    """cudl's Dense is y = act(x·W + b) with W in × out."""
    for i, layer in enumerate(architecture["layers"]):
        kind, settings = layer["type"], layer["settings"]
        if kind == "dense":
            x = x @ tensors[f"layers.{i}.weight"] + tensors[f"layers.{i}.bias"]
        act = settings.get("activation", "identity") if kind in ("dense", "activation") else "identity"
        if act == "relu":
            x = np.maximum(x, 0)
        elif act == "sigmoid":
            x = 1 / (1 + np.exp(-x))
        elif kind not in ("dense", "activation", "dropout", "flatten") or act != "identity":
            fail(f"layer {i}: this reader knows Dense, activation, Dropout and Flatten, not {kind} ({act})")
    return x


def torch_sequential(path):
    """The lines of docs/guide/saving.md: a cudl MLP (Dense layers with ReLU) as a torch.nn.Sequential."""
    import torch
    t = load_file(path)
    with safe_open(path, "np") as f:
        arch = json.loads(f.metadata()["architecture"])
    mods = []
    for i, layer in enumerate(arch["layers"]):  # cudl's Dense weight is in × out, torch's out × in
        W, b = torch.from_numpy(t[f"layers.{i}.weight"]), torch.from_numpy(t[f"layers.{i}.bias"])
        lin = torch.nn.Linear(*W.shape)
        lin.weight.data, lin.bias.data = W.T.contiguous(), b
        mods += [lin] + ([torch.nn.ReLU()] if layer["settings"]["activation"] == "relu" else [])
    return torch.nn.Sequential(*mods).eval()


def main():
    if len(sys.argv) != 3:
        fail("usage: read_checkpoint.py MODEL JSON")
    model_path, json_path = sys.argv[1], sys.argv[2]
    with open(json_path) as f:
        fixture = json.load(f)
    expected = {t["name"]: np.array(t["values"], dtype=np.float32).reshape(t["shape"]) for t in fixture["tensors"]}

    compare("safetensors.numpy.load_file", load_file(model_path), expected)
    by_hand, metadata = read_with_numpy(model_path)
    compare("numpy alone", by_hand, expected)

    with safe_open(model_path, "np") as f:
        if f.metadata() != metadata:
            fail("the safetensors package and the numpy reader disagree on __metadata__")
    for key, want in (("format", "cudl"), ("kind", "model")):
        if metadata.get(key) != want:
            fail(f"__metadata__[{key!r}] is {metadata.get(key)!r}, expected {want!r}")
    try:
        architecture = json.loads(metadata["architecture"])
        layers = architecture["layers"]
    except (KeyError, TypeError, ValueError) as e:
        fail(f"__metadata__ has no architecture JSON with layers: {e!r}")
    print(f"ok: __metadata__ says format cudl, kind model, {len(layers)} layers, "
          f"input {architecture.get('input_shape')}")

    x = np.array(fixture["inputs"], dtype=np.float32)
    cudl_scores = np.array(fixture["outputs"], dtype=np.float32)
    ours = numpy_forward(by_hand, architecture, x)
    if not np.allclose(ours, cudl_scores, rtol=1e-5, atol=1e-5):
        fail(f"a numpy forward pass of the saved model gives {ours.tolist()}, cudl gave {cudl_scores.tolist()}")
    print(f"ok: a numpy forward pass of the saved model gives cudl's scores for {len(x)} rows")

    try:
        import torch
    except ImportError:
        print("skipped the torch.nn.Sequential check: torch is not installed")
        return
    with torch.no_grad():
        theirs = torch_sequential(model_path)(torch.from_numpy(x)).numpy()
    if not np.allclose(theirs, ours, rtol=1e-5, atol=1e-5):
        fail(f"torch.nn.Sequential gives {theirs.tolist()}, the numpy forward pass {ours.tolist()}")
    print(f"ok: the model as a torch.nn.Sequential gives the numpy forward pass's scores for {len(x)} rows")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Reference values for tests/test_optimizer.cpp: PyTorch's SGD, Adam and AdamW, in numpy float32.

Writes tests/optim_reference.hpp (C++ constants). Regenerate with

    python3 scripts/reference/optim_reference.py > tests/optim_reference.hpp

Needs only numpy (not torch). The algorithms are those of PyTorch's documentation of
torch.optim.SGD, torch.optim.Adam and torch.optim.AdamW (the pseudo-code there), with:

* every tensor operation in float32, rounded after each operation (numpy does not fuse a multiply
  and an add; cudl's compilers may, so the test allows a few ulps);
* the per-step scalars as PyTorch's single-tensor code computes them from Python floats (doubles)
  before applying them to float32 tensors: bias_correction1 = 1 - beta1**t,
  bias_correction2 = 1 - beta2**t, step_size = lr / bias_correction1, the denominator
  sqrt(v) / sqrt(bias_correction2) + eps, the update w - step_size * m / denom, and AdamW's decay
  as w * (1 - lr * weight_decay). The hyperparameters are the float32 values cudl holds;
* amsgrad as PyTorch implements it: the running maximum of the raw second moment
  (max_exp_avg_sq), bias-corrected when used;
* weight decay on the first DECAYED parameters only (the weights; the last two are biases): in
  PyTorch, two parameter groups, the second with weight_decay=0.

Gradients are fixed (the same in every case, independent of the parameters), 5 steps.
"""
import numpy as np

f32 = np.float32
STEPS, PARAMS, DECAYED = 5, 6, 4
INITIAL = np.array([0.5, -0.25, 1.0, -1.5, 0.1, -0.2], dtype=f32)
# Large first gradients, smaller later ones (so amsgrad's maximum departs from v), sign changes,
# one zero.
GRADS = np.array([
    [0.8, -0.4, 2.0, -0.05, 1.5, -3.0],
    [0.1, 0.3, -1.0, 0.02, 0.5, -0.25],
    [-0.2, 0.05, 0.5, 0.0, -0.75, 0.1],
    [0.3, -0.6, 0.25, 0.04, 0.2, 0.05],
    [-0.05, 0.2, -0.1, -0.01, 0.1, -0.5],
], dtype=f32)

SGD_CASES = [
    # name, lr, momentum, dampening, nesterov, weight_decay
    ("plain", 0.1, 0.0, 0.0, False, 0.0),
    ("momentum_dampening", 0.1, 0.9, 0.25, False, 0.0),
    ("nesterov", 0.1, 0.9, 0.0, True, 0.0),
    ("momentum_weight_decay", 0.1, 0.5, 0.0, False, 0.1),
    ("nesterov_weight_decay", 0.05, 0.9, 0.0, True, 0.01),
]

ADAM_CASES = [
    # name, lr, beta1, beta2, eps, weight_decay, decoupled (AdamW), amsgrad
    ("adam", 0.01, 0.9, 0.999, 1e-8, 0.0, False, False),
    ("adam_l2", 0.01, 0.9, 0.999, 1e-8, 0.1, False, False),
    ("adam_l2_amsgrad", 0.01, 0.8, 0.99, 1e-6, 0.1, False, True),
    ("adamw", 0.01, 0.9, 0.999, 1e-8, 0.1, True, False),
    ("adamw_amsgrad", 0.02, 0.8, 0.99, 1e-8, 0.5, True, True),
]


def with_decay(scale, w):
    """scale * w on the decayed prefix, 0 elsewhere (float32)."""
    out = np.zeros_like(w)
    out[:DECAYED] = f32(scale) * w[:DECAYED]
    return out


def sgd(lr, momentum, dampening, nesterov, weight_decay):
    lr, momentum, dampening, weight_decay = f32(lr), f32(momentum), f32(dampening), f32(weight_decay)
    w = INITIAL.copy()
    buf = np.zeros_like(w)
    trace = []
    for t in range(1, STEPS + 1):
        g = GRADS[t - 1].copy()
        if weight_decay != 0:
            g[:DECAYED] = g[:DECAYED] + with_decay(weight_decay, w)[:DECAYED]
        if momentum != 0:
            if t == 1:
                buf = g.copy()
            else:
                buf = momentum * buf + (f32(1) - dampening) * g
            g = g + momentum * buf if nesterov else buf
        w = w - lr * g
        trace.append(w.copy())
    return trace, buf


def adam(lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad):
    lr, beta1, beta2, eps, weight_decay = f32(lr), f32(beta1), f32(beta2), f32(eps), f32(weight_decay)
    w = INITIAL.copy()
    m, v, vmax = np.zeros_like(w), np.zeros_like(w), np.zeros_like(w)
    trace = []
    for t in range(1, STEPS + 1):
        g = GRADS[t - 1].copy()
        if weight_decay != 0:
            if decoupled:
                keep = f32(1.0 - float(lr) * float(weight_decay))
                w[:DECAYED] = w[:DECAYED] * keep
            else:
                g[:DECAYED] = g[:DECAYED] + with_decay(weight_decay, w)[:DECAYED]
        m = beta1 * m + (f32(1) - beta1) * g
        v = beta2 * v + (f32(1) - beta2) * g * g
        bias_correction1 = 1.0 - float(beta1) ** t
        bias_correction2 = 1.0 - float(beta2) ** t
        step_size = f32(float(lr) / bias_correction1)
        bias_correction2_sqrt = f32(np.sqrt(bias_correction2))
        if amsgrad:
            vmax = np.maximum(vmax, v)
            second = vmax
        else:
            second = v
        denom = np.sqrt(second) / bias_correction2_sqrt + eps
        w = w - step_size * m / denom
        trace.append(w.copy())
    return trace, m, v, vmax


def c(x):
    """A float32 as a C++ literal that reads back to the same float."""
    s = "%.9g" % float(x)
    if "e" not in s and "." not in s and "inf" not in s and "nan" not in s:
        s += ".0"
    return s + "f"


def row(values):
    return "{" + ", ".join(c(x) for x in values) + "}"


def rows(matrix, indent):
    return "{\n" + ",\n".join(indent + "    " + row(r) for r in matrix) + "}"


def main():
    for a in (INITIAL, GRADS):
        assert a.dtype == np.float32
    print("// Generated by scripts/reference/optim_reference.py: PyTorch's documented SGD, Adam and AdamW in")
    print("// numpy float32 (see the script for the operation order). Do not edit; regenerate with")
    print("//   python3 scripts/reference/optim_reference.py > tests/optim_reference.hpp")
    print("#pragma once")
    print()
    print("namespace cudl::testing::optim_reference {")
    print()
    print(f"constexpr int kSteps = {STEPS};")
    print(f"constexpr int kParams = {PARAMS};")
    print(f"constexpr int kDecayed = {DECAYED};  // weight decay on these leading parameters only")
    print(f"constexpr float kInitial[kParams] = {row(INITIAL)};")
    print(f"// The gradient given before each step.")
    print(f"constexpr float kGrads[kSteps][kParams] = {rows(GRADS, '')};")
    print()
    print("struct SgdCase {")
    print("  const char* name;")
    print("  float lr, momentum, dampening;")
    print("  bool nesterov;")
    print("  float weight_decay;")
    print("  float w[kSteps][kParams];  // the parameters after each step")
    print("  float momentum_buffer[kParams];  // after the last step (zeros without momentum)")
    print("};")
    print()
    print("constexpr SgdCase kSgd[] = {")
    for name, lr, mom, damp, nest, wd in SGD_CASES:
        trace, buf = sgd(lr, mom, damp, nest, wd)
        print(f'    {{"{name}", {c(lr)}, {c(mom)}, {c(damp)}, {"true" if nest else "false"}, {c(wd)},')
        print(f"     {rows(trace, '    ')},")
        print(f"     {row(buf)}}},")
    print("};")
    print()
    print("struct AdamCase {")
    print("  const char* name;")
    print("  float lr, beta1, beta2, eps, weight_decay;")
    print("  bool decoupled, amsgrad;  // decoupled: AdamW")
    print("  float w[kSteps][kParams];  // the parameters after each step")
    print("  float exp_avg[kParams], exp_avg_sq[kParams], max_exp_avg_sq[kParams];  // after the last step")
    print("};")
    print()
    print("constexpr AdamCase kAdam[] = {")
    for name, lr, b1, b2, eps, wd, dec, ams in ADAM_CASES:
        trace, m, v, vmax = adam(lr, b1, b2, eps, wd, dec, ams)
        print(f'    {{"{name}", {c(lr)}, {c(b1)}, {c(b2)}, {c(eps)}, {c(wd)}, {"true" if dec else "false"}, '
              f'{"true" if ams else "false"},')
        print(f"     {rows(trace, '    ')},")
        print(f"     {row(m)},")
        print(f"     {row(v)},")
        print(f"     {row(vmax)}}},")
    print("};")
    print()
    print("}  // namespace cudl::testing::optim_reference")


if __name__ == "__main__":
    main()

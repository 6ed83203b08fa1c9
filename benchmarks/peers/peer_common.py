"""Helpers shared by the Python peers (no numpy or torch import at module level)."""
import contextlib


def cpu_name():
    """The CPU's model name from /proc/cpuinfo, or "unknown CPU"."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


PRECISIONS = ("fp32", "tf32", "bf16")
PRECISION_HELP = ("arithmetic of the products (matrix products, convolutions): fp32 strict (default); "
                  "tf32 on the GPU's tensor cores (the CPU runs fp32); bf16 under torch.autocast(dtype="
                  "torch.bfloat16), cudl's --precision bf16 (parameters, gradients and optimizer state stay fp32)")


def set_torch_precision(torch, precision):
    """fp32: strict IEEE float32 products and convolutions; tf32: cuBLAS and cuDNN may use tf32
    tensor cores; bf16: what autocast leaves in float32 is strict, as in fp32. `torch` is the
    imported module (so importing this file never starts torch)."""
    tf32 = precision == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.set_float32_matmul_precision("high" if tf32 else "highest")


def precision_run(precision, device_type):
    """The arithmetic that runs: tf32 on the CPU is fp32 (as cudl's Backend::precision() says)."""
    return "fp32" if precision == "tf32" and device_type == "cpu" else precision


def autocast(torch, precision, device_type, cache_enabled=True):
    """A fresh context for the region whose products run in `precision`: torch.autocast to
    bfloat16 for bf16 (device_type "cuda" or "cpu"), else a context that does nothing. Inside CUDA
    graph capture pass cache_enabled=False: autocast's cache of weight casts must not outlive the
    capture (torch.cuda.make_graphed_callables' documentation says so)."""
    if precision != "bf16":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device_type, dtype=torch.bfloat16, cache_enabled=cache_enabled)

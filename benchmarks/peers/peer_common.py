"""Helpers shared by the Python peers (no numpy or torch import at module level)."""


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


def set_torch_precision(torch, precision):
    """fp32: strict IEEE float32 products and convolutions; tf32: cuBLAS and cuDNN may use tf32
    tensor cores. `torch` is the imported module (so importing this file never starts torch)."""
    tf32 = precision == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.set_float32_matmul_precision("high" if tf32 else "highest")

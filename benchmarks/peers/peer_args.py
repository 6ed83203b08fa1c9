"""The command-line options shared by the Python peers of bench_dbn (no numpy import here, so a
peer can read --threads before numpy or torch starts its thread pools)."""
import argparse
import os


def common_parser(description, threads_help):
    """An ArgumentParser with the options of the 2014 algorithm that every peer accepts."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--data", default=os.environ.get("CUDL_DATA", "/usr/share/datasets/fashion-mnist"),
                   help="directory with IDX files (default: $CUDL_DATA, else Fashion-MNIST)")
    p.add_argument("--layers", default="784,800,800,10", help="layer sizes (default 784,800,800,10)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--learn-rate", type=float, default=0.1)
    p.add_argument("--decay", type=float, default=0.9, help="learning-rate factor after each epoch")
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--l2", type=float, default=1e-4)
    p.add_argument("--seed", type=int, default=2014)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help=threads_help)
    p.add_argument("--json", metavar="FILE", help="write the results as JSON to FILE")
    return p

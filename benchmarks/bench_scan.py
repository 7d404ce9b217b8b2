"""Benchmark (not a test): reference vs chunked selective scan, forward+backward, at MambaHash's training
shapes on CPU; and the forward time of MambaHash-48 at 224×224, batch 2.

    python benchmarks/bench_scan.py [--repeats 3] [--threads N]

Prints median wall times; the goal of the chunked backend is ≥ 5× the reference's speed.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from mh.model import MambaHash
from mh.scan import selective_scan

SHAPES = [  # (b, d, l, n): one scan group at training shapes
    (2, 87, 3136, 1),  # a stage-3 group (348 / 4 channels) at the longest sequence, as in the issue
    (2, 128, 784, 1),
    (2, 16, 3136, 1),  # a stage-1 group at 224×224
]


def time_call(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def scan_step(shape, backend):
    b, d, length, n = shape
    u, delta = torch.randn(b, d, length, requires_grad=True), torch.randn(b, d, length, requires_grad=True)
    A = -torch.rand(d, n).add(0.5).requires_grad_()
    B, C = torch.randn(b, 1, n, length, requires_grad=True), torch.randn(b, 1, n, length, requires_grad=True)
    D, bias = torch.ones(d, requires_grad=True), torch.zeros(d, requires_grad=True)

    def step():
        y = selective_scan(u, delta, A, B, C, D, delta_bias=bias, delta_softplus=True, backend=backend)
        y.sum().backward()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")
    print(f"{'shape (b, d, l, n)':<24}{'reference s':>13}{'chunked s':>12}{'speed-up':>10}")
    for shape in SHAPES:
        reference = time_call(scan_step(shape, "reference"), args.repeats)
        chunked = time_call(scan_step(shape, "chunked"), args.repeats)
        print(f"{str(shape):<24}{reference:>13.3f}{chunked:>12.3f}{reference / chunked:>9.1f}×")

    model = MambaHash(48, scan_backend="chunked").eval()
    images = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        forward = time_call(lambda: model(images), args.repeats)
    print(f"MambaHash-48 forward, 224×224, batch 2, chunked scan: {forward:.2f} s ({2 / forward:.1f} img/s)")


if __name__ == "__main__":
    main()

"""Benchmark (not a test): ``mh.metrics.mean_average_precision`` vs ``reference_mean_average_precision``, the
per-query numpy loop in the style of DeepHash-pytorch's CalcTopMap, at CIFAR-10's scale: 1,000 queries ×
54,000 database items × 64 bits.

    python benchmarks/bench_map.py [--device cpu|cuda] [--queries 1000] [--database 54000] [--bits 64]

Both rank with a stable sort (ties by database index), so both give the same mAP; the goal is ≥ 10× on
2 CPU cores. (With --device cuda the vectorised version runs its matrix work on the GPU.)
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from mh.metrics import mean_average_precision, reference_mean_average_precision


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--database", type=int, default=54000)
    parser.add_argument("--bits", type=int, default=64)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    classes = 10
    # codes correlated with labels, so that the mAP is far from chance and ties are common
    centres = rng.choice([-1.0, 1.0], size=(classes, args.bits))
    query_labels, db_labels = rng.integers(0, classes, args.queries), rng.integers(0, classes, args.database)
    flip_q = rng.random((args.queries, args.bits)) < 0.3
    flip_d = rng.random((args.database, args.bits)) < 0.3
    query_codes = np.where(flip_q, -centres[query_labels], centres[query_labels])
    db_codes = np.where(flip_d, -centres[db_labels], centres[db_labels])
    one_hot = np.eye(classes)

    start = time.perf_counter()
    loop = reference_mean_average_precision(query_codes, db_codes, one_hot[query_labels], one_hot[db_labels])
    loop_time = time.perf_counter() - start

    q, d = torch.tensor(query_codes, dtype=torch.float32), torch.tensor(db_codes, dtype=torch.float32)
    if args.device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    vectorised = mean_average_precision(q, d, query_labels, db_labels, device=args.device)
    if args.device == "cuda":
        torch.cuda.synchronize()
    vectorised_time = time.perf_counter() - start

    print(
        f"{args.queries} queries × {args.database} database × {args.bits} bits, torch {torch.get_num_threads()} threads"
    )
    print(f"per-query numpy loop : mAP {loop:.6f} in {loop_time:.2f} s")
    print(f"mh.metrics ({args.device:4s})    : mAP {vectorised:.6f} in {vectorised_time:.2f} s")
    print(f"speed-up {loop_time / vectorised_time:.1f}×, |difference| {abs(loop - vectorised):.2e}")


if __name__ == "__main__":
    main()

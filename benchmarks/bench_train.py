"""Training-step and encoding throughput of a registry network: the reference path and the fast path side by side.

    python benchmarks/bench_train.py --model mambahash --size reduced --image-size 32 --batch-size 16 \\
        --device cpu --json results/bench/train-cpu-smoke.json

"eager" is the fast path ``off`` (``mh.fastpath``): PIL decodes and augments each image in a DataLoader, the stock
optimizer, fp32. "fast" is ``--fast-path`` (default ``compiled``). A training step is what ``mh.train`` runs: the
batch from its loader, forward, memory-bank update, loss, backward, optimizer update (``mh.engine.training_step``).
Each path warms up (``--warmup`` steps: torch.compile compiles there; their time is reported as
``first_steps_seconds``), then the median of ``--steps`` timed steps gives img/s. The two paths' steps alternate
(eager, fast, eager, …), so that a change in the machine's speed falls on both alike (on a shared 2-core VM the
speed of one path alone varied by 1.5× between runs); on CUDA every timing waits for the device
(``torch.cuda.synchronize``). Encoding: the median over ``--encode-batches`` batches of each path, interleaved,
after one warm-up batch. Images are synthetic (seeded uint8 noise at CIFAR's 32 px, as PIL images), so no
dataset is needed; the numbers are throughput only, never accuracy.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from mh.data import ImagePool, PoolSubset, build_transform
from mh.encode import encode, resolve_device
from mh.engine import GlobalBatchSampler, train_loader, training_step
from mh.fastpath import FAST_PATHS, fast_plan
from mh.manifest import device_description, run_manifest
from mh.profiles import Profile
from mh.registry import MODEL_SIZES, available_models, build_training, resolve_model_name

NUM_CLASSES = 10
PROFILED_STEPS = 5


def synthetic_set(count: int, image_size: int, train: bool, seed: int = 0) -> PoolSubset:
    """``count`` seeded 32×32 noise images with random classes, through the paper's pipeline at ``image_size``."""
    rng = np.random.default_rng(seed)
    pool = ImagePool(
        rng.integers(0, NUM_CLASSES, count),
        "synthetic noise",
        arrays=rng.integers(0, 256, (count, 32, 32, 3), dtype=np.uint8),
    )
    return PoolSubset(pool, np.arange(count), NUM_CLASSES, build_transform(train, image_size))


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class BenchPath:
    """One path's training set-up, stepped one training step at a time (the batch from its own loader)."""

    def __init__(self, args, fast_path: str, device: torch.device):
        self.fast_path, self.device, self.args = fast_path, device, args
        self.profile = Profile(
            "bench", image_size=args.image_size, epochs=1, batch_size=args.batch_size, model_size=args.size,
            fast_path=fast_path, learning_rate=args.lr,
        )  # fmt: skip
        dataset = synthetic_set(
            (args.warmup + args.steps + PROFILED_STEPS) * args.batch_size, args.image_size, train=True
        )
        torch.manual_seed(0)
        self.parts = build_training(args.model, args.bits, self.profile, len(dataset), NUM_CLASSES, 0.01, device)
        self.parts.compile_network()
        sampler = GlobalBatchSampler(len(dataset), args.batch_size, 0, 1, seed=0)
        generator = torch.Generator().manual_seed(0)
        self.batches = iter(train_loader(dataset, self.profile, device, generator, sampler))  # a cache decodes here
        self.parts.model.train()
        self.seconds: list[float] = []

    def step(self) -> None:
        started = time.perf_counter()
        images, labels, indices = next(self.batches)
        batch = images.to(self.device), labels.to(self.device), indices.to(self.device)
        training_step(self.parts, *batch, self.device, accumulate_gradients=False)
        synchronize(self.device)
        self.seconds.append(time.perf_counter() - started)

    def summary(self, encode_rate: float) -> dict:
        median = statistics.median(self.seconds[self.args.warmup :])
        return {
            "img_per_s": self.args.batch_size / median,
            "median_step_ms": 1000 * median,
            "first_steps_seconds": sum(self.seconds[: self.args.warmup]),
            "plan": fast_plan(self.fast_path, self.device).describe(),
            "encode_img_per_s": encode_rate,
        }


def time_paths(args, device: torch.device) -> tuple[dict, dict]:
    """Both paths warmed up, then their timed steps interleaved (eager, fast, eager, …), so that a change in
    the machine's speed during the run (a busy neighbour, frequency scaling) falls on both alike."""
    paths = [BenchPath(args, "off", device), BenchPath(args, args.fast_path, device)]
    for _ in range(args.warmup + args.steps):
        for path in paths:
            path.step()
    rates = time_encoding(args, paths, device)
    summaries = [path.summary(rate) for path, rate in zip(paths, rates, strict=True)]
    if args.profile_out:
        summaries[1]["profile_top_operations"] = profile_steps(paths[1], PROFILED_STEPS, args.profile_out)
    return tuple(summaries)


def profile_steps(path: BenchPath, steps: int, out: Path) -> list[dict]:
    """Where a path's step spends its time: torch.profiler over ``steps`` more steps, the top operations by own
    time, written as a table to ``out`` and returned as rows."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if path.device.type == "cuda" else [])
    with profile(activities=activities) as profiler:
        for _ in range(steps):
            path.step()
    averages = profiler.key_averages()
    total = sum(event.self_cpu_time_total for event in averages) or 1
    rows = [
        {"operation": event.key[:80], "self_cpu_share": event.self_cpu_time_total / total, "calls": event.count}
        for event in sorted(averages, key=lambda event: event.self_cpu_time_total, reverse=True)[:15]
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(averages.table(sort_by="self_cpu_time_total", row_limit=25) + "\n")
    return rows


def time_encoding(args, paths, device: torch.device) -> list[float]:
    """Median img/s over batches of each path's evaluation (after one warm-up batch), batches interleaved."""
    batch = args.encode_batch_size
    dataset = synthetic_set(batch * (args.encode_batches + 1), args.image_size, train=False, seed=1)
    seconds = [[] for _ in paths]
    for number in range(args.encode_batches + 1):
        rows = range(number * batch, (number + 1) * batch)
        for path, times in zip(paths, seconds, strict=True):
            started = time.perf_counter()
            encode(path.parts.model, dataset, batch, device, 0, False, fast_path=path.fast_path, rows=rows,
                   forward=path.parts.forward)  # fmt: skip
            synchronize(device)
            times.append(time.perf_counter() - started)
    return [batch / statistics.median(times[1:]) for times in seconds]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="mambahash", help=f"one of {', '.join(available_models())}")
    parser.add_argument("--size", default="reduced", choices=MODEL_SIZES)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--bits", type=int, default=48)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--fast-path", default="compiled", choices=FAST_PATHS[1:])
    parser.add_argument("--steps", type=int, default=20, help="timed steps per path")
    parser.add_argument("--warmup", type=int, default=3, help="untimed first steps (compilation happens here)")
    parser.add_argument("--encode-batch-size", type=int, default=128)
    parser.add_argument("--encode-batches", type=int, default=4)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--json", type=Path, help="write the result here")
    parser.add_argument("--profile-out", type=Path, help="profile 5 more fast steps; write the operation table here")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.model = resolve_model_name(args.model)
    device = resolve_device(args.device)
    eager, fast = time_paths(args, device)
    result = {
        "device": device_description(device),
        "model": args.model,
        "size": args.size,
        "image_size": args.image_size,
        "batch_size": args.batch_size,
        "eager_img_per_s": eager["img_per_s"],
        "fast_img_per_s": fast["img_per_s"],
        "speedup": fast["img_per_s"] / eager["img_per_s"],
        "encode_eager_img_per_s": eager["encode_img_per_s"],
        "encode_fast_img_per_s": fast["encode_img_per_s"],
        "settings": {**{k: str(v) for k, v in vars(args).items()}, "threads": torch.get_num_threads()},
        "paths": {"eager": eager, "fast": fast},
        "manifest": run_manifest("bench", device, command=" ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])])),
    }
    print(f"{args.model} ({args.size}), {args.image_size} px, batch {args.batch_size}, {device}:")
    print(f"{'path':<8}{'train img/s':>13}{'step ms':>10}{'warm-up s':>11}{'encode img/s':>14}  plan")
    for name, row in (("eager", eager), ("fast", fast)):
        print(
            f"{name:<8}{row['img_per_s']:>13.1f}{row['median_step_ms']:>10.1f}{row['first_steps_seconds']:>11.1f}"
            f"{row['encode_img_per_s']:>14.1f}  {row['plan']}"
        )
    print(f"training speed-up {result['speedup']:.2f}×")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {os.path.relpath(args.json)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Does the allocator setting that ``make reproduce`` gives its kernels pay? ``bench_train.py`` under glibc's default
and under ``mh.repro.reproduce.ALLOCATOR_SETTINGS``, each in a fresh process, the two alternating round by round.

    python benchmarks/bench_allocator.py --model mpvh --rounds 2 --json results/bench/allocator-cpu-mpvh.json

Throughput (training step and encoding, eager and fast path) comes from each child's ``bench_train.py`` JSON; peak
resident memory, minor page faults and system time from the child's own resource usage (``os.wait4``), so that the
memory the setting keeps is measured beside the time it saves. Rows: one per environment, the median over rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mh.io import write_json
from mh.manifest import device_description, run_manifest
from mh.repro.reproduce import ALLOCATOR_SETTINGS

BENCH_TRAIN = Path(__file__).with_name("bench_train.py")
THROUGHPUT = {
    "train_eager_img_per_s": ("eager", "img_per_s"),
    "train_fast_img_per_s": ("fast", "img_per_s"),
    "encode_eager_img_per_s": ("eager", "encode_img_per_s"),
    "encode_fast_img_per_s": ("fast", "encode_img_per_s"),
}
ENVIRONMENTS = {"glibc default": {}, "ALLOCATOR_SETTINGS": ALLOCATOR_SETTINGS}


def measure(command: list[str], environment: dict[str, str], json_path: Path) -> dict:
    """Run ``bench_train.py`` once with ``environment`` added (allocator variables the caller set are removed
    first, so that "glibc default" means it); its throughput and the child's peak RSS, faults and times."""
    child_environment = {name: value for name, value in os.environ.items() if name not in ALLOCATOR_SETTINGS}
    started = time.perf_counter()
    child = subprocess.Popen(
        [*command, "--json", str(json_path)],
        env=child_environment | environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(child.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"bench_train.py failed under {environment or 'the default environment'}: {command}")
    paths = json.loads(json_path.read_text())["paths"]
    return {
        **{column: paths[path][key] for column, (path, key) in THROUGHPUT.items()},
        "peak_rss_mib": usage.ru_maxrss / 1024,  # Linux reports kilobytes
        "minor_faults": usage.ru_minflt,
        "user_seconds": usage.ru_utime,
        "system_seconds": usage.ru_stime,
        "wall_seconds": time.perf_counter() - started,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mpvh")
    parser.add_argument("--size", default="reduced", choices=["reduced", "paper"])
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--encode-batches", type=int, default=4)
    parser.add_argument("--fast-path", default="fused", help="bench_train.py's fast path (the cpu profile's: fused)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds of the two environments")
    parser.add_argument("--json", type=Path)
    arguments = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(arguments)
    command = [
        sys.executable, str(BENCH_TRAIN), "--model", args.model, "--size", args.size,
        "--image-size", str(args.image_size), "--batch-size", str(args.batch_size), "--device", "cpu",
        "--fast-path", args.fast_path, "--steps", str(args.steps), "--encode-batches", str(args.encode_batches),
    ]  # fmt: skip
    samples: dict[str, list[dict]] = {name: [] for name in ENVIRONMENTS}
    with tempfile.TemporaryDirectory() as scratch:
        for round_index in range(args.rounds):
            for name, environment in ENVIRONMENTS.items():
                samples[name].append(measure(command, environment, Path(scratch) / f"{round_index}.json"))
                print(f"round {round_index + 1}/{args.rounds}, {name}: {samples[name][-1]}", flush=True)
    rows = {name: {key: statistics.median(s[key] for s in runs) for key in runs[0]} for name, runs in samples.items()}
    default, tuned = rows["glibc default"], rows["ALLOCATOR_SETTINGS"]
    ratios = {key: tuned[key] / default[key] for key in (*THROUGHPUT, "peak_rss_mib", "system_seconds")}
    print(f"{args.model} ({args.size}), {args.image_size} px, batch {args.batch_size}, {device_description('cpu')}:")
    print(f"{'environment':20s}" + "".join(f"{key:>24s}" for key in default))
    for name, row in rows.items():
        print(f"{name:20s}" + "".join(f"{value:24.1f}" for value in row.values()))
    print("tuned / default: " + ", ".join(f"{key} {ratio:.2f}×" for key, ratio in ratios.items()))
    if args.json:
        result = {
            "model": args.model,
            "size": args.size,
            "image_size": args.image_size,
            "batch_size": args.batch_size,
            "settings": ALLOCATOR_SETTINGS,
            "median": rows,
            "tuned_over_default": ratios,
            "rounds": samples,
            "manifest": run_manifest("bench", "cpu", command=" ".join([Path(sys.argv[0]).name, *arguments])),
        }
        print(f"wrote {os.path.relpath(write_json(args.json, result))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

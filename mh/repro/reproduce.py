"""Regenerate every table and figure: run the numbered notebooks in order with papermill.

    python -m mh.repro.reproduce [--profile auto|smoke|gpu|paper] [--data-dir DIR] [--only 03_training ...]

``make reproduce`` calls this. ``auto`` is smoke on a CPU and gpu when CUDA is present. It first checks its
inputs (the notebooks named, CIFAR-10 for the notebooks that read it) and stops with exit status 2 before
touching any output when one is missing. Then it clears the outputs it will rewrite (figures/,
results/tables/, this profile's results/runs/, the executed notebooks and results/manifest.json), so a stale
file never passes for a new one. Executed copies go to notebooks/executed/; a failing cell stops the run
with exit status 1 and leaves its executed notebook showing the error. results/manifest.json records
commit, versions, device, profile and per-notebook wall time.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from mh.data import DataNotFoundError, locate_cifar10
from mh.io import PROJECT_ROOT, write_json
from mh.repro.manifest import run_manifest
from mh.repro.profiles import PROFILES, resolve_profile

ROOT = PROJECT_ROOT
NOTEBOOKS = (
    "01_ssm_zoh_discretization",
    "02_scan_directions",
    "03_training",
    "04_tables_map",
    "05_params_flops",
    "06_gradcam",
    "07_retrieval_at_scale",
)
NEEDS_CIFAR10 = {"03_training", "04_tables_map", "06_gradcam", "07_retrieval_at_scale"}


def clear_outputs(root: Path, profile: str, notebooks: list[str]) -> list[Path]:
    """Remove what this run rewrites: every output when all notebooks run, else only theirs. Returns what went."""
    removed = []
    everything = len(notebooks) == len(NOTEBOOKS)
    candidates = [root / "notebooks" / "executed" / f"{name}.ipynb" for name in notebooks]
    for folder in (root / "figures", root / "results" / "tables"):
        candidates += [
            p for p in folder.glob("*") if p.is_file() and (everything or p.name[:2] in {n[:2] for n in notebooks})
        ]
    if everything:
        candidates += [root / "results" / "manifest.json", root / "results" / "runs" / profile]
    for path in candidates:
        if path.is_dir():
            shutil.rmtree(path)
            removed.append(path)
        elif path.exists():
            path.unlink()
            removed.append(path)
    return removed


def run_notebooks(
    profile: str = "auto",
    data_dir: str | None = None,
    seed: int = 2025,
    notebooks: list[str] | None = None,
    root: Path = ROOT,
) -> dict:
    """Execute ``notebooks`` (default: all, in order) and write results/manifest.json. Raises on a failing cell."""
    import papermill

    resolved = resolve_profile(profile).name
    notebooks = list(notebooks or NOTEBOOKS)
    unknown = [name for name in notebooks if name not in NOTEBOOKS]
    if unknown:
        raise ValueError(f"unknown notebooks {unknown}; expected names from {NOTEBOOKS}")
    if set(notebooks) & NEEDS_CIFAR10:
        locate_cifar10(data_dir)  # before any output is touched: a missing dataset loses nothing
    clear_outputs(root, resolved, notebooks)
    executed_dir = root / "notebooks" / "executed"
    executed_dir.mkdir(parents=True, exist_ok=True)
    parameters = {"PROFILE": resolved, "SEED": seed, "DEVICE": "auto", "DATA_DIR": data_dir, "OUT_DIR": str(root)}
    timings = {}
    for name in notebooks:
        print(f"[reproduce] {name} (profile {resolved})", flush=True)
        begin = time.perf_counter()
        try:
            papermill.execute_notebook(
                root / "notebooks" / f"{name}.ipynb",
                executed_dir / f"{name}.ipynb",
                parameters=parameters,
                kernel_name="python3",
                cwd=str(root / "notebooks"),
                progress_bar=False,
            )
        finally:
            timings[name] = round(time.perf_counter() - begin, 1)
        print(f"[reproduce] {name} done in {timings[name]:.0f} s", flush=True)
    manifest_path = root / "results" / "manifest.json"
    if len(notebooks) < len(NOTEBOOKS) and manifest_path.exists():
        # a partial re-run keeps the other notebooks' timings from the last full run
        previous = json.loads(manifest_path.read_text())
        timings = {**previous.get("notebooks_wall_seconds", {}), **timings}
    manifest = run_manifest(
        resolved,
        notebooks_wall_seconds=timings,
        rerun=notebooks,
        total_wall_seconds=round(sum(timings.values()), 1),
        outputs=sorted(
            str(p.relative_to(root))
            for folder in ("figures", "results/tables")
            for p in (root / folder).glob("*")
            if p.is_file()
        ),
    )
    write_json(manifest_path, manifest)
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mh.repro.reproduce", description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="auto", choices=["auto", *PROFILES])
    parser.add_argument("--data-dir", help="CIFAR-10 location (default $MH_DATA_DIR, else ./data)")
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--only", nargs="+", metavar="NOTEBOOK", help=f"a subset of {', '.join(NOTEBOOKS)}")
    args = parser.parse_args(argv)
    try:
        manifest = run_notebooks(args.profile, args.data_dir, args.seed, args.only)
    except (ValueError, DataNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # papermill's PapermillExecutionError and kernel failures
        print(f"[reproduce] failed: {type(error).__name__}: {str(error)[:2000]}", file=sys.stderr)
        print("[reproduce] the executed notebook in notebooks/executed/ shows the failing cell", file=sys.stderr)
        return 1
    print(f"[reproduce] all done in {manifest['total_wall_seconds']:.0f} s; wrote results/manifest.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

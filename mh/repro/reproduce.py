"""Regenerate every table and figure: run the numbered notebooks in order with papermill.

    python -m mh.repro.reproduce [--profile auto|smoke|gpu|paper] [--data-dir DIR] [--only 03_training ...]

``make reproduce`` calls this. ``auto`` is smoke on a CPU and gpu when CUDA is present. It first checks its
inputs (the notebooks named, CIFAR-10 for the notebooks that read it) and stops with exit status 2 before
touching any output when one is missing. Then it clears the outputs it will rewrite (figures/,
results/tables/, this profile's results/runs/, the executed notebooks and results/manifest.json), so a stale
file never passes for a new one. A failing cell stops the run with exit status 1 and leaves its executed
notebook showing the error.

Executed notebooks, with their outputs and figures inline, go to ``notebooks/executed/`` and are committed,
so a reader browsing the repository sees them. They are made reproducible: progress bars are off
(``TQDM_DISABLE``), the data directory reaches the kernel through ``$MH_DATA_DIR`` instead of a parameter,
and every absolute path of this machine in an output or in papermill's metadata is replaced by a
placeholder (``scrub_machine_paths``); papermill's own timing metadata stays.

results/manifest.json records commit, versions, device, profile, per-notebook wall time and the SHA-256 of
every output. When a run reproduces every output byte for byte, the manifest of the run that first wrote
them is kept (this run's times go to results/cache/reproduce-log.jsonl), so re-running an unchanged commit
leaves ``git status`` clean.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

import nbformat

from mh.data import DataNotFoundError, locate_cifar10
from mh.io import PROJECT_ROOT, atomic_output, write_json
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


def scrub_machine_paths(notebook_path: Path, replacements: dict[str, str]) -> None:
    """Replace this machine's absolute paths (keys) by placeholders (values) in a notebook's outputs and metadata;
    drop the kernel's per-cell timestamps and give papermill's parameters cell a fixed id."""
    ordered = sorted((key for key in replacements if key), key=len, reverse=True)  # longest first: nested paths

    def scrub(text: str) -> str:
        for key in ordered:
            text = text.replace(key, replacements[key])
        return text

    notebook = nbformat.read(notebook_path, as_version=4)
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)  # the kernel's per-cell timestamps (papermill keeps its own)
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell.id = "injected-parameters"  # papermill draws a random id for the cell it adds
        for output in cell.get("outputs", []):
            if "text" in output:
                output["text"] = scrub(output["text"])
            for kind, value in output.get("data", {}).items():
                if kind.startswith("text/") and isinstance(value, str):
                    output["data"][kind] = scrub(value)
            if "traceback" in output:
                output["traceback"] = [scrub(line) for line in output["traceback"]]
    papermill = notebook.metadata.get("papermill", {})
    for key in ("input_path", "output_path"):
        if key in papermill:
            papermill[key] = scrub(papermill[key])
    with atomic_output(notebook_path) as temporary:
        nbformat.write(notebook, temporary)


def machine_paths(root: Path) -> dict[str, str]:
    """Absolute paths that would make an executed notebook differ between machines, and what replaces them
    (the data directory reaches the kernels as $MH_DATA_DIR: ``kernel_environment``)."""
    # braces, not <angle brackets>: in an HTML table output a <name> would be read as a tag and vanish
    paths = {str(root): "{repository}", sys.prefix: "{python-env}", str(Path.home()): "~"}
    data_dir = os.environ.get("MH_DATA_DIR")
    if data_dir:
        paths[data_dir] = paths[str(Path(data_dir).resolve())] = "{MH_DATA_DIR}"
    return paths


def output_digests(root: Path) -> dict[str, str]:
    """SHA-256 of every file under figures/ and results/tables/, by path relative to ``root``."""
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for folder in ("figures", "results/tables", "results/timings")
        for path in sorted((root / folder).glob("*"))
        if path.is_file()
    }


@contextlib.contextmanager
def kernel_environment(data_dir: str | None):
    """Environment the notebook kernels inherit: no progress bars, the data directory as $MH_DATA_DIR."""
    changes = {"TQDM_DISABLE": "1"}
    if data_dir:
        changes["MH_DATA_DIR"] = str(Path(data_dir).resolve())
    saved = {name: os.environ.get(name) for name in changes}
    os.environ.update(changes)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def execute(name: str, root: Path, parameters: dict) -> float:
    """Run one notebook with papermill into notebooks/executed/; returns its wall seconds (also on failure)."""
    import papermill

    print(f"[reproduce] {name} (profile {parameters['PROFILE']})", flush=True)
    begin = time.perf_counter()
    executed = root / "notebooks" / "executed" / f"{name}.ipynb"
    try:
        papermill.execute_notebook(
            root / "notebooks" / f"{name}.ipynb",
            executed,
            parameters=parameters,
            kernel_name="python3",
            cwd=str(root / "notebooks"),
            progress_bar=False,
        )
    finally:
        if executed.exists():
            scrub_machine_paths(executed, machine_paths(root))
    seconds = round(time.perf_counter() - begin, 1)
    print(f"[reproduce] {name} done in {seconds:.0f} s", flush=True)
    return seconds


def run_notebooks(
    profile: str = "auto",
    data_dir: str | None = None,
    seed: int = 2025,
    notebooks: list[str] | None = None,
    root: Path = ROOT,
) -> dict:
    """Execute ``notebooks`` (default: all, in order) and write results/manifest.json. Raises on a failing cell."""
    resolved = resolve_profile(profile).name
    notebooks = list(notebooks or NOTEBOOKS)
    unknown = [name for name in notebooks if name not in NOTEBOOKS]
    if unknown:
        raise ValueError(f"unknown notebooks {unknown}; expected names from {NOTEBOOKS}")
    if set(notebooks) & NEEDS_CIFAR10:
        locate_cifar10(data_dir)  # before any output is touched: a missing dataset loses nothing
    manifest_path = root / "results" / "manifest.json"
    previous = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    clear_outputs(root, resolved, notebooks)
    (root / "notebooks" / "executed").mkdir(parents=True, exist_ok=True)
    parameters = {"PROFILE": resolved, "SEED": seed, "DEVICE": "auto"}
    if root != ROOT:
        parameters["OUT_DIR"] = str(root)
    timings = {}
    with kernel_environment(data_dir):
        for name in notebooks:
            timings[name] = execute(name, root, parameters)
    if len(notebooks) < len(NOTEBOOKS):
        # a partial re-run keeps the other notebooks' timings from the last full run
        timings = {**previous.get("notebooks_wall_seconds", {}), **timings}
    digests = output_digests(root)
    this_run = {"notebooks_wall_seconds": timings, "total_wall_seconds": round(sum(timings.values()), 1)}
    if previous.get("output_sha256") == digests and previous.get("profile") == resolved:
        log = root / "results" / "cache" / "reproduce-log.jsonl"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a") as handle:
            handle.write(json.dumps({**run_manifest(resolved), **this_run, "outputs": "unchanged"}) + "\n")
        write_json(manifest_path, previous)  # cleared with the other outputs: put back as it was
        print(f"[reproduce] every output is byte-identical to {manifest_path.name}'s: kept it; times in {log}")
        return {**previous, "this_run": this_run}
    manifest = run_manifest(resolved, **this_run, rerun=notebooks, output_sha256=digests)
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
    seconds = manifest.get("this_run", manifest)["total_wall_seconds"]
    print(f"[reproduce] all done in {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Regenerate every table and figure: run the numbered notebooks in order with papermill.

    python -m mh.repro.reproduce [--profile auto|smoke|gpu|paper] [--data-dir DIR] [--only 03_training ...]
                                 [--fresh-runs] [--download] [--debug]

``make reproduce`` calls this. ``auto`` is smoke on a CPU and gpu when CUDA is present. ``--download``
(``make reproduce DOWNLOAD=1``) first fetches CIFAR-10 through torchvision when the data directory lacks it
(``mh.repro.fetch``).

Nothing is lost when something goes wrong. Every input is checked first (the notebooks named, CIFAR-10 for the
notebooks that read it, papermill and its kernel, write access to the output folders); a missing one stops
the run with exit status 2 before any output is touched, with every problem listed. Each notebook then writes
its figures, tables and executed copy to a staging directory (``results/cache/staging/<notebook>``, through
``$MH_STAGING_DIR``) that replaces that notebook's previous outputs in the profile's own output tree
(``figures/<profile>/NN_*``, ``results/tables/<profile>/NN_*``, ``notebooks/executed/<profile>/NN_*.ipynb``:
``mh.repro.outputs``) only when the whole notebook ran; no other profile's outputs are ever touched. A failing
cell stops the run with exit status 1; the outputs of that notebook and of every later one stay as they were,
and the executed notebook showing the error is kept in ``results/cache/failed/``.

Trained runs (``results/runs/<profile>/``) are a cache, never deleted: ``mh.repro.run_cache.ensure_run`` reuses a
run trained by the same code with the same settings and moves any other aside before training again.
``--fresh-runs`` moves this profile's runs (and its comparison profile's: ``smoke_compare`` under smoke) aside
first, so that every model trains now (the committed manifest's times come from such a run); the manifest
lists which runs were trained and which reused.

Executed notebooks, with their outputs and figures inline, go to ``notebooks/executed/<profile>/`` and are committed,
so a reader browsing the repository sees them. They are made reproducible: progress bars are off
(``TQDM_DISABLE``), the data directory reaches the kernel through ``$MH_DATA_DIR`` instead of a parameter,
and every absolute path of this machine in an output or in papermill's metadata is replaced by a
placeholder (``scrub_machine_paths``); papermill's own timing metadata stays.

results/manifests/<profile>.json records commit, versions, the environment (the lock's SHA-256 and every installed
distribution), device, profile, per-notebook wall time and the SHA-256 of every output. When a run reproduces
every output byte for byte from the same lock, the manifest of the run that first wrote them is kept (this
run's times go to results/cache/reproduce-log.jsonl), so re-running an unchanged commit leaves ``git status``
clean.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from pathlib import Path

from mh import checks
from mh.cli import OneLineParser, add_debug_flag, cli_errors, returns_status
from mh.data import DataNotFoundError, resolve_data_dir
from mh.datasets import dataset_entry
from mh.io import PROJECT_ROOT, read_json, write_json
from mh.manifest import lock_record, run_manifest
from mh.profiles import NOTEBOOK_PROFILES, comparison_profile, resolve_profile
from mh.progress import SWITCH_VARIABLE as PROGRESS_SWITCH_VARIABLE
from mh.repro.checkout_lock import checkout_lock
from mh.repro.fetch import HOW_TO_FETCH, fetch_missing
from mh.repro.outputs import manifest_path, output_folder, output_folders, presented_profile
from mh.repro.play import BATCH_VARIABLE
from mh.repro.readme import BEGIN as README_BEGIN
from mh.repro.readme import update_readme
from mh.repro.run_cache import supersede
from mh.repro.scrub import machine_paths, output_digests, scrub_machine_paths
from mh.repro.workspace import STAGING_VARIABLE

ROOT = PROJECT_ROOT
NOTEBOOKS = (
    "01_ssm_zoh_discretization",
    "02_scan_directions",
    "03_training",
    "04_tables_map",
    "05_params_flops",
    "06_gradcam",
    "07_retrieval_at_scale",
    "08_mpvh",
    "09_cagmh",
)
# the dataset each notebook reads; check_inputs asks its entry of mh.datasets whether the files are there
NOTEBOOK_DATASETS = {
    "03_training": "cifar10",
    "04_tables_map": "cifar10",
    "06_gradcam": "cifar10",
    "07_retrieval_at_scale": "cifar10",
    "08_mpvh": "cifar10",
    "09_cagmh": "cifar10",
}


def datasets_read_by(notebooks) -> list[str]:
    """The datasets (keys of ``mh.datasets.DATASETS``) that ``notebooks`` read, sorted, each once."""
    return sorted({NOTEBOOK_DATASETS[name] for name in notebooks if name in NOTEBOOK_DATASETS})


# what a notebook writes into the staging directory and promote() swaps in (timings are a cache under the root)
STAGED_ROLES = ("figures", "tables", "executed")


def staged_folders(profile: str) -> tuple[Path, ...]:
    """The folders of ``profile``'s output tree that a notebook's staged outputs replace."""
    return tuple(output_folder(role, profile) for role in STAGED_ROLES)


class ReproduceInputError(ValueError):
    """An input of the run is missing or unusable; raised before any output is touched."""


def check_inputs(root: Path, notebooks: list[str], data_dir: str | None, profile: str = "smoke") -> None:
    """Raise ReproduceInputError listing every missing input: notebooks, data, papermill's kernel, writable folders."""
    problems = []
    unknown = [name for name in notebooks if name not in NOTEBOOKS]
    if unknown:
        problems.append(f"unknown notebooks {unknown}; expected names from {', '.join(NOTEBOOKS)}")
    problems += [
        f"{root / 'notebooks' / f'{name}.ipynb'} is missing: run `jupytext --to ipynb notebooks/{name}.py`"
        for name in notebooks
        if name in NOTEBOOKS and not (root / "notebooks" / f"{name}.ipynb").exists()
    ]
    for dataset in datasets_read_by(notebooks):
        try:
            dataset_entry(dataset).locate(resolve_data_dir(data_dir))
        except DataNotFoundError as error:
            problems.append(f"{error} ({HOW_TO_FETCH})")
    try:
        from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

        KernelSpecManager().get_kernel_spec("python3")
    except ImportError:
        problems.append("papermill/jupyter_client are not installed: pip install -e '.[notebooks]'")
    except NoSuchKernel:
        problems.append("no Jupyter kernel 'python3': python -m ipykernel install --sys-prefix")
    for folder in (*output_folders(profile), "results", "results/runs"):
        path = root / folder
        existing = next(parent for parent in (path, *path.parents) if parent.exists())
        if not os.access(existing, os.W_OK):
            problems.append(f"{existing} is not writable: outputs go to {path}")
    if problems:
        separator = "\n  " if len(problems) > 1 else " "  # one problem, one line
        raise ReproduceInputError("cannot start:" + separator + separator.join(problems))


def staged_outputs(stage: Path, profile: str) -> list[tuple[Path, Path]]:
    """(staged file, its place in the repository) for every output a notebook wrote to ``stage``."""
    pairs = []
    for folder in staged_folders(profile):
        for path in sorted((stage / folder).glob("*")):
            if path.is_file():
                pairs.append((path, Path(folder) / path.name))
    return pairs


def promote(stage: Path, root: Path, name: str, profile: str) -> list[Path]:
    """Replace notebook ``name``'s previous outputs under ``profile`` (NN_* in figures/<profile>/,
    results/tables/<profile>/, notebooks/executed/<profile>/) by the staged ones; returns the files now in
    place. Each file is moved with an atomic rename; no other profile's outputs are touched."""
    prefix = f"{name[:2]}_"
    staged = staged_outputs(stage, profile)
    foreign = [str(relative) for _, relative in staged if not relative.name.startswith(prefix)]
    if foreign:
        raise ReproduceInputError(f"notebook {name} wrote outputs without its {prefix} prefix: {foreign}")
    new = {relative for _, relative in staged}
    for folder in staged_folders(profile):
        (root / folder).mkdir(parents=True, exist_ok=True)
        for old in (root / folder).glob(f"{prefix}*"):
            if old.is_file() and Path(folder) / old.name not in new:
                old.unlink()
    for source, relative in staged:
        os.replace(source, root / relative)
    shutil.rmtree(stage)
    return [root / relative for relative in sorted(new)]


def trained_profiles(profile: str) -> tuple[str, ...]:
    """The profiles whose runs a reproduce under ``profile`` trains: itself and its comparison profile
    (smoke → smoke, smoke_compare)."""
    resolved = resolve_profile(profile)
    return tuple(dict.fromkeys((resolved.name, comparison_profile(resolved).name)))


def profile_run_dirs(root: Path, profile: str) -> list[Path]:
    """The run directories under results/runs/ of ``profile`` and of its comparison profile, sorted."""
    return [
        run_dir
        for name in trained_profiles(profile)
        for run_dir in sorted((root / "results" / "runs" / name).glob("*"))
        if run_dir.is_dir()
    ]


def supersede_profile_runs(root: Path, profile: str) -> list[Path]:
    """--fresh-runs: move every run of results/runs/<profile> (and of its comparison profile) aside as
    ``mh.repro.run_cache.supersede`` moves a stale one (to results/runs/<profile>-superseded/, never deleted);
    returns where they went."""
    return [supersede(run_dir, "--fresh-runs") for run_dir in profile_run_dirs(root, profile)]


def run_stamps(root: Path, profile: str) -> dict[str, int]:
    """Run name → modification time (ns) of its metrics.json, for the runs of ``profile`` and its comparison
    profile, to tell runs trained now from reused ones."""
    return {
        run_dir.name: (run_dir / "metrics.json").stat().st_mtime_ns
        for run_dir in profile_run_dirs(root, profile)
        if (run_dir / "metrics.json").exists()
    }


# glibc's malloc returns large freed blocks to the kernel and faults them in again on the next call: the pure-PyTorch
# scan's temporaries cost as much system time as arithmetic (notebook 08 under make rehearse: 2,749 s system against
# 2,810 s user). Serving blocks under 32 MiB from a heap that is trimmed only above 4 GiB keeps them; measured by
# benchmarks/bench_allocator.py (results/bench/allocator-cpu-*.json). A value the user has set is left alone.
ALLOCATOR_SETTINGS = {
    "MALLOC_MMAP_THRESHOLD_": str(32 * 2**20),
    "MALLOC_TRIM_THRESHOLD_": str(4 * 2**30),
    "MALLOC_TOP_PAD_": str(2**30),
}


@contextlib.contextmanager
def kernel_environment(data_dir: str | None, staging: Path | None = None):
    """Environment the notebook kernels inherit: no progress bars, no widgets ($MH_BATCH_RUN), the data directory
    as $MH_DATA_DIR, the staging directory as $MH_STAGING_DIR, and glibc's allocator kept from returning memory it
    will need again (``ALLOCATOR_SETTINGS``, unless already set)."""
    changes = {name: value for name, value in ALLOCATOR_SETTINGS.items() if name not in os.environ}
    changes |= {PROGRESS_SWITCH_VARIABLE: "1", BATCH_VARIABLE: "1"}
    if data_dir:
        changes["MH_DATA_DIR"] = str(Path(data_dir).resolve())
    if staging:
        changes[STAGING_VARIABLE] = str(staging)
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


class NotebookFailed(RuntimeError):
    """A notebook's cell raised; its previous outputs are untouched and the executed copy is kept for reading."""


def execute(name: str, root: Path, parameters: dict, data_dir: str | None) -> float:
    """Run one notebook with papermill into its staging directory and, when every cell ran, swap its outputs in.
    Returns its wall seconds. On a failing cell: NotebookFailed naming the executed copy that shows the error."""
    import papermill

    from mh.repro.kernels import LocalSocketKernelManager

    print(f"[reproduce] {name} (profile {parameters['PROFILE']})", flush=True)
    begin = time.perf_counter()
    stage = root / "results" / "cache" / "staging" / name
    if stage.exists():
        shutil.rmtree(stage)  # a previous invocation's leftovers: staging holds only what reproduce wrote
    profile = parameters["PROFILE"]
    executed = stage / output_folder("executed", profile) / f"{name}.ipynb"
    executed.parent.mkdir(parents=True)
    try:
        with kernel_environment(data_dir, stage):
            papermill.execute_notebook(
                root / "notebooks" / f"{name}.ipynb",
                executed,
                parameters=parameters,
                kernel_name="python3",
                cwd=str(root / "notebooks"),
                progress_bar=False,
                kernel_manager_class=LocalSocketKernelManager,
            )
    except Exception as error:
        failed = root / "results" / "cache" / "failed" / name
        if failed.exists():
            shutil.rmtree(failed)
        failed.parent.mkdir(parents=True, exist_ok=True)
        if executed.exists():
            scrub_machine_paths(executed, machine_paths(root))
        shutil.move(str(stage), str(failed))
        kept = failed / output_folder("executed", profile) / f"{name}.ipynb"
        where = f"the executed notebook showing the failing cell is {kept}" if kept.exists() else "it did not start"
        raise NotebookFailed(
            f"{name} failed ({type(error).__name__}: {str(error).strip()[:1500]}); its previous outputs are "
            f"unchanged; {where}"
        ) from error
    # the staged files are about to be where the repository keeps them: say so in the outputs
    scrub_machine_paths(executed, {**machine_paths(root), str(stage): "{repository}"})
    promote(stage, root, name, profile)
    seconds = round(time.perf_counter() - begin, 1)
    print(f"[reproduce] {name} done in {seconds:.0f} s", flush=True)
    return seconds


TRAINING_RECORD = ("commit", "time_utc", "device", "total_wall_seconds", "notebooks_wall_seconds", "runs_trained")


def trained_by(previous: dict, this_run: dict) -> dict | None:
    """The record of the run that trained what ``this_run`` reused: when ``this_run`` trained nothing and every run
    it reused was trained by the ``previous`` manifest's run (or by the run that one carried), that run's commit,
    time, device, wall seconds and trained runs; otherwise None. A warm re-run thus keeps the cold run's cost
    beside its own."""
    record = previous.get("trained_by") or {key: previous[key] for key in TRAINING_RECORD if key in previous}
    reused = set(this_run.get("runs_reused", []))
    if this_run.get("runs_trained") or not reused or not reused <= set(record.get("runs_trained", [])):
        return None
    return record


def run_notebooks(
    profile: str = "auto",
    data_dir: str | None = None,
    seed: int = 2025,
    notebooks: list[str] | None = None,
    root: Path = ROOT,
    fresh_runs: bool = False,
    download: bool = False,
) -> dict:
    """Execute ``notebooks`` (default: all, in order) and write results/manifests/<profile>.json, holding the checkout's
    reproduce lock (``mh.repro.checkout_lock``) throughout.

    Raises CheckoutBusy or ReproduceInputError (nothing touched) or NotebookFailed (earlier notebooks' outputs in
    place). A run killed at any point leaves a tree that the next run completes: staging is per notebook and
    cleared first, outputs are swapped in by atomic renames, and the lock dies with its process."""
    with checkout_lock(root):
        return _run_locked(profile, data_dir, seed, notebooks, root, fresh_runs, download)


def _run_locked(profile, data_dir: str | None, seed: int, notebooks, root: Path, fresh_runs: bool, download: bool):
    resolved = resolve_profile(profile).name
    notebooks = list(notebooks or NOTEBOOKS)
    if download:
        fetch_missing(datasets_read_by(notebooks), data_dir)
    check_inputs(root, notebooks, data_dir, resolved)
    manifest_file = manifest_path(root, resolved)
    fix = f"restore it with git checkout {manifest_file.relative_to(root)}, or delete it to write a new one"
    previous = read_json(manifest_file, "reproduce manifest", fix) if manifest_file.exists() else {}
    if fresh_runs:
        supersede_profile_runs(root, resolved)
    runs_before = run_stamps(root, resolved)
    parameters = {"PROFILE": resolved, "SEED": seed, "DEVICE": "auto"}
    if root != ROOT:
        parameters["OUT_DIR"] = str(root)
    timings = {name: execute(name, root, parameters, data_dir) for name in notebooks}
    if len(notebooks) < len(NOTEBOOKS):
        # a partial re-run keeps the other notebooks' timings from the last full run
        timings = {**previous.get("notebooks_wall_seconds", {}), **timings}
    runs_after = run_stamps(root, resolved)
    digests = output_digests(root, resolved)
    this_run = {
        "notebooks_wall_seconds": timings,
        "total_wall_seconds": round(sum(timings.values()), 1),
        "runs_trained": sorted(name for name, stamp in runs_after.items() if runs_before.get(name) != stamp),
        "runs_reused": sorted(name for name, stamp in runs_after.items() if runs_before.get(name) == stamp),
    }
    same_lock = previous.get("environment", {}).get("lock") == lock_record()
    if previous.get("output_sha256") == digests and previous.get("profile") == resolved and same_lock:
        log = root / "results" / "cache" / "reproduce-log.jsonl"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a") as handle:
            handle.write(json.dumps({**run_manifest(resolved), **this_run, "outputs": "unchanged"}) + "\n")
        print(f"[reproduce] every output is byte-identical to {manifest_file.name}'s: kept it; times in {log}")
        return {**previous, "this_run": this_run}
    carried = trained_by(previous, this_run)
    extra = {"trained_by": carried} if carried else {}
    manifest = run_manifest(resolved, **this_run, rerun=notebooks, output_sha256=digests, **extra)
    write_json(manifest_file, manifest)
    readme = root / "README.md"
    if readme.exists() and README_BEGIN in readme.read_text() and presented_profile(root) == resolved:
        update_readme(root)  # the README shows the most trained profile present: this one
    return manifest


@returns_status
def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m mh.repro.reproduce", description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="auto", choices=["auto", *NOTEBOOK_PROFILES])
    parser.add_argument("--data-dir", help="CIFAR-10 location (default $MH_DATA_DIR, else ./data)")
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--only", nargs="+", metavar="NOTEBOOK", help=f"a subset of {', '.join(NOTEBOOKS)}")
    parser.add_argument(
        "--fresh-runs", action="store_true", help="move this profile's trained runs aside first: train every model now"
    )
    parser.add_argument("--download", action="store_true", help="fetch CIFAR-10 through torchvision when it is missing")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    with cli_errors(args.debug, user_errors=(ReproduceInputError,)):
        checks.seed(args.seed, "--seed")
        manifest = run_notebooks(
            args.profile, args.data_dir, args.seed, args.only, fresh_runs=args.fresh_runs, download=args.download
        )
        seconds = manifest.get("this_run", manifest)["total_wall_seconds"]
        print(f"[reproduce] all done in {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

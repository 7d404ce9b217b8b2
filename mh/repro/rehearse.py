"""A GPU rehearsal that needs no GPU: every notebook through the ``gpu`` profile's code paths, on the CPU.

    python -m mh.repro.rehearse [--scratch DIR] [--only 03_training ...]      # make rehearse

The ``rehearse`` profile (``mh.profiles``) is the ``gpu`` profile — full-size networks at 224 px, all four bit
lengths, its loader workers, its fast path — on 32 training, 16 query and 32 database images for one epoch.
The notebooks run with papermill as ``make reproduce`` runs them (``mh.repro.reproduce.run_notebooks``), into a
scratch tree (default ``results/cache/rehearsal``, ignored by git) holding a copy of ``notebooks/``: no committed
figure, table, executed notebook, run or manifest is touched. What it cannot rehearse on a CPU: CUDA itself (bf16
autocast, mamba-ssm's kernel). Should the gpu profile compile its networks (``fast_path="compiled"``),
TorchDynamo traces them here with backend ``eager`` (``mh.fastpath.COMPILE_BACKEND_VARIABLE``): graph breaks and
untraceable code show up without the kernel generation.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from unittest import mock

from mh.cli import OneLineParser, add_debug_flag, cli_errors, returns_status
from mh.fastpath import COMPILE_BACKEND_VARIABLE
from mh.io import PROJECT_ROOT
from mh.repro.reproduce import NOTEBOOKS, ReproduceInputError, run_notebooks

DEFAULT_SCRATCH = PROJECT_ROOT / "results" / "cache" / "rehearsal"
PROFILE = "rehearse"


def prepare_scratch(scratch: Path, root: Path = PROJECT_ROOT) -> Path:
    """A fresh scratch tree with a copy of the notebooks (their executed copies and outputs go here)."""
    if scratch.resolve() == root.resolve():
        raise ReproduceInputError("the rehearsal's scratch folder must not be the checkout itself")
    if scratch.exists():
        shutil.rmtree(scratch)
    (scratch / "notebooks").mkdir(parents=True)
    for notebook in sorted((root / "notebooks").glob("*.ipynb")):
        shutil.copy2(notebook, scratch / "notebooks" / notebook.name)
    return scratch


def rehearse(scratch: Path = DEFAULT_SCRATCH, notebooks: list[str] | None = None, data_dir: str | None = None) -> dict:
    """Run ``notebooks`` (default all) under the ``rehearse`` profile into ``scratch``; returns its manifest."""
    prepare_scratch(scratch)
    with mock.patch.dict(os.environ, {COMPILE_BACKEND_VARIABLE: "eager"}):  # restored on the way out
        return run_notebooks(PROFILE, data_dir, notebooks=notebooks, root=scratch)


@returns_status
def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m mh.repro.rehearse", description=__doc__.splitlines()[0])
    parser.add_argument("--scratch", type=Path, default=DEFAULT_SCRATCH, help="where the rehearsal writes")
    parser.add_argument("--only", nargs="+", metavar="NOTEBOOK", help=f"a subset of {', '.join(NOTEBOOKS)}")
    parser.add_argument("--data-dir", help="CIFAR-10 location (default $MH_DATA_DIR, else ./data)")
    args = add_debug_flag(parser).parse_args(argv)
    started = time.perf_counter()
    with cli_errors(args.debug, user_errors=(ReproduceInputError,)):
        rehearse(args.scratch, args.only, args.data_dir)
    which = "every notebook" if not args.only else ", ".join(args.only)
    print(f"[rehearse] {which} ran under the gpu profile's code paths in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

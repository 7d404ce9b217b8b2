"""Evaluate a finished run from its saved codes: mAP@topK, P@H≤2, precision–recall and precision@N curves.

    python -m mh.evaluate results/runs/cifar10-mambahash-48bits-smoke

Reads ``codes.npz`` and ``config.json`` of the run; writes ``evaluation.json`` (scalars, with the ranking
convention) and ``curves.csv`` (one row per point of each curve) into the run directory.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mh.cli import OneLineParser, add_debug_flag, cli_errors, returns_status
from mh.codes import load_code_sets
from mh.datasets import dataset_entry
from mh.io import read_json, write_json
from mh.metrics import (
    RANKING_CONVENTION,
    mean_average_precision,
    pr_curve_by_radius,
    precision_recall_at_n,
    precision_within_radius,
)
from mh.rundir import RunDirectory, RunDirectoryError

DEFAULT_N_POINTS = 20


def rank_cutoffs(database_size: int, points: int = DEFAULT_N_POINTS) -> np.ndarray:
    """Evenly spaced N values 1…database_size (for precision@N / recall@N curves)."""
    return np.unique(np.linspace(1, database_size, points).round().astype(int))


def evaluate_run(
    run_dir: str | Path, topk: int | None | str = "protocol", n_points: int = DEFAULT_N_POINTS, allow_unfinished=False
) -> dict:
    """Scalars and curves of a run directory; writes evaluation.json and curves.csv there. Returns the scalars.

    A run whose ``status.json`` does not say ``finished`` (still running, failed, or killed) is refused
    unless ``allow_unfinished``: its codes may come from another epoch than its record says."""
    run_dir = Path(run_dir)
    status = RunDirectory(run_dir).status()
    refused = RunDirectoryError(
        f"{run_dir} is not a finished run (status: {status}); resume it (python -m mh.train … --resume) "
        "or pass --allow-unfinished to evaluate its codes anyway"
    )
    if status in ("running", "failed") and not allow_unfinished:
        raise refused
    codes_path, config_path = run_dir / "codes.npz", run_dir / "config.json"
    for path in (codes_path, config_path):
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: is {run_dir} a finished run of `python -m mh.train`?")
    if status != "finished" and not allow_unfinished:
        raise refused
    config = read_json(config_path, "run configuration")
    sets = load_code_sets(codes_path)
    query, database = sets["query"], sets["database"]
    if topk == "protocol":
        topk = dataset_entry(config["dataset"]).protocol.topk
    args = (query.codes, database.codes, query.labels, database.labels)
    by_radius = pr_curve_by_radius(*args)
    at_n = precision_recall_at_n(*args, rank_cutoffs(len(database), n_points))
    scalars = {
        "run": run_dir.name,
        "map": mean_average_precision(*args, topk=topk),
        "topk": topk,
        "precision_within_hamming_2": precision_within_radius(*args, radius=2),
        "bits": query.bits,
        "queries": len(query),
        "database": len(database),
        "ranking_convention": RANKING_CONVENTION,
    }
    curves = pd.concat(
        [
            pd.DataFrame(
                {
                    "curve": "radius",
                    "x": by_radius["radius"],
                    "precision": by_radius["precision"],
                    "recall": by_radius["recall"],
                }
            ),
            pd.DataFrame({"curve": "rank", "x": at_n["n"], "precision": at_n["precision"], "recall": at_n["recall"]}),
        ]
    )
    curves.to_csv(run_dir / "curves.csv", index=False)
    write_json(run_dir / "evaluation.json", scalars)
    return scalars


@returns_status
def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m mh.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="a run directory written by python -m mh.train")
    parser.add_argument("--topk", type=int, help="mAP@topk (default: the dataset's protocol; 0 = whole database)")
    parser.add_argument("--allow-unfinished", action="store_true", help="evaluate a run that did not finish")
    args = add_debug_flag(parser).parse_args(argv)
    topk = "protocol" if args.topk is None else (None if args.topk == 0 else args.topk)
    with cli_errors(args.debug):
        if topk is not None and topk != "protocol" and topk < 0:
            raise ValueError(f"--topk must be a positive number of database items, or 0 for all; got {topk}")
        scalars = evaluate_run(args.run_dir, topk, allow_unfinished=args.allow_unfinished)
    label = "whole database" if scalars["topk"] is None else scalars["topk"]
    print(
        f"{scalars['run']}: mAP@{label} = {scalars['map']:.4f}, "
        f"P@H<=2 = {scalars['precision_within_hamming_2']:.4f} "
        f"({scalars['queries']} queries, {scalars['database']} database, {scalars['bits']} bits)"
    )
    print(f"wrote {Path(args.run_dir) / 'evaluation.json'} and {Path(args.run_dir) / 'curves.csv'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Run directories as the notebooks use them: train what is missing, read what a run wrote.

    record = ensure_run(config, data)       # trains and evaluates only what is not there yet
    record.metrics["map"], record.evaluation["precision_within_hamming_2"], record.curves, record.losses

Finished runs (``metrics.json`` present) are reused, so notebooks that need the same run share it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mh.data import HashingData
from mh.evaluate import evaluate_run
from mh.train import TrainConfig, fit


@dataclass
class RunRecord:
    """What a finished, evaluated run directory holds, read back."""

    run_dir: Path
    metrics: dict
    evaluation: dict
    manifest: dict
    history: pd.DataFrame
    losses: pd.DataFrame
    curves: pd.DataFrame

    @property
    def name(self) -> str:
        return self.run_dir.name


def load_run(run_dir: str | Path) -> RunRecord:
    """Read a run written by ``mh.train`` and evaluated by ``mh.evaluate``; FileNotFoundError names what is missing."""
    run_dir = Path(run_dir)
    names = ("metrics.json", "evaluation.json", "manifest.json", "history.csv", "losses.csv", "curves.csv")
    missing = [name for name in names if not (run_dir / name).exists()]
    if missing:
        raise FileNotFoundError(
            f"{run_dir} lacks {', '.join(missing)}: train it (python -m mh.train) and "
            f"evaluate it (python -m mh.evaluate {run_dir})"
        )
    read_json = lambda name: json.loads((run_dir / name).read_text())  # noqa: E731
    return RunRecord(
        run_dir,
        read_json("metrics.json"),
        read_json("evaluation.json"),
        read_json("manifest.json"),
        pd.read_csv(run_dir / "history.csv"),
        pd.read_csv(run_dir / "losses.csv"),
        pd.read_csv(run_dir / "curves.csv"),
    )


def ensure_run(config: TrainConfig, data: HashingData | None = None, progress: bool = True) -> RunRecord:
    """The run ``config`` describes, trained unless it finished before, evaluated unless it was before."""
    run_dir = Path(config.runs_dir) / config.name()
    if not (run_dir / "metrics.json").exists():
        print(f"training {config.model} ({config.bits} bits, profile {config.profile}) …")
        fit(config, data=data, progress=progress)
    if not (run_dir / "evaluation.json").exists():
        evaluate_run(run_dir)
    return load_run(run_dir)

"""Run directories as the notebooks use them: train what is missing, read what a run wrote.

    record = ensure_run(config, data)       # trains and evaluates only what is not there yet
    record.metrics["map"], record.evaluation["precision_within_hamming_2"], record.curves, record.losses

A run is reused, so notebooks that need the same run share it, only when it finished and was trained by the
same code with the same settings: every run's ``fingerprint.json`` (written by ``mh.train``:
``mh.runrecord.run_fingerprint``) holds the settings that change a result and a digest of the training code.
A run evaluated more often than asked is reused too (notebook 03 evaluates every epoch for its curves; 04
and 07 only need the last).
A run that does not match — other code, other settings, or a run that never finished — is never deleted: it
is moved to ``<runs_dir>-superseded/`` and trained again; the message says which and why.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mh.data import HashingData
from mh.evaluate import evaluate_run
from mh.io import read_json
from mh.runrecord import FINGERPRINT_FILE, read_status, run_fingerprint
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
    return RunRecord(
        run_dir,
        read_json(run_dir / "metrics.json"),
        read_json(run_dir / "evaluation.json"),
        read_json(run_dir / "manifest.json"),
        pd.read_csv(run_dir / "history.csv"),
        pd.read_csv(run_dir / "losses.csv"),
        pd.read_csv(run_dir / "curves.csv"),
    )


def covers_evaluations(stored_every: int, requested_every: int) -> bool:
    """A run evaluated every ``stored_every`` epochs (and at the last) has every evaluation a request for
    ``requested_every`` needs when the latter is a multiple of the former."""
    return requested_every % stored_every == 0


def stale_reason(run_dir: Path, config: TrainConfig, fingerprint: dict) -> str | None:
    """Why the run in ``run_dir`` cannot stand for ``config`` (None: it can, or there is none)."""
    if not run_dir.exists() or not any(run_dir.iterdir()):
        return None
    status = read_status(run_dir)
    if status != "finished":
        return f"its status is {status!r}, not finished"
    stored_config = read_json(run_dir / "config.json", "run configuration")
    stored_every = stored_config.get("resolved_profile", {}).get("eval_every", 1)
    if not covers_evaluations(stored_every, config.resolved_profile().eval_every):
        return f"it was evaluated every {stored_every} epochs, fewer than every {config.resolved_profile().eval_every}"
    stored_path = run_dir / FINGERPRINT_FILE
    if not stored_path.exists():
        return f"it has no {FINGERPRINT_FILE} (trained before runs recorded their code), so its code is unknown"
    stored = read_json(stored_path)
    changed = [key for key in fingerprint if stored.get(key) != fingerprint[key]]
    return f"its {' and '.join(changed)} differ from this one's" if changed else None


def supersede(run_dir: Path, reason: str) -> Path:
    """Move ``run_dir`` to ``<runs_dir>-superseded/<name>-<UTC time>`` (never delete it); returns where it went."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = run_dir.parent.with_name(run_dir.parent.name + "-superseded") / f"{run_dir.name}-{stamp}"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(run_dir), str(target))
    print(f"{run_dir.name}: {reason}; moved to {target} and training it again")
    return target


def ensure_run(config: TrainConfig, data: HashingData | None = None, progress: bool = True) -> RunRecord:
    """The run ``config`` describes: reused when it finished under the same code and settings, otherwise
    (after moving a stale one aside) trained; evaluated unless it was before."""
    run_dir = Path(config.runs_dir) / config.name()
    fingerprint = run_fingerprint(config)
    reason = stale_reason(run_dir, config, fingerprint)
    if reason:
        supersede(run_dir, reason)
    if not (run_dir / "metrics.json").exists():
        print(f"training {config.model} ({config.bits} bits, profile {config.profile}) …")
        fit(config, data=data, progress=progress)
    if not (run_dir / "evaluation.json").exists():
        evaluate_run(run_dir)
    return load_run(run_dir)

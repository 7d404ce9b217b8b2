"""Trained runs as a cache for the notebooks: train what is missing, reuse what matches, move aside what does not.

    run = ensure_run(config, data)       # trains and evaluates only what is not there yet
    run.metrics["map"], run.evaluation["precision_within_hamming_2"], run.curves, run.losses

A run is reused, so notebooks that need the same run share it, only when it finished and was trained by the
same code with the same settings: every run's ``fingerprint.json`` (written by ``mh.train``:
``mh.rundir.fingerprint``) holds the settings that change a result and a digest of the training code.
A run evaluated more often than asked is reused too (notebook 03 evaluates every epoch for its curves; 04
and 07 only need the last).
A run that does not match — other code, other settings, or a run that never finished — is never deleted: it
is moved to ``<runs_dir>-superseded/`` and trained again; the message says which and why.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from mh.config import TrainConfig
from mh.data import HashingData
from mh.evaluate import evaluate_run
from mh.rundir import FINGERPRINT_FILE, FinishedRun, RunDirectory, fingerprint
from mh.train import fit


def covers_evaluations(stored_every: int, requested_every: int) -> bool:
    """A run evaluated every ``stored_every`` epochs (and at the last) has every evaluation a request for
    ``requested_every`` needs when the latter is a multiple of the former."""
    return requested_every % stored_every == 0


def stale_reason(run_dir: Path, config: TrainConfig, expected: dict) -> str | None:
    """Why the run in ``run_dir`` cannot stand for ``config``, whose fingerprint is ``expected`` (None: it can,
    or there is none)."""
    if not run_dir.exists() or not any(run_dir.iterdir()):
        return None
    stored_run = RunDirectory(run_dir)
    status = stored_run.status()
    if status != "finished":
        return f"its status is {status!r}, not finished"
    stored_every = stored_run.config().get("resolved_profile", {}).get("eval_every", 1)
    if not covers_evaluations(stored_every, config.resolved_profile().eval_every):
        return f"it was evaluated every {stored_every} epochs, fewer than every {config.resolved_profile().eval_every}"
    stored = stored_run.stored_fingerprint()
    if stored is None:
        return f"it has no {FINGERPRINT_FILE} (trained before runs recorded their code), so its code is unknown"
    changed = [key for key in expected if stored.get(key) != expected[key]]
    return f"its {' and '.join(changed)} differ from this one's" if changed else None


def supersede(run_dir: Path, reason: str) -> Path:
    """Move ``run_dir`` to ``<runs_dir>-superseded/<name>-<UTC time>`` (never delete it); returns where it went."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = run_dir.parent.with_name(run_dir.parent.name + "-superseded") / f"{run_dir.name}-{stamp}"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(run_dir), str(target))
    print(f"{run_dir.name}: {reason}; moved to {target} and training it again")
    return target


def ensure_run(config: TrainConfig, data: HashingData | None = None, progress: bool = True) -> FinishedRun:
    """The run ``config`` describes: reused when it finished under the same code and settings, otherwise
    (after moving a stale one aside) trained; evaluated unless it was before."""
    run_dir = config.run_path()
    reason = stale_reason(run_dir, config, fingerprint(config))
    if reason:
        supersede(run_dir, reason)
    if not (run_dir / "metrics.json").exists():
        print(f"training {config.model} ({config.bits} bits, profile {config.profile}) …")
        fit(config, data=data, progress=progress)
    if not (run_dir / "evaluation.json").exists():
        evaluate_run(run_dir)
    return RunDirectory(run_dir).read()

"""A run directory's record, protected: its status, the settings a resume may not change, a consistent log.

``status.json`` says ``running`` (written when training starts), ``finished`` (after metrics.json) or
``failed`` (with the error), so that ``mh.evaluate`` can refuse a run that never finished.

Resuming (``--resume``) continues the run that ``config.json`` describes; ``resume_conflicts`` lists every
requested setting that differs from it (the fields of ``RESULT_FIELDS`` and the resolved profile), and
``mh.train`` refuses such a resume instead of rewriting the record. Only the number of epochs may grow, and
only when asked (``--extend-epochs``). Where the run was, the data, device or logging interval may change.
``truncate_step_log`` drops the step rows of an epoch whose checkpoint was never written (a kill between
the two writes), so losses.csv always matches the checkpoint. ``finish_run`` writes the final record
(history, metrics, fingerprint, status, manifest) once every epoch is done; ``run_fingerprint`` is what a
result depends on (result settings, resolved profile, a digest of the training code), so that a cached run
can be told apart from a stale one (``mh.repro.runs.ensure_run``).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mh.engine import RunWriter
from mh.io import read_json, write_csv, write_json
from mh.metrics import RANKING_CONVENTION
from mh.repro.manifest import run_manifest

STATUS_FILE = "status.json"
FINGERPRINT_FILE = "fingerprint.json"
RESULT_FIELDS = (
    "dataset",
    "bits",
    "model",
    "profile",
    "seed",
    "quantization_weight",
    "accumulate_gradients",
    "pretrained",
    "loss",
    "optimizer",
)
PROFILE_FIELDS_FREE = {"note", "num_workers", "encode_batch_size", "comparison"}  # change no result


class RunRecordError(ValueError):
    """A resume or an evaluation that would misrepresent a run; the message says what differs and what to do."""


def write_status(run_dir: Path, status: str, **details) -> None:
    write_json(Path(run_dir) / STATUS_FILE, {"status": status, **details})


def read_status(run_dir: Path) -> str:
    """``running``, ``finished`` or ``failed``; runs from before status files count as finished when they
    have metrics.json, else as ``unknown``."""
    path = Path(run_dir) / STATUS_FILE
    if path.exists():
        return read_json(path, "run status file")["status"]
    return "finished" if (Path(run_dir) / "metrics.json").exists() else "unknown"


def resume_conflicts(stored: dict, requested: dict, requested_profile: dict, extend_epochs: bool) -> list[str]:
    """``field: run has A, requested B`` for every setting a resume would change. ``stored`` is config.json."""
    conflicts = []
    for field in RESULT_FIELDS:
        before = stored.get(field)
        after = requested.get(field)
        if field in ("loss", "optimizer", "quantization_weight") and after is None:
            continue  # None means "the default": config.json recorded what it resolved to
        if before != after:
            conflicts.append(f"{field}: run has {before!r}, requested {after!r}")
    stored_profile = stored.get("resolved_profile", {})
    for field, after in requested_profile.items():
        before = stored_profile.get(field)
        if field in PROFILE_FIELDS_FREE or before == after or (isinstance(after, tuple) and list(after) == before):
            continue
        if field == "epochs" and extend_epochs and after >= before:
            continue
        conflicts.append(f"{field}: run has {before!r}, requested {after!r}")
    return conflicts


def check_resume(run_dir: Path, requested: dict, requested_profile: dict, extend_epochs: bool) -> None:
    """Raise RunRecordError unless resuming ``run_dir`` with these settings continues the same run."""
    run_dir = Path(run_dir)
    checkpoint = run_dir / "checkpoint.ckpt"
    if not checkpoint.exists():
        if run_dir.exists() and any(run_dir.iterdir()):
            raise RunRecordError(
                f"--resume: {run_dir} has files but no checkpoint.ckpt to resume from; "
                "train it afresh under another --run-name, or delete the directory"
            )
        return
    config_path = run_dir / "config.json"
    if not config_path.exists():
        raise RunRecordError(f"--resume: {run_dir} has a checkpoint but no config.json; cannot check the settings")
    stored = read_json(config_path, "run configuration", "the run's record is damaged: train it afresh")
    conflicts = resume_conflicts(stored, requested, requested_profile, extend_epochs)
    if conflicts:
        hint = " (pass --extend-epochs to train more epochs)" if any(c.startswith("epochs:") for c in conflicts) else ""
        raise RunRecordError(
            f"--resume would change the record of {run_dir}:\n  " + "\n  ".join(conflicts) + f"\nresume with the "
            f"run's own settings, or start a new run under another --run-name{hint}"
        )


def truncate_step_log(path: Path, epochs_done: int) -> int:
    """Keep the rows of ``path`` (losses.csv) whose epoch ≤ ``epochs_done``; returns how many rows went."""
    path = Path(path)
    if not path.exists():
        return 0
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    kept = [row for row in rows if int(row["epoch"]) <= epochs_done]
    if len(kept) == len(rows):
        return 0
    if not kept:
        raise ValueError(f"{path}: no step rows at or before epoch {epochs_done}; a checkpoint implies at least one")
    write_csv(path, kept)
    return len(rows) - len(kept)


def open_run_directory(config, resume: bool, collective) -> RunWriter:
    """The run's directory, created by rank 0; an existing run is refused (by every rank) unless resuming."""
    run_dir = Path(config.runs_dir) / config.name()
    if run_dir.exists() and not resume and any(run_dir.iterdir()):
        raise FileExistsError(
            f"{run_dir} already holds a run; pass resume=True (--resume) to continue it, "
            "or choose another run name (--run-name)"
        )
    collective.barrier()  # every rank has looked before rank 0 writes
    writer = RunWriter(run_dir, is_writer=collective.rank == 0)
    if writer.is_writer:
        run_dir.mkdir(parents=True, exist_ok=True)
    return writer


def training_code_digest(package: Path = Path(__file__).resolve().parent) -> str:
    """SHA-256 over the training code: every ``.py`` under ``mh/`` except ``mh/repro`` (notebook helpers)."""
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package)
        if relative.parts[0] != "repro":
            digest.update(str(relative).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def run_fingerprint(config) -> dict:
    """What the run of ``config`` (a ``mh.train.TrainConfig``) depends on: the result settings, the resolved
    profile, the training code. Not in it: what changes no number (``PROFILE_FIELDS_FREE``) and ``eval_every``,
    which only decides the epochs evaluated on the way (``mh.repro.runs.covers_evaluations`` checks those)."""
    profile = dataclasses.asdict(config.resolved_profile())
    ignored = {*PROFILE_FIELDS_FREE, "eval_every"}
    return json.loads(
        json.dumps(
            {
                "settings": {field: getattr(config, field) for field in RESULT_FIELDS},
                "profile": {key: value for key, value in profile.items() if key not in ignored},
                "code_sha256": training_code_digest(),
            }
        )
    )


@dataclass
class RunResult:
    run_dir: Path
    metrics: dict
    history: list[dict]


def finish_run(run) -> RunResult:
    """history.csv, metrics.json (last epoch's mAP, best-on-query kept apart), fingerprint.json, status
    ``finished`` and the manifest of a ``mh.train.Run`` whose epochs are all done."""
    config, history = run.config, run.history
    run.writer.table("history.csv", history)
    evaluated = [row for row in history if row["map"] is not None]
    metrics = {
        "map": history[-1]["map"],
        "topk": run.data.protocol.topk,
        "epochs": len(history),
        "bits": config.bits,
        "model": config.model,
        "dataset": config.dataset,
        "profile": run.profile.describe(),
        "best_on_query": max(row["map"] for row in evaluated),
        "best_on_query_note": "best over epochs, selected on the query set (released code's practice)",
        "ranking_convention": RANKING_CONVENTION,
    }
    run.writer.json("metrics.json", metrics)
    run.writer.json(FINGERPRINT_FILE, run_fingerprint(config))
    if run.writer.is_writer:
        write_status(run.writer.run_dir, "finished")
    run.writer.json(
        "manifest.json",
        run_manifest(
            run.profile.name,
            run.device,
            run=run.writer.run_dir.name,
            profile_description=run.profile.describe(),
            train_wall_seconds=run.train_seconds,
            train_img_per_s=float(np.mean([r["train_img_per_s"] for r in history])),
            encode_img_per_s=history[-1]["encode_img_per_s"],
            world_size=run.parts.collective.world_size,
            backend=run.parts.collective.backend,
        ),
    )
    return RunResult(run.writer.run_dir, metrics, history)

"""One run directory, owned by one class: what ``mh.train`` writes there, what protects it, and reading it back.

    results/runs/<name>/  config.json      the run's settings and resolved profile (a resume keeps them)
                          status.json      running / finished / failed (with the error)
                          losses.csv       one row per logged step; history.csv one row per epoch
                          checkpoint.ckpt  model, optimizer, loss state and history, after every epoch
                          codes.npz        the last epoch's query and database codes
                          metrics.json     the last epoch's mAP (best-on-query kept apart)
                          fingerprint.json what the result depends on (settings, resolved profile, code digest)
                          manifest.json    commit, versions, device, times
                          evaluation.json, curves.csv   written by ``mh.evaluate``

``RunDirectory`` writes every file atomically and only in the main process (under ``torchrun`` the others
hold a ``RunDirectory`` too, which writes nothing), gives the run its status, refuses a resume that would
change the record (``check_resume``: the fields of ``RESULT_FIELDS`` and the resolved profile's fields that
change a result; only the number of epochs may grow, and only when asked), cuts the step log back to the
last checkpoint (a kill between the two writes), writes the final record, and reads a finished, evaluated run
back (``FinishedRun``). What the notebooks reuse and what they train again is a policy of the harness
(``mh.repro.run_cache``), built on ``fingerprint`` and ``status`` here.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from mh.codes import CodeSet, save_code_sets
from mh.io import append_csv, atomic_output, read_json, write_csv, write_json
from mh.profiles import RESULT_FREE_FIELDS

STATUS_FILE = "status.json"
FINGERPRINT_FILE = "fingerprint.json"
CHECKPOINT_FILE = "checkpoint.ckpt"
# the run settings that change a result (besides the resolved profile); a resume may change none of them
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
)
RESOLVED_WHEN_NONE = ("loss", "quantization_weight")  # None asks for the default: config.json records it


class RunDirectoryError(ValueError):
    """A resume or an evaluation that would misrepresent a run; the message says what differs and what to do."""


def training_code_digest(package: Path = Path(__file__).resolve().parent) -> str:
    """SHA-256 over the training code: every ``.py`` under ``mh/`` except ``mh/repro`` (notebook helpers)."""
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package)
        if relative.parts[0] != "repro":
            digest.update(str(relative).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def fingerprint(config) -> dict:
    """What the run of ``config`` (a ``mh.train.TrainConfig``) depends on: the result settings, the resolved
    profile, the training code. Not in it: what changes no number (``mh.profiles.RESULT_FREE_FIELDS``) and
    ``eval_every``, which only decides the epochs evaluated on the way (the run cache checks those)."""
    profile = dataclasses.asdict(config.resolved_profile())
    ignored = {*RESULT_FREE_FIELDS, "eval_every"}
    return json.loads(
        json.dumps(
            {
                "settings": {field: getattr(config, field) for field in RESULT_FIELDS},
                "profile": {key: value for key, value in profile.items() if key not in ignored},
                "code_sha256": training_code_digest(),
            }
        )
    )


def resume_conflicts(stored: dict, requested: dict, requested_profile: dict, extend_epochs: bool) -> list[str]:
    """``field: run has A, requested B`` for every setting a resume would change. ``stored`` is config.json."""
    conflicts = []
    for field in RESULT_FIELDS:
        before, after = stored.get(field), requested.get(field)
        if field in RESOLVED_WHEN_NONE and after is None:
            continue
        if before != after:
            conflicts.append(f"{field}: run has {before!r}, requested {after!r}")
    stored_profile = stored.get("resolved_profile", {})
    for field, after in requested_profile.items():
        before = stored_profile.get(field)
        if field in RESULT_FREE_FIELDS or before == after or (isinstance(after, tuple) and list(after) == before):
            continue
        if field == "epochs" and extend_epochs and after >= before:
            continue
        conflicts.append(f"{field}: run has {before!r}, requested {after!r}")
    return conflicts


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


class RunDirectory:
    """A run directory and every file written into it, atomically, by the main process only (``is_writer``)."""

    def __init__(self, path: str | Path, is_writer: bool = True):
        self.path = Path(path)
        self.is_writer = is_writer

    @classmethod
    def open(cls, path: str | Path, resume: bool, collective) -> RunDirectory:
        """The run's directory, created by rank 0; an existing run is refused (by every rank) unless resuming."""
        path = Path(path)
        if path.exists() and not resume and any(path.iterdir()):
            raise FileExistsError(
                f"{path} already holds a run; pass resume=True (--resume) to continue it, "
                "or choose another run name (--run-name)"
            )
        collective.barrier()  # every rank has looked before rank 0 writes
        run_dir = cls(path, is_writer=collective.rank == 0)
        if run_dir.is_writer:
            path.mkdir(parents=True, exist_ok=True)
        return run_dir

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def checkpoint_path(self) -> Path:
        return self.path / CHECKPOINT_FILE

    # writing
    def write_json(self, name: str, payload: dict) -> None:
        if self.is_writer:
            write_json(self.path / name, payload)

    def write_table(self, name: str, rows: list[dict], append: bool = False) -> None:
        if self.is_writer and rows:
            (append_csv if append else write_csv)(self.path / name, rows)

    def save_codes(self, **code_sets: CodeSet) -> None:
        if self.is_writer:
            save_code_sets(self.path / "codes.npz", **code_sets)

    def save_checkpoint(self, state: dict) -> None:
        if self.is_writer:
            with atomic_output(self.checkpoint_path) as temporary:
                torch.save(state, temporary)

    def set_status(self, status: str, **details) -> None:
        """``running`` when training starts, ``finished`` after the final record, ``failed`` with the error."""
        self.write_json(STATUS_FILE, {"status": status, **details})

    def cut_step_log(self, epochs_done: int) -> None:
        """losses.csv back to the checkpoint's epochs (``truncate_step_log``), before a resume appends to it."""
        if self.is_writer:
            truncate_step_log(self.path / "losses.csv", epochs_done)

    def finish(self, history: list[dict], metrics: dict, run_fingerprint: dict, manifest: dict) -> None:
        """The final record of a run whose epochs are all done: history.csv, metrics.json, fingerprint.json,
        status ``finished``, manifest.json."""
        self.write_table("history.csv", history)
        self.write_json("metrics.json", metrics)
        self.write_json(FINGERPRINT_FILE, run_fingerprint)
        self.set_status("finished")
        self.write_json("manifest.json", manifest)

    # reading
    def status(self) -> str:
        """``running``, ``finished`` or ``failed``; runs from before status files count as finished when they
        have metrics.json, else as ``unknown``."""
        path = self.path / STATUS_FILE
        if path.exists():
            return read_json(path, "run status file")["status"]
        return "finished" if (self.path / "metrics.json").exists() else "unknown"

    def config(self) -> dict:
        return read_json(self.path / "config.json", "run configuration", "the run's record is damaged: train it afresh")

    def stored_fingerprint(self) -> dict | None:
        path = self.path / FINGERPRINT_FILE
        return read_json(path, "run fingerprint") if path.exists() else None

    def check_resume(self, requested: dict, requested_profile: dict, extend_epochs: bool) -> None:
        """Raise RunDirectoryError unless resuming with these settings continues the same run."""
        if not self.checkpoint_path.exists():
            if self.path.exists() and any(self.path.iterdir()):
                raise RunDirectoryError(
                    f"--resume: {self.path} has files but no {CHECKPOINT_FILE} to resume from; "
                    "train it afresh under another --run-name, or delete the directory"
                )
            return
        if not (self.path / "config.json").exists():
            raise RunDirectoryError(
                f"--resume: {self.path} has a checkpoint but no config.json; cannot check the settings"
            )
        conflicts = resume_conflicts(self.config(), requested, requested_profile, extend_epochs)
        if conflicts:
            hint = (
                " (pass --extend-epochs to train more epochs)"
                if any(c.startswith("epochs:") for c in conflicts)
                else ""
            )
            raise RunDirectoryError(
                f"--resume would change the record of {self.path}:\n  " + "\n  ".join(conflicts) + "\nresume with "
                f"the run's own settings, or start a new run under another --run-name{hint}"
            )

    def read(self) -> FinishedRun:
        """The finished, evaluated run; FileNotFoundError names what is missing and how to make it."""
        names = ("metrics.json", "evaluation.json", "manifest.json", "history.csv", "losses.csv", "curves.csv")
        missing = [name for name in names if not (self.path / name).exists()]
        if missing:
            raise FileNotFoundError(
                f"{self.path} lacks {', '.join(missing)}: train it (python -m mh.train) and "
                f"evaluate it (python -m mh.evaluate {self.path})"
            )
        return FinishedRun(
            self.path,
            read_json(self.path / "metrics.json"),
            read_json(self.path / "evaluation.json"),
            read_json(self.path / "manifest.json"),
            pd.read_csv(self.path / "history.csv"),
            pd.read_csv(self.path / "losses.csv"),
            pd.read_csv(self.path / "curves.csv"),
        )


@dataclass
class FinishedRun:
    """What a finished, evaluated run directory holds, read back (``RunDirectory.read``)."""

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

"""Where the project's files live, and files that are never half-written: every output of ``mh`` goes
through these.

``PROJECT_ROOT`` is the checkout holding ``mh/`` (where ``data/``, ``results/`` and ``figures/`` live).

A file is written to a temporary name beside its target and renamed over it only when complete
(``os.replace`` is atomic on POSIX), so a killed run leaves the previous version or the new one, never a
truncated file; the temporary file is removed when writing fails.

Reading is guarded the same way: ``read_json``, ``load_checkpoint`` and ``reading`` turn a damaged file (not
JSON, not a checkpoint, a truncated archive, a missing entry) into ``DamagedFileError`` naming the file and
what to do, instead of a parser's message without a path.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import pickle
import zipfile
from collections.abc import Iterator
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class DamagedFileError(ValueError):
    """A file exists but cannot be read as what it should be; the message names it and the fix."""


# what parsers raise on damaged content (torch.load: RuntimeError/UnpicklingError; np.load: BadZipFile, KeyError)
_DAMAGE = (ValueError, KeyError, EOFError, RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile)


@contextlib.contextmanager
def reading(path: str | os.PathLike, what: str, fix: str = "restore it or produce it again") -> Iterator[None]:
    """Re-raise a parser's error inside the block as DamagedFileError naming ``path`` and ``what`` it should be."""
    try:
        yield
    except DamagedFileError:
        raise
    except _DAMAGE as error:
        detail = f"missing entry {error}" if isinstance(error, KeyError) else f"{type(error).__name__}: {error}"
        raise DamagedFileError(f"{path} is not a readable {what} ({detail[:300]}); {fix}") from error


def read_json(path: str | os.PathLike, what: str = "JSON file", fix: str = "restore it or produce it again"):
    """``json.loads`` of ``path``; FileNotFoundError when missing, DamagedFileError when not valid JSON."""
    with reading(path, what, fix):
        return json.loads(Path(path).read_text())


def load_checkpoint(path: str | os.PathLike, map_location="cpu", weights_only: bool = False) -> dict:
    """``torch.load`` of a checkpoint; DamagedFileError (naming the file) when it is truncated or not one."""
    import torch

    with reading(path, "checkpoint", "train the run again, or resume from a copy of an intact checkpoint"):
        state = torch.load(path, map_location=map_location, weights_only=weights_only)
        if not isinstance(state, dict):
            raise ValueError(f"expected a dict of tensors and states, got {type(state).__name__}")
        return state


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (ending in ``suffix``, for writers that insist on one, like
    ``np.savez``); rename it over ``path`` when the block succeeds, delete it when it fails."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp{suffix}")
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_json(path: str | os.PathLike, payload: dict) -> Path:
    """Write ``payload`` as indented JSON, atomically."""
    with atomic_output(path) as temporary:
        temporary.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return Path(path)


def write_csv(path: str | os.PathLike, rows: list[dict]) -> Path:
    """Write dict rows (the first row's keys are the header) as a CSV file, atomically."""
    with atomic_output(path) as temporary, temporary.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return Path(path)


def append_csv(path: str | os.PathLike, rows: list[dict]) -> None:
    """Append dict rows to a CSV file, writing the header when the file is new."""
    if not rows:
        return
    path = Path(path)
    new_file = not path.exists()
    with path.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        if new_file:
            writer.writeheader()
        writer.writerows(rows)

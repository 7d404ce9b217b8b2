"""Where the project's files live, and files that are never half-written: every output of ``mh`` goes
through these.

``PROJECT_ROOT`` is the checkout holding ``mh/`` (where ``data/``, ``results/`` and ``figures/`` live).

A file is written to a temporary name beside its target and renamed over it only when complete
(``os.replace`` is atomic on POSIX), so a killed run leaves the previous version or the new one, never a
truncated file; the temporary file is removed when writing fails.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
from collections.abc import Iterator
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


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

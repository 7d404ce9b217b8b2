"""Timings that a notebook reports, kept until what they measure changes.

A timing differs on every run, so a notebook that re-measured on every ``make reproduce`` would rewrite its
tables and figures although nothing changed. ``cached_measurement`` stores a measured table under
``results/timings/<name>.csv`` with a fingerprint (``<name>.json``): the measurement's parameters, the machine
(CPU model, core count, torch threads, GPU), the package versions and the source code of the modules that do
the measuring. A later call with the same fingerprint reads the stored table back and says so; anything
else — or ``remeasure=True`` — measures again. The JSON also holds when and at which commit it was measured.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import platform
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd

from mh.io import write_json
from mh.manifest import device_description, package_versions, run_manifest


def _stable(value):
    if isinstance(value, np.ndarray):
        return {"array_sha256": hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest(), "shape": value.shape}
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    return repr(value)


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo where there is one, else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def fingerprint(parameters: dict, modules: tuple[ModuleType, ...]) -> dict:
    """What a timing depends on: parameters, machine, package versions, measuring code (hashed)."""
    source = "".join(inspect.getsource(module) for module in modules)
    return {
        "parameters": json.loads(json.dumps(parameters, sort_keys=True, default=_stable)),
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "device": device_description()},
        "packages": package_versions(),
        "code_sha256": hashlib.sha256(source.encode()).hexdigest(),
    }


def cached_measurement(
    name: str,
    measure: Callable[[], pd.DataFrame],
    parameters: dict,
    modules: tuple[ModuleType, ...],
    directory: str | os.PathLike,
    remeasure: bool = False,
) -> tuple[pd.DataFrame, dict]:
    """``measure()``'s table, or the stored one when its fingerprint matches; returns (table, record).

    The table always comes back from its CSV file, so a fresh and a stored measurement print alike.
    ``record["reused"]`` says which it was; ``record["time_utc"]`` and ``record["commit"]`` when it was measured.
    """
    directory = Path(directory)
    table_path, record_path = directory / f"{name}.csv", directory / f"{name}.json"
    current = fingerprint(parameters, modules)
    if not remeasure and table_path.exists() and record_path.exists():
        stored = json.loads(record_path.read_text())
        if stored.get("fingerprint") == current:
            return pd.read_csv(table_path), {**stored, "reused": True}
    table = measure()
    directory.mkdir(parents=True, exist_ok=True)
    table.to_csv(table_path, index=False)
    record = {**run_manifest(), "fingerprint": current}
    write_json(record_path, record)
    return pd.read_csv(table_path), {**record, "reused": False}


def describe_measurement(record: dict) -> str:
    """One line for a notebook, the same whether the timing was measured now or reused (so outputs stay stable)."""
    machine = record["fingerprint"]["machine"]
    return (
        f"timings measured {record['time_utc']} at commit {record['commit'][:12]} on {machine['cpu']} "
        f"({machine['cores']} cores); reused while machine, versions, code and parameters stay the same "
        "(REMEASURE = True measures again)"
    )

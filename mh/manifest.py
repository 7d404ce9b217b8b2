"""Run manifests: enough to say where every measured number came from (commit, versions, device, time).

``environment`` records the lock the environment was installed from (``requirements/cpu.lock``, its SHA-256)
and every installed distribution with its version, so that a reader can rebuild the environment that made a
committed number: ``make setup`` installs exactly the lock.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import subprocess
import time
from importlib import metadata
from pathlib import Path

import torch

from mh.io import PROJECT_ROOT

PACKAGES = ("torch", "torchvision", "numpy", "mamba-ssm", "causal-conv1d", "fvcore", "grad-cam", "papermill")


GENERATED = ("figures", "results", "notebooks/executed")  # what runs and make reproduce write
LOCK_FILE = "requirements/cpu.lock"  # exact versions with hashes, written by `make lock`


def git_commit(repo: Path | None = None) -> str:
    """HEAD's commit, with ``+dirty`` when tracked files other than the generated outputs (``GENERATED``)
    differ from it — a reproduce rewrites those before its manifest is written; ``unknown`` outside a checkout."""
    repo = repo or PROJECT_ROOT
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", *(f":(exclude){p}" for p in GENERATED)],
            cwd=repo,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def package_versions() -> dict[str, str | None]:
    """Installed versions (from package metadata: nothing is imported, so mamba-ssm stays unloaded)."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def lock_record(root: Path | None = None) -> dict | None:
    """The lock file and its SHA-256 (None outside a checkout that has one)."""
    path = (root or PROJECT_ROOT) / LOCK_FILE
    if not path.exists():
        return None
    return {"file": LOCK_FILE, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def installed_distributions() -> dict[str, str]:
    """Every distribution installed in this Python environment, by normalised name → version, sorted."""
    found = {
        re.sub(r"[-_.]+", "-", dist.metadata["Name"]).lower(): dist.version
        for dist in metadata.distributions()
        if dist.metadata["Name"]
    }
    return dict(sorted(found.items()))


def environment_record() -> dict:
    """The lock the environment should match and what is installed (a difference means it was not made by
    ``make setup`` alone)."""
    return {"lock": lock_record(), "installed": installed_distributions()}


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux), else what ``platform`` knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name") and ":" in line:
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def device_description(device: str | torch.device | None = None) -> str:
    """The accelerator's name, or the CPU model with its core and torch thread counts."""
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda})"
    return f"CPU {cpu_model()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"


def run_manifest(profile: str | None = None, device=None, **extra) -> dict:
    """A manifest dict: commit, python and package versions, device, profile, UTC time, plus ``extra``."""
    return {
        "commit": git_commit(),
        "python": platform.python_version(),
        "packages": package_versions(),
        "device": device_description(device),
        "environment": environment_record(),
        "profile": profile,
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **extra,
    }

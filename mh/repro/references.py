"""What every trained number is shown beside: the same network untrained, and the chance level.

A random network's codes already carry some image similarity (its convolutions and patch embeddings see
colour and layout), so "above chance" is not the bar a trained network has to clear: "above its untrained
self" is. Both references come from here, so that every table and plot of the course draws them the same way:

    untrained_map(config, data)     the initialisation a run's training starts from (kept beside the runs)
    chance_level(data)              a uniformly random ranking (mh.metrics.chance_map)
    reference_rows(...)             both as table rows beside the trained ones
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import torch

from mh.config import TrainConfig
from mh.data import HashingData
from mh.encode import resolve_device
from mh.engine import evaluate_model, seed_everything
from mh.io import write_json
from mh.metrics import chance_map
from mh.registry import build_hashing_model
from mh.rundir import fingerprint

CHANCE_LABEL = "chance (random ranking)"


def initial_network(config: TrainConfig) -> torch.nn.Module:
    """``config``'s network with the weights its training starts from (``mh.train`` seeds every generator with
    ``config.seed`` right before it builds the network)."""
    profile = config.resolved_profile()
    seed_everything(config.seed)
    return build_hashing_model(config.model, config.bits, image_size=profile.image_size, size=profile.model_size)


def untrained_map(config: TrainConfig, data: HashingData) -> float:
    """mAP of ``config``'s network (model, bits, the resolved profile's network size, image size and evaluation
    path) with the weights its training starts from: every generator seeded with ``config.seed`` right before
    the network is built, as ``mh.train`` does. Measured on ``data``'s query and database sets, and kept beside
    the profile's runs (``<runs_dir>/untrained/<run name>.json``, with the run's fingerprint: reused while the
    code and settings match, measured again otherwise)."""
    cache = Path(config.runs_dir) / "untrained" / f"{config.name()}.json"
    expected = fingerprint(config)
    if cache.exists():
        stored = json.loads(cache.read_text())
        if stored.get("fingerprint") == expected:
            return float(stored["map"])
    profile, device = config.resolved_profile(), resolve_device(config.device or "auto")
    scalars, _ = evaluate_model(initial_network(config).to(device), data, profile, device, progress=False)
    write_json(cache, {"map": float(scalars["map"]), "fingerprint": expected})
    return float(scalars["map"])


def chance_level(data: HashingData) -> float:
    """The expected mAP of a uniformly random ranking of ``data``'s database for its queries (closed form)."""
    return chance_map(torch.as_tensor(data.query.labels), torch.as_tensor(data.database.labels))


def reference_rows(untrained: dict[str, dict[str, float]], chance: float, columns: list[str]) -> pd.DataFrame:
    """Rows to append under a table of trained results: one per untrained network (``{row label: {column:
    mAP}}``, e.g. ``{"MambaHash": {"16 bits": 0.12, …}}``), then the chance level in every column of
    ``columns``."""
    rows = [{"method": f"{label}, untrained", **values} for label, values in untrained.items()]
    rows.append({"method": CHANCE_LABEL, **dict.fromkeys(columns, chance)})
    return pd.DataFrame(rows)


def with_references(table: pd.DataFrame, untrained: dict[str, float], chance: float, bits: int) -> pd.DataFrame:
    """``table`` (``mh.repro.tables.side_by_side``: method, bits, …) with two more columns: ``untrained mAP``
    (by method label, at ``bits``; empty where not measured) and ``chance``."""
    table = table.copy()
    at_bits = table["bits"] == bits
    table["untrained mAP"] = table["method"].map(untrained).where(at_bits)
    table["chance"] = chance
    return table

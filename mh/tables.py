"""The paper's numbers (kept once, as data) and measured numbers from run directories, side by side.

``results/paper/paper_numbers.csv`` holds Tables 1–4 of the paper in long form (table, method, dataset,
bits, metric, value), transcribed from the paper's text; nothing else in the project types a paper number.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

PAPER_FILE = Path(__file__).resolve().parent.parent / "results" / "paper" / "paper_numbers.csv"
PAPER_SOURCE = "paper (He & Wei, ICMR 2025)"
MODEL_LABELS = {"mambahash": "MambaHash", "mambahash-full": "MambaHash", "mambahash-no_ciam": "MambaHash w/o C",
                "mambahash-no_afem": "MambaHash w/o F", "mambahash-plain": "MambaHash*", "resnet50": "ResNet50",
                "vit_l_32": "ViT-L/32", "hybridhash": "Hybrid"}
TABLE2_METHODS = {"full": "mambahash", "no_ciam": "mambahash-no_ciam", "no_afem": "mambahash-no_afem",
                  "plain": "mambahash-plain"}


def paper_numbers(table: str | None = None, path: Path = PAPER_FILE) -> pd.DataFrame:
    """The paper's numbers, long form, with a ``source`` column saying so."""
    frame = pd.read_csv(path)
    if table is not None:
        frame = frame[frame["table"] == table].reset_index(drop=True)
    return frame.assign(source=PAPER_SOURCE)


def measured_runs(runs_dir: str | Path) -> pd.DataFrame:
    """One row per finished run under ``runs_dir`` (metrics.json + manifest.json): dataset, model, bits, mAP,
    profile, device, run."""
    rows = []
    for metrics_path in sorted(Path(runs_dir).glob("*/metrics.json")):
        metrics = json.loads(metrics_path.read_text())
        manifest_path = metrics_path.with_name("manifest.json")
        manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
        rows.append({"dataset": metrics["dataset"], "model": metrics["model"], "bits": metrics["bits"],
                     "map": metrics["map"], "profile": metrics["profile"], "device": manifest.get("device"),
                     "run": metrics_path.parent.name})
    return pd.DataFrame(rows, columns=["dataset", "model", "bits", "map", "profile", "device", "run"])


def side_by_side(paper: pd.DataFrame, measured: pd.DataFrame, dataset: str = "cifar10") -> pd.DataFrame:
    """Paper mAP beside measured mAP for ``dataset``, one row per (method, bits); measured cells carry their profile.

    ``paper`` has columns method (model names as in ``measured``), bits, value.
    """
    paper = paper[paper["dataset"] == dataset][["method", "bits", "value"]].rename(
        columns={"method": "model", "value": "paper mAP"})
    measured = measured[measured["dataset"] == dataset][["model", "bits", "map", "profile"]].rename(
        columns={"map": "measured mAP", "profile": "measured under"})
    merged = paper.merge(measured, on=["model", "bits"], how="left")
    merged.insert(0, "method", merged["model"].map(MODEL_LABELS).fillna(merged["model"]))
    merged["measured under"] = merged["measured under"].fillna("not measured under this profile")
    return merged.drop(columns="model")

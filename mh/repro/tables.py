"""The paper's numbers (kept once, as data) and measured numbers from run directories, side by side.

``results/paper/paper_numbers.csv`` holds Tables 1–4 of the paper in long form (table, method, dataset,
bits, metric, value), transcribed from the paper's text; ``results/paper/mpvh_paper_numbers.csv`` holds, in
the same form, what the MpVH paper reports (its Tables 1, 3 and 4, MpVH and MambaHash rows); nothing else in
the project types a paper number.
Table 2's methods are MambaHash's variants (``full``, ``no_ciam``, …); ``paper_numbers`` gives them the
model names of ``mh.registry`` so that every table joins measured runs on one name.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from mh.io import PROJECT_ROOT
from mh.registry import MODELS, TABLE2_MODELS

PAPER_FILE = PROJECT_ROOT / "results" / "paper" / "paper_numbers.csv"
PAPER_SOURCE = "paper (He & Wei, ICMR 2025)"
MPVH_PAPER_FILE = PROJECT_ROOT / "results" / "paper" / "mpvh_paper_numbers.csv"
MPVH_PAPER_SOURCE = "MpVH paper (Zhou, Wang & Zhang, ACM MM 2026)"
MODEL_LABELS = {name: entry.label for name, entry in MODELS.items()}


def paper_numbers(table: str | None = None, path: Path = PAPER_FILE) -> pd.DataFrame:
    """The paper's numbers, long form, with a ``source`` column saying so; Table 2's variants by model name."""
    frame = pd.read_csv(path)
    frame.loc[frame["table"] == "table2", "method"] = frame["method"].map(TABLE2_MODELS)
    if table is not None:
        frame = frame[frame["table"] == table].reset_index(drop=True)
    return frame.assign(source=PAPER_SOURCE)


def mpvh_paper_numbers(table: str | None = None, path: Path = MPVH_PAPER_FILE) -> pd.DataFrame:
    """What the MpVH paper reports, long form, with a ``source`` column saying so (Table 4 rows have no bits)."""
    frame = pd.read_csv(path, dtype={"bits": "Int64"})
    if table is not None:
        frame = frame[frame["table"] == table].reset_index(drop=True)
    return frame.assign(source=MPVH_PAPER_SOURCE)


RUN_COLUMNS = ["dataset", "model", "bits", "seed", "map", "best_on_query", "profile", "device", "run"]


def measured_runs(runs_dir: str | Path, models=None) -> pd.DataFrame:
    """One row per finished run under ``runs_dir`` (metrics.json, config.json, manifest.json): dataset, model,
    bits, training seed, mAP (last epoch), best_on_query (the released code's pick: the best evaluated epoch on
    the query set), profile, device, run. ``models``: keep only runs of these registry names (a profile's runs
    folder also holds the runs of other notebooks, e.g. notebook 08's MpVH, which the MambaHash tables do not
    list)."""
    rows = []
    for metrics_path in sorted(Path(runs_dir).glob("*/metrics.json")):
        metrics = json.loads(metrics_path.read_text())
        if models is not None and metrics["model"] not in models:
            continue
        manifest_path, config_path = metrics_path.with_name("manifest.json"), metrics_path.with_name("config.json")
        manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
        config = json.loads(config_path.read_text()) if config_path.exists() else {}
        rows.append(
            {
                "dataset": metrics["dataset"],
                "model": metrics["model"],
                "bits": metrics["bits"],
                "seed": config.get("seed"),
                "map": metrics["map"],
                "best_on_query": metrics.get("best_on_query", metrics["map"]),
                "profile": metrics["profile"],
                "device": manifest.get("device"),
                "run": metrics_path.parent.name,
            }
        )
    return pd.DataFrame(rows, columns=RUN_COLUMNS)


def over_seeds(measured: pd.DataFrame, value: str = "map") -> pd.DataFrame:
    """Runs that differ only in their training seed, summarised: one row per (dataset, model, bits, profile)
    with ``mean``, ``std`` (sample standard deviation; NaN for one seed), ``min``, ``max`` and ``seeds`` (how
    many) of ``value``, plus ``label`` (the paper's name of the model)."""
    keys = ["dataset", "model", "bits", "profile"]
    summary = (
        measured.groupby(keys, sort=False)[value]
        .agg(mean="mean", std="std", min="min", max="max", seeds="count")
        .reset_index()
    )
    summary.insert(2, "label", summary["model"].map(MODEL_LABELS).fillna(summary["model"]))
    return summary


def mean_and_spread(mean: float, std: float, seeds: int, digits: int = 3) -> str:
    """ "0.412 ± 0.011 (3 seeds)": a table cell of a mean over seeds and its sample standard deviation."""
    if seeds < 2 or pd.isna(std):
        return f"{mean:.{digits}f} (1 seed)"
    return f"{mean:.{digits}f} ± {std:.{digits}f} ({seeds} seeds)"


def _by_bits(frame: pd.DataFrame, index: str, values: str) -> pd.DataFrame:
    """Long rows → one row per ``index``, one column per bit length ("16 bits", …)."""
    wide = frame.pivot(index=index, columns="bits", values=values)
    wide.columns = [f"{bits} bits" for bits in wide.columns]
    return wide


def table1(
    measured: pd.DataFrame,
    measured_label: str,
    dataset: str = "cifar10",
    model: str = "mambahash",
    order_by: str = "48 bits",
) -> pd.DataFrame:
    """Table 1's ``dataset`` column: the paper's methods (sorted by ``order_by``) and this project's ``model``
    as a row of means over its training seeds labelled ``measured: <measured_label>``, followed (when some bit
    length has several seeds) by a row of the seeds' sample standard deviations; bit lengths as columns."""
    paper = paper_numbers("table1").query("dataset == @dataset")
    rows = _by_bits(paper, "method", "value").sort_values(order_by).reset_index()
    rows.insert(1, "source", "paper")
    ours = measured.query("dataset == @dataset and model == @model")
    if not ours.empty:
        summary = over_seeds(ours)
        label = f"{MODEL_LABELS[model]} (this project)"
        seeds = "/".join(str(count) for count in summary.sort_values("bits")["seeds"])
        mean = _by_bits(summary, "model", "mean").reset_index(drop=True)
        spread = _by_bits(summary, "model", "std").reset_index(drop=True)
        mean = mean.assign(method=f"{label}, mean", source=f"measured: {measured_label}")
        spread = spread.assign(method=f"{label}, ± std over seeds ({seeds})", source=f"measured: {measured_label}")
        several = (summary["seeds"] > 1).any()  # one seed has no spread: no row of empty cells
        rows = pd.concat([rows, mean, *([spread] if several else [])], ignore_index=True)
    return rows


def side_by_side(paper: pd.DataFrame, measured: pd.DataFrame, dataset: str = "cifar10") -> pd.DataFrame:
    """Paper mAP beside measured mAP for ``dataset``, one row per (method, bits): the measured mean over the
    training seeds, its sample standard deviation (``± std``) and the number of seeds; measured cells carry
    their profile.

    ``paper`` has columns method (model names as in ``measured``), bits, value.
    """
    paper = paper[paper["dataset"] == dataset][["method", "bits", "value"]].rename(
        columns={"method": "model", "value": "paper mAP"}
    )
    ours = measured[measured["dataset"] == dataset]
    summary = over_seeds(ours) if not ours.empty else pd.DataFrame(columns=["model", "bits", "mean", "std", "seeds"])
    summary = summary.rename(columns={"mean": "measured mAP", "std": "± std", "profile": "measured under"})
    columns = ["model", "bits", "measured mAP", "± std", "seeds", "measured under"]
    merged = paper.merge(summary.reindex(columns=columns), on=["model", "bits"], how="left")
    merged.insert(0, "method", merged["model"].map(MODEL_LABELS).fillna(merged["model"]))
    merged["seeds"] = merged["seeds"].fillna(0).astype(int)
    merged["measured under"] = merged["measured under"].fillna("not measured under this profile")
    return merged.drop(columns="model")


def measured_beside_paper(measured: pd.DataFrame, bits: int, dataset: str = "cifar10") -> pd.DataFrame:
    """Every measured run at ``bits`` with its paper label and the paper's mAP for that model (Tables 2–3)."""
    runs = measured.query("dataset == @dataset and bits == @bits").copy()
    paper = pd.concat([paper_numbers("table2"), paper_numbers("table3")]).query("dataset == @dataset and bits == @bits")
    runs["label"] = runs["model"].map(MODEL_LABELS)
    runs["paper"] = runs["model"].map(paper.drop_duplicates("method").set_index("method")["value"])
    return runs

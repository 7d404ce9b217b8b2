"""mh.repro.tables: paper numbers stay labelled as such; measured numbers come only from run directories."""

import json

import pandas as pd
import pytest

from mh.repro.tables import (
    PAPER_SOURCE,
    mean_and_spread,
    measured_runs,
    over_seeds,
    paper_numbers,
    side_by_side,
    table1,
)


def test_paper_numbers_cover_tables_1_to_4_and_are_labelled():
    frame = paper_numbers()
    assert set(frame["table"]) == {"table1", "table2", "table3", "table4"}
    assert (frame["source"] == PAPER_SOURCE).all()
    assert frame.query("table == 'table1'")["method"].nunique() == 16
    table4 = paper_numbers("table4").set_index(["method", "metric"])["value"]
    assert table4[("mambahash", "gflops")] == 7.53 and table4[("vit_l_32", "params_M")] == 292.93


def test_measured_runs_and_side_by_side(tmp_path):
    run = tmp_path / "cifar10-resnet50-48bits-smoke"
    run.mkdir()
    (run / "metrics.json").write_text(
        json.dumps({"dataset": "cifar10", "model": "resnet50", "bits": 48, "map": 0.25, "profile": "smoke: test"})
    )
    measured = measured_runs(tmp_path)
    assert measured.loc[0, "map"] == 0.25 and measured.loc[0, "run"] == run.name
    table = side_by_side(paper_numbers("table3"), measured)
    row = table[(table["method"] == "ResNet50") & (table["bits"] == 48)].iloc[0]
    assert row["measured mAP"] == 0.25 and row["measured under"] == "smoke: test" and row["paper mAP"] == 0.8543
    other = table[(table["method"] == "ResNet50") & (table["bits"] == 16)].iloc[0]
    assert pd.isna(other["measured mAP"]) and other["measured under"] == "not measured under this profile"


def test_measured_runs_keep_only_the_models_asked_for(tmp_path):
    for model in ("resnet50", "mpvh"):
        (tmp_path / f"cifar10-{model}-48bits-smoke").mkdir()
        (tmp_path / f"cifar10-{model}-48bits-smoke" / "metrics.json").write_text(
            json.dumps({"dataset": "cifar10", "model": model, "bits": 48, "map": 0.2, "profile": "smoke: test"})
        )
    assert set(measured_runs(tmp_path)["model"]) == {"resnet50", "mpvh"}
    assert list(measured_runs(tmp_path, models=["resnet50", "vit_l_32"])["model"]) == ["resnet50"]


def test_no_runs_gives_an_empty_frame(tmp_path):
    assert measured_runs(tmp_path).empty


def write_run(folder, model: str, seed: int, value: float, bits: int = 48):
    run = folder / f"cifar10-{model}-{bits}bits-smoke-seed{seed}"
    run.mkdir()
    metrics = {"dataset": "cifar10", "model": model, "bits": bits, "map": value, "profile": "smoke: test"}
    (run / "metrics.json").write_text(json.dumps(metrics))
    (run / "config.json").write_text(json.dumps({"seed": seed}))


def test_runs_that_differ_in_their_seed_are_summarised_by_mean_and_sample_spread(tmp_path):
    for seed, value in ((1, 0.30), (2, 0.34), (3, 0.32)):
        write_run(tmp_path, "mambahash", seed, value)
    write_run(tmp_path, "resnet50", 1, 0.2)
    measured = measured_runs(tmp_path)
    assert sorted(measured["seed"]) == [1, 1, 2, 3]
    summary = over_seeds(measured).set_index("model")
    assert summary.loc["mambahash", "mean"] == pytest.approx(0.32)
    assert summary.loc["mambahash", "std"] == pytest.approx(0.02)  # sample standard deviation (n − 1)
    assert summary.loc["mambahash", "seeds"] == 3 and pd.isna(summary.loc["resnet50", "std"])
    assert mean_and_spread(0.32, 0.02, 3) == "0.320 ± 0.020 (3 seeds)" and mean_and_spread(0.2, float("nan"), 1) == (
        "0.200 (1 seed)"
    )
    row = side_by_side(paper_numbers("table2"), measured).query("method == 'MambaHash' and bits == 48").iloc[0]
    assert (row["measured mAP"], row["± std"], row["seeds"]) == (pytest.approx(0.32), pytest.approx(0.02), 3)
    ours = table1(measured, "smoke: test").set_index("method")
    assert ours.loc["MambaHash (this project), mean", "48 bits"] == pytest.approx(0.32)
    assert ours.loc["MambaHash (this project), ± std over seeds (3)", "48 bits"] == pytest.approx(0.02)


def test_table1_has_no_spread_row_for_a_single_seed(tmp_path):
    write_run(tmp_path, "mambahash", 1, 0.3)
    methods = list(table1(measured_runs(tmp_path), "smoke: test")["method"])
    assert "MambaHash (this project), mean" in methods and not any("± std" in method for method in methods)

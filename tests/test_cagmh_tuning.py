"""CAGMH's rates chosen on validation mosaics held out of the training mosaics (never the queries): the carve-out,
training with a per-epoch measurement that leaves the training unchanged, the study's command, and notebook 09
held to its committed record."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from test_cagmh import TINY

from mh.data import ImagePool
from mh.family.cagmh import CAGMH, clip_image_transform, tokenize
from mh.family.cagmh_train import train_cagmh
from mh.family.paired_data import PairedDataset, carve_validation, synthetic_mosaics
from mh.repro import tuning, tuning_cagmh
from mh.repro.tuning_cagmh import chosen_rates, notebook_parameters, parse_rates


def tiny_pool(size=400, seed=0) -> ImagePool:
    arrays = np.random.default_rng(seed).integers(0, 256, (size, 32, 32, 3), dtype=np.uint8)
    return ImagePool(labels=np.arange(size) % 10, source="test", arrays=arrays)


def tiny_mosaics(count=40):
    return synthetic_mosaics(tiny_pool(), {"train": count}, seed=3, tiles=2, relevance="class_set")["train"]


def test_validation_pairs_are_held_out_of_training_disjoint_seeded_and_aligned():
    train = tiny_mosaics()
    parts = carve_validation(train, query=5, database=10, seed=1)
    assert [len(parts[name]) for name in ("train", "validation_query", "validation_database")] == [25, 5, 10]
    rows = {name: {part.arrays[i].tobytes() for i in range(len(part))} for name, part in parts.items()}
    assert not rows["train"] & rows["validation_query"] and not rows["train"] & rows["validation_database"]
    assert not rows["validation_query"] & rows["validation_database"]
    original = {train.arrays[i].tobytes(): (train.captions[i], train.labels[i].tobytes()) for i in range(len(train))}
    for part in parts.values():
        for i in range(len(part)):
            assert original[part.arrays[i].tobytes()] == (part.captions[i], part.labels[i].tobytes())
    again = carve_validation(train, query=5, database=10, seed=1)
    assert np.array_equal(again["validation_query"].arrays, parts["validation_query"].arrays)
    with pytest.raises(ValueError, match="ask for fewer"):
        carve_validation(train, query=20, database=20)


def train_tiny(after_epoch=None):
    pairs = tiny_mosaics(24)
    dataset = PairedDataset(pairs, clip_image_transform(32), tokenize(pairs.captions))
    torch.manual_seed(0)
    model = CAGMH(64, **TINY)
    return train_cagmh(model, dataset, 2, batch_size=8, seed=0, progress=False, after_epoch=after_epoch).history


def test_a_measurement_after_each_epoch_joins_the_history_and_leaves_the_training_unchanged():
    def measure(model):
        assert not model.training
        torch.rand(100)  # a measurement that draws random numbers must not shift the training's
        return {"validation_map": 0.5}

    def evaluate_then_measure(model):
        model.eval()
        return measure(model)

    plain, measured = train_tiny(), train_tiny(evaluate_then_measure)
    assert [row["loss"] for row in measured] == [row["loss"] for row in plain]
    assert [row["validation_map"] for row in measured] == [0.5, 0.5]


def test_rates_parse_and_bad_entries_say_what_is_expected():
    assert parse_rates(["1e-3:1e-4", "3e-3:3e-4"]) == [(1e-3, 1e-4), (3e-3, 3e-4)]
    with pytest.raises(ValueError, match="not lr:clip_lr"):
        parse_rates(["1e-3"])
    with pytest.raises(ValueError, match="positive"):
        parse_rates(["0:1e-4"])


def test_the_choice_is_the_best_mean_validation_map_after_the_last_epoch():
    curves = pd.DataFrame(
        [
            {"lr": 1e-3, "clip_lr": 1e-4, "epoch": 1, "validation_mean": 0.9},  # best early, not at the end
            {"lr": 1e-3, "clip_lr": 1e-4, "epoch": 2, "validation_mean": 0.2},
            {"lr": 3e-3, "clip_lr": 1e-4, "epoch": 1, "validation_mean": 0.1},
            {"lr": 3e-3, "clip_lr": 1e-4, "epoch": 2, "validation_mean": 0.3},
        ]
    )
    assert chosen_rates(curves) == (3e-3, 1e-4)


def test_the_study_runs_the_notebooks_settings_and_records_its_choice(tmp_path, monkeypatch, capsys):
    parameters = notebook_parameters()
    parameters |= {
        "MOSAICS": {"smoke": {"train": 40}},
        "EPOCHS": {"smoke": 1},
        "BATCH_SIZE": 8,
        "BITS": 64,
        "REDUCED_CLIP": {key: value for key, value in TINY.items() if key != "scan_backend"},
    }
    monkeypatch.setattr(tuning_cagmh, "notebook_parameters", lambda: parameters)
    monkeypatch.setattr(tuning_cagmh, "load_cifar10_pool", lambda data_dir: tiny_pool())
    monkeypatch.setattr(tuning, "TUNING_DIR", tmp_path)
    arguments = ["--profile", "smoke", "--rates", "1e-3:1e-4", "1e-2:1e-3", "--device", "cpu"]
    assert tuning_cagmh.main([*arguments, "--validation-query", "6", "--validation-database", "10"]) == 0
    name = f"smoke-cagmh-64bits-tiles{parameters['TILES']}"
    curves = pd.read_csv(tmp_path / f"{name}.csv")
    record = json.loads((tmp_path / f"{name}.json").read_text())
    assert len(curves) == 2 and curves["validation_mean"].between(0, 1).all()
    assert curves["validation_chance"].between(0, 1).all() and curves["validation_chance"].nunique() == 1
    assert (record["chosen_lr"], record["chosen_clip_lr"]) == chosen_rates(curves)
    assert record["train_pairs"] == 24 and record["notebook_settings"]["TILES"] == parameters["TILES"]
    assert "chosen: lr" in capsys.readouterr().out
    other_design = 2 if parameters["TILES"] != 2 else 1
    arguments = [*arguments, "--tiles", str(other_design), "--validation-query", "4", "--validation-database", "6"]
    assert tuning_cagmh.main(arguments) == 0
    record = json.loads((tmp_path / f"smoke-cagmh-64bits-tiles{other_design}.json").read_text())
    assert record["notebook_settings"]["TILES"] == other_design  # another design, recorded beside the notebook's


def test_a_profile_without_mosaic_counts_is_refused_in_one_line(monkeypatch, capsys):
    monkeypatch.setattr(tuning_cagmh, "load_cifar10_pool", lambda data_dir: tiny_pool())
    assert tuning_cagmh.main(["--profile", "nonesuch", "--rates", "1e-3:1e-4"]) == 2
    assert "no mosaic counts for profile 'nonesuch'" in capsys.readouterr().err


def test_notebook_09_uses_the_rates_its_committed_records_chose():
    """Records of the notebook's own mosaic design set its rates; records of another design (``--tiles``) are
    evidence for the choice of ``TILES`` and must differ from the notebook in nothing else."""
    parameters = notebook_parameters()
    assert set(parameters["RATES"]) == set(parameters["MOSAICS"])
    records = sorted(tuning.TUNING_DIR.glob("*-cagmh-*bits-tiles*.json"))
    assert any(path.name.endswith(f"-tiles{parameters['TILES']}.json") for path in records)
    for record_path in records:
        record = json.loads(record_path.read_text())
        profile, settings = record["profile"], record["notebook_settings"]
        assert record_path.name.endswith(f"-tiles{settings['TILES']}.json")
        if settings["TILES"] == parameters["TILES"]:
            assert tuple(parameters["RATES"][profile]) == (record["chosen_lr"], record["chosen_clip_lr"]), record_path
        others = {name: value for name, value in settings.items() if name != "TILES"}
        assert others == {name: parameters[name] for name in others}, f"{record_path} tuned other settings"
        assert record["epochs_per_setting"] == parameters["EPOCHS"][profile]

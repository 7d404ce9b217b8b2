"""Choosing the smoke optimiser on held-out training images: the split, the rule, and the profile's agreement."""

import json

import numpy as np
import pandas as pd
import pytest

from mh.data import HashingData, ImagePool, PoolSubset, build_transform
from mh.datasets import DATASETS
from mh.profiles import PROFILES, comparison_profile
from mh.repro.tuning import chosen_epochs, chosen_setting, parse_grid, read_tuning, tuning_record, validation_split
from mh.repro.tuning import main as tuning_main


def _data(train_size=100):
    pool = ImagePool(paths=[f"{i}.jpg" for i in range(400)], labels=np.arange(400) % 10, source="test")
    protocol = DATASETS["cifar10"].protocol
    part = lambda indices, train: PoolSubset(pool, indices, 10, build_transform(train, 32))  # noqa: E731
    record = {"image_size": 32, "transform": "paper"}
    return HashingData(
        part(np.arange(train_size), True),
        part(np.arange(100, 120), False),
        part(np.arange(120, 400), False),
        protocol,
        record,
    )


def test_validation_queries_and_database_are_held_out_of_the_training_images():
    data = _data()
    split = validation_split(data, 20, 30)
    train, queries, database = (set(part.indices.tolist()) for part in (split.train, split.query, split.database))
    assert (len(queries), len(database), len(train)) == (20, 30, 50)
    assert not queries & train and not database & train and not queries & database
    assert queries | database | train == set(data.train.indices.tolist())
    assert np.bincount(split.query.labels.argmax(1).numpy()).tolist() == [2] * 10  # class-balanced
    assert np.bincount(split.database.labels.argmax(1).numpy()).tolist() == [3] * 10
    assert split.query.transform is not data.train.transform


def test_a_validation_split_that_leaves_nothing_to_train_on_is_refused():
    with pytest.raises(ValueError, match="leave training"):
        validation_split(_data(), 60, 40)


def test_the_best_last_epoch_wins():
    curves = pd.DataFrame(
        {
            "optimizer": ["adam"] * 4 + ["rmsprop"] * 2,
            "lr": [1e-4, 1e-4, 1e-3, 1e-3, 2e-5, 2e-5],
            "epoch": [1, 2, 1, 2, 1, 2],
            "validation_map": [0.1, 0.3, 0.4, 0.2, 0.1, 0.25],
        }
    )
    assert chosen_setting(curves) == (
        "adam",
        1e-4,
        32,
        "paper",
        0,
        0.0,
        "constant",
    )  # settings the curves do not vary are defaults
    curves = curves.assign(batch_size=[16, 16, 32, 32, 16, 16], transform_style="released_cifar")
    assert chosen_setting(curves) == ("adam", 1e-4, 16, "released_cifar", 0, 0.0, "constant")
    assert parse_grid(["adam:1e-4,3e-4", "rmsprop:2e-5"]) == {"adam": (1e-4, 3e-4), "rmsprop": (2e-5,)}
    with pytest.raises(ValueError, match="adam:1e-4"):
        parse_grid(["adam:fast"])


def test_the_smoke_profile_uses_the_committed_sweeps_choice():
    record, curves = tuning_record("smoke"), read_tuning("smoke")
    smoke = PROFILES["smoke"]
    chosen = (
        record["chosen_optimizer"],
        record["chosen_learning_rate"],
        record["chosen_batch_size"],
        record["chosen_transform_style"],
    )
    assert (smoke.optimizer, smoke.learning_rate, smoke.batch_size, smoke.transform_style) == chosen
    assert chosen_setting(curves)[:4] == chosen
    settings = record["profile_settings"]
    assert (settings["subset"]["train"], settings["model_size"]) == (smoke.subset["train"], smoke.model_size)


def test_the_smoke_profile_trains_the_epoch_count_its_study_chose_for_the_sweeps_setting():
    study, curves = tuning_record("smoke", study="epochs"), read_tuning("smoke", study="epochs")
    assert chosen_setting(curves) == chosen_setting(read_tuning("smoke"))
    assert study["chosen_epochs"] <= study["epochs_per_setting"] == len(curves)
    assert chosen_epochs(curves) == study["chosen_epochs"] == PROFILES["smoke"].epochs
    assert study["profile_settings"]["subset"] == PROFILES["smoke"].subset


def test_an_epoch_study_picks_the_best_epoch_and_refuses_more_than_one_setting():
    curves = pd.DataFrame({"epoch": [1, 2, 3, 4], "validation_map": [0.2, 0.3, 0.3, 0.25]})
    assert chosen_epochs(curves) == 2
    assert tuning_main(["--epochs", "4", "--grid", "rmsprop:1e-4,2e-4", "--batch-sizes", "16"]) == 2


def test_smoke_comparisons_train_smaller_with_the_tuned_settings_and_other_profiles_compare_under_themselves():
    smoke, compare = PROFILES["smoke"], comparison_profile(PROFILES["smoke"])
    assert compare.name == "smoke_compare" and compare.comparison is None
    assert compare.subset["train"] < smoke.subset["train"] and compare.epochs <= smoke.epochs
    tuned = ("optimizer", "learning_rate", "batch_size", "transform_style", "image_size", "model_size")
    assert {field: getattr(compare, field) for field in tuned} == {field: getattr(smoke, field) for field in tuned}
    assert {key: compare.subset[key] for key in ("query", "database")} == {
        key: smoke.subset[key] for key in ("query", "database")
    }
    for name in ("gpu", "paper"):
        assert comparison_profile(PROFILES[name]) is PROFILES[name]


def test_the_gpu_profile_uses_the_from_scratch_recipe_its_study_chose():
    """The gpu profile trains the full-size networks from random weights: its rate, warm-up and clipping are the
    choice of the committed study on a validation split at 32 px (``scratch_study``), never the query set."""
    record, curves = tuning_record("scratch_study"), read_tuning("scratch_study")
    gpu = PROFILES["gpu"]
    choice = chosen_setting(curves)
    assert (gpu.optimizer, gpu.learning_rate, gpu.batch_size) == (choice.optimizer, choice.lr, choice.batch_size)
    assert (gpu.warmup_steps, gpu.clip_grad_norm) == (choice.warmup_steps, choice.clip_grad_norm)
    assert record["chosen_warmup_steps"] == choice.warmup_steps
    assert record["profile_settings"]["model_size"] == "paper"
    assert PROFILES["paper"].learning_rate == 2e-5  # the paper's fine-tuning rate stays with pretrained weights


def test_the_cpu_profile_uses_the_committed_sweeps_choice_on_the_full_protocol():
    """The cpu profile's optimiser, rate, warm-up and schedule are its sweep's choice on a validation split of the
    protocol's 5,000 training images (never the query set), at the epochs the profile trains."""
    record, curves = tuning_record("cpu"), read_tuning("cpu")
    cpu, choice = PROFILES["cpu"], chosen_setting(curves)
    assert (cpu.optimizer, cpu.learning_rate, cpu.batch_size, cpu.transform_style) == choice[:4]
    assert (cpu.warmup_steps, cpu.clip_grad_norm, cpu.schedule) == choice[4:]
    assert record["epochs_per_setting"] == cpu.epochs == curves["epoch"].max()
    assert record["profile_settings"]["subset"] is None and record["profile_settings"]["model_size"] == cpu.model_size
    assert cpu.seeds >= 2 and cpu.headline_seeds >= 3 and set(cpu.bits) == {16, 32, 48, 64}


def test_a_models_own_sweep_gives_its_knobs_and_without_one_the_profiles_apply(tmp_path, monkeypatch):
    from mh.profiles import KNOBS
    from mh.repro import tuning

    monkeypatch.setattr(tuning, "TUNING_DIR", tmp_path)
    assert tuning.chosen_knobs("cpu", "mpvh", 48) == {}
    record = {"profile": "cpu", "chosen_optimizer": "adam", "chosen_learning_rate": 3e-4, "chosen_batch_size": 16}
    (tmp_path / "cpu-mpvh-48bits.json").write_text(json.dumps({**record, "criterion": "validation mAP"}))
    knobs = tuning.chosen_knobs("cpu", "mpvh", 48)
    assert knobs == {"optimizer": "adam", "learning_rate": 3e-4, "batch_size": 16}
    assert set(knobs) <= {field.name for field in KNOBS}
    assert tuning.chosen_knobs("cpu", "mpvh", 64) == {} and tuning.chosen_knobs("smoke", "mpvh", 48) == {}

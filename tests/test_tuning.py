"""Choosing the smoke optimiser on held-out training images: the split, the rule, and the profile's agreement."""

import numpy as np
import pandas as pd
import pytest

from mh.data import HashingData, ImagePool, PoolSubset, build_transform
from mh.repro.profiles import PROFILES
from mh.repro.tuning import chosen_setting, parse_grid, read_tuning, tuning_record, validation_split
from mh.splits import PROTOCOLS


def _data(train_size=100):
    pool = ImagePool(paths=[f"{i}.jpg" for i in range(400)], labels=np.arange(400) % 10, source="test")
    protocol = PROTOCOLS["cifar10"]
    part = lambda indices, train: PoolSubset(pool, indices, 10, build_transform(train, 32))  # noqa: E731
    record = {"image_size": 32, "transform": "paper"}
    return HashingData(
        part(np.arange(train_size), True),
        part(np.arange(100, 120), False),
        part(np.arange(120, 400), False),
        protocol,
        record,
    )


def test_validation_queries_come_from_training_images_only():
    data = _data()
    split = validation_split(data, 20)
    train, queries, database = (set(part.indices.tolist()) for part in (split.train, split.query, split.database))
    assert len(queries) == 20 and not queries & train and train == database
    assert queries | train == set(data.train.indices.tolist())
    assert np.bincount(split.query.labels.argmax(1).numpy()).tolist() == [2] * 10  # class-balanced
    assert split.query.transform is not data.train.transform


def test_a_validation_set_as_large_as_the_training_set_is_refused():
    with pytest.raises(ValueError, match="validation size"):
        validation_split(_data(), 100)


def test_the_best_last_epoch_wins():
    curves = pd.DataFrame(
        {
            "optimizer": ["adam"] * 4 + ["rmsprop"] * 2,
            "lr": [1e-4, 1e-4, 1e-3, 1e-3, 2e-5, 2e-5],
            "epoch": [1, 2, 1, 2, 1, 2],
            "validation_map": [0.1, 0.3, 0.4, 0.2, 0.1, 0.25],
        }
    )
    assert chosen_setting(curves) == ("adam", 1e-4)
    assert parse_grid(["adam:1e-4,3e-4", "rmsprop:2e-5"]) == {"adam": (1e-4, 3e-4), "rmsprop": (2e-5,)}
    with pytest.raises(ValueError, match="adam:1e-4"):
        parse_grid(["adam:fast"])


def test_the_smoke_profile_uses_the_committed_sweeps_choice():
    record, curves = tuning_record("smoke"), read_tuning("smoke")
    smoke = PROFILES["smoke"]
    assert (smoke.optimizer, smoke.learning_rate) == (record["chosen_optimizer"], record["chosen_learning_rate"])
    assert chosen_setting(curves) == (record["chosen_optimizer"], record["chosen_learning_rate"])
    settings = record["profile_settings"]
    assert (settings["epochs"], settings["subset"]["train"], settings["model_size"]) == (
        smoke.epochs,
        smoke.subset["train"],
        smoke.model_size,
    )

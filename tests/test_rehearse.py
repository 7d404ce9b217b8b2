"""make rehearse: the gpu profile's code paths on tens of images, into a scratch tree (``mh.repro.rehearse``)."""

from __future__ import annotations

import dataclasses

import pytest

from mh.io import PROJECT_ROOT
from mh.profiles import PROFILES
from mh.repro.rehearse import DEFAULT_SCRATCH, prepare_scratch
from mh.repro.reproduce import NOTEBOOKS, ReproduceInputError


def test_the_rehearsal_profile_is_the_gpu_profile_on_tens_of_images():
    gpu, rehearse = dataclasses.asdict(PROFILES["gpu"]), dataclasses.asdict(PROFILES["rehearse"])
    different = {name for name in gpu if gpu[name] != rehearse[name]}
    assert different == {"name", "epochs", "subset", "batch_size", "note"}
    assert rehearse["epochs"] == 1 and max(rehearse["subset"].values()) <= 64
    assert (rehearse["image_size"], rehearse["model_size"], rehearse["bits"]) == (224, "paper", (16, 32, 48, 64))


def test_the_scratch_tree_holds_a_copy_of_the_notebooks_and_nothing_committed(tmp_path):
    scratch = prepare_scratch(tmp_path / "scratch")
    assert sorted(path.stem for path in (scratch / "notebooks").glob("*.ipynb")) == sorted(NOTEBOOKS)
    assert not (scratch / "figures").exists() and not (scratch / "results").exists()
    (scratch / "stale").write_text("from an earlier rehearsal")
    assert not (prepare_scratch(scratch) / "stale").exists()
    assert DEFAULT_SCRATCH.is_relative_to(PROJECT_ROOT / "results" / "cache")  # ignored by git


def test_the_scratch_tree_is_never_the_checkout():
    with pytest.raises(ReproduceInputError, match="must not be the checkout"):
        prepare_scratch(PROJECT_ROOT)

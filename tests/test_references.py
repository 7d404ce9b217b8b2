"""What trained numbers stand beside: the untrained network (the run's own initialisation) and chance."""

import json

import pandas as pd
import pytest
import torch
from test_train import tiny_config, tiny_data

from mh.engine import evaluate_model
from mh.repro.references import (
    CHANCE_LABEL,
    chance_level,
    initial_network,
    reference_rows,
    untrained_map,
    with_references,
)
from mh.train import fit, start_training


def test_the_untrained_reference_is_the_initialisation_training_starts_from_and_is_kept(tmp_path, monkeypatch):
    data = tiny_data()
    config = tiny_config(tmp_path, epochs=1)
    measured = untrained_map(config, data)
    cache = tmp_path / "untrained" / "tiny.json"
    assert json.loads(cache.read_text())["map"] == measured
    started = start_training(config, resume=False, progress=False, data=data)  # the weights step 1 starts from
    trained_from = started.parts.model.state_dict()
    for name, tensor in initial_network(config).state_dict().items():
        assert torch.equal(tensor, trained_from[name]), name
    monkeypatch.setattr("mh.repro.references.evaluate_model", lambda *a, **k: pytest.fail("not reused"))
    assert untrained_map(config, data) == measured
    cache.write_text(json.dumps({"map": 0.5, "fingerprint": {"code_sha256": "other code"}}))
    monkeypatch.setattr("mh.repro.references.evaluate_model", evaluate_model)
    assert untrained_map(config, data) == measured  # another fingerprint: measured again


def test_chance_is_stated_per_dataset_and_rows_repeat_a_reference_in_every_column():
    data = tiny_data()
    assert 0.25 < chance_level(data) < 0.4  # 4 balanced classes in a 16-image database: above R/N = 0.25
    rows = reference_rows({"MambaHash": {"16 bits": 0.3, "48 bits": 0.35}}, 0.1, ["16 bits", "48 bits"])
    assert list(rows["method"]) == ["MambaHash, untrained", CHANCE_LABEL]
    assert (rows.loc[0, "48 bits"], rows.loc[1, "48 bits"], rows.loc[1, "16 bits"]) == (0.35, 0.1, 0.1)
    table = pd.DataFrame({"method": ["MambaHash", "MambaHash", "ResNet50"], "bits": [16, 48, 48]})
    referenced = with_references(table, {"MambaHash": 0.3, "ResNet50": 0.2}, 0.1, bits=48)
    assert list(referenced["untrained mAP"].fillna(-1)) == [-1, 0.3, 0.2] and set(referenced["chance"]) == {0.1}


def test_grad_cam_explains_a_finished_runs_checkpoint_or_says_there_is_none(tmp_path):
    from mh.repro.gradcam import network_to_explain

    data, config = tiny_data(), tiny_config(tmp_path, epochs=1)
    assert network_to_explain(config, trained=True, image_size=32) is None  # not trained yet
    fit(config, data=data, progress=False)
    trained = network_to_explain(config, trained=True, image_size=32).state_dict()
    initial = network_to_explain(config, trained=False, image_size=32).state_dict()
    assert any(not torch.equal(trained[name], initial[name]) for name in trained)
    assert network_to_explain(config, trained=True, image_size=64) is None  # trained at another size

"""Loading GroupMamba-S weights by name: a state dict written with the released key names."""

import re

import pytest
import torch

from mh.model import MambaHash, load_groupmamba_weights
from mh.weights import read_state_dict

CIAM_SUFFIXES = (".attn.ciam.fc.weight", ".attn.ciam.fc.bias", ".attn.ciam.conv.weight")


def groupmamba_name(key: str) -> str:
    """This project's key → GroupMamba's (``stages.0.patch_embed.`` → ``patch_embed1.``, …)."""
    return re.sub(
        r"^stages\.(\d)\.(patch_embed|blocks|norm)\.", lambda m: f"{m[2].removesuffix('s')}{int(m[1]) + 1}.", key
    )


def test_groupmamba_names_are_the_released_ones():
    assert groupmamba_name("stages.0.patch_embed.proj.weight") == "patch_embed1.proj.weight"
    assert groupmamba_name("stages.2.blocks.15.attn.proj.bias") == "block3.15.attn.proj.bias"
    assert groupmamba_name("stages.3.norm.weight") == "norm4.weight"


def groupmamba_small_state_dict(source: MambaHash) -> dict:
    """What groupmamba_small_ema.pth holds, by name: MambaHash's backbone keys, GroupMamba's own SE layers
    in place of CIAM, its class-token block and classifier heads; no CIAM, AFEM or hash layer."""
    state = {
        groupmamba_name(k): v.clone()
        for k, v in source.state_dict().items()
        if not k.startswith(("afem.", "hash.")) and not k.endswith(CIAM_SUFFIXES)
    }
    for stage, depth in zip(range(1, 5), (3, 4, 16, 3), strict=True):
        dim = (64, 128, 348, 512)[stage - 1]
        for block in range(depth):
            state[f"block{stage}.{block}.attn.fc1.weight"] = torch.randn(dim // 16, dim)
            state[f"block{stage}.{block}.attn.fc2.weight"] = torch.randn(dim, dim // 16)
    state["post_network.0.attn.proj.weight"] = torch.randn(512, 512)
    state["cls_token"] = torch.randn(1, 1, 512)
    state["head.weight"] = torch.randn(1000, 512)
    state["head.bias"] = torch.randn(1000)
    state["dist_head.weight"] = torch.randn(1000, 512)
    return state


def test_backbone_loads_and_the_rest_stays_random(tmp_path):
    source = MambaHash(48, direction_order="released")
    path = tmp_path / "groupmamba_small_ema.pth"
    torch.save(groupmamba_small_state_dict(source), path)
    target = MambaHash(48, direction_order="released")
    before = {k: v.clone() for k, v in target.state_dict().items()}
    report = load_groupmamba_weights(target, path, verbose=False)

    assert len(report.loaded) == 1524  # the count the spec measured with GroupMamba's own state dict
    assert len(report.missing) == 90  # CIAM of 26 blocks (3 keys each), AFEM (10), hash (2)
    assert report.shape_mismatched == []
    assert len(report.unexpected) == 2 * 26 + 5
    assert abs(report.loaded_parameters / 1e6 - 30.79) < 0.005
    assert abs(report.random_parameters / 1e6 - 8.19) < 0.005
    after = target.state_dict()
    for key in report.loaded:
        assert torch.equal(after[key], source.state_dict()[key]), key
    for key in report.missing:
        assert torch.equal(after[key], before[key]), key


def test_nested_and_module_prefixed_files_and_released_names(tmp_path):
    source = MambaHash(16, direction_order="released")
    released_names = {}
    for key, value in source.state_dict().items():
        key = groupmamba_name(key).replace(".attn.ciam.", ".attn.").replace("afem.expand.", "feature_module.f1.conv.")
        key = (
            key.replace("afem.branch1.", "feature_module.dwconv1.conv.")
            .replace("afem.branch3.", "feature_module.dwconv2.conv.")
            .replace("afem.branch5.", "feature_module.dwconv3.conv.")
            .replace("afem.reduce.", "feature_module.f2.conv.")
        )
        released_names["module." + key] = value
    path = tmp_path / "mambahash_released.pth"
    torch.save({"epoch": 3, "model": {"state_dict": released_names}}, path)
    target = MambaHash(16, direction_order="released")
    report = load_groupmamba_weights(target, path, verbose=False)
    assert report.missing == [] and report.unexpected == []
    codes = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(target.eval()(codes), source.eval()(codes))


def test_shape_mismatch_is_reported_not_loaded(tmp_path):
    state = groupmamba_small_state_dict(MambaHash(16, direction_order="released"))
    state["norm4.weight"] = torch.ones(448)  # GroupMamba-T's last stage width
    path = tmp_path / "w.pth"
    torch.save(state, path)
    report = load_groupmamba_weights(MambaHash(16, direction_order="released"), path, verbose=False)
    assert report.shape_mismatched == [("stages.3.norm.weight", (448,), (512,))]
    assert "stages.3.norm.weight" in report.missing
    assert "mismatched      1 keys" in str(report)


def test_paper_direction_order_warns(tmp_path):
    path = tmp_path / "w.pth"
    torch.save(groupmamba_small_state_dict(MambaHash(16)), path)
    with pytest.warns(UserWarning, match="direction_order='released'"):
        load_groupmamba_weights(MambaHash(16), path, verbose=False)


def test_files_that_match_nothing_fail_loudly(tmp_path):
    path = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7), "fc.weight": torch.zeros(1000, 2048)}, path)
    with pytest.raises(ValueError, match="none of the 2 keys"):
        load_groupmamba_weights(MambaHash(16), path)
    with pytest.raises(FileNotFoundError, match="groupmamba_small_ema.pth"):
        read_state_dict(tmp_path / "missing.pth")
    (tmp_path / "junk.pth").write_text("not a checkpoint")
    with pytest.raises(ValueError, match="not a PyTorch checkpoint"):
        read_state_dict(tmp_path / "junk.pth")
    torch.save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(ValueError, match="holds no state dict"):
        read_state_dict(tmp_path / "list.pth")


def test_a_training_checkpoint_loads_its_ema_weights_and_says_so(tmp_path):
    source, other = MambaHash(16, direction_order="released"), MambaHash(16, direction_order="released")
    path = tmp_path / "checkpoint.pth"
    torch.save(
        {"model": groupmamba_small_state_dict(other), "model_ema": groupmamba_small_state_dict(source), "epoch": 299},
        path,
    )
    target = MambaHash(16, direction_order="released")
    report = load_groupmamba_weights(target, path, verbose=False)
    assert report.nested_under == ["model_ema"] and "['model_ema']" in str(report)
    key = "stages.0.patch_embed.proj.weight"
    assert torch.equal(target.state_dict()[key], source.state_dict()[key])

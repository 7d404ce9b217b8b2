"""mh.registry and mh.baselines: the four Table 3–4 networks, their parameter counts, weight loading and Grad-CAM hooks."""

import pytest
import torch

from mh.model import PAPER_BITS
from mh.registry import COMPARISON_BACKBONES, build_hashing_model, load_pretrained
from mh.repro.gradcam import gradcam_target

# parameter counts recorded in docs/hybridhash.md and docs/model.md (released code, 224 px)
PARAMETERS_48 = {"resnet50": 23_606_384, "vit_l_32": 292_963_376, "hybridhash": 55_602_656, "mambahash": 38_985_636}
PARAMETERS_16 = {"vit_l_32": 292_930_576, "hybridhash": 55_569_824}  # Table 4's 292.93 M and 55.57 M


def count(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", COMPARISON_BACKBONES)
def test_parameter_count_at_48_bits(name):
    assert count(build_hashing_model(name, 48)) == PARAMETERS_48[name]


@pytest.mark.parametrize("name", sorted(PARAMETERS_16))
def test_table4_hybrid_and_vit_rows_are_16_bit_counts(name):
    assert count(build_hashing_model(name, 16)) == PARAMETERS_16[name]


@pytest.mark.parametrize("name", ["resnet50", "hybridhash", "mambahash", "vit_l_32"])
def test_forward_and_backward_at_small_size_for_every_bit_length(name):
    for bits in PAPER_BITS:
        model = build_hashing_model(name, bits, image_size=32)
        codes = model(torch.randn(2, 3, 32, 32))
        assert codes.shape == (2, bits) and codes.abs().max() < 1
        codes.sum().backward()
        assert all(p.grad is not None for n, p in model.named_parameters() if "FcLayer" not in n)


def test_unknown_name_and_bad_bits_are_refused():
    with pytest.raises(ValueError, match="unknown model 'alexnet'"):
        build_hashing_model("alexnet", 48)
    with pytest.raises(ValueError, match="positive integer"):
        build_hashing_model("resnet50", 0)


@pytest.mark.parametrize("name, size", [("vit_l_32", 48), ("hybridhash", 40)])
def test_sizes_the_network_cannot_take_are_refused(name, size):
    with pytest.raises(ValueError, match="multiple of"):
        build_hashing_model(name, 16, image_size=size)


def test_wrong_input_size_is_a_clear_error():
    model = build_hashing_model("hybridhash", 16, image_size=32)
    with pytest.raises(ValueError, match=r"built for \(B, 3, 32, 32\)"):
        model(torch.randn(1, 3, 64, 64))


def test_resnet50_loads_a_torchvision_state_dict(tmp_path):
    from torchvision.models import resnet50

    path = tmp_path / "resnet50.pth"
    torch.save(resnet50().state_dict(), path)
    model = build_hashing_model("resnet50", 48)
    report = load_pretrained(model, path, "resnet50")
    assert report.unexpected == ["fc.bias", "fc.weight"]
    assert report.missing == ["hash_layer.bias", "hash_layer.weight"]
    assert report.loaded_parameters == 23_508_032  # the trunk


def test_vit_loads_torchvision_names_and_reports_the_24th_layer(tmp_path):
    model = build_hashing_model("vit_l_32", 48, image_size=32)
    state = {k: v.clone() + 1 for k, v in model.state_dict().items() if not k.startswith("heads")}
    state["heads.head.weight"] = torch.zeros(1000, 1024)
    state["encoder.layers.encoder_layer_23.ln_1.weight"] = torch.ones(1024)
    path = tmp_path / "vit.pth"
    torch.save({"model": state}, path)
    fresh = build_hashing_model("vit_l_32", 48, image_size=32)
    report = load_pretrained(fresh, path, "vit_l_32")
    assert set(report.unexpected) == {"heads.head.weight", "encoder.layers.encoder_layer_23.ln_1.weight"}
    assert report.missing == ["heads.bias", "heads.weight"]
    assert torch.equal(fresh.class_token, state["class_token"])


def test_hybridhash_loads_nest_names_and_leaves_the_new_parts_random(tmp_path):
    model = build_hashing_model("hybridhash", 48, image_size=32)
    nest = {
        f"model.{k}": v
        for k, v in model.state_dict().items()
        if not any(part in k for part in ("global_attention", "conv_glo", "hash_layer", "FcLayer"))
    }
    nest["model.levels.2.transformer_encoder.19.norm1.weight"] = torch.ones(512)
    path = tmp_path / "nest.pth"
    torch.save(nest, path)
    report = load_pretrained(build_hashing_model("hybridhash", 48, image_size=32), path, "hybridhash")
    assert report.unexpected == ["levels.2.transformer_encoder.19.norm1.weight"]
    assert all(
        any(part in k for part in ("global_attention", "conv_glo", "hash_layer", "FcLayer")) for k in report.missing
    )


def test_bad_weight_files_give_clear_errors(tmp_path):
    model = build_hashing_model("resnet50", 16)
    with pytest.raises(FileNotFoundError, match="torchvision's resnet50"):
        load_pretrained(model, tmp_path / "missing.pth", "resnet50")
    path = tmp_path / "other.pth"
    torch.save({"something.else": torch.zeros(3)}, path)
    with pytest.raises(ValueError, match="none of the 1 keys"):
        load_pretrained(model, path, "resnet50")


@pytest.mark.parametrize("name", COMPARISON_BACKBONES)
def test_gradcam_target_gives_a_feature_map(name):
    model = build_hashing_model(name, 16, image_size=64)
    target = gradcam_target(model, 64, min_side=2)
    captured = []
    handle = target.layer.register_forward_hook(lambda module, args, output: captured.append(output))
    model(torch.randn(2, 3, 64, 64))
    handle.remove()
    output = captured[0] if target.reshape is None else target.reshape(captured[0])
    assert output.dim() == 4 and output.shape[0] == 2 and output.shape[2] == output.shape[3] >= 2


def test_gradcam_maps_have_the_image_size_for_every_backbone():
    from mh.repro.gradcam import class_centres, gradcam_maps

    images, labels = torch.randn(4, 3, 64, 64), torch.tensor([0, 1, 0, 1])
    for name in COMPARISON_BACKBONES:
        model = build_hashing_model(name, 16, image_size=64)
        centres = class_centres(model, images, labels, 2)
        assert centres.shape == (2, 16) and set(centres.unique().tolist()) <= {-1.0, 1.0}
        if gradcam_target(model, 64) is None:  # ViT-L/32 at 64 px: a 2×2 patch grid, below the 4×4 minimum
            with pytest.raises(ValueError, match="no feature map of at least 4×4"):
                gradcam_maps(model, images[:2], labels[:2], centres)
            continue
        maps = gradcam_maps(model, images[:2], labels[:2], centres)
        assert maps.shape == (2, 64, 64) and maps.min() >= 0 and maps.max() <= 1 + 1e-6


def test_at_cifars_32_px_the_target_is_the_last_map_of_at_least_4_by_4_positions():
    expected = {"mambahash": "stages[1].norm", "resnet50": "layer2[-1]", "vit_l_32": None}
    for name, description in expected.items():
        target = gradcam_target(build_hashing_model(name, 16, image_size=32, size="reduced"), 32)
        assert (target and target.description.split(" ")[0]) == description, name

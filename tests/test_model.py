"""MambaHash: parameter counts of the released network, variants, validation, backends."""

import subprocess
import sys

import pytest
import torch
from conftest import relative_error

from mh.model import PAPER_BITS, VARIANTS, MambaHash, afem_ratio_for_bits, ciam_kernel_for_bits, count_parameters

# counted from the released code on CPU (docs/model.md); 48 bits is Table 4's 38.99 M
RELEASED_PARAMETERS = {16: 34_736_004, 32: 36_011_924, 48: 38_985_636, 64: 46_645_172}
RELEASED_BACKBONE_PARAMETERS = 33_602_932


@pytest.mark.parametrize("bits", PAPER_BITS)
def test_parameter_count_equals_released_network(bits):
    model = MambaHash(bits, direction_order="released")
    assert count_parameters(model) == RELEASED_PARAMETERS[bits]
    assert count_parameters(MambaHash(bits)) == RELEASED_PARAMETERS[bits]  # the paper's group order too


def test_backbone_parameter_count():
    model = MambaHash(48)
    backbone = sum(p.numel() for n, p in model.named_parameters() if not n.startswith(("afem.", "hash.")))
    assert backbone == RELEASED_BACKBONE_PARAMETERS


def test_paper_choices_change_the_count_as_documented():
    released = count_parameters(MambaHash(48))
    assert count_parameters(MambaHash(48, ciam_kernel="paper")) == released + 26 * 2  # k = 5 in 26 blocks
    # depth-wise AFEM branches: (1 + 9 + 25) weights per channel instead of λ times that
    ratio, wide = 8, 512 * 8
    assert count_parameters(MambaHash(48, afem_groups="paper")) == released - 35 * wide * (ratio - 1)


def test_afem_ratio_and_ciam_kernel_follow_the_paper_formulas():
    assert [afem_ratio_for_bits(k) for k in PAPER_BITS] == [2, 4, 8, 16]
    assert [ciam_kernel_for_bits(k) for k in PAPER_BITS] == [3, 3, 5, 5]


@pytest.mark.slow
@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("bits", PAPER_BITS)
def test_every_variant_and_bit_length_runs_at_64px(variant, bits):
    model = MambaHash(bits, variant=variant).eval()
    with torch.no_grad():
        codes = model(torch.randn(2, 3, 64, 64))
    assert codes.shape == (2, bits)
    assert torch.isfinite(codes).all() and codes.abs().max() < 1


def test_variants_drop_the_right_modules():
    assert MambaHash(16, "no_ciam").stages[0].blocks[0].attn.ciam is None
    assert MambaHash(16, "no_afem").afem is None
    plain = MambaHash(16, "plain")
    assert plain.afem is None and plain.stages[3].blocks[0].attn.ciam is None
    assert MambaHash(16).afem is not None and MambaHash(16).stages[2].blocks[5].attn.ciam is not None


def test_backward_reaches_every_parameter():
    model = MambaHash(16)
    model(torch.randn(2, 3, 32, 48)).sum().backward()
    without_grad = [n for n, p in model.named_parameters() if p.grad is None]
    assert without_grad == []


def test_reference_and_chunked_backends_give_the_same_codes():
    model = MambaHash(32, scan_backend="chunked").eval()
    images = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        chunked = model(images)
        model.set_scan_backend("reference")
        reference = model(images)
    assert relative_error(chunked, reference) <= 1e-4  # 26 blocks of fp32 rounding, both ways


@pytest.mark.parametrize("bits", [0, -16, 16.0, "48", True, None])
def test_bits_must_be_a_positive_integer(bits):
    with pytest.raises(ValueError, match="bits must be a positive integer"):
        MambaHash(bits)


def test_unknown_bits_with_huge_afem_are_refused_unless_ratio_given():
    with pytest.raises(ValueError, match="afem_ratio"):
        MambaHash(128)
    assert MambaHash(128, afem_ratio=4).hash.out_features == 128
    assert MambaHash(12).afem.expand.out_channels == 512  # λ = 2^0 = 1


@pytest.mark.parametrize("shape", [(3, 64, 64), (2, 1, 64, 64), (2, 3, 16, 64), (2, 3, 64, 31)])
def test_bad_images_raise_with_the_expected_shape(shape):
    with pytest.raises(ValueError, match=r"expected images of shape|at least 32×32"):
        MambaHash(16)(torch.randn(*shape))


def test_bad_options_are_rejected():
    for kwargs in (
        dict(variant="tiny"),
        dict(direction_order="diagonal"),
        dict(ciam_kernel=4),
        dict(ciam_kernel="big"),
        dict(afem_groups="all"),
        dict(scan_backend="fast"),
    ):
        with pytest.raises(ValueError):
            MambaHash(16, **kwargs)(torch.randn(1, 3, 32, 32))


def test_import_mh_does_not_import_mamba_ssm_or_triton():
    code = "import sys, mh; m = mh.MambaHash(16); print(sorted(k for k in sys.modules if k.split('.')[0] in ('mamba_ssm', 'triton')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_whole_model_runs_in_float64():
    torch.manual_seed(0)
    model = MambaHash(16).eval()
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        single = model(images)
        double = model.double()(images.double())
    assert double.dtype == torch.float64
    assert relative_error(single, double) <= 1e-4


def test_reduced_networks_are_smaller_and_keep_the_interface():
    from mh.registry import MODELS, build_hashing_model

    for name in MODELS:
        reduced = build_hashing_model(name, 16, image_size=32, size="reduced")
        assert reduced(torch.randn(2, 3, 32, 32)).shape == (2, 16)
    full, reduced = (build_hashing_model("mambahash", 16, size=size) for size in ("paper", "reduced"))
    assert sum(p.numel() for p in reduced.parameters()) < sum(p.numel() for p in full.parameters()) / 5


def test_bad_model_sizes_and_stage_settings_are_named():
    from mh.registry import build_hashing_model

    with pytest.raises(ValueError, match="unknown model size 'tiny'"):
        build_hashing_model("mambahash", 16, size="tiny")
    with pytest.raises(ValueError, match="depths must be 4 positive"):
        MambaHash(16, depths=(1, 1, 0, 1))
    with pytest.raises(ValueError, match="multiple of 4"):
        MambaHash(16, dims=(32, 64, 174, 256))
    with pytest.raises(ValueError, match="accepts"):
        build_hashing_model("resnet50", 16, depths=(1, 1, 1, 1))

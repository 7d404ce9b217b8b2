"""MpVH (mh.family.mpvh): shapes, counts, determinism, the CSM cross scan, MoEA gates, timm weights, loss, optimizer."""

import json

import pytest
import timm
import torch
from safetensors.torch import save_file

from mh.blocks import run_scan
from mh.directions import ORDERS, to_grid, to_sequence
from mh.family.mpvh import RELEASED_PARAMETERS_64_BITS, CrossScanSSM, MpVH, routing_gates
from mh.losses import PairwiseRegressionLoss, similarity
from mh.registry import OPTIMIZERS, build_hashing_model, load_pretrained
from mh.repro.complexity import counted_analysis, scan_flops, unexplained_ops
from mh.train import TrainConfig, fit
from tests.test_train import tiny_data

NARROW = {"embed_dim": 64, "depth": 3, "num_heads": 2, "d_state": 4, "hash_hidden": 32}
SMALL_32PX = {"image_size": 32, "patch_size": 8, **NARROW}
BACKBONE_PREFIXES = ("patch_embed.", "cls_token", "pos_embed", "blocks.", "norm.")


@pytest.mark.parametrize("bits", [16, 32, 48, 64])
def test_codes_at_224_pixels_for_every_bit_length(bits):
    model = MpVH(bits, image_size=224, patch_size=16, **NARROW).eval()
    with torch.no_grad():
        codes = model(torch.randn(2, 3, 224, 224))
    assert codes.shape == (2, bits) and codes.abs().max() < 1


def _vit_b16_parameters() -> int:
    return sum(
        p.numel() for p in timm.create_model("vit_base_patch16_224", pretrained=False, num_classes=0).parameters()
    )


def _prompter_parameters(dim=768, d_state=16) -> int:
    rank, orders = -(-dim // 16), len(ORDERS)
    csm = orders * ((rank + 2 * d_state) * dim + dim * rank + dim + dim * d_state + dim)
    return 3 * 2 * dim + (9 * dim + dim) + csm + 2 * (dim * dim + dim)  # 3 LayerNorms, DWConv, CSM, 2 Linears


def test_full_size_parameter_count_part_by_part():
    """Paper default at 64 bits: ViT-B/16 + 12 prompters + 12 φ_Q + φ_K, φ_V + hash head; printed for the notebook."""
    head = 768 * 256 + 256 + 2 * 256 + 256 * 64
    expected = _vit_b16_parameters() + 12 * _prompter_parameters() + 14 * 768 * 768 + head
    total = sum(p.numel() for p in MpVH(64).parameters())
    print(f"MpVH-64 (paper default): {total:,}; paper Table 4: 81.6 M; released code: {RELEASED_PARAMETERS_64_BITS:,}")
    assert total == expected
    shared = MpVH(64, prompter="shared", prompter_input="alpha_mix", routing="top_k")
    assert sum(p.numel() for p in shared.parameters()) == expected - 11 * (_prompter_parameters() + 768 * 768) + 1


def test_two_eval_passes_give_identical_codes_and_no_batch_neighbour_matters():
    model = MpVH(48, **SMALL_32PX)
    model(torch.randn(4, 3, 32, 32)).sum().backward()  # a training step's BatchNorm statistics
    model.eval()
    images = torch.randn(6, 3, 32, 32)
    with torch.no_grad():
        first, second = model(images), model(images)
        permutation = torch.randperm(6)
        permuted = model(images[permutation])
    assert torch.equal(first.sign(), second.sign()) and torch.equal(first, second)
    torch.testing.assert_close(permuted, first[permutation])


def test_the_released_top_k_routing_makes_a_code_depend_on_its_batch():
    """k = 1 of two earlier queries, chosen by the batch's mean product: image 0 alone picks expert 0, but a
    batch neighbour that strongly prefers expert 1 changes image 0's prompt."""
    model = MpVH(16, routing="top_k", top_k=1, **SMALL_32PX).eval()
    torch.nn.init.eye_(model.key_proj.weight)  # routing key = the prompter tokens themselves
    tokens = torch.randn(2, 16, 64)
    query = torch.randn(2, 16, 64)
    expert0 = torch.stack([tokens[0], -10 * tokens[1]])
    expert1 = torch.stack([-tokens[0], 10 * tokens[1]])
    with torch.no_grad():
        alone = model._top_k_prompt(query[:1], [expert0[:1], expert1[:1]], tokens[:1])
        together = model._top_k_prompt(query, [expert0, expert1], tokens)
        fused = (query[:1] + expert0[:1]) / 2
        torch.testing.assert_close(alone, model._attend(query[:1], model.key_proj(fused), model.value_proj(fused)))
    assert not torch.allclose(alone[0], together[0])


def _identity_scan(u, *args, **kwargs):
    return u


def test_the_cross_scan_maps_every_direction_back_to_its_own_pixel():
    """With the scan replaced by the identity, each of the four orders returns the map unchanged: 4 × input."""
    csm = CrossScanSSM(8, d_state=2, scan_backend=_identity_scan)
    grid = torch.randn(2, 8, 3, 5)
    torch.testing.assert_close(csm(grid), 4 * grid)


def test_one_grouped_scan_equals_four_scans_one_per_direction():
    torch.manual_seed(0)
    csm = CrossScanSSM(6, d_state=3, scan_backend="reference").double()
    grid = torch.randn(2, 6, 3, 4, dtype=torch.float64)
    expected = 0
    for k, order in enumerate(ORDERS):
        u = to_sequence(grid, order)
        delta_raw, B, C = torch.einsum("bdl,cd->bcl", u, csm.x_proj_weight[k]).split([csm.dt_rank, 3, 3], dim=1)
        delta = torch.einsum("brl,dr->bdl", delta_raw, csm.dt_projs_weight[k])
        channels = slice(6 * k, 6 * (k + 1))
        y = run_scan("reference", u, delta, csm.A_logs[channels], B, C, csm.Ds[channels], csm.dt_projs_bias[k])
        expected = expected + to_grid(y, order, 3, 4)
    torch.testing.assert_close(csm(grid), expected)


def test_moea_gates_keep_only_a_dominant_expert():
    scores = torch.tensor([[8.0, -8.0, -8.0], [0.0, 0.0, 0.0], [3.0, 3.0, -9.0]])
    gates = routing_gates(scores, threshold=0.6)
    assert gates[0, 0] > 0.99 and gates[0, 1:].eq(0).all()  # σ ≈ (1, 0, 0): the first passes alone
    assert gates[1].eq(0).all()  # three equal gates of 1/3 < 0.6: none passes
    assert gates[2].eq(0).all()  # two of ≈ 1/2: none passes
    assert routing_gates(scores, threshold=0.0).sum(dim=1).sub(1).abs().max() < 1e-6  # normalised before ε


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_timm_vit_b16_weights_load_into_the_backbone_with_no_backbone_key_missing(tmp_path, suffix):
    state = timm.create_model("vit_base_patch16_224", pretrained=False).state_dict()  # real names, random values
    path = tmp_path / f"vit_base_patch16_224{suffix}"
    save_file(state, path) if suffix == ".safetensors" else torch.save(state, path)
    model = build_hashing_model("mpvh", 64)
    report = load_pretrained(model, path, "mpvh")
    assert [k for k in report.missing if k.startswith(BACKBONE_PREFIXES)] == []
    assert report.unexpected == ["head.bias", "head.weight"]
    assert all(
        k.startswith(("prompters.", "query_experts.", "key_proj.", "value_proj.", "hash_head.")) for k in report.missing
    )
    torch.testing.assert_close(model.state_dict()["blocks.11.mlp.fc2.weight"], state["blocks.11.mlp.fc2.weight"])


def test_the_pairwise_regression_loss_is_its_formula():
    torch.manual_seed(0)
    codes = torch.randn(5, 8).tanh().requires_grad_()
    labels = torch.tensor([0, 1, 0, 2, 1])
    criterion = PairwiseRegressionLoss(100, 8, 3)
    loss = criterion(codes, labels)
    h = codes.detach()
    pairs = sum((h[i] @ h[j] - 8 * float(labels[i] == labels[j])) ** 2 for i in range(5) for j in range(5)) / 25
    quantization = sum(((h[i] - h[i].sign()) ** 2).sum() for i in range(5)) / 5
    torch.testing.assert_close(loss.detach(), pairs + quantization)
    assert criterion.scale == 8 and criterion.quantization_weight == 1.0
    assert similarity(torch.eye(3)[labels], torch.eye(3)[labels]).trace() == 5
    loss.backward()
    assert torch.isfinite(codes.grad).all()


def test_two_group_sgd_puts_the_backbone_a_thousand_times_slower():
    model = MpVH(16, **SMALL_32PX)
    optimizer = OPTIMIZERS["sgd_two_groups"](model, 3e-3, 1e-6)
    backbone, prompting = optimizer.param_groups
    assert (backbone["lr"], prompting["lr"]) == pytest.approx((3e-6, 3e-3))
    assert (backbone["weight_decay"], prompting["weight_decay"]) == pytest.approx((1e-9, 1e-6))
    assert {id(p) for p in backbone["params"]} == {
        id(p) for n, p in model.named_parameters() if n.startswith(BACKBONE_PREFIXES)
    }
    with pytest.raises(ValueError, match="parameter_groups"):
        OPTIMIZERS["sgd_two_groups"](build_hashing_model("resnet50", 16, size="reduced"), 3e-3, 1e-6)


def test_unknown_switches_and_options_are_named():
    with pytest.raises(ValueError, match="routing"):
        MpVH(16, routing="random", **SMALL_32PX)
    with pytest.raises(ValueError, match="accepts"):
        build_hashing_model("mpvh", 16, image_size=32, size="reduced", ciam_kernel=3)
    with pytest.raises(ValueError, match=r"\(B, 3, 32, 32\)"):
        MpVH(16, **SMALL_32PX)(torch.randn(1, 3, 64, 64))


def test_the_engine_trains_mpvh_with_its_own_loss(tmp_path):
    config = TrainConfig(
        bits=16, model="mpvh", profile="smoke", epochs=1, batch_size=8, runs_dir=str(tmp_path), run_name="mpvh"
    )
    result = fit(config, data=tiny_data(), progress=False)
    recorded = json.loads((result.run_dir / "config.json").read_text())
    assert recorded["loss"] == "mpvh" and recorded["quantization_weight"] == 1.0
    header = (result.run_dir / "losses.csv").read_text().splitlines()[0].split(",")
    assert {"loss", "pairs", "quantization"} <= set(header)


def test_fvcore_counts_every_csm_scan_and_explains_every_skipped_op():
    torch.manual_seed(0)
    model = MpVH(16, image_size=64, patch_size=16, **NARROW)
    fast = counted_analysis(model, 64, compute_scan=False)
    assert unexplained_ops(fast) == {}
    scans = fast.by_operator()["PythonOp.SelectiveScanOp"]
    assert scans == NARROW["depth"] * scan_flops(1, 16, len(ORDERS) * NARROW["embed_dim"], NARROW["d_state"])
    assert counted_analysis(model, 64).total() == fast.total()  # zeros in place of scan outputs count the same

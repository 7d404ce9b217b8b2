"""Each MambaHash equation against its direct formula, in float64: CIAM (Eq. 8–11), AFEM (Eq. 12–14) and the
grouped Mamba layer (Eq. 5–6). The direct forms below use loops and explicit sums, not the modules' layers."""

import pytest
import torch

from mh.blocks import ChannelInteractionAttention, GroupMambaLayer, SameConv2d
from mh.directions import GROUP_ORDERS
from mh.model import AdaptiveFeatureEnhancement


@pytest.fixture(autouse=True)
def _float64():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def randomise(module: torch.nn.Module) -> torch.nn.Module:
    """Random values in every parameter, so that no equation hides behind an init of ones or zeros."""
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(torch.randn_like(parameter) * 0.5)
    return module


def layer_norm(x: torch.Tensor, norm: torch.nn.LayerNorm) -> torch.Tensor:
    mean = x.mean(-1, keepdim=True)
    variance = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(variance + norm.eps) * norm.weight + norm.bias


def conv2d_direct(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, groups: int) -> torch.Tensor:
    """Zero-padded 'same' grouped convolution as a sum over kernel offsets: (B, C, H, W) → (B, O, H, W)."""
    batch, channels, height, width = x.shape
    out_channels, per_group, k, _ = weight.shape
    pad = k // 2
    padded = torch.zeros(batch, channels, height + 2 * pad, width + 2 * pad)
    padded[:, :, pad : pad + height, pad : pad + width] = x
    grouped_weight = weight.view(groups, out_channels // groups, per_group, k, k)
    out = torch.zeros(batch, groups, out_channels // groups, height, width)
    for u in range(k):
        for v in range(k):
            window = padded[:, :, u : u + height, v : v + width].view(batch, groups, per_group, height, width)
            out += torch.einsum("bgchw,goc->bgohw", window, grouped_weight[..., u, v])
    return out.reshape(batch, out_channels, height, width) + bias[None, :, None, None]


def test_ciam_equations_8_to_11():
    torch.manual_seed(0)
    ciam = randomise(ChannelInteractionAttention(channels=12, kernel_size=5))
    tokens = torch.randn(3, 20, 12)
    x_avg = tokens.sum(dim=1) / tokens.shape[1]  # Eq. 8: global average pooling over the L tokens
    kernel = ciam.conv.weight[0, 0]
    x_local = torch.zeros_like(x_avg)  # Eq. 9: 1-D convolution of size k along the channel axis
    for channel in range(12):
        for offset in range(5):
            source = channel + offset - 2
            if 0 <= source < 12:
                x_local[:, channel] += kernel[offset] * x_avg[:, source]
    x_global = x_avg @ ciam.fc.weight.T + ciam.fc.bias  # Eq. 10
    x_score = 1 / (1 + torch.exp(-(x_global + x_local)))  # Eq. 11
    torch.testing.assert_close(ciam(tokens), x_score, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("groups", ["released", "paper"])
def test_afem_equations_12_to_14(groups):
    torch.manual_seed(1)
    dim, ratio = 8, 2
    afem = randomise(AdaptiveFeatureEnhancement(dim, ratio, dim if groups == "released" else dim * ratio))
    x = torch.randn(2, dim, 5, 6)
    x_f = torch.einsum("bchw,oc->bohw", x, afem.expand.weight[:, :, 0, 0]) + afem.expand.bias[:, None, None]  # Eq. 12
    branches = [
        conv2d_direct(x_f, conv.weight, conv.bias, conv.groups)  # Eq. 13
        for conv in (afem.branch1, afem.branch3, afem.branch5)
    ]
    fused = torch.clamp(sum(branches), min=0)
    x_afem = torch.einsum("bchw,oc->bohw", fused, afem.reduce.weight[:, :, 0, 0]) + afem.reduce.bias[:, None, None]
    torch.testing.assert_close(afem(x), x_afem, rtol=1e-12, atol=1e-12)  # Eq. 14


def test_grouped_mamba_layer_equations_5_and_6():
    torch.manual_seed(2)
    layer = randomise(
        GroupMambaLayer(dim=16, orders=GROUP_ORDERS["paper"], ciam_kernel_size=3, scan_backend="reference")
    )
    with torch.no_grad():
        layer.mamba_g1.A_logs.abs_()  # keep the scans stable: A = −exp(A_log) with a moderate magnitude
    height, width = 3, 4
    tokens = torch.randn(2, height * width, 16)
    x_hat = layer_norm(tokens, layer.norm)
    grid = x_hat.view(2, height, width, 16)
    vsss = (layer.mamba_g1, layer.mamba_g2, layer.mamba_g3, layer.mamba_g4)
    x_vs = torch.cat([block(grid[..., 4 * g : 4 * (g + 1)]) for g, block in enumerate(vsss)], dim=-1)  # Eq. 5
    x_vs = (x_vs * layer.skip_scale * grid).view(2, height * width, 16)  # released code: · skip_scale ⊙ x̂
    gated = x_vs * layer.ciam(x_hat)[:, None, :]
    x_mgl = layer_norm(gated, layer.norm) @ layer.proj.weight.T + layer.proj.bias  # Eq. 6
    torch.testing.assert_close(layer(tokens, height, width), x_mgl, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("kernel, groups", [(3, 16), (5, 4)])
def test_same_conv_on_one_pixel_maps_equals_the_full_padded_convolution_in_output_and_gradients(kernel, groups):
    fast = randomise(SameConv2d(16, 16, kernel, groups=groups))
    full = torch.nn.Conv2d(16, 16, kernel, padding=kernel // 2, groups=groups)
    full.load_state_dict(fast.state_dict())
    for size in (1, 3):  # 1×1: the centre-tap path; 3×3: nn.Conv2d's own
        images = torch.randn(2, 16, size, size, requires_grad=True)
        out_fast, out_full = fast(images), full(images)
        torch.testing.assert_close(out_fast, out_full)
        upstream = torch.randn_like(out_full)
        grads_fast = torch.autograd.grad(out_fast, (images, fast.weight, fast.bias), upstream)
        grads_full = torch.autograd.grad(out_full, (images, full.weight, full.bias), upstream)
        for fast_grad, full_grad in zip(grads_fast, grads_full, strict=True):
            torch.testing.assert_close(fast_grad, full_grad)


def test_same_conv_refuses_an_even_kernel_and_says_why():
    with pytest.raises(ValueError, match="odd kernel size"):
        SameConv2d(4, 4, 4)

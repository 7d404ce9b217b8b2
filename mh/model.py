"""MambaHash (He & Wei, ICMR 2025): stem, four stages of grouped Mamba blocks, AFEM, tanh hash layer.

Glossary (code name → paper symbol). The paper reuses two letters, so two rows say which meaning is meant:

    batch               B    images per batch
    tokens (B, L, C)    x    a stage's feature sequence: L tokens of C channels. §3.2 writes it N × D, so
                             the paper's N is our L (sequence length) and the paper's D is our C
    dim (= C)           D    channels of a stage (§3.2: "D is the number of channels")
    dim // 4            D/4  channels of one scan group (§3.3.1: "the size of each group is D/4"); inside a
                             ``DirectionalSSM`` this width is called ``dim``
    d_state             N    SSM state size (§3.1, Eq. 1: h(t) ∈ R^N); 1 in MambaHash
    bits                K    hash code length, 16/32/48/64 in the paper
    delta               Δ    the step size, input dependent (selective), §3.1
    A_logs              A    A = −exp(A_log), the SSM's diagonal evolution matrix (Eq. 1)
    afem_ratio          λ    AFEM channel-enhancement ratio λ = φ(K) = 2^(μK + b), μ = 1/16, b = 0 (Eq. 15–16)
    hash                W, b the hash layer: h = tanh(W · AvgPool(x_afem) + b) (§3.4, last paragraph; no number)
    quantization_weight η    weight of the quantization term (Eq. 18; ``mh.losses``)

Architecture (§3.2–3.4; layer by layer, with counts and quirks, in ``docs/model.md``):

    image (B, 3, H, W) ─ Stem: 7×7/2 conv, two 3×3 convs, 3×3/2 conv, LN → tokens at H/4 × W/4
    4 stages (``stages[0..3]``): [downsample 3×3/2 + LN] → depth × MambaBlock (Eq. 4) → LN → (B, C, h, w)
        C = 64, 128, 348, 512; depth = 3, 4, 16, 3; FFN ratio 8, 8, 4, 4
    AFEM (Eq. 12–14) (B, 512, h, w) → global average pool → Linear(512, K) → tanh → codes (B, K) in (−1, 1)

GroupMamba names its stage modules ``patch_embed1..4``, ``block1..4``, ``norm1..4``; here they are
``stages[i].patch_embed``, ``stages[i].blocks``, ``stages[i].norm``, and ``mh.weights`` renames the keys
of GroupMamba's files on loading (timm's checkpoint-filter pattern).

Where the paper and the released code differ (defaults follow the code only where the paper's choice
would change the parameter count the paper reports in Table 4, 38.99 M at 48 bits):

    CIAM kernel   paper §4.4: k = 3, 3, 5, 5 "at four different hash bit levels" (16/32 → 3, 48/64 → 5);
                  released code: k = 3 always (the list is never read). Default ``ciam_kernel="released"``
                  (k = 5 would add 52 parameters at 48 bits); ``ciam_kernel="paper"`` or an odd int.
    AFEM groups   paper Eq. 13: depth-wise convolutions; released code: groups = 512, so each group mixes
                  λ channels. Default ``afem_groups="released"``; ``afem_groups="paper"`` is depth-wise.
    Scan orders   paper Eq. 5 gives the groups (L→R, R→L, T→B, B→T); the released code gives them
                  (row, col, reversed row, reversed col). Parameters are equal either way, so the default
                  follows the paper, ``direction_order="released"`` matches GroupMamba's pretrained weights.
"""

from __future__ import annotations

import math
import numbers
import warnings

import torch
import torch.nn as nn

from mh.blocks import DirectionalSSM, MambaBlock, SameConv2d
from mh.checks import positive_int
from mh.directions import GROUP_ORDERS, map_to_tokens, tokens_to_map
from mh.weights import LoadReport, load_weights

VARIANTS = {
    # name: (with CIAM, with AFEM); Table 2 of the paper
    "full": (True, True),
    "no_ciam": (False, True),  # "MambaHash w/o C"
    "no_afem": (True, False),  # "MambaHash w/o F"
    "plain": (False, False),  # "MambaHash*"
}
PAPER_BITS = (16, 32, 48, 64)
STAGE_DIMS = (64, 128, 348, 512)
STAGE_DEPTHS = (3, 4, 16, 3)
MLP_RATIOS = (8, 8, 4, 4)
MIN_IMAGE_SIZE = 32
MAX_AFEM_RATIO = 16


def afem_ratio_for_bits(bits: int) -> int:
    """λ = φ(K) = 2^(K // 16) (Eq. 15–16, μ = 1/16, b = 0, rounded as the released code does): 2, 4, 8, 16."""
    return 2 ** (bits // 16)


def ciam_kernel_for_bits(bits: int) -> int:
    """The paper's CIAM kernel size by code length (§4.4): 3 for K ≤ 32, 5 above."""
    return 3 if bits <= 32 else 5


class Stem(nn.Module):
    """Overlapping patch stem (§3.2). (B, 3, H, W) → tokens (B, H/4·W/4, C₁), with (H/4, W/4)."""

    def __init__(self, out_dim: int, hidden: int = 64):
        super().__init__()
        layers = [nn.Conv2d(3, hidden, 7, 2, 3, bias=False), nn.BatchNorm2d(hidden), nn.ReLU(inplace=True)]
        for _ in range(2):
            layers += [nn.Conv2d(hidden, hidden, 3, 1, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU(inplace=True)]
        self.conv = nn.Sequential(*layers)
        self.proj = nn.Conv2d(hidden, out_dim, 3, 2, 1)
        self.norm = nn.LayerNorm(out_dim)

    def forward(self, images: torch.Tensor):
        grid = self.proj(self.conv(images))
        height, width = grid.shape[-2:]
        return self.norm(map_to_tokens(grid)), height, width


class Downsample(nn.Module):
    """Stage entry: 3×3 stride-2 conv + LN. (B, C_in, H, W) → tokens (B, H/2·W/2, C_out), with (H/2, W/2)."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.proj = nn.Conv2d(in_dim, out_dim, 3, 2, 1)
        self.norm = nn.LayerNorm(out_dim)

    def forward(self, grid: torch.Tensor):
        grid = self.proj(grid)
        height, width = grid.shape[-2:]
        return self.norm(map_to_tokens(grid)), height, width


class Stage(nn.Module):
    """One of the four stages (§3.2–3.3): entry (stem or downsample) → depth × MambaBlock (Eq. 4) → LN (eps 1e-6).

    Shapes: forward((B, C_in, H, W)) → (B, C, H', W'), with H' = H/4 after the stem, H/2 after a downsample.
    """

    def __init__(self, patch_embed: nn.Module, blocks: list[MambaBlock], dim: int):
        super().__init__()
        self.patch_embed = patch_embed
        self.blocks = nn.ModuleList(blocks)
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, grid: torch.Tensor) -> torch.Tensor:
        tokens, height, width = self.patch_embed(grid)
        for block in self.blocks:
            tokens = block(tokens, height, width)
        return tokens_to_map(self.norm(tokens), height, width)


class AdaptiveFeatureEnhancement(nn.Module):
    """AFEM (Eq. 12–14): Conv1×1 to λC channels, 1×1 + 3×3 + 5×5 grouped convs summed, ReLU, Conv1×1 back.

    No residual connection (released code). ``groups`` = C in the released code (each group mixes λ
    channels), λC for the paper's depth-wise reading. Shapes: (B, C, H, W) → (B, C, H, W).
    """

    def __init__(self, dim: int, ratio: int, groups: int):
        super().__init__()
        wide = dim * ratio
        self.expand = nn.Conv2d(dim, wide, 1)
        self.branch1 = nn.Conv2d(wide, wide, 1, groups=groups)
        self.branch3 = SameConv2d(wide, wide, 3, groups=groups)
        self.branch5 = SameConv2d(wide, wide, 5, groups=groups)
        self.reduce = nn.Conv2d(wide, dim, 1)

    def forward(self, grid: torch.Tensor) -> torch.Tensor:
        wide = self.expand(grid)
        return self.reduce(torch.relu(self.branch1(wide) + self.branch3(wide) + self.branch5(wide)))


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_bits(bits) -> int:
    """``bits`` as an int; ValueError unless it is a positive integer."""
    if isinstance(bits, bool) or not isinstance(bits, numbers.Integral) or bits <= 0:
        raise ValueError(f"bits must be a positive integer (the paper uses {PAPER_BITS}); got {bits!r}")
    return int(bits)


class MambaHash(nn.Module):
    """The MambaHash network: images (B, 3, H, W), H, W ≥ 32 → codes h (B, K) in (−1, 1) (§3.2–3.4).

    Args:
        bits: K, the code length.
        variant: "full", "no_ciam" (w/o C), "no_afem" (w/o F) or "plain" (MambaHash*), Table 2.
        scan_backend: selective-scan backend, see ``mh.scan.selective_scan``.
        ciam_kernel: "released" (k = 3), "paper" (3 for K ≤ 32, else 5) or an odd int.
        afem_groups: "released" (groups = 512) or "paper" (depth-wise).
        afem_ratio: λ; None = 2^(K // 16). Ratios above 16 (K ≥ 80) must be given explicitly.
        direction_order: "paper" (Eq. 5) or "released" (GroupMamba's weights), see ``mh.directions``.
        depths: blocks per stage; the paper's (3, 4, 16, 3) by default.
        dims: channels per stage, each a multiple of 4 (four scan groups); the paper's (64, 128, 348, 512)
            by default. The smoke profile's reduced network (``mh.registry``) is shallower and narrower, so
            CPU runs take minutes; AFEM's released grouping then uses groups = the last width.
    """

    def __init__(
        self,
        bits: int,
        variant: str = "full",
        scan_backend: str = "auto",
        ciam_kernel="released",
        afem_groups: str = "released",
        afem_ratio: int | None = None,
        direction_order: str = "paper",
        depths: tuple[int, ...] = STAGE_DEPTHS,
        dims: tuple[int, ...] = STAGE_DIMS,
    ):
        super().__init__()
        self.bits = check_bits(bits)
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; expected one of {tuple(VARIANTS)}")
        if direction_order not in GROUP_ORDERS:
            raise ValueError(f"unknown direction_order {direction_order!r}; expected one of {tuple(GROUP_ORDERS)}")
        if len(depths) != len(STAGE_DEPTHS) or not all(_is_int(depth) and depth >= 1 for depth in depths):
            raise ValueError(f"depths must be {len(STAGE_DEPTHS)} positive block counts, one per stage; got {depths}")
        if len(dims) != len(STAGE_DIMS) or not all(_is_int(dim) and dim >= 4 and dim % 4 == 0 for dim in dims):
            raise ValueError(f"dims must be {len(STAGE_DIMS)} widths, each a positive multiple of 4; got {dims}")
        self.depths = tuple(int(depth) for depth in depths)
        self.dims = tuple(int(dim) for dim in dims)
        self.variant = variant
        self.direction_order = direction_order
        self.scan_backend = scan_backend
        with_ciam, with_afem = VARIANTS[variant]
        kernel = self._ciam_kernel(ciam_kernel) if with_ciam else None
        orders = GROUP_ORDERS[direction_order]
        self.stages = nn.ModuleList()
        for index, (dim, depth, ratio) in enumerate(zip(self.dims, self.depths, MLP_RATIOS, strict=True)):
            entry = Stem(dim, hidden=dim) if index == 0 else Downsample(self.dims[index - 1], dim)
            blocks = [MambaBlock(dim, ratio, orders, kernel, scan_backend) for _ in range(depth)]
            self.stages.append(Stage(entry, blocks, dim))
        self.afem = self._afem(afem_ratio, afem_groups) if with_afem else None
        self.hash = nn.Linear(self.dims[-1], self.bits)
        self.apply(_init_weights)

    def _ciam_kernel(self, ciam_kernel) -> int:
        if ciam_kernel == "released":
            return 3
        if ciam_kernel == "paper":
            return ciam_kernel_for_bits(self.bits)
        if isinstance(ciam_kernel, numbers.Integral) and not isinstance(ciam_kernel, bool):
            return int(ciam_kernel)
        raise ValueError(f"ciam_kernel must be 'released', 'paper' or an odd int; got {ciam_kernel!r}")

    def _afem(self, ratio, groups) -> AdaptiveFeatureEnhancement:
        dim = self.dims[-1]
        if ratio is not None:
            positive_int(ratio, "afem_ratio (AFEM's λ)", "the paper's is 2^(K // 16)")
        else:
            ratio = afem_ratio_for_bits(self.bits)
            if ratio > MAX_AFEM_RATIO:
                raise ValueError(
                    f"AFEM's λ = 2^(K//16) = {ratio} for K = {self.bits} bits would widen {dim} channels to "
                    f"{dim * ratio}; the paper uses K in {PAPER_BITS}. Pass afem_ratio=... to choose λ yourself."
                )
        if groups not in ("released", "paper"):
            raise ValueError(f"afem_groups must be 'released' or 'paper'; got {groups!r}")
        return AdaptiveFeatureEnhancement(dim, ratio, dim if groups == "released" else dim * ratio)

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        """Backbone: images (B, 3, H, W) → stage-4 map (B, 512, ⌈H/32⌉, ⌈W/32⌉)."""
        _check_images(images, self.hash.weight.dtype)
        grid = images
        for stage in self.stages:
            grid = stage(grid)
        return grid

    def set_scan_backend(self, backend) -> None:
        """Use ``backend`` (a name of ``mh.scan.selective_scan`` or a callable with its signature) in every scan."""
        self.scan_backend = backend
        for module in self.modules():
            if isinstance(module, DirectionalSSM):
                module.scan_backend = backend

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Images (B, 3, H, W) → continuous codes h = tanh(W · AvgPool(AFEM(features)) + b), (B, K) (§3.4)."""
        grid = self.forward_features(images)
        if self.afem is not None:
            grid = self.afem(grid)
        return torch.tanh(self.hash(grid.mean(dim=(2, 3))))


def _check_images(images: torch.Tensor, dtype: torch.dtype | None = None) -> None:
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"expected images of shape (B, 3, H, W); got {shape}")
    if not images.is_floating_point():
        raise ValueError(
            f"images are {images.dtype}; the network takes normalised floating-point pixels: "
            "convert with mh.data.build_transform (or images.float() / 255 and normalise)"
        )
    if dtype is not None and images.dtype != dtype and not torch.is_autocast_enabled(images.device.type):
        raise ValueError(
            f"images are {images.dtype} but the network's weights are {dtype}: convert one to the other "
            f"(images.to({dtype}) or model.to({images.dtype}))"
        )
    if min(images.shape[-2:]) < MIN_IMAGE_SIZE:
        raise ValueError(
            f"images must be at least {MIN_IMAGE_SIZE}×{MIN_IMAGE_SIZE} (the network downsamples 32×); "
            f"got {images.shape[-2]}×{images.shape[-1]}"
        )


def _init_weights(module: nn.Module) -> None:
    """Released initialisation: Linear trunc-normal(0.02), LayerNorm (1, 0), Conv2d He-normal on fan-out."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Conv2d):
        fan_out = module.kernel_size[0] * module.kernel_size[1] * module.out_channels // module.groups
        nn.init.normal_(module.weight, 0.0, math.sqrt(2.0 / fan_out))
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def load_groupmamba_weights(model: MambaHash, path, verbose: bool = True) -> LoadReport:
    """Load ImageNet GroupMamba-S weights (``groupmamba_small_ema.pth``) into MambaHash's backbone.

    Accepts a flat state dict or one nested under "model"/"state_dict"; also the released MambaHash
    code's own checkpoints (CIAM/AFEM keys are renamed). Returns a ``LoadReport`` (printed when
    ``verbose``): with the real GroupMamba-S file the released network loads 1,524 keys (30.79 M
    parameters) and leaves 90 at random init (CIAM of all 26 blocks, AFEM, hash layer). Raises
    ValueError when no key matches.
    """
    report = load_weights(model, path)
    if getattr(model, "direction_order", "released") != "released":
        warnings.warn(
            "GroupMamba's group 2 and 3 weights were trained on column-major and reversed row-major scans; "
            "this model uses the paper's group order. Build it with direction_order='released' to keep "
            "each group's weights on the direction they were trained for.",
            stacklevel=2,
        )
    if verbose:
        print(report)
    return report

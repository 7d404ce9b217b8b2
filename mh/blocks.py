"""Building blocks of a MambaHash stage (paper §3.3): VSSS block, CIAM, grouped Mamba layer, FFN, Mamba block.

Tensor layouts: tokens are (B, L, C) with L = H·W in row-major grid order; maps are (B, C, H, W).
Module and parameter names follow the released code (and GroupMamba's) so that pretrained
GroupMamba-S weights load by name; see ``mh.model`` for the glossary of symbols.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from mh.directions import map_to_tokens, to_grid, to_sequence, tokens_to_map
from mh.scan import selective_scan


def initial_dt_bias(channels: int, dt_min: float = 1e-3, dt_max: float = 1e-1, floor: float = 1e-4) -> torch.Tensor:
    """Mamba's Δ-bias initialisation, (channels,): softplus⁻¹ of Δ drawn log-uniformly in [dt_min, dt_max]."""
    dt = torch.exp(torch.rand(channels) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)).clamp(min=floor)
    return dt + torch.log(-torch.expm1(-dt))


def initial_A_log(channels: int, d_state: int) -> torch.Tensor:
    """S4D-real initialisation, (channels, d_state): A_log = log(1..N), so A = −exp(A_log) = −(1..N)."""
    return torch.log(torch.arange(1, d_state + 1, dtype=torch.float32)).repeat(channels, 1)


class SameConv2d(nn.Conv2d):
    """A stride-1 convolution with zero "same" padding (odd kernel k, padding k // 2): ``nn.Conv2d``'s result,
    parameters and parameter names (checkpoints load unchanged), (B, C_in, H, W) → (B, C_out, H, W).

    On a 1×1 map every tap but the centre one sees only zero padding, so the convolution is then computed as a
    1×1 convolution with the centre tap: the same output and gradients (up to floating-point summation order)
    for a fraction of the work. Stage 4 and AFEM see 1×1 maps at the smoke profile's 32 px, where the full 5×5
    grouped convolution's backward pass alone took a tenth of a training step on the CPU.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, groups: int = 1, bias: bool = True):
        if kernel_size % 2 == 0:
            raise ValueError(f"SameConv2d needs an odd kernel size (padding k // 2 on both sides), got {kernel_size}")
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2, groups=groups, bias=bias)

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        if maps.shape[-2:] != (1, 1):
            return super().forward(maps)
        centre = self.kernel_size[0] // 2
        return F.conv2d(
            maps, self.weight[:, :, centre : centre + 1, centre : centre + 1], self.bias, groups=self.groups
        )


def run_scan(scan_backend, u, delta, A_log, B, C, D, delta_bias) -> torch.Tensor:
    """The S6 scan of Eq. 2 with A = −exp(A_log) and softplus(Δ + bias), in float32 (float64 for float64 input).

    ``scan_backend`` is a backend name of ``mh.scan.selective_scan`` or a callable with its signature
    (``mh.repro.complexity`` passes one that fvcore counts as a single op). Shapes as ``selective_scan``:
    u, delta (b, d, l); A_log (d, n); B, C (b, n, l) or (b, g, n, l); D, delta_bias (d,) → y (b, d, l).
    """
    scan_dtype = torch.promote_types(u.dtype, torch.float32)
    scan, backend = (scan_backend, {}) if callable(scan_backend) else (selective_scan, {"backend": scan_backend})
    return scan(
        u.to(scan_dtype),
        delta.to(scan_dtype),
        -torch.exp(A_log.to(scan_dtype)),
        B.to(scan_dtype),
        C.to(scan_dtype),
        D=D.to(scan_dtype),
        delta_bias=delta_bias.to(scan_dtype),
        delta_softplus=True,
        **backend,
    )


class DirectionalSSM(nn.Module):
    """VSSS block scanning one direction (Eq. 7): LN(SS1D(DWConv3×3(x W₂ + b₂))) ⊙ SiLU(z), then W₃.

    Released code (SS2D with one direction): d_inner = D (expand 1), state N, dt_rank R = ⌈D/16⌉.
    in_proj (D → 2D, no bias) gives (x, z); x → depthwise 3×3 conv → SiLU → scan; per token
    x_proj gives (Δ_raw, B, C) with R + 2N values and Δ = dt_projs_weight · Δ_raw (+ dt bias, softplus,
    inside the scan); A = −exp(A_log). Paper Eq. 7 shows W₃ with a bias; the released out_proj has none.

    The scan runs in float32 (mamba-ssm's kernel does too), or in float64 when the block's input is
    float64, so that equivalence tests can run the whole model in double precision. ``scan_backend`` is a
    backend name of ``mh.scan.selective_scan``, or a callable with its signature (``mh.repro.complexity``
    passes one that fvcore counts as a single op).

    Shapes: forward((B, H, W, D)) → (B, H, W, D).
    """

    def __init__(
        self,
        dim: int,
        order: str,
        d_state: int = 1,
        scan_backend="auto",
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        dt_init_floor: float = 1e-4,
    ):
        super().__init__()
        self.order = order
        self.scan_backend = scan_backend
        dt_rank = math.ceil(dim / 16)
        self.dt_rank, self.d_state = dt_rank, d_state
        self.in_proj = nn.Linear(dim, 2 * dim, bias=False)
        self.conv2d = SameConv2d(dim, dim, 3, groups=dim)
        # the leading axis of size 1 is the released code's "number of directions in this SS2D"
        self.x_proj_weight = nn.Parameter(torch.empty(1, dt_rank + 2 * d_state, dim))
        nn.init.trunc_normal_(self.x_proj_weight, std=0.02)
        self.dt_projs_weight = nn.Parameter(torch.empty(1, dim, dt_rank).uniform_(-(dt_rank**-0.5), dt_rank**-0.5))
        self.dt_projs_bias = nn.Parameter(initial_dt_bias(dim, dt_min, dt_max, dt_init_floor).unsqueeze(0))
        self.A_logs = nn.Parameter(initial_A_log(dim, d_state))
        self.Ds = nn.Parameter(torch.ones(dim))
        self.out_norm = nn.LayerNorm(dim)
        self.out_proj = nn.Linear(dim, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, height, width, _ = x.shape
        x, z = self.in_proj(x).chunk(2, dim=-1)
        x = F.silu(self.conv2d(x.permute(0, 3, 1, 2)))
        u = to_sequence(x, self.order)  # (B, D, L)
        projected = torch.einsum("bdl,cd->bcl", u, self.x_proj_weight[0])
        delta_raw, B, C = projected.split([self.dt_rank, self.d_state, self.d_state], dim=1)
        delta = torch.einsum("brl,dr->bdl", delta_raw, self.dt_projs_weight[0])
        y = run_scan(self.scan_backend, u, delta, self.A_logs, B, C, self.Ds, self.dt_projs_bias[0])
        y = to_grid(y, self.order, height, width).permute(0, 2, 3, 1)  # (B, H, W, D)
        y = self.out_norm(y).to(z.dtype)
        return self.out_proj(y * F.silu(z))


class ChannelInteractionAttention(nn.Module):
    """CIAM (Eq. 8–11): score = σ(AvgPool(x) W₄ + b₄ + Conv1D_k(AvgPool(x))), one score per channel.

    The local branch is ECA's 1-D convolution along the channel axis (1 → 1 channel, no bias).
    Shapes: forward((B, L, C)) → (B, C).
    """

    def __init__(self, channels: int, kernel_size: int = 3):
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"CIAM kernel size must be a positive odd integer; got {kernel_size}")
        self.fc = nn.Linear(channels, channels)
        self.conv = nn.Conv1d(1, 1, kernel_size=kernel_size, padding=(kernel_size - 1) // 2, bias=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        pooled = tokens.mean(dim=1)  # Eq. 8
        local = self.conv(pooled.unsqueeze(1)).squeeze(1)  # Eq. 9
        return torch.sigmoid(self.fc(pooled) + local)  # Eq. 10–11


class GroupMambaLayer(nn.Module):
    """Mamba group layer (Eq. 5–6), in the released code's order of operations.

    x̂ = LN(x); the C channels split into 4 groups of D = C/4, group g scans in ``orders[g]`` with its own
    VSSS block; y = concat(groups) · skip_scale ⊙ x̂; y = y · CIAM(x̂) (per channel); out = LN(y) W₁ + b₁.
    The same LayerNorm module is applied at the start and before W₁ (released code; Eq. 6 shows one LN).
    ``ciam_kernel_size=None`` drops CIAM (the "w/o C" ablation).

    Shapes: forward((B, L, C), H, W) → (B, L, C).
    """

    def __init__(self, dim: int, orders, ciam_kernel_size: int | None = 3, scan_backend: str = "auto"):
        super().__init__()
        if dim % 4:
            raise ValueError(f"channels must split into 4 groups; {dim} is not divisible by 4")
        self.norm = nn.LayerNorm(dim)
        self.ciam = None if ciam_kernel_size is None else ChannelInteractionAttention(dim, ciam_kernel_size)
        self.mamba_g1, self.mamba_g2, self.mamba_g3, self.mamba_g4 = (
            DirectionalSSM(dim // 4, order, scan_backend=scan_backend) for order in orders
        )
        self.skip_scale = nn.Parameter(torch.ones(1))
        self.proj = nn.Linear(dim, dim)

    def forward(self, tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
        batch, length, channels = tokens.shape
        normed = self.norm(tokens)
        grid = normed.view(batch, height, width, channels)
        groups = grid.chunk(4, dim=-1)
        scans = (self.mamba_g1, self.mamba_g2, self.mamba_g3, self.mamba_g4)
        mixed = torch.cat([scan(group) for scan, group in zip(scans, groups, strict=True)], dim=-1)
        mixed = (mixed * self.skip_scale * grid).view(batch, length, channels)
        if self.ciam is not None:
            mixed = mixed * self.ciam(normed).unsqueeze(1)
        return self.proj(self.norm(mixed))


class DepthwiseConv(nn.Module):
    """3×3 depthwise convolution applied to tokens: (B, L, C), H, W → (B, L, C)."""

    def __init__(self, dim: int):
        super().__init__()
        self.dwconv = SameConv2d(dim, dim, 3, groups=dim)

    def forward(self, tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
        return map_to_tokens(self.dwconv(tokens_to_map(tokens, height, width)))


class ConvFFN(nn.Module):
    """PVTv2-style FFN: Linear(C, rC) → depthwise 3×3 → GELU → Linear(rC, C). (B, L, C) → (B, L, C)."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.dwconv = DepthwiseConv(hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
        return self.fc2(F.gelu(self.dwconv(self.fc1(tokens), height, width)))


class MambaBlock(nn.Module):
    """Mamba block (Eq. 4): x_t = x + MambaGroupLayer(x); x_mg = x_t + FFN(LN(x_t)). (B, L, C) → (B, L, C)."""

    def __init__(self, dim: int, mlp_ratio: int, orders, ciam_kernel_size: int | None, scan_backend: str):
        super().__init__()
        self.attn = GroupMambaLayer(dim, orders, ciam_kernel_size, scan_backend)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = ConvFFN(dim, dim * mlp_ratio)

    def forward(self, tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
        tokens = tokens + self.attn(tokens, height, width)
        return tokens + self.mlp(self.norm2(tokens), height, width)

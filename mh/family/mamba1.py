"""The Mamba-1 block (Gu & Dao 2023, Alg. 2) over a sequence of tokens, with mamba-ssm's parameter names.

Glossary (code → Mamba paper):
    in_proj     the two input branches x and z (no bias), each d_inner = expand · d_model wide
    conv1d      causal depthwise convolution along the sequence (kernel d_conv, with bias)
    x_proj      s_B, s_C and the low-rank s_Δ: x → (Δ_r, B, C), widths (dt_rank, d_state, d_state)
    dt_proj     τ_Δ's projection back to d_inner, with the Δ bias (softplus applied in the scan)
    A_log, D    A = −exp(A_log) (S4D-real initialisation), the skip D
    out_proj    back to d_model (no bias)

    y = out_proj( S6(SiLU(conv1d(x)); Δ, A, B, C, D) ⊙ SiLU(z) )

The scan is ``mh.scan.selective_scan`` (through ``mh.blocks.run_scan``), so the CPU and CUDA backends and
their equivalence tests apply. Names match mamba-ssm's ``Mamba`` so its state dicts load by name; the
causal-conv1d and fused-kernel fast paths of mamba-ssm are not reproduced (the scan backend is the choice).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from mh.blocks import initial_A_log, initial_dt_bias, run_scan


class Mamba1(nn.Module):
    """One Mamba-1 block: tokens (B, L, d_model) → (B, L, d_model), causal along L.

    Args: d_model; d_state N (16); d_conv (4); expand (2); dt_rank (``None``: ⌈d_model / 16⌉);
    scan_backend: a ``mh.scan.selective_scan`` backend name or a callable with its signature.
    """

    def __init__(
        self,
        d_model: int,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        dt_rank: int | None = None,
        scan_backend="auto",
    ):
        super().__init__()
        self.d_model, self.d_state, self.d_conv = d_model, d_state, d_conv
        self.d_inner = expand * d_model
        self.dt_rank = math.ceil(d_model / 16) if dt_rank is None else dt_rank
        self.scan_backend = scan_backend
        self.in_proj = nn.Linear(d_model, 2 * self.d_inner, bias=False)
        self.conv1d = nn.Conv1d(self.d_inner, self.d_inner, d_conv, groups=self.d_inner, padding=d_conv - 1)
        self.x_proj = nn.Linear(self.d_inner, self.dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, self.d_inner)
        nn.init.uniform_(self.dt_proj.weight, -(self.dt_rank**-0.5), self.dt_rank**-0.5)
        with torch.no_grad():
            self.dt_proj.bias.copy_(initial_dt_bias(self.d_inner))
        self.A_log = nn.Parameter(initial_A_log(self.d_inner, d_state))
        self.D = nn.Parameter(torch.ones(self.d_inner))
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=False)

    def set_scan_backend(self, backend) -> None:
        self.scan_backend = backend

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if tokens.dim() != 3 or tokens.shape[-1] != self.d_model:
            raise ValueError(f"Mamba1 expects tokens (B, L, {self.d_model}); got {tuple(tokens.shape)}")
        length = tokens.shape[1]
        x, z = self.in_proj(tokens).transpose(1, 2).chunk(2, dim=1)  # (B, d_inner, L) each
        x = F.silu(self.conv1d(x)[..., :length])  # the right padding is cut: position t sees t−d_conv+1 … t
        delta_low, B, C = self.x_proj(x.transpose(1, 2)).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        delta = (delta_low @ self.dt_proj.weight.t()).transpose(1, 2)  # (B, d_inner, L); bias added in the scan
        y = run_scan(
            self.scan_backend,
            x,
            delta,
            self.A_log,
            B.transpose(1, 2).contiguous(),
            C.transpose(1, 2).contiguous(),
            self.D,
            self.dt_proj.bias,
        )
        return self.out_proj((y.to(z.dtype) * F.silu(z)).transpose(1, 2))

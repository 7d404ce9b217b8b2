"""HybridHash (He et al., ICMR 2024), the authors' previous model and Table 3–4's "Hybrid" backbone.

Written from the facts in ``docs/hybridhash.md`` (released code at 329990e), layer by layer:
NesT-Base with depths (2, 2, 15), dims (128, 256, 512), heads (4, 8, 16), patch 4. Block-local
self-attention inside 14×14 token blocks; between stages an *interaction module* (3×3 conv local branch +
pooled-token global attention branch, summed, LayerNorm, 3×3/2 max-pool); a hash layer with a final
interaction module (1×3 and 3×1 strip convs + global branch), max-pool, 1×1 conv to K, average pool, tanh.
55,602,656 parameters at 48 bits (= 55,553,408 + 1,026·K, the unused ``FcLayer`` included).

Quirks of the released code kept on purpose (they define the network whose numbers the paper quotes):
* attention outputs are laid out head-minor (channel = d·heads + h), as in timm's NesT;
* the interactive attention forms its tokens by reshaping the channel-major (B, C, h, w) map straight to
  (B, h·w, C), mixing channels and positions; its position embedding starts at zero;
* ``FcLayer = Linear(512, K)`` is registered but never used (``unused_fc=False`` drops it).
Generalisation: the global branch pools with kernel = token-block side (14 at 224 px), so other image sizes
that are multiples of 16 work too (the released code fixes 224).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

DIMS, HEADS, DEPTHS = (128, 256, 512), (4, 8, 16), (2, 2, 15)
BLOCKS_PER_SIDE = (4, 2, 1)
DROP_PATH_RATE = 0.5


def _drop_path(x: torch.Tensor, rate: float, training: bool) -> torch.Tensor:
    if rate == 0.0 or not training:
        return x
    keep = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(1 - rate)
    return x * keep / (1 - rate)


def _head_minor_attention(q, k, v) -> torch.Tensor:
    """Scaled dot-product attention over (..., heads, N, hd) → (..., N, hd·heads) with channel = d·heads + h."""
    weights = (q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5).softmax(dim=-1)
    out = weights @ v  # (..., heads, N, hd)
    return out.movedim(-3, -1).flatten(-2)


class BlockAttention(nn.Module):
    """Multi-head self-attention inside each token block. (B, T, N, C) → (B, T, N, C)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, t, n, 3, self.heads, c // self.heads).permute(3, 0, 1, 4, 2, 5)
        return self.proj(_head_minor_attention(q, k, v))


class Mlp(nn.Module):
    """Linear(d, 4d) → GELU → Linear(4d, d), named as in timm so NesT weights load by name."""

    def __init__(self, dim: int):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class TransformerLayer(nn.Module):
    """Pre-norm layer: x + DropPath(Attn(LN x)), then x + DropPath(MLP(LN x)); 12d² + 13d parameters."""

    def __init__(self, dim: int, heads: int, drop_path: float):
        super().__init__()
        self.drop_path = drop_path
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = BlockAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + _drop_path(self.attn(self.norm1(x)), self.drop_path, self.training)
        return x + _drop_path(self.mlp(self.norm2(x)), self.drop_path, self.training)


class InteractiveAttention(nn.Module):
    """Attention over the pooled map's tokens (released-code token reshape, head-minor output).

    (B, C, h, w) → (B, C, h, w). With a single token the softmax is 1: proj(value(x + pos)).
    """

    def __init__(self, dim: int, tokens: int, heads: int = 8):
        super().__init__()
        self.heads = heads
        self.pos_embed = nn.Parameter(torch.zeros(1, tokens, dim))
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        tokens = x.reshape(b, h * w, c) + self.pos_embed  # the released reshape: channel-major memory
        q, k, v = self.qkv(tokens).reshape(b, h * w, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        out = self.proj(_head_minor_attention(q, k, v))
        return out.reshape(b, h, w, c).permute(0, 3, 1, 2)


def global_branch(x: torch.Tensor, attention: InteractiveAttention, kernel: int) -> torch.Tensor:
    """Average-pool by ``kernel``, interactive attention, bilinear upsample ×kernel. (B, C, H, W) → same."""
    pooled = F.avg_pool2d(x, kernel, kernel)
    return F.interpolate(attention(pooled), scale_factor=kernel, mode="bilinear", align_corners=False)


class InteractionModule(nn.Module):
    """Between stages: conv3×3(x) + global(conv1×1(x)), LayerNorm over channels, max-pool 3/2.

    (B, C_in, H, W) → (B, C_out, H/2, W/2).
    """

    def __init__(self, in_dim: int, out_dim: int, tokens: int, kernel: int):
        super().__init__()
        self.kernel = kernel
        self.conv = nn.Conv2d(in_dim, out_dim, 3, padding=1)
        self.conv_glo = nn.Conv2d(in_dim, out_dim, 1, bias=False)
        self.global_attention = InteractiveAttention(out_dim, tokens)
        self.norm = nn.LayerNorm(out_dim, eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x) + global_branch(self.conv_glo(x), self.global_attention, self.kernel)
        x = self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return F.max_pool2d(x, 3, 2, 1)


def blockify(x: torch.Tensor, blocks_per_side: int) -> torch.Tensor:
    """(B, H, W, C) → (B, T, N, C): T = blocks_per_side² blocks of N tokens each."""
    b, h, w, c = x.shape
    side_h, side_w = h // blocks_per_side, w // blocks_per_side
    x = x.reshape(b, blocks_per_side, side_h, blocks_per_side, side_w, c).transpose(2, 3)
    return x.reshape(b, blocks_per_side**2, side_h * side_w, c)


def deblockify(x: torch.Tensor, blocks_per_side: int, side: int) -> torch.Tensor:
    """Inverse of blockify: (B, T, N, C) → (B, H, W, C)."""
    b, _, _, c = x.shape
    x = x.reshape(b, blocks_per_side, blocks_per_side, side, side, c).transpose(2, 3)
    return x.reshape(b, blocks_per_side * side, blocks_per_side * side, c)


class Stage(nn.Module):
    """(Interaction module), blockify, + position embedding, Transformer layers, deblockify."""

    def __init__(self, level: int, block_side: int, drop_paths: list[float]):
        super().__init__()
        dim, blocks = DIMS[level], BLOCKS_PER_SIDE[level]
        self.blocks_per_side, self.block_side = blocks, block_side
        self.pool = (
            InteractionModule(DIMS[level - 1], dim, BLOCKS_PER_SIDE[level - 1] ** 2, block_side)
            if level > 0
            else nn.Identity()
        )
        self.pos_embed = nn.Parameter(torch.zeros(1, blocks**2, block_side**2, dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02, a=-2, b=2)
        self.transformer_encoder = nn.Sequential(*(TransformerLayer(dim, HEADS[level], rate) for rate in drop_paths))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(x).permute(0, 2, 3, 1)
        x = self.transformer_encoder(blockify(x, self.blocks_per_side) + self.pos_embed)
        return deblockify(x, self.blocks_per_side, self.block_side).permute(0, 3, 1, 2)


class HashLayer(nn.Module):
    """Final interaction (1×3 then 3×1 conv + global branch), max-pool 3/2, conv1×1 → K, avg-pool, tanh."""

    def __init__(self, bits: int, kernel: int, dim: int = DIMS[-1]):
        super().__init__()
        self.conv_row = nn.Conv2d(dim, dim, (1, 3), padding=(0, 1))
        self.conv_col = nn.Conv2d(dim, dim, (3, 1), padding=(1, 0))
        self.kernel = kernel
        self.global_attention = InteractiveAttention(dim, 1)
        self.conv2 = nn.Conv2d(dim, bits, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_col(self.conv_row(x)) + global_branch(x, self.global_attention, self.kernel)
        x = self.conv2(F.max_pool2d(x, 3, 2, 1))
        return torch.tanh(x.mean(dim=(2, 3)))


class PatchEmbed(nn.Module):
    """4×4 stride-4 convolution 3 → 128 (timm's PatchEmbed without flattening). (B, 3, S, S) → (B, 128, S/4, S/4)."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Conv2d(3, DIMS[0], 4, stride=4)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.proj(images)


class HybridHash(nn.Module):
    """HybridHash network. forward((B, 3, S, S)) → codes (B, K) in (−1, 1); S a multiple of 16 (224 in the paper)."""

    def __init__(self, bits: int, image_size: int = 224, unused_fc: bool = True, depths: tuple[int, ...] = DEPTHS):
        super().__init__()
        if len(depths) != len(DEPTHS) or any(int(depth) < 1 for depth in depths):
            raise ValueError(f"depths must be {len(DEPTHS)} positive layer counts, one per stage; got {depths}")
        if image_size % 16 or image_size < 32:
            raise ValueError(f"HybridHash needs an image size that is a multiple of 16 and ≥ 32; got {image_size}")
        self.image_size = image_size
        block_side = image_size // 4 // BLOCKS_PER_SIDE[0]
        self.patch_embed = PatchEmbed()
        rates = torch.linspace(0, DROP_PATH_RATE, sum(depths), device="cpu").tolist()  # also under a meta device
        bounds = [0, depths[0], depths[0] + depths[1], sum(depths)]
        self.levels = nn.ModuleList(
            Stage(level, block_side, rates[bounds[level] : bounds[level + 1]]) for level in range(3)
        )
        self.norm = nn.LayerNorm(DIMS[-1], eps=1e-6)
        self.hash_layer = HashLayer(bits, block_side)
        self.FcLayer = nn.Linear(DIMS[-1], bits) if unused_fc else None  # registered, never called (released)
        self.apply(_init_weights)

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) → stage-3 map after the final norm, (B, 512, S/16, S/16)."""
        if images.dim() != 4 or images.shape[1] != 3 or tuple(images.shape[2:]) != (self.image_size,) * 2:
            raise ValueError(
                f"HybridHash built for (B, 3, {self.image_size}, {self.image_size}) images; got {tuple(images.shape)}"
            )
        x = self.patch_embed(images)
        for stage in self.levels:
            x = stage(x)
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.hash_layer(self.forward_features(images))


def _init_weights(module: nn.Module) -> None:
    """NesT scheme: Linear/Conv weights trunc-normal(0.02), biases 0; LayerNorm 1/0 (position embeddings
    are set where they are created: stage ones trunc-normal, interactive ones zero)."""
    if isinstance(module, (nn.Linear, nn.Conv2d)):
        nn.init.trunc_normal_(module.weight, std=0.02, a=-2, b=2)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)

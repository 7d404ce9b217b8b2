"""MpVH (Zhou, Wang & Zhang, ACM MM 2026): a ViT-B/16 hashing network prompted at every layer by a Mamba prompter.

Glossary (code → paper):
    patch_embed, pos_embed   patch projection + position embedding: z^Mamba_0 (Eq. 1)
    cls_token                x_class, prepended for the ViT input z^Trans_0 (Eq. 2)
    prompters[l]             Mamba prompter block M_l (Eq. 3, Fig. 2)
    CrossScanSSM             CSM, the cross scan model (Fig. 3, Eq. 4–5)
    query_experts[l]         φ_Q of layer l: the shared expert Q_l = φ_Q(z^Mamba_l) (Eq. 6)
    key_proj, value_proj     φ_K, φ_V: K_{l−1}, V_{l−1} from the ViT patch tokens z^Trans_{l−1} (Eq. 10)
    routing_gates            ŝ_n = σ(Q_nᵀV_{l−1}) / Σ_m σ(Q_mᵀV_{l−1}), set to 0 below ε (Eq. 7–9)
    blocks[l]                Φ^Trans_l, timm's ViT-B/16 pre-norm block (Eq. 11)
    norm, hash_head          final LayerNorm of the class token, f_hash: h = tanh(f_hash(x_class)) (Eq. 12–13)

Per layer l = 1…L, on the patch tokens (the class token gets no prompt):

    z^Mamba_l  = M_l(z^Trans_{l−1} + z^Mamba_{l−1})
    Q^(l)      = Q_l + Σ_{n<l} s_n Q_n
    z^Prompt_l = softmax(Q^(l) K_{l−1}ᵀ / √d) V_{l−1}          (multi-head; d = head width)
    z^Trans_l  = Φ^Trans_l(z^Trans_{l−1} + z^Prompt_l)

Paper and released code (MFIDteam/MpVH at 303358f) differ. The default is the paper; three switches reach the
released code's deterministic structural choices:

    ==================  ==============================  ==================================  ========================
    what                paper (default)                 released code                       switch
    ==================  ==============================  ==================================  ========================
    prompter            one Mamba block per ViT layer   one adapter (and one conv_q)        prompter="shared"
                                                        shared by all 12 layers
    prompter input      z^Trans_{l−1} + z^Mamba_{l−1}   α·m_{l−1} + (1−α)·z, α learnable    prompter_input=
                                                        (initial 0.35)                      "alpha_mix"
    routing             per-image sigmoid-normalised    batch-level top-7 of a mean         routing="top_k"
                        gates, threshold ε = 0.6,       product, plain average; K, V from
                        weighted sum; K, V from the     the fused query, the attention
                        ViT tokens                      query unfused
    scan                S6 recurrence along four        B, C, Δ drawn at random in every    none: never reproduced
                        cross orders (CSM)              call, no recurrence                 (codes would change
                                                                                            between eval passes)
    parameters, 64 bits 81.6 M (Table 4)                89,588,225                          notebook 08
    ==================  ==============================  ==================================  ========================

The paper's 81.6 M is below the 85.8 M of the ViT-B/16 backbone alone (without its classifier), so no reading of
the paper that keeps a full ViT-B/16 reaches it; notebook 08 counts every part. Choices the paper leaves open,
made here: Q_nᵀV_{l−1} is the per-token dot product averaged over the tokens and scaled by 1/√D (one number per
image and expert); φ_Q, φ_K, φ_V are linear maps without bias (the released 1×1 convolutions over tokens), φ_K and
φ_V shared by all layers; f_hash is the released Linear(D, 256) → BatchNorm → Linear(256, K, no bias). Because
normalised gates sum to 1, ε = 0.6 lets at most one routed expert through, and only when its sigmoid dominates
the others': the threshold makes the routing sparse by construction.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.models.vision_transformer import VisionTransformer

from mh.blocks import initial_A_log, initial_dt_bias, run_scan
from mh.checks import fraction, positive_int
from mh.directions import ORDERS, map_to_tokens, to_grid, to_sequence, tokens_to_map

PROMPTERS = ("per_layer", "shared")
PROMPTER_INPUTS = ("sum", "alpha_mix")
ROUTINGS = ("gated", "top_k")
RELEASED_PARAMETERS_64_BITS = 89_588_225  # counted from the released code: 89,571,841 + 256·K
PROMPTING_MODULES = ("prompters", "query_experts", "key_proj", "value_proj", "alpha", "hash_head")


class CrossScanSSM(nn.Module):
    """CSM (Fig. 3, Eq. 4–5): the S6 scan of a map along both spatial axes in both directions, merged back in 2-D.

    Each order of ``mh.directions.ORDERS`` (rows, rows reversed, columns, columns reversed) has its own x_proj
    (→ Δ_raw, B, C per token), Δ projection, A = −exp(A_log) and D. The four sequences run as one scan call of
    4·D channels with B and C grouped by order, and the four outputs are mapped back to the grid and summed
    ("cross merge"). Shapes: forward((B, D, H, W)) → (B, D, H, W).
    """

    def __init__(self, dim: int, d_state: int = 16, scan_backend="auto"):
        super().__init__()
        self.d_state, self.dt_rank, self.scan_backend = d_state, math.ceil(dim / 16), scan_backend
        orders = len(ORDERS)
        self.x_proj_weight = nn.Parameter(torch.empty(orders, self.dt_rank + 2 * d_state, dim))
        nn.init.trunc_normal_(self.x_proj_weight, std=0.02)
        bound = self.dt_rank**-0.5
        self.dt_projs_weight = nn.Parameter(torch.empty(orders, dim, self.dt_rank).uniform_(-bound, bound))
        self.dt_projs_bias = nn.Parameter(torch.stack([initial_dt_bias(dim) for _ in ORDERS]))
        self.A_logs = nn.Parameter(initial_A_log(orders * dim, d_state))
        self.Ds = nn.Parameter(torch.ones(orders * dim))

    def forward(self, grid: torch.Tensor) -> torch.Tensor:
        batch, dim, height, width = grid.shape
        sequences = torch.stack([to_sequence(grid, order) for order in ORDERS], dim=1)  # (B, 4, D, L)
        projected = torch.einsum("bkdl,kcd->bkcl", sequences, self.x_proj_weight)
        delta_raw, B, C = projected.split([self.dt_rank, self.d_state, self.d_state], dim=2)
        delta = torch.einsum("bkrl,kdr->bkdl", delta_raw, self.dt_projs_weight)
        y = run_scan(
            self.scan_backend,
            sequences.flatten(1, 2),
            delta.flatten(1, 2),
            self.A_logs,
            B.contiguous(),
            C.contiguous(),
            self.Ds,
            self.dt_projs_bias.flatten(),
        ).to(grid.dtype)
        y = y.view(batch, len(ORDERS), dim, height * width)
        return sum(to_grid(y[:, k], order, height, width) for k, order in enumerate(ORDERS))


class MambaPrompter(nn.Module):
    """Mamba prompter block M_l (Eq. 3, Fig. 2): LN → [DWConv 3×3 → SiLU → CSM → LN → Linear] → residual;
    LN → Linear → residual. Shapes: forward((B, H·W, D) row-major tokens, H, W) → (B, H·W, D)."""

    def __init__(self, dim: int, d_state: int = 16, scan_backend="auto"):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.conv2d = nn.Conv2d(dim, dim, kernel_size=3, padding=1, groups=dim)
        self.csm = CrossScanSSM(dim, d_state, scan_backend)
        self.out_norm = nn.LayerNorm(dim)
        self.out_proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Linear(dim, dim)

    def forward(self, tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
        grid = tokens_to_map(self.norm1(tokens), height, width)
        scanned = map_to_tokens(self.csm(F.silu(self.conv2d(grid))))
        tokens = tokens + self.out_proj(self.out_norm(scanned))
        return tokens + self.mlp(self.norm2(tokens))


def routing_gates(scores: torch.Tensor, threshold: float) -> torch.Tensor:
    """MoEA gates (Eq. 7–9): ŝ = σ(scores) / Σ σ(scores) over the experts, then ŝ < ε → 0. (B, n) → (B, n)."""
    gates = torch.sigmoid(scores)
    gates = gates / gates.sum(dim=-1, keepdim=True)
    return gates * (gates >= threshold)


def _check_option(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"MpVH: unknown {name} {value!r}; expected one of {allowed}")


def _check_sizes(**sizes: int) -> None:
    """Every size a positive integer, the width a multiple of the heads, the image a multiple of the patch."""
    for name, value in sizes.items():
        positive_int(value, f"MpVH's {name}")
    if sizes["embed_dim"] % sizes["num_heads"]:
        raise ValueError(f"MpVH's embed_dim {sizes['embed_dim']} must be a multiple of num_heads {sizes['num_heads']}")
    if sizes["image_size"] % sizes["patch_size"]:
        raise ValueError(
            f"MpVH: image size {sizes['image_size']} is not a multiple of the patch size {sizes['patch_size']}"
        )


class MpVH(VisionTransformer):
    """MpVH hashing network (see the module docstring): timm's ViT with per-layer Mamba prompts and a hash head.

    The backbone *is* timm's ``VisionTransformer`` (classifier removed), so a timm ViT-B/16 state dict loads by
    name into ``patch_embed``, ``cls_token``, ``pos_embed``, ``blocks`` and ``norm``. Defaults are the paper's
    ViT-B/16 at 224 px; ``mh.registry`` builds the smoke profile's reduced net (patch 8, width 96, depth 4,
    4 heads, d_state 8).

    Shapes: forward((B, 3, S, S)) → (B, K) in (−1, 1), S = ``image_size``.
    """

    def __init__(
        self,
        bits: int,
        image_size: int = 224,
        patch_size: int = 16,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        d_state: int = 16,
        hash_hidden: int = 256,
        gate_threshold: float = 0.6,
        top_k: int = 7,
        prompter: str = "per_layer",
        prompter_input: str = "sum",
        routing: str = "gated",
        scan_backend="auto",
    ):
        for name, value, allowed in (
            ("prompter", prompter, PROMPTERS),
            ("prompter_input", prompter_input, PROMPTER_INPUTS),
            ("routing", routing, ROUTINGS),
        ):
            _check_option(name, value, allowed)
        _check_sizes(
            image_size=image_size,
            patch_size=patch_size,
            embed_dim=embed_dim,
            depth=depth,
            num_heads=num_heads,
            d_state=d_state,
            hash_hidden=hash_hidden,
            top_k=top_k,
        )
        fraction(gate_threshold, "MpVH's gate_threshold")
        super().__init__(
            img_size=image_size,
            patch_size=patch_size,
            num_classes=0,
            embed_dim=embed_dim,
            depth=depth,
            num_heads=num_heads,
            mlp_ratio=mlp_ratio,
        )
        self.image_size, self.grid_size = image_size, image_size // patch_size
        self.prompter, self.prompter_input, self.routing = prompter, prompter_input, routing
        self.gate_threshold, self.top_k, self.prompt_heads = gate_threshold, top_k, num_heads
        self.scan_backend = scan_backend
        count = depth if prompter == "per_layer" else 1
        self.prompters = nn.ModuleList(MambaPrompter(embed_dim, d_state, scan_backend) for _ in range(count))
        self.query_experts = nn.ModuleList(nn.Linear(embed_dim, embed_dim, bias=False) for _ in range(count))
        self.key_proj = nn.Linear(embed_dim, embed_dim, bias=False)
        self.value_proj = nn.Linear(embed_dim, embed_dim, bias=False)
        self.alpha = nn.Parameter(torch.tensor(0.35)) if prompter_input == "alpha_mix" else None
        self.hash_head = nn.Sequential(
            nn.Linear(embed_dim, hash_hidden), nn.BatchNorm1d(hash_hidden), nn.Linear(hash_hidden, bits, bias=False)
        )

    def set_scan_backend(self, backend) -> None:
        """Use ``backend`` (a name of ``mh.scan.selective_scan`` or a callable with its signature) in every CSM."""
        self.scan_backend = backend
        for module in self.modules():
            if isinstance(module, CrossScanSSM):
                module.scan_backend = backend

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """{"backbone": embedding + ViT (pretrained; paper §4.1 LR 3e-6), "prompting": prompters, MoEA and hash
        head (new; LR 3e-3)}."""
        groups = {"backbone": [], "prompting": []}
        for name, parameter in self.named_parameters():
            groups["prompting" if name.split(".")[0] in PROMPTING_MODULES else "backbone"].append(parameter)
        return groups

    def _check_images(self, images: torch.Tensor) -> None:
        expected = (3, self.image_size, self.image_size)
        if not isinstance(images, torch.Tensor) or images.dim() != 4 or tuple(images.shape[1:]) != expected:
            shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise ValueError(f"MpVH was built for images (B, {', '.join(map(str, expected))}); got {shape}")
        if images.dtype != self.cls_token.dtype and not torch.is_autocast_enabled(images.device.type):
            raise ValueError(
                f"images are {images.dtype} but MpVH's weights are {self.cls_token.dtype}: "
                f"convert the images (mh.data.build_transform gives float32) or the model"
            )

    def _attend(self, query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """Multi-head softmax(Q Kᵀ/√d) V over the patch tokens (Eq. 10). (B, N, D) ×3 → (B, N, D)."""
        batch, tokens, dim = query.shape

        def heads(x: torch.Tensor) -> torch.Tensor:
            return x.view(batch, tokens, self.prompt_heads, dim // self.prompt_heads).transpose(1, 2)

        q, k, v = heads(query), heads(keys), heads(values)
        weights = (q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5).softmax(dim=-1)
        return (weights @ v).transpose(1, 2).reshape(batch, tokens, dim)

    def _gated_prompt(self, query, experts, patches) -> torch.Tensor:
        """Paper MoEA (Eq. 6–10): per-image gates over earlier queries; K, V from the ViT patch tokens."""
        keys, values = self.key_proj(patches), self.value_proj(patches)
        if experts:
            stacked = torch.stack(experts, dim=1)  # (B, n, N, D)
            scale = patches.shape[1] * patches.shape[2] ** 0.5
            gates = routing_gates(torch.einsum("bntd,btd->bn", stacked, values) / scale, self.gate_threshold)
            query = query + torch.einsum("bn,bntd->btd", gates.to(stacked.dtype), stacked)
        return self._attend(query, keys, values)

    def _top_k_prompt(self, query, experts, prompt_tokens) -> torch.Tensor:
        """Released routing: the k earlier queries with the highest batch-mean product with W_k·m_l, averaged
        with the current one; keys and values from that fused query, the attention query unfused."""
        fused = query
        if experts:
            routing_key = self.key_proj(prompt_tokens)
            scores = torch.stack([(expert * routing_key).mean() for expert in experts])
            chosen = scores.topk(min(self.top_k, len(experts))).indices.tolist()
            fused = (query + sum(experts[n] for n in chosen)) / (1 + len(chosen))
        return self._attend(query, self.key_proj(fused), self.value_proj(fused))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Images (B, 3, S, S) → continuous codes h = tanh(f_hash(x_class)), (B, K) (Eq. 1–13)."""
        self._check_images(images)
        prefix, side = self.num_prefix_tokens, self.grid_size
        z_trans = self.norm_pre(self.patch_drop(self._pos_embed(self.patch_embed(images))))
        z_mamba = z_trans[:, prefix:]
        experts: list[torch.Tensor] = []
        for layer, block in enumerate(self.blocks):
            patches = z_trans[:, prefix:]
            if self.alpha is None:
                prompter_input = patches + z_mamba
            else:
                prompter_input = self.alpha * z_mamba + (1 - self.alpha) * patches
            shared = self.prompter == "shared"
            z_mamba = self.prompters[0 if shared else layer](prompter_input, side, side)
            query = self.query_experts[0 if shared else layer](z_mamba)
            if self.routing == "gated":
                prompt = self._gated_prompt(query, experts, patches)
            else:
                prompt = self._top_k_prompt(query, experts, z_mamba)
            experts.append(query)
            z_trans = block(z_trans + F.pad(prompt, (0, 0, prefix, 0)))
        return torch.tanh(self.hash_head(self.norm(z_trans)[:, 0]))

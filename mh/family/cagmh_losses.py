"""CAGMH's cross-modal objectives (Wang et al., EAAI 2025): codes u^v, u^t (B, K) with unit rows and multi-hot
labels Y (B, C).

``MultimodalProxyLoss`` (class proxies shared by both modalities, DSPH's) and ``ClassBalanceCentreLoss`` (Hadamard
class centres, a cubic binarisation term whose released sign is fixed here, a label-balance term); the released
training adds L_proxy(u^v, u^t) + L_cb(u^v) + L_cb(u^t) (``mh.family.cagmh_train``). Formulas in their docstrings.
They take two modalities, not the single-modality ``mh.losses.HashingLoss`` contract of ``mh.train``.
"""

from __future__ import annotations

import math
import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F

KNOWN_CODE_TABLE = {(16, 7): 0.25, (32, 7): 0.125, (16, 8): 0.375, (32, 8): 0.1875, (64, 8): 0.09375}


def proxy_threshold(bits: int, num_classes: int) -> float:
    """τ of the proxy loss: the released code table's best maximum cosine between 2^⌈log₂ C⌉ codewords of
    length K. It is 0 whenever 2^⌈log₂ C⌉ ≤ 2K (the rows of ±H_K are pairwise orthogonal or opposite);
    the other entries known from the released table are in ``KNOWN_CODE_TABLE``; anything else is an error."""
    column = max(1, math.ceil(math.log2(num_classes)))
    if 2**column <= 2 * bits:
        return 0.0
    if (bits, column) in KNOWN_CODE_TABLE:
        return KNOWN_CODE_TABLE[(bits, column)]
    raise ValueError(f"no code-table threshold known for K={bits}, C={num_classes}: pass threshold= explicitly")


def _hinge_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (values * mask).sum() / mask.sum().clamp(min=1)


class MultimodalProxyLoss(nn.Module):
    """CAGMH's (and DSPH's) proxy loss: ``loss(u_v (B, K), u_t (B, K), labels (B, C)) → scalar``.

    With ĉ_ic = û_iᵀP̂_c (cosine to the learnable class proxy P_c), N₊ / N₋ the ones / zeros of Y:

        L = Σ_{y=1} (1 − ĉ^v)/N₊ + Σ_{y=0} [ĉ^v − τ]₊/N₋ + (same for t) + R
        R = α/Z Σ_{G_ij=0} ([û^vᵢᵀû^vⱼ − τ]₊ + [û^tᵢᵀû^tⱼ − τ]₊ + [û^vᵢᵀû^tⱼ − τ]₊)

    over the samples with more than one label, G = Y_s Y_sᵀ, Z its zero entries (R = 0 when Z = 0).
    Args: num_classes C, bits K, alpha α (0.8), threshold τ (``None``: ``proxy_threshold``), seed of the
    proxies' Kaiming-normal (fan-out) draw (0).
    """

    def __init__(self, num_classes: int, bits: int, alpha: float = 0.8, threshold: float | None = None, seed=0):
        super().__init__()
        self.alpha = alpha
        self.threshold = proxy_threshold(bits, num_classes) if threshold is None else threshold
        proxies = torch.empty(num_classes, bits)
        nn.init.kaiming_normal_(proxies, mode="fan_out", generator=torch.Generator().manual_seed(seed))
        self.proxies = nn.Parameter(proxies)

    def _to_proxies(self, codes: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cosine = F.normalize(codes, dim=-1) @ F.normalize(self.proxies, dim=-1).t()
        positive = _hinge_mean(1 - cosine, labels)
        return positive + _hinge_mean(F.relu(cosine - self.threshold), 1 - labels)

    def forward(self, image_codes: torch.Tensor, text_codes: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        labels = labels.to(image_codes.dtype)
        loss = self._to_proxies(image_codes, labels) + self._to_proxies(text_codes, labels)
        multi = labels.sum(dim=1) > 1
        unrelated = (labels[multi] @ labels[multi].t()) == 0
        if unrelated.any():
            v, t = F.normalize(image_codes[multi], dim=-1), F.normalize(text_codes[multi], dim=-1)
            pairs = [F.relu(a @ b.t() - self.threshold)[unrelated].mean() for a, b in ((v, v), (t, t), (v, t))]
            loss = loss + self.alpha * sum(pairs)
        return loss


def hadamard_centres(num_classes: int, bits: int, seed: int = 0) -> torch.Tensor:
    """Class hash centres (C, K) in {−1, +1}: the first C rows of [H_K; −H_K] (Sylvester Hadamard); when
    2K < C, the rest are random rows with K/2 entries −1, redrawn (up to 20 times) until the minimum pairwise
    Hamming distance of all C centres exceeds K/4 and the mean reaches K/2 (the released rule). After 20
    draws the last one is kept, with a warning naming the distance reached. Sylvester's doubling is three
    lines, so scipy's ``hadamard`` is not needed for it."""
    if bits < 2 or bits & (bits - 1):
        raise ValueError(f"Hadamard centres need K a power of two; got K={bits}. Use 16, 32 or 64.")
    hadamard = torch.ones(1, 1)
    while hadamard.shape[0] < bits:
        hadamard = torch.cat([torch.cat([hadamard, hadamard], 1), torch.cat([hadamard, -hadamard], 1)], 0)
    rows = torch.cat([hadamard, -hadamard])[:num_classes]
    missing = num_classes - len(rows)
    if missing <= 0:
        return rows
    generator = torch.Generator().manual_seed(seed)
    for _ in range(20):
        extra = torch.ones(missing, bits)
        for row in extra:
            row[torch.randperm(bits, generator=generator)[: bits // 2]] = -1
        centres = torch.cat([rows, extra])
        distances = ((bits - centres @ centres.t()) / 2)[~torch.eye(num_classes, dtype=torch.bool)]
        if distances.min() > bits / 4 and distances.mean() >= bits / 2:
            return centres
    warnings.warn(
        f"{num_classes} class centres in {bits} bits: after 20 draws the closest two differ in "
        f"{int(distances.min())} bits, not more than K/4 = {bits // 4}; a longer code separates them better",
        stacklevel=2,
    )
    return centres


class ClassBalanceCentreLoss(nn.Module):
    """CAGMH's class-balance centre loss: ``loss(codes (B, K), labels (B, C)) → scalar``.

        c_i = sign(y_iᵀH) (zeros → a fixed random bit r_k),  ũ = tanh(u)
        L = σ(w) · ( mean [1 − ũ c]₊ + λ₁ mean q(ũ) + β mean_c |mean_i y_ic − ½| )

    q(ũ) = (1 − |ũ|)³ by default, which is ≥ 0 and zero at ±1, so it pulls codes to binary values; the
    released (|ũ| − 1)³ is ≤ 0 and smallest at 0, pushing codes away from ±1 (``cubic="released"``).
    w is one learnable scalar, initialised to 0 (the released code leaves it uninitialised memory).
    Args: num_classes, bits (a power of two), lambda1 λ₁ (0.009), balance_weight β (0.004), cubic, seed.
    """

    def __init__(self, num_classes, bits, lambda1=0.009, balance_weight=0.004, cubic="fixed", seed: int = 0):
        super().__init__()
        if cubic not in ("fixed", "released"):
            raise ValueError(f"cubic must be 'fixed' or 'released'; got {cubic!r}")
        self.lambda1, self.balance_weight, self.cubic = lambda1, balance_weight, cubic
        self.register_buffer("centres", hadamard_centres(num_classes, bits, seed))
        random_bits = torch.randint(0, 2, (bits,), generator=torch.Generator().manual_seed(seed + 1))
        self.register_buffer("tie_bits", random_bits.float())
        self.weight = nn.Parameter(torch.zeros(()))

    def sample_centres(self, labels: torch.Tensor) -> torch.Tensor:
        """Multi-label centres (B, K) in {−1, +1}."""
        scores = labels.to(self.centres.dtype) @ self.centres
        scores = torch.where(scores == 0, self.tie_bits.expand_as(scores), scores)
        return 2 * (scores > 0).to(scores.dtype) - 1

    def forward(self, codes: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        squashed = torch.tanh(codes)
        hinge = F.relu(1 - squashed * self.sample_centres(labels)).mean()
        distance = 1 - squashed.abs() if self.cubic == "fixed" else squashed.abs() - 1
        balance = (labels.to(codes.dtype).mean(dim=0) - 0.5).abs().mean()
        return torch.sigmoid(self.weight) * (
            hinge + self.lambda1 * distance.pow(3).mean() + self.balance_weight * balance
        )

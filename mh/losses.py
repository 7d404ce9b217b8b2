"""Hashing objectives: DPSH with quantization (MambaHash §3.5, Eq. 17–18) and MpVH's pairwise regression (§3.6).

    θ_ij = ½ h_iᵀ h_j
    J₂ = Σ_ij [log(1 + e^θ_ij) − s_ij θ_ij] + η Σ_i ‖h_i − sign(h_i)‖²

s_ij = 1 when images i and j share at least one label (single- and multi-label alike). The pair term is
computed as log(1 + e^−|θ|) + max(θ, 0) − sθ, which equals log(1 + e^θ) − sθ without ever exponentiating
a positive number: no overflow for any θ (|θ| ≤ K/2 = 32 for tanh codes of 64 bits).

Two forms:
    memory bank (released code, default): every batch is compared with the latest codes of all training
        images, kept detached in a bank U (num_train × K) with their labels; terms are averaged over
        batch × num_train instead of summed (the paper writes sums; only the scale of η and the learning
        rate differ). Rows of U not yet filled hold zeros: θ = 0, constant loss, no gradient.
    in-batch: pairs within the batch only (the textbook DPSH form), averaged over batch².
The quantization term is averaged over the batch's code elements in both forms, as in the released code.

MpVH (Zhou et al., ACM MM 2026, §3.6), in-batch pairs:

    L = λ₁ L_H + λ₂ L_Q,   L_H = Σ_ij (h_iᵀh_j − k S_ij)²,   L_Q = Σ_i ‖h_i − b_i‖²,   b_i = sign(h_i)

λ₁ = λ₂ = 1 (the paper's Table 5 best). The paper does not give k; codes of length K have h_iᵀh_j ∈ [−K, K],
so k = K asks similar pairs for identical codes and dissimilar ones for orthogonal codes (``scale``). Sums
become means over pairs and over images (as for DPSH): only the learning rate's scale changes.

The contract every hashing loss keeps is ``HashingLoss``: the training loop builds a loss by keyword from the
run's facts (``num_train``, ``bits``, ``num_classes``, ``quantization_weight``), calls ``update_bank`` before the
loss when ``memory_bank`` is set, and logs ``last_terms``. CAGMH's cross-modal losses are in
``mh.family.cagmh_losses``.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from mh.binary import label_rows


def similarity(labels_a: torch.Tensor, labels_b: torch.Tensor) -> torch.Tensor:
    """s_ij = 1 if rows i of ``labels_a`` and j of ``labels_b`` share ≥ 1 label. (n, c), (m, c) → (n, m)."""
    dtype = labels_a.dtype if labels_a.is_floating_point() else torch.float32
    return (labels_a.to(dtype) @ labels_b.to(dtype).t() > 0).to(dtype)


def pair_likelihood(theta: torch.Tensor, similar: torch.Tensor) -> torch.Tensor:
    """−log p(s | θ) = log(1 + e^θ) − sθ per pair (Eq. 17), in the overflow-free form."""
    return F.softplus(-theta.abs()) + theta.clamp(min=0) - similar * theta


def quantization_error(codes: torch.Tensor) -> torch.Tensor:
    """Mean of (h − sign(h))² over all code elements (the η term of Eq. 18, averaged)."""
    return (codes - codes.sign()).pow(2).mean()


class HashingLoss(nn.Module):
    """What the training loop (``mh.engine.training_step``) asks of a loss: ``criterion(codes (B, K), labels (B,)
    or (B, C))`` → scalar, built by keyword from the run's facts::

        LossClass(num_train=..., bits=..., num_classes=..., quantization_weight=...)

    ``quantization_weight`` is the run's η: the run's own, else the loss's ``default_quantization_weight``, else
    the dataset's (``mh.registry.default_quantization_weight``). ``memory_bank``: when True the loop first calls
    ``update_bank(codes, labels, indices)`` with the step's codes (every rank's under ``torch.distributed``).
    ``last_terms``: the named terms of the last call as detached tensors (logged beside the loss, no host sync).
    A new loss subclasses this and is one entry of ``mh.registry.LOSSES``.
    """

    memory_bank: bool = False
    default_quantization_weight: float | None = None  # None: the dataset's η (mh.datasets)

    def __init__(self):
        super().__init__()
        self.last_terms: dict[str, torch.Tensor] = {}

    def update_bank(self, codes: torch.Tensor, labels: torch.Tensor, indices: torch.Tensor) -> None:
        raise ValueError(
            f"this {type(self).__name__} keeps no memory bank (memory_bank is False): it has no bank to update"
        )


class DPSHLoss(HashingLoss):
    """Eq. 18 as a module: ``loss = criterion(codes (B, K), labels (B,) or (B, C))`` → scalar.

    Args:
        num_train: size of the training set (rows of the memory bank).
        bits: K. num_classes: C.
        quantization_weight: η (0.01 CIFAR-10, 0.05 NUS-WIDE / ImageNet in the paper).
        memory_bank: True for the released form, False for in-batch pairs.

    With the memory bank, the training loop first writes the batch into the bank,
    ``criterion.update_bank(codes, labels, indices)``, then calls the loss: the released code's order. The
    update is a step of its own so that a distributed run can feed it the codes of every rank. After each
    call ``last_terms`` holds the two terms as detached tensors on the codes' device (no host sync), for
    logging.
    """

    def __init__(
        self, num_train: int, bits: int, num_classes: int, quantization_weight: float, memory_bank: bool = True
    ):
        super().__init__()
        self.num_classes = num_classes
        self.quantization_weight = quantization_weight
        self.memory_bank = memory_bank
        self.register_buffer("bank_codes", torch.zeros(num_train if memory_bank else 0, bits))
        self.register_buffer("bank_labels", torch.zeros(num_train if memory_bank else 0, num_classes))

    @torch.no_grad()
    def update_bank(self, codes: torch.Tensor, labels: torch.Tensor, indices: torch.Tensor) -> None:
        """U[indices] = codes (detached), Y[indices] = labels: the batch's rows of the memory bank."""
        if not self.memory_bank:
            super().update_bank(codes, labels, indices)
        indices = indices.to(self.bank_codes.device)
        self.bank_codes[indices] = codes.detach().to(self.bank_codes.dtype)
        self.bank_labels[indices] = label_rows(labels, self.num_classes).to(self.bank_labels)

    def forward(self, codes: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        dtype = torch.promote_types(codes.dtype, torch.float32)  # bf16 codes from autocast → fp32
        codes = codes.to(dtype)
        labels = label_rows(labels, self.num_classes).to(codes.device, dtype)
        if self.memory_bank:
            others, other_labels = self.bank_codes.to(dtype), self.bank_labels.to(dtype)
        else:
            others, other_labels = codes, labels
        theta = 0.5 * codes @ others.t()
        likelihood = pair_likelihood(theta, similarity(labels, other_labels)).mean()
        quantization = quantization_error(codes)
        self.last_terms = {"likelihood": likelihood.detach(), "quantization": quantization.detach()}
        return likelihood + self.quantization_weight * quantization


class PairwiseRegressionLoss(HashingLoss):
    """MpVH's objective (§3.6) as a module: ``loss = criterion(codes (B, K), labels (B,) or (B, C))`` → scalar.

    Args (the training engine's loss signature; ``num_train`` is unused, pairs are in-batch):
        bits: K. num_classes: C.
        quantization_weight: λ₂ (``None``: the paper's 1). pair_weight: λ₁ (1).
        scale: k of L_H (``None``: K).
    ``last_terms`` holds the detached terms ``pairs`` and ``quantization`` after each call.
    """

    default_quantization_weight = 1.0  # λ₂ of the paper; not the DPSH η of the dataset

    def __init__(
        self,
        num_train: int,
        bits: int,
        num_classes: int,
        quantization_weight: float | None = None,
        scale: float | None = None,
        pair_weight: float = 1.0,
    ):
        super().__init__()
        self.num_classes = num_classes
        self.scale = float(bits if scale is None else scale)
        self.pair_weight = pair_weight
        self.quantization_weight = (
            self.default_quantization_weight if quantization_weight is None else quantization_weight
        )

    def forward(self, codes: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        codes = codes.to(torch.promote_types(codes.dtype, torch.float32))
        labels = label_rows(labels, self.num_classes).to(codes.device, codes.dtype)
        pairs = (codes @ codes.t() - self.scale * similarity(labels, labels)).pow(2).mean()
        quantization = (codes - codes.detach().sign()).pow(2).sum(dim=1).mean()
        self.last_terms = {"pairs": pairs.detach(), "quantization": quantization.detach()}
        return self.pair_weight * pairs + self.quantization_weight * quantization

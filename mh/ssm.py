"""Continuous state space models and their discretisations (paper §3.1, Eq. 1–3), for teaching.

    h'(t) = A h(t) + B x(t),   y(t) = C h(t)                      (Eq. 1)
    h_k = Ā h_{k−1} + B̄ x_k,    y_k = C h_k                         (Eq. 2)

With step Δ, zero-order hold (x constant over each step) gives exactly (Eq. 3)
    Ā = exp(ΔA),   B̄ = (ΔA)⁻¹ (exp(ΔA) − I) ΔB
Mamba's kernels use the simpler B̄ = ΔB (the first-order term), keeping Ā exact. Shapes: A (N, N),
B (N, 1), C (1, N); diagonal A is given as its (N,) diagonal to the ``*_diagonal`` functions.
"""

from __future__ import annotations

import torch


def zoh_matrix_exponential(A: torch.Tensor, B: torch.Tensor, delta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact ZOH for any A via one matrix exponential (Van Loan): exp(Δ[[A, B], [0, 0]]) = [[Ā, B̄], [0, I]]."""
    n, m = B.shape
    block = torch.zeros(n + m, n + m, dtype=A.dtype)
    block[:n, :n], block[:n, n:] = A, B
    expo = torch.linalg.matrix_exp(delta * block)
    return expo[:n, :n], expo[:n, n:]


def zoh_diagonal(a: torch.Tensor, b: torch.Tensor, delta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Closed-form ZOH for diagonal A = diag(a): Ā = e^{Δa}, B̄ = (e^{Δa} − 1)/a · b (Eq. 3, element-wise)."""
    decay = torch.exp(delta * a)
    return decay, torch.expm1(delta * a) / a * b


def euler(a: torch.Tensor, b: torch.Tensor, delta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward Euler: Ā = 1 + Δa, B̄ = Δb (first order; unstable once Δ|a| > 2)."""
    return 1 + delta * a, delta * b


def bilinear(a: torch.Tensor, b: torch.Tensor, delta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Bilinear (Tustin, as in S4): Ā = (1 + Δa/2)/(1 − Δa/2), B̄ = Δb/(1 − Δa/2)."""
    denominator = 1 - delta * a / 2
    return (1 + delta * a / 2) / denominator, delta * b / denominator


def mamba_rule(a: torch.Tensor, b: torch.Tensor, delta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Mamba's kernel rule: exact Ā = e^{Δa}, simplified B̄ = Δb."""
    return torch.exp(delta * a), delta * b


DISCRETISATIONS = {
    "ZOH (exact)": zoh_diagonal,
    "Euler": euler,
    "bilinear": bilinear,
    "Mamba (Ā exact, B̄ = ΔB)": mamba_rule,
}


def run_recurrence(decay: torch.Tensor, drive: torch.Tensor, c: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """y_k = Σ_n c_n h_{k,n} with h_k = Ā h_{k−1} + B̄ x_k, diagonal Ā. inputs (L,) → outputs (L,)."""
    state = torch.zeros_like(decay)
    outputs = []
    for x in inputs:
        state = decay * state + drive * x
        outputs.append((c * state).sum())
    return torch.stack(outputs)


def convolution_kernel(decay: torch.Tensor, drive: torch.Tensor, c: torch.Tensor, length: int) -> torch.Tensor:
    """The LTI system's impulse response K_k = Σ_n c_n Ā_n^k B̄_n, k = 0..L−1: y = K * x (causal convolution)."""
    powers = decay[None, :] ** torch.arange(length, dtype=decay.dtype)[:, None]
    return (powers * drive * c).sum(dim=1)


def causal_convolution(kernel: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """y_k = Σ_{j ≤ k} K_j x_{k−j}. (L,), (L,) → (L,)."""
    length = inputs.shape[0]
    return torch.stack([(kernel[: k + 1].flip(0) * inputs[: k + 1]).sum() for k in range(length)])


def exact_step_response(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
    """y(t) of Eq. 1 for a unit step input from h(0) = 0, diagonal A: Σ_n c_n b_n (e^{a_n t} − 1)/a_n."""
    return (c * b * torch.expm1(times[:, None] * a) / a).sum(dim=1)

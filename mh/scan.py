"""The selective scan (Mamba's S6 operator, paper §3.1 Eq. 2) behind one dispatcher.

``selective_scan`` has exactly the semantics and shapes of mamba-ssm's ``selective_scan_fn``:

    Δ  = softplus(delta + delta_bias)            (softplus only when ``delta_softplus``)
    Ā  = exp(Δ A)                                ZOH rule for A (Eq. 3)
    B̄u = Δ B u                                   Euler rule for B: what the kernel computes,
                                                 *not* Eq. 3's (ΔA)⁻¹(exp(ΔA) − I)ΔB
    h_t = Ā_t h_{t-1} + B̄_t u_t,   h_0 = 0
    y_t = C_t h_t + D u_t,   then y_t · SiLU(z_t) when z is given

Shapes (b batch, d channels, l sequence length, n state size, g groups of B/C):

    u, delta, z     (b, d, l)
    A               (d, n)          real; Mamba keeps it negative (A = −exp(A_log))
    B, C            (b, n, l) or grouped (b, g, n, l), channel c uses group c // (d // g)
    D, delta_bias   (d,)
    returns         y (b, d, l) in u's dtype, and the last state h_l (b, d, n) when asked

Backends:
    "reference"  a sequential loop over l: the readable, teaching version.
    "chunked"    pure PyTorch, vectorised over the sequence (``mh.scan_chunked``); use it to train on CPU.
    "cuda"       mamba-ssm's fused kernel (imported only when used; ``import mh`` never imports it).
    "auto"       "cuda" for CUDA tensors when mamba-ssm imports, else "chunked"; ``$MH_SCAN_BACKEND``
                 (reference, chunked or cuda) overrides it, for measuring one backend against another.

Memory. The PyTorch backends form (b, d, n, l) tensors (Ā, B̄u, the states h): about 38 MB per image per MpVH
layer at 224 px, kept for the backward pass, so that a batch of 8 full-size MpVH images needs over 18 GiB.
mamba-ssm's kernel never keeps them (it recomputes the states in its backward pass); the PyTorch backends do
the same (``torch.utils.checkpoint``) whenever those tensors would exceed ``RECOMPUTE_ABOVE_BYTES``: they keep
only the (b, d, l) inputs and recompute the rest in the backward pass, with the same gradients bit for bit
(tested). Below the limit (the smoke network) nothing is recomputed: it costs time and saves little.

Like mamba-ssm, the scan runs in float32 whatever the input dtype (float64 inputs stay float64 here so
that tests can compare in double precision; mamba-ssm's own reference would downcast them).
"""

from __future__ import annotations

import functools
import importlib
import os

import torch
import torch.nn.functional as F
import torch.utils.checkpoint

from mh.scan_chunked import linear_recurrence

BACKENDS = ("auto", "reference", "chunked", "cuda")
BACKEND_VARIABLE = "MH_SCAN_BACKEND"  # what "auto" means, when set
RECOMPUTE_ABOVE_BYTES = 64 * 2**20  # one (b, d, n, l) float32 tensor larger than this: recompute in backward


@functools.lru_cache(maxsize=1)
def _mamba_ssm_selective_scan():
    """mamba-ssm's ``selective_scan_fn``, or None when mamba-ssm is not installed or does not import."""
    try:
        module = importlib.import_module("mamba_ssm.ops.selective_scan_interface")
    except Exception:  # a broken CUDA build raises more than ImportError; any failure means "not usable"
        return None
    return module.selective_scan_fn


def cuda_scan_available() -> bool:
    """True when the "cuda" backend can run: mamba-ssm imports and a CUDA device is present."""
    return torch.cuda.is_available() and _mamba_ssm_selective_scan() is not None


def resolve_backend(backend: str, u: torch.Tensor) -> str:
    """The concrete backend ("reference", "chunked" or "cuda") that ``backend`` means for tensor ``u``."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown scan backend {backend!r}; expected one of {BACKENDS}")
    if backend == "auto" and os.environ.get(BACKEND_VARIABLE):
        backend = os.environ[BACKEND_VARIABLE]
        if backend not in BACKENDS[1:]:
            raise ValueError(f"${BACKEND_VARIABLE} must be one of {BACKENDS[1:]}; got {backend!r}")
    if backend == "auto":
        return "cuda" if u.is_cuda and _mamba_ssm_selective_scan() is not None else "chunked"
    if backend == "cuda":
        if not u.is_cuda:
            raise ValueError("scan backend 'cuda' needs CUDA tensors; move the inputs to a GPU or use 'chunked'")
        if _mamba_ssm_selective_scan() is None:
            raise ImportError(
                "scan backend 'cuda' needs mamba-ssm: pip install 'mambahash-companion[gpu]' "
                "(or pip install mamba-ssm --no-build-isolation), or use backend='chunked'"
            )
    return backend


def _check_shapes(u, delta, A, B, C, D, z, delta_bias):
    if u.dim() != 3:
        raise ValueError(f"u must be (batch, d, length); got shape {tuple(u.shape)}")
    b, d, length = u.shape
    if delta.shape != u.shape:
        raise ValueError(f"delta must have u's shape {tuple(u.shape)}; got {tuple(delta.shape)}")
    if A.dim() != 2 or A.shape[0] != d:
        raise ValueError(f"A must be (d={d}, n); got {tuple(A.shape)}")
    if A.is_complex():
        raise ValueError("complex A is not supported; MambaHash uses real A = -exp(A_log)")
    n = A.shape[1]
    for name, M in (("B", B), ("C", C)):
        if M.dim() == 3 and M.shape == (b, n, length):
            continue
        if M.dim() == 4 and M.shape[0] == b and M.shape[2:] == (n, length) and d % M.shape[1] == 0:
            continue
        raise ValueError(
            f"{name} must be (b={b}, n={n}, l={length}) or grouped (b, g, n, l) with g dividing d={d}; "
            f"got {tuple(M.shape)}"
        )
    for name, v in (("D", D), ("delta_bias", delta_bias)):
        if v is not None and v.shape != (d,):
            raise ValueError(f"{name} must be (d={d},); got {tuple(v.shape)}")
    if z is not None and z.shape != u.shape:
        raise ValueError(f"z must have u's shape {tuple(u.shape)}; got {tuple(z.shape)}")


def _per_channel(M: torch.Tensor, d: int) -> torch.Tensor:
    """B or C as (b, d, n, l): each channel gets its group's projection."""
    if M.dim() == 3:
        return M.unsqueeze(1).expand(-1, d, -1, -1)
    groups = M.shape[1]
    return M.repeat_interleave(d // groups, dim=1)


def _discretize(u, delta, A, B, delta_bias, delta_softplus, compute_dtype):
    """log Ā = ΔA and B̄u = ΔBu, both (b, d, n, l), from the raw scan inputs."""
    u = u.to(compute_dtype)
    delta = delta.to(compute_dtype)
    if delta_bias is not None:
        delta = delta + delta_bias.to(compute_dtype)[:, None]
    if delta_softplus:
        delta = F.softplus(delta)
    d = u.shape[1]
    log_decay = delta.unsqueeze(2) * A.to(compute_dtype)[None, :, :, None]
    drive = (delta * u).unsqueeze(2) * _per_channel(B.to(compute_dtype), d)
    return u, log_decay, drive


def _read_out(h, u, C, D, z, compute_dtype):
    """y = C h + D u, gated by SiLU(z). h: (b, d, n, l) → y: (b, d, l)."""
    y = (h * _per_channel(C.to(compute_dtype), u.shape[1])).sum(dim=2)
    if D is not None:
        y = y + u * D.to(compute_dtype)[:, None]
    if z is not None:
        y = y * F.silu(z.to(compute_dtype))
    return y


def _reference_states(log_decay: torch.Tensor, drive: torch.Tensor) -> torch.Tensor:
    """h_t = exp(log_decay_t) h_{t-1} + drive_t, one step at a time. (b, d, n, l) → (b, d, n, l)."""
    decay = log_decay.exp()
    h = torch.zeros_like(drive[..., 0])
    states = []
    for t in range(drive.shape[-1]):
        h = decay[..., t] * h + drive[..., t]
        states.append(h)
    return torch.stack(states, dim=-1)


def _state_bytes(u: torch.Tensor, A: torch.Tensor) -> int:
    """Bytes of one (b, d, n, l) tensor of the scan in its compute dtype (float32, or float64 for float64 u)."""
    batch, channels, length = u.shape
    return batch * channels * A.shape[1] * length * torch.promote_types(u.dtype, torch.float32).itemsize


def _pytorch_scan(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state, chunked):
    arguments = (u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state, chunked)
    if torch.is_grad_enabled() and _state_bytes(u, A) > RECOMPUTE_ABOVE_BYTES:
        return torch.utils.checkpoint.checkpoint(_pytorch_scan_kept, *arguments, use_reentrant=False)
    return _pytorch_scan_kept(*arguments)


def _pytorch_scan_kept(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state, chunked):
    """The PyTorch scan with every intermediate kept for autograd."""
    compute_dtype = torch.promote_types(u.dtype, torch.float32)
    u32, log_decay, drive = _discretize(u, delta, A, B, delta_bias, delta_softplus, compute_dtype)
    h = linear_recurrence(log_decay, drive) if chunked else _reference_states(log_decay, drive)
    y = _read_out(h, u32, C, D, z, compute_dtype).to(u.dtype)
    return (y, h[..., -1]) if return_last_state else y


def selective_scan(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = False,
    return_last_state: bool = False,
    backend: str = "auto",
):
    """Selective scan with mamba-ssm's ``selective_scan_fn`` semantics (see the module docstring).

    Returns y (b, d, l), or (y, last_state) with last_state (b, d, n) when ``return_last_state``.
    """
    _check_shapes(u, delta, A, B, C, D, z, delta_bias)
    resolved = resolve_backend(backend, u)
    if resolved == "cuda":
        scan_fn = _mamba_ssm_selective_scan()
        return scan_fn(
            u.contiguous(),
            delta.contiguous(),
            A.contiguous(),
            B.contiguous(),
            C.contiguous(),
            None if D is None else D.contiguous(),
            None if z is None else z.contiguous(),
            None if delta_bias is None else delta_bias.contiguous(),
            delta_softplus,
            return_last_state,
        )
    return _pytorch_scan(
        u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state, chunked=(resolved == "chunked")
    )

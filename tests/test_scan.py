"""Equivalence of the selective-scan backends: reference == chunked (== cuda on a GPU)."""

import pytest
import torch
from conftest import relative_error

import mh.scan as scan_module
from mh.scan import cuda_scan_available, resolve_backend, selective_scan
from mh.scan_chunked import linear_recurrence


def scan_inputs(b, d, length, n, groups=None, dtype=torch.float32, device="cpu", with_z=True, with_bias=True):
    """Random inputs in the ranges Mamba trains in: A < 0, Δ around softplus(0)."""
    shape_bc = (b, n, length) if groups is None else (b, groups, n, length)
    return dict(
        u=torch.randn(b, d, length, dtype=dtype, device=device),
        delta=0.5 * torch.randn(b, d, length, dtype=dtype, device=device),
        A=-(0.1 + n * torch.rand(d, n, dtype=dtype, device=device)),
        B=torch.randn(*shape_bc, dtype=dtype, device=device),
        C=torch.randn(*shape_bc, dtype=dtype, device=device),
        D=torch.randn(d, dtype=dtype, device=device),
        z=torch.randn(b, d, length, dtype=dtype, device=device) if with_z else None,
        delta_bias=0.3 * torch.randn(d, dtype=dtype, device=device) if with_bias else None,
    )


def run(inputs, backend, softplus=True):
    leaves = {k: v.clone().requires_grad_() for k, v in inputs.items() if v is not None}
    y, last = selective_scan(**leaves, delta_softplus=softplus, return_last_state=True, backend=backend)
    grads = torch.autograd.grad((y * torch.cos(y.detach())).sum() + last.sum(), list(leaves.values()))
    return y, last, dict(zip(leaves, grads, strict=True))


CASES = [
    dict(b=2, d=4, length=64, n=1),
    dict(b=2, d=6, length=100, n=16),
    dict(b=1, d=8, length=77, n=4, groups=2),  # grouped B/C
    dict(b=2, d=4, length=50, n=1, with_z=False, with_bias=False),
    dict(b=1, d=3, length=3136, n=1),  # a stage-1 sequence at 224×224
    dict(b=1, d=2, length=3136, n=16, groups=1),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(f"{k}{v}" for k, v in c.items()))
def test_chunked_equals_reference_fp32(case):
    """Outputs, last states and the gradients of all eight inputs agree within rel 1e-5 in fp32.

    (Against float64, both backends' per-channel gradients — sums of b·l·n terms of both signs — are off by
    up to ~1e-5 at l = 3136, n = 16: fp32 rounding, amplified by cancellation. The backends still agree
    with each other to a few 1e-6 because the chunked backward uses the reference's gradient formulas.)
    """
    inputs = scan_inputs(**case)
    y_ref, last_ref, grads_ref = run(inputs, "reference")
    y, last, grads = run(inputs, "chunked")
    assert y.dtype == torch.float32 and y.shape == inputs["u"].shape
    assert last.shape == (case["b"], case["d"], case["n"])
    assert relative_error(y, y_ref) <= 1e-5
    assert relative_error(last, last_ref) <= 1e-5
    for name in grads_ref:
        assert relative_error(grads[name], grads_ref[name]) <= 1e-5, name


def test_chunked_equals_reference_float64_tightly():
    inputs = scan_inputs(2, 4, 300, 8, groups=2, dtype=torch.float64)
    y_ref, last_ref, grads_ref = run(inputs, "reference")
    y, last, grads = run(inputs, "chunked")
    assert y.dtype == torch.float64
    assert relative_error(y, y_ref) <= 1e-12 and relative_error(last, last_ref) <= 1e-12
    for name in grads_ref:
        assert relative_error(grads[name], grads_ref[name]) <= 1e-11, name


def test_reference_follows_the_written_recurrence():
    """The reference backend against the formulas of the module docstring, step by step, in float64."""
    b, d, length, n = 1, 2, 5, 3
    x = scan_inputs(b, d, length, n, dtype=torch.float64)
    delta = torch.nn.functional.softplus(x["delta"] + x["delta_bias"][:, None])
    h = torch.zeros(b, d, n, dtype=torch.float64)
    expected = []
    for t in range(length):
        h = (
            torch.exp(delta[:, :, t, None] * x["A"]) * h
            + (delta[:, :, t] * x["u"][:, :, t])[..., None] * x["B"][:, None, :, t]
        )
        y = (h * x["C"][:, None, :, t]).sum(-1) + x["D"] * x["u"][:, :, t]
        expected.append(y * torch.nn.functional.silu(x["z"][:, :, t]))
    y = selective_scan(**x, delta_softplus=True, backend="reference")
    torch.testing.assert_close(y, torch.stack(expected, -1), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("chunk", [2, 8, 32])
@pytest.mark.parametrize("length", [1, 2, 7, 8, 9, 63, 64, 65, 513, 4000])
def test_linear_recurrence_matches_loop_at_chunk_boundaries(length, chunk):
    log_decay = -torch.rand(3, length, dtype=torch.float64) * 2
    drive = torch.randn(3, length, dtype=torch.float64)
    h, expected = torch.zeros(3, dtype=torch.float64), []
    for t in range(length):
        h = log_decay[:, t].exp() * h + drive[:, t]
        expected.append(h)
    torch.testing.assert_close(linear_recurrence(log_decay, drive, chunk=chunk), torch.stack(expected, -1))


def test_no_overflow_with_strong_decay_over_long_sequences():
    """Σ log a reaches −1e5 over the sequence: exp(−Σ log a) shortcuts overflow, chunking does not."""
    log_decay = torch.full((1, 5000), -20.0)
    drive = torch.ones(1, 5000)
    h = linear_recurrence(log_decay, drive)
    assert torch.isfinite(h).all()
    torch.testing.assert_close(h[0, -1], torch.tensor(1.0 / (1.0 - torch.exp(torch.tensor(-20.0)).item())))


def test_bad_shapes_and_backends_say_what_is_wrong():
    x = scan_inputs(2, 4, 10, 2)
    with pytest.raises(ValueError, match=r"A must be \(d=4, n\)"):
        selective_scan(**{**x, "A": torch.zeros(3, 2)})
    with pytest.raises(ValueError, match="B must be"):
        selective_scan(**{**x, "B": torch.zeros(2, 3, 10)})
    with pytest.raises(ValueError, match="unknown scan backend"):
        selective_scan(**x, backend="fast")
    with pytest.raises(ValueError, match="needs CUDA tensors"):
        selective_scan(**x, backend="cuda")


def test_auto_backend_on_cpu_is_chunked():
    assert resolve_backend("auto", torch.zeros(1)) == "chunked"


@pytest.mark.gpu
@pytest.mark.skipif(not cuda_scan_available(), reason="needs a CUDA GPU and mamba-ssm")
@pytest.mark.parametrize("dtype,rtol,atol", [(torch.float32, 6e-4, 2e-3), (torch.bfloat16, 3e-2, 5e-2)])
def test_cuda_equals_reference(dtype, rtol, atol):
    """Tolerances of mamba-ssm's own tests/ops/test_selective_scan.py."""
    inputs = scan_inputs(2, 16, 784, 1, groups=1, device="cuda")
    inputs = {k: (v.to(dtype) if k in ("u", "delta", "B", "C", "z") else v) for k, v in inputs.items()}
    y_ref, last_ref, grads_ref = run(inputs, "reference")
    y, last, grads = run(inputs, "cuda")
    torch.testing.assert_close(y.float(), y_ref.float(), rtol=rtol, atol=atol)
    torch.testing.assert_close(last.float(), last_ref.float(), rtol=rtol, atol=atol)
    for name in grads_ref:
        torch.testing.assert_close(grads[name].float(), grads_ref[name].float(), rtol=rtol * 2, atol=atol * 2)


def test_adjoint_backward_passes_gradcheck():
    log_decay = (-torch.rand(2, 19, dtype=torch.float64)).requires_grad_()
    drive = torch.randn(2, 19, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, x: linear_recurrence(a, x, chunk=4), (log_decay, drive))


def test_the_scan_backend_variable_chooses_what_auto_means(monkeypatch):
    from mh.scan import BACKEND_VARIABLE, resolve_backend

    u = torch.zeros(1, 2, 3)
    monkeypatch.setenv(BACKEND_VARIABLE, "reference")
    assert resolve_backend("auto", u) == "reference"
    assert resolve_backend("chunked", u) == "chunked"  # an explicit choice wins
    monkeypatch.setenv(BACKEND_VARIABLE, "fastest")
    with pytest.raises(ValueError, match="MH_SCAN_BACKEND"):
        resolve_backend("auto", u)


@pytest.mark.parametrize("backend", ["reference", "chunked"])
def test_recomputing_the_states_in_backward_gives_the_same_gradients(monkeypatch, backend):
    """Above RECOMPUTE_ABOVE_BYTES the (b, d, n, l) tensors are recomputed in the backward pass (as mamba-ssm's
    kernel does) instead of kept: far fewer bytes are saved for backward, and the outputs and every gradient are
    the same, bit for bit."""
    generator = torch.Generator().manual_seed(3)
    b, d, n, length = 2, 6, 4, 17
    leaves = {
        "u": torch.randn(b, d, length, generator=generator),
        "delta": torch.randn(b, d, length, generator=generator),
        "A": -torch.rand(d, n, generator=generator) - 0.1,
        "B": torch.randn(b, n, length, generator=generator),
        "C": torch.randn(b, n, length, generator=generator),
        "D": torch.randn(d, generator=generator),
        "delta_bias": torch.randn(d, generator=generator),
    }

    def run(limit):
        monkeypatch.setattr(scan_module, "RECOMPUTE_ABOVE_BYTES", limit)
        inputs = {name: value.clone().requires_grad_() for name, value in leaves.items()}
        saved_bytes = []

        def keep(tensor):
            saved_bytes.append(tensor.numel() * tensor.element_size())
            return tensor

        with torch.autograd.graph.saved_tensors_hooks(keep, lambda tensor: tensor):
            y = selective_scan(**inputs, delta_softplus=True, backend=backend)
        y.square().sum().backward()
        return y.detach(), {name: value.grad for name, value in inputs.items()}, sum(saved_bytes)

    kept_y, kept_grads, kept_bytes = run(limit=2**40)
    recomputed_y, recomputed_grads, recomputed_bytes = run(limit=0)
    state_bytes = b * d * n * length * 4
    assert kept_bytes > 3 * state_bytes > recomputed_bytes
    assert torch.equal(kept_y, recomputed_y)
    for name in leaves:
        assert torch.equal(kept_grads[name], recomputed_grads[name]), name

"""Parameters and FLOPs (Table 4) with fvcore, and analytic counts that check them.

Convention: fvcore counts one multiply-add as one FLOP — the same unit as ptflops' "GMac", which the paper
(and the released code, ``ptflops.get_model_complexity_info``) reports as "GFLOPs". Differences between the
two counters, all small except one:

* fvcore skips element-wise ops (activations, residual adds, pooling maxima); ptflops counts some of them
  (ReLU, BatchNorm-as-ops, pooling). Every op fvcore leaves out is listed by ``params_and_flops`` with the
  reason it is negligible (``NEGLIGIBLE_OPS``); an op without a reason is reported as unexplained.
* ptflops ≥ 0.7.2 patches ``torch.matmul`` but not the ``@`` operator, so it misses the attention products
  of HybridHash (about 1.06 G); ``hybridhash_ptflops_convention`` removes them from fvcore's count.
* Neither counter sees the selective scan (a custom op). We register one handle for it — for our
  PyTorch scan (wrapped as a single op while counting) and for mamba-ssm's CUDA op alike — with VMamba's
  formula: 9·B·L·D·N for discretisation, recurrence and read-out, plus B·D·L for the D skip term (plus
  B·D·L more when z-gating happens inside the op, which MambaHash never asks for). At N = 1 the whole
  scan is ~0.02 G of MambaHash's 7.5 G.
"""

from __future__ import annotations

import contextlib
import math
import warnings

import torch
from torch import nn

# fvcore's focal_loss module scripts a function with torch.jit.script when fvcore.nn is imported; torch ≥ 2.10
# warns that torch.jit.script is deprecated. The warning is about fvcore's code, not ours, and would otherwise
# print into every notebook that counts FLOPs.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning)
    from fvcore.nn import FlopCountAnalysis
    from fvcore.nn.jit_handles import get_shape

from mh.model import STAGE_DEPTHS, STAGE_DIMS
from mh.registry import COMPARISON_BACKBONES, build_hashing_model
from mh.scan import selective_scan

SCAN_OP_NAMES = ("prim::PythonOp.SelectiveScanOp", "prim::PythonOp.SelectiveScanFn")

NEGLIGIBLE_OPS = {
    "aten::add": "residual and branch sums: one add per element, < 0.5 % of the total",
    "aten::add_": "in-place adds: one per element",
    "aten::mul": "element-wise gating and scaling: one per element",
    "aten::mul_": "element-wise scaling: one per element",
    "aten::div": "element-wise division (attention scale, means): one per element",
    "aten::sub": "element-wise: one per element",
    "aten::rsub": "element-wise: one per element",
    "aten::neg": "element-wise sign flip of A = −exp(A_log): D·N values",
    "aten::exp": "A = −exp(A_log) on the parameters: D·N values per block",
    "aten::silu": "activation: one per element",
    "aten::silu_": "activation: one per element",
    "aten::sigmoid": "CIAM gate: one per channel",
    "aten::softplus": "Δ softplus inside the scan wrapper's inputs: one per element",
    "aten::relu": "activation: one per element",
    "aten::relu_": "activation: one per element",
    "aten::gelu": "activation: one per element",
    "aten::tanh": "hash activation on K outputs",
    "aten::softmax": "attention normalisation: a few ops per score, scores are < 1 % of the matmuls",
    "aten::max_pool2d": "max-pooling: comparisons, no multiply-adds",
    "aten::avg_pool2d": "average pooling: one add per input element",
    "aten::mean": "global average pooling: one add per element of the last map",
    "aten::flip": "data movement (reversed scan orders), no arithmetic",
    "aten::pow": "element-wise",
    "aten::sum": "reductions: one add per element",
    "aten::scaled_dot_product_attention": "counted by this module's SDPA handle",
    "prim::PythonOp._LinearRecurrence": "traced inside SelectiveScanOp: already counted by the scan handle",
    "aten::broadcast_tensors": "traced inside SelectiveScanOp: shape bookkeeping, no arithmetic",
    "aten::unflatten": "reshape, no arithmetic",
    "aten::movedim": "head-minor attention layout (HybridHash): data movement, no arithmetic",
    "aten::pad": "MpVH's prompt padded with a zero row for the class token: data movement, no arithmetic",
    "aten::ge": "MpVH's gate threshold ŝ ≥ ε: one comparison per gate",
}


class SelectiveScanOp(torch.autograd.Function):
    """The PyTorch selective scan as one traced op (``prim::PythonOp.SelectiveScanOp``), for counting only.

    With ``compute=False`` it returns zeros of the output's shape: counting needs shapes, not values, and
    MpVH's full-size scans (4 × 768 channels, N = 16, every layer) take seconds per image on a CPU."""

    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, delta_bias, compute=True):
        if not compute:
            return torch.zeros_like(u)
        return selective_scan(u, delta, A, B, C, D=D, delta_bias=delta_bias, delta_softplus=True, backend="chunked")


def scan_as_one_op(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False, compute=True):
    """A scan backend (``set_scan_backend``) that fvcore traces as the single op ``SelectiveScanOp``."""
    if z is not None or not delta_softplus:
        raise ValueError("the counting wrapper covers the models' call (no z, softplus on Δ)")
    return SelectiveScanOp.apply(u, delta, A, B, C, D, delta_bias, compute)


def _shapes_only_scan(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False):
    return scan_as_one_op(u, delta, A, B, C, D, z, delta_bias, delta_softplus, compute=False)


@contextlib.contextmanager
def scan_counted_as_one_op(model: nn.Module, compute: bool = True):
    """While active, ``model``'s scans (MambaHash, MpVH: ``set_scan_backend``) run through ``scan_as_one_op``
    (``compute=False``: zeros of the right shape); their own backend comes back after."""
    original = model.scan_backend
    model.set_scan_backend(scan_as_one_op if compute else _shapes_only_scan)
    try:
        yield
    finally:
        model.set_scan_backend(original)


def scan_flops(batch: int, length: int, channels: int, state: int, with_d: bool = True, with_z: bool = False) -> int:
    """VMamba's count for one selective scan: 9·B·L·D·N (+ B·D·L for D) (+ B·D·L for z)."""
    return 9 * batch * length * channels * state + (batch * channels * length) * (int(with_d) + int(with_z))


def _scan_handle(inputs, outputs) -> int:
    batch, channels, length = get_shape(inputs[0])
    state = get_shape(inputs[2])[1]
    return scan_flops(batch, length, channels, state)


def _sdpa_handle(inputs, outputs) -> int:
    """Q·Kᵀ and weights·V of ``scaled_dot_product_attention``: 2·B·H·L·S·d multiply-adds."""
    query, key = get_shape(inputs[0]), get_shape(inputs[1])
    *batch_heads, length, depth = query
    return 2 * math.prod(batch_heads) * length * key[-2] * depth


def flop_analysis(model: nn.Module, image_size: int = 224) -> FlopCountAnalysis:
    """fvcore analysis of ``model`` on one (1, 3, S, S) image, with the scan and SDPA handles registered."""
    model = model.eval()
    analysis = FlopCountAnalysis(model, torch.zeros(1, 3, image_size, image_size))
    for name in SCAN_OP_NAMES:
        analysis.set_op_handle(name, _scan_handle)
    analysis.set_op_handle("aten::scaled_dot_product_attention", _sdpa_handle)
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
    return analysis


def counted_analysis(model: nn.Module, image_size: int = 224, compute_scan: bool = True) -> FlopCountAnalysis:
    """``flop_analysis`` already traced (the scans of MambaHash and MpVH as one op each): query it as often as
    needed. ``compute_scan=False`` traces with zeros in place of scan outputs (same counts, much faster)."""
    analysis = flop_analysis(model, image_size)
    scans = hasattr(model, "set_scan_backend")
    context = scan_counted_as_one_op(model, compute_scan) if scans else contextlib.nullcontext()
    with context, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        analysis.total()  # runs the trace once; later queries reuse it
    return analysis


def unexplained_ops(analysis: FlopCountAnalysis) -> dict[str, int]:
    """Ops fvcore skipped that ``NEGLIGIBLE_OPS`` gives no reason for (should be empty)."""
    return {op: count for op, count in analysis.unsupported_ops().items() if op not in NEGLIGIBLE_OPS}


def params_and_flops(model: nn.Module, image_size: int = 224) -> tuple[int, int]:
    """(parameters, fvcore FLOPs = multiply-adds) for one image of ``image_size``²."""
    params = sum(p.numel() for p in model.parameters())
    return params, int(counted_analysis(model, image_size).total())


def hybridhash_ptflops_convention(model: nn.Module, image_size: int = 224) -> int:
    """HybridHash FLOPs without the ``@`` attention products (aten::matmul), as ptflops ≥ 0.7.2 counts."""
    analysis = counted_analysis(model, image_size)
    return int(analysis.total() - analysis.by_operator().get("matmul", 0))


def mambahash_breakdown(analysis: FlopCountAnalysis) -> dict[str, int]:
    """FLOPs of MambaHash by component, from ``counted_analysis(mambahash)``: stem, stages 1–4 (CIAM and
    scan shown separately), AFEM, head."""
    by_module = analysis.by_module()
    ciam = sum(count for name, count in by_module.items() if name.endswith(".attn.ciam"))
    breakdown = {"stem": by_module.get("stages.0.patch_embed", 0)}
    for stage in range(1, 5):
        breakdown[f"stage{stage}"] = by_module.get(f"stages.{stage - 1}", 0) - (breakdown["stem"] if stage == 1 else 0)
    breakdown["of which CIAM"] = ciam
    by_operator = analysis.by_operator()  # keys without the "prim::" prefix
    breakdown["of which selective scan"] = sum(by_operator.get(name.split("::")[1], 0) for name in SCAN_OP_NAMES)
    breakdown["afem"] = by_module.get("afem", 0)
    breakdown["head"] = by_module.get("hash", 0)
    breakdown["total"] = analysis.total()
    return breakdown


def mambahash_scan_flops_analytic(image_size: int = 224, state: int = 1) -> int:
    """All selective scans of MambaHash, by hand: per stage s, depth × 4 groups × scan(L = (S/2^(s+1))², D = C_s/4)."""
    total = 0
    for stage, (dim, depth) in enumerate(zip(STAGE_DIMS, STAGE_DEPTHS, strict=True), start=1):
        side = image_size // 2 ** (stage + 1)
        total += depth * 4 * scan_flops(1, side * side, dim // 4, state)
    return total


def afem_flops_analytic(dim: int, ratio: int, groups: int, side: int) -> int:
    """AFEM (Eq. 12–14) multiply-adds on a side×side map: expand, 1×1/3×3/5×5 grouped branches, reduce."""
    wide, pixels = dim * ratio, side * side
    branches = sum(pixels * wide * (wide // groups) * k * k for k in (1, 3, 5))
    return pixels * dim * wide + branches + pixels * wide * dim


def table4(bits: int = 48, image_size: int = 224) -> dict[str, tuple[int, int]]:
    """{backbone: (parameters, fvcore FLOPs)} for Table 4's four networks at ``bits``."""
    rows = {}
    for name in COMPARISON_BACKBONES:
        torch.manual_seed(0)
        rows[name] = params_and_flops(build_hashing_model(name, bits, image_size=image_size), image_size)
    return rows

"""The fast path: one switch (``Profile.fast_path``, ``--fast-path``) for training and encoding.

    plan = fast_plan("compiled", device)                  # what is on, on this device
    optimizer = FlatOptimizer(optimizer, compile_update=True)   # when plan.flat_optimizer
    forward = Compiled(model, "network")                  # when plan.compile

Three positions, each a superset of the one before:

``off``       the reference: PIL decodes and augments every image every epoch (a DataLoader), the stock
              optimizer, fp32 everywhere. ``benchmarks/bench_train.py`` calls it "eager".
``fused``     what costs seconds of warm-up, not minutes: images decoded once into a uint8 cache and augmented
              in batches on the device (``mh.tensordata``); the optimizer's update over one flat tensor per
              parameter group, compiled into one fused kernel (``FlatOptimizer``: a small graph, compiled in
              seconds); bf16 autocast and channels-last where ``MEASURED_GAINS`` says they pay on the device.
``compiled``  ``fused`` and the network under ``torch.compile`` (``Compiled``): faster steps after a first
              step that compiles the network — minutes on a 2-core CPU, so it pays for long runs only.

Measured by ``benchmarks/bench_train.py`` (results/bench/). The flat update is bit-identical to the stock one;
torch.compile changes rounding only (fp32), so losses stay within a stated tolerance and codes agree on ≥ 99 %
of bits (``tests/test_fastpath.py``).
"""

from __future__ import annotations

import os
import traceback
from dataclasses import dataclass

import torch
from torch import nn

FAST_PATHS = ("off", "fused", "compiled")
# torch.compile's backend: inductor generates kernels; ``make rehearse`` sets "eager" (TorchDynamo traces every
# network, so graph breaks and untraceable code show up, without the minutes of code generation on a CPU)
COMPILE_BACKEND_VARIABLE = "MH_COMPILE_BACKEND"

# Where a part was measured faster (benchmarks/bench_train.py). CPU (2-core AMD EPYC, smoke network, 32 px):
# bf16 autocast 0.96× (the Xeon measurement; AMX-less CPUs are slower still), so fp32; channels-last
# measured slower there. CUDA: bf16 autocast is the mixed precision of every Mamba training recipe; channels-
# last is untested on a GPU yet, so off until benchmarks/device_session.sh measures it.
MEASURED_GAINS = {
    "cpu": {"bf16": False, "channels_last": False},
    "cuda": {"bf16": True, "channels_last": False},
}


@dataclass(frozen=True)
class FastPlan:
    """Which parts of the fast path a run uses on its device."""

    name: str
    tensor_data: bool = False
    flat_optimizer: bool = False
    bf16: bool = False
    channels_last: bool = False
    compile: bool = False

    def run(self, function, images: torch.Tensor, device) -> torch.Tensor:
        """``function(images)`` as the plan runs a network: channels-last images and bf16 autocast where they pay
        (the training step and encoding both call this). (B, 3, H, W) → the function's output."""
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with autocast(device, self.bf16):
            return function(images)

    def describe(self) -> str:
        parts = [label for label, on in self._parts() if on]
        return f"fast path {self.name}: " + (
            ", ".join(parts) if parts else "reference (PIL loader, stock optimizer, fp32)"
        )

    def _parts(self):
        return (
            ("uint8 image cache + batched augmentation", self.tensor_data),
            ("fused flat optimizer update", self.flat_optimizer),
            ("bf16 autocast", self.bf16),
            ("channels-last", self.channels_last),
            ("torch.compile", self.compile),
        )


def fast_plan(name: str, device: torch.device) -> FastPlan:
    """The parts of fast path ``name`` (``FAST_PATHS``) that pay on ``device`` (``MEASURED_GAINS``)."""
    if name not in FAST_PATHS:
        raise ValueError(f"unknown fast path {name!r}; expected one of {', '.join(FAST_PATHS)}")
    if name == "off":
        return FastPlan(name)
    gains = MEASURED_GAINS.get(torch.device(device).type, MEASURED_GAINS["cpu"])
    return FastPlan(name, True, True, gains["bf16"], gains["channels_last"], name == "compiled")


def autocast(device: torch.device, bf16: bool):
    """bf16 autocast when the plan says it pays on ``device``, else full precision."""
    device = torch.device(device)
    if bf16:
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return torch.autocast(device.type if device.type in ("cpu", "cuda") else "cpu", enabled=False)


class FlatOptimizer:
    """A stock optimizer run on one flat tensor per parameter group.

    Every parameter of a group becomes a view into one contiguous tensor, and its gradient a view into one
    contiguous gradient (autograd accumulates into an existing gradient in place). The stock optimizer —
    same class, same settings — then updates that one tensor: element-wise the same arithmetic as per
    parameter (RMSprop, Adam, SGD: bit-identical results), in a handful of large operations instead of ~10
    small ones per parameter tensor, which is what costs on a CPU (PyTorch's ``foreach`` variant measured slower
    there). ``compile_update`` fuses the update into one kernel (``Compiled``: one tensor per group makes its
    graph small, compiled in seconds; measured 15 → 2 ms a step for the smoke network on a 2-core CPU).
    Gradients are zeroed, never set to None, so that the views stay in place.

    Build it before the first step and after the model is on its device (moving it breaks the views).
    ``state_dict`` is the flat optimizer's: a checkpoint resumes under the same fast path only (the run's
    resume check refuses a changed ``fast_path``).
    """

    def __init__(self, optimizer: torch.optim.Optimizer, compile_update: bool = False):
        if optimizer.state:
            raise ValueError("FlatOptimizer must wrap an optimizer that has not taken a step yet")
        flat_groups, self._gradients = [], []
        for group in optimizer.param_groups:
            flat, gradient = _flatten([p for p in group["params"] if p.requires_grad])
            options = {k: v for k, v in group.items() if k != "params"}
            if compile_update:  # a tensor rate changes in place: a warm-up does not recompile the update
                options["lr"] = torch.tensor(float(options["lr"]))
            flat_groups.append({**options, "params": [flat]})
            self._gradients.append(gradient)
        self.inner = type(optimizer)(flat_groups, **optimizer.defaults)
        self._step = Compiled(self.inner.step, "optimizer update") if compile_update else self.inner.step

    @property
    def param_groups(self) -> list[dict]:
        return self.inner.param_groups

    def step(self) -> None:
        self._step()

    def zero_grad(self, set_to_none: bool = True) -> None:
        for gradient in self._gradients:
            gradient.zero_()

    def state_dict(self) -> dict:
        return self.inner.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.inner.load_state_dict(state)


def set_learning_rates(optimizer, rates: list[float]) -> None:
    """Each parameter group's rate, in place when it is a tensor (a compiled update then keeps its graph)."""
    for group, rate in zip(optimizer.param_groups, rates, strict=True):
        if isinstance(group["lr"], torch.Tensor):
            group["lr"].fill_(rate)
        else:
            group["lr"] = rate


def _flatten(parameters: list[nn.Parameter]) -> tuple[nn.Parameter, torch.Tensor]:
    """One flat parameter whose slices the given parameters' data and gradients become."""
    flat = nn.Parameter(torch.cat([p.detach().reshape(-1) for p in parameters]))
    flat.grad = torch.zeros_like(flat)
    offset = 0
    for parameter in parameters:
        count = parameter.numel()
        parameter.data = flat.data[offset : offset + count].view_as(parameter)
        parameter.grad = flat.grad[offset : offset + count].view_as(parameter)
        offset += count
    return flat, flat.grad


class Compiled:
    """``function`` (a module or a method) under ``torch.compile`` (shapes specialised: a last smaller batch
    compiles once more), falling back to the eager ``function``, with one printed reason, when compiling fails
    (no C compiler, an unsupported operation). A module stays itself: its state dict, ``train()``/``eval()``
    and hooks are unchanged."""

    def __init__(self, function, label: str):
        self.function, self.label = function, label
        _allow_recompiles()
        backend = os.environ.get(COMPILE_BACKEND_VARIABLE, "inductor")
        self.compiled = torch.compile(function, dynamic=False, backend=backend)
        self.fallback_reason: str | None = None

    def __call__(self, *inputs):
        if self.fallback_reason is None:
            try:
                return self.compiled(*inputs)
            except Exception as error:  # noqa: BLE001 — any compile failure falls back, with its reason printed
                last_line = traceback.format_exception_only(type(error), error)[-1].strip()
                self.fallback_reason = last_line[:300]
                print(f"[fast path] {self.label}: torch.compile failed ({self.fallback_reason}); eager from here on")
        return self.function(*inputs)


def _allow_recompiles(limit: int = 256) -> None:
    """Raise TorchDynamo's per-function graph limit (8 by default): every optimizer instance and every batch
    shape compiles a graph of the same code, and a notebook trains dozens of networks in one process; past the
    limit the function would silently run eager, and a resumed run could differ from an uninterrupted one."""
    config = torch._dynamo.config
    name = "recompile_limit" if hasattr(config, "recompile_limit") else "cache_size_limit"
    setattr(config, name, max(getattr(config, name), limit))
    if hasattr(config, "accumulated_recompile_limit"):
        config.accumulated_recompile_limit = max(config.accumulated_recompile_limit, 4 * limit)

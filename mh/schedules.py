"""Learning-rate schedules: the rate's multiplier at each optimisation step (a profile's ``schedule`` knob).

The paper (§4.1) and its released code train at a constant rate; ``cosine`` is the usual from-scratch choice
and is chosen for a profile only on a validation split (``mh.repro.tuning``).
"""

from __future__ import annotations

import math

RATE_SCHEDULES = ("constant", "cosine")


def rate_factor(step: int, total_steps: int, warmup_steps: int = 0, schedule: str = "constant") -> float:
    """The rate's multiplier at optimisation step ``step`` (from 0) of ``total_steps``: linear from
    1/warmup_steps to 1 over the first ``warmup_steps`` steps, then 1 (``constant``) or half a cosine from 1
    down to 0 at the last step (``cosine``: SGDR without restarts, Loshchilov & Hutter 2017)."""
    if schedule not in RATE_SCHEDULES:
        raise ValueError(f"unknown rate schedule {schedule!r}; expected one of {', '.join(RATE_SCHEDULES)}")
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

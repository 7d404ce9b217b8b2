"""The argument rules every public entry point shares: one message per rule, naming the argument, the value and
the fix, whichever path (``mh.codes``, ``mh.search``, ``mh.metrics``, the models, the registry) a value takes.
"""

from __future__ import annotations

import numpy as np


def _is_integer(value) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def positive_int(value, name: str, fix: str = "") -> int:
    """``value`` as an int when it is an integer ≥ 1; ValueError naming ``name`` otherwise."""
    if not _is_integer(value) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}" + (f" ({fix})" if fix else ""))
    return int(value)


def int_in_range(value, name: str, low: int, high: int, fix: str = "") -> int:
    """``value`` as an int when it is an integer in ``low..high``; ValueError naming ``name`` otherwise."""
    if not _is_integer(value) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer in {low}..{high}; got {value!r}" + (f" ({fix})" if fix else ""))
    return int(value)


def seed(value, name: str = "seed") -> int:
    """``value`` as an int when it is a seed numpy's random generators take (0..2³²−1); ValueError otherwise."""
    return int_in_range(value, name, 0, 2**32 - 1, "numpy's random generators take seeds in that range")


def fraction(value, name: str, low: float = 0.0, high: float = 1.0) -> float:
    """``value`` as a float when it is a number in [low, high]; ValueError naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.number) or not low <= value <= high:
        raise ValueError(f"{name} must be a number in [{low:g}, {high:g}]; got {value!r}")
    return float(value)


def one_of(value, name: str, choices) -> str:
    """``value`` when it is one of ``choices``; ValueError listing them otherwise."""
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; expected one of {', '.join(map(str, choices))}")
    return value

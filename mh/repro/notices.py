"""Log lines that say nothing a reader can act on, kept out of the executed notebooks.

``torch.compile`` (the fast path's compiled optimizer update and networks, ``mh.fastpath``) logs two notices on
every CPU machine; they would land in every notebook that trains. ``quiet_known_compile_notices`` filters
exactly those messages on their own loggers — other messages of the same loggers still show — and
``mh.repro.workspace.open_workspace`` calls it, so the filter belongs to the notebooks, not to training (a
command-line run shows every log line).
"""

from __future__ import annotations

import logging

# (logger, start of the message, why it is harmless)
KNOWN_COMPILE_NOTICES = (
    (
        "torch._dynamo.variables.ctx_manager",
        "Profiler record function",
        "the optimizer's step is wrapped in a profiler label, which compiled code drops; nothing is profiled here",
    ),
    (
        "torch.utils.cpp_extension",
        "No CUDA runtime is found",
        "inductor looks for CUDA headers on every machine; on a CPU it compiles C++ without them",
    ),
)


def _dropping(logger_name: str, start: str):
    def keep(record) -> bool:
        return not (record.name == logger_name and record.getMessage().startswith(start))

    keep.known_notice = (logger_name, start)
    return keep


def quiet_known_compile_notices() -> None:
    """Filter exactly the ``KNOWN_COMPILE_NOTICES`` out of their loggers (once per process)."""
    for logger_name, start, _why in KNOWN_COMPILE_NOTICES:
        logger = logging.getLogger(logger_name)
        if not any(getattr(existing, "known_notice", None) == (logger_name, start) for existing in logger.filters):
            logger.addFilter(_dropping(logger_name, start))

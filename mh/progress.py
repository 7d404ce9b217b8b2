"""Progress bars for the long loops: tqdm.auto (a widget in JupyterLab, text in a terminal), switched off by the
caller (``enabled=False``) or for a whole process by ``$TQDM_DISABLE``, which batch runs set (``make reproduce``,
``make rehearse``), so that executed notebooks hold no frozen bars. tqdm reads that variable only as the default
of ``disable``, which any explicit ``disable=`` overrides: hence this one place that honours both."""

from __future__ import annotations

import os
from collections.abc import Iterable

from tqdm.auto import tqdm

SWITCH_VARIABLE = "TQDM_DISABLE"


def switched_off_for_this_process() -> bool:
    """Whether ``$TQDM_DISABLE`` is set to a true value (anything but empty, 0 or false)."""
    return os.environ.get(SWITCH_VARIABLE, "").strip().lower() not in ("", "0", "false")


def progress_bar(iterable: Iterable, description: str, enabled: bool = True, **options) -> tqdm:
    """``iterable`` behind a progress bar labelled ``description``; ``options`` go to tqdm (``leave``, ``total``)."""
    return tqdm(iterable, desc=description, disable=not enabled or switched_off_for_this_process(), **options)

"""One ``make reproduce`` at a time on a checkout: a lock on ``results/cache/reproduce.lock``.

The lock is an ``fcntl.flock`` on that file, which holds the process id of the run that took it. A second run
refuses at once, naming that process. The kernel releases an ``flock`` when its process ends however it ends,
``kill -9`` included, so a lock left by a killed run is simply free: the next run takes it over and says whose
it was. Nothing depends on a process id being reused or not.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

LOCK_FILE = Path("results") / "cache" / "reproduce.lock"


class CheckoutBusy(ValueError):
    """Another reproduce holds this checkout; the message names its process."""


@contextlib.contextmanager
def checkout_lock(root: Path) -> Iterator[Path]:
    """Hold the reproduce lock of the checkout at ``root`` for the block; CheckoutBusy when another run has it."""
    path = Path(root) / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise CheckoutBusy(
                f"another make reproduce (process {holder}) is running on this checkout ({path}); wait for it to "
                f"finish, or stop it (kill {holder}) and run again"
            ) from None
        handle.seek(0)
        previous = handle.read().strip()
        if previous:
            print(f"[reproduce] the lock of process {previous} was left by a run that ended early; taking it over")
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield path
        finally:
            handle.seek(0)
            handle.truncate()
            handle.flush()
            fcntl.flock(handle, fcntl.LOCK_UN)

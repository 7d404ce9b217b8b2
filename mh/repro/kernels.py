"""The kernel the notebooks run in under ``make reproduce`` and ``make rehearse`` (imported only when papermill is)."""

from __future__ import annotations

from jupyter_client import AsyncKernelManager
from traitlets import CaselessStrEnum


class LocalSocketKernelManager(AsyncKernelManager):
    """The notebook kernel on Unix sockets (zmq ``ipc``, in Jupyter's private runtime folder) instead of TCP ports.

    Kernel and client always share this machine. Over TCP without CurveZMQ keys ipykernel warns on stderr, once
    per notebook, that anyone on the machine can read the traffic, and rightly so; Unix sockets are private.
    """

    transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc")

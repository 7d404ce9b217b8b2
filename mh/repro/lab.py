"""``make lab``: JupyterLab on this project's environment, opened on the notebooks.

    python -m mh.repro.lab [extra jupyter lab options, e.g. --no-browser --port 8890]

Registers the environment's Python as the Jupyter kernel "mambahash-companion" (inside the environment,
``--sys-prefix``, so nothing outside it changes), then starts ``jupyter lab`` in ``notebooks/``. The
notebooks are paired with their ``.py`` sources by jupytext (``notebooks/jupytext.toml``): saving a notebook
in Lab updates its ``.py`` too. As root (a container), ``--allow-root`` is added.
"""

from __future__ import annotations

import os
import subprocess
import sys

from mh.io import PROJECT_ROOT

KERNEL_NAME = "mambahash-companion"


def register_kernel() -> None:
    """Install this interpreter as the kernel ``mambahash-companion`` in the environment's Jupyter paths."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "ipykernel",
            "install",
            "--sys-prefix",
            "--name",
            KERNEL_NAME,
            "--display-name",
            f"Python ({KERNEL_NAME})",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def lab_command(extra: list[str]) -> list[str]:
    """The ``jupyter lab`` command line: notebooks folder as root directory, the project's kernel by default."""
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--ServerApp.root_dir={PROJECT_ROOT / 'notebooks'}",
        f"--MappingKernelManager.default_kernel_name={KERNEL_NAME}",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    return command + extra


def main(argv: list[str] | None = None) -> None:
    """Register the kernel, then replace this process with JupyterLab (never returns)."""
    extra = list(sys.argv[1:] if argv is None else argv)
    register_kernel()
    print(f"[lab] kernel {KERNEL_NAME!r} registered; starting JupyterLab in {PROJECT_ROOT / 'notebooks'}", flush=True)
    command = lab_command(extra)
    os.execv(command[0], command)  # this process becomes JupyterLab: a signal to it stops the server itself


if __name__ == "__main__":
    main()

"""make lab: JupyterLab on the project's kernel, rooted at notebooks/, listing the course."""

import json
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from mh.repro.lab import KERNEL_NAME, lab_command
from mh.repro.reproduce import NOTEBOOKS


def test_the_command_roots_lab_at_the_notebooks_with_the_project_kernel():
    command = lab_command(["--no-browser"])
    assert any(part.endswith("/notebooks") and "root_dir" in part for part in command)
    assert f"--MappingKernelManager.default_kernel_name={KERNEL_NAME}" in command
    assert command[-1] == "--no-browser"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_lab_starts_and_lists_every_notebook_and_the_kernel():
    port, token = _free_port(), "companion-test"
    server = subprocess.Popen(
        [sys.executable, "-m", "mh.repro.lab", "--no-browser", f"--port={port}", f"--IdentityProvider.token={token}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        listing = kernels = None
        for _ in range(120):
            try:
                get = lambda path: json.load(  # noqa: E731
                    urllib.request.urlopen(f"http://127.0.0.1:{port}{path}?token={token}", timeout=2)
                )
                listing, kernels = get("/api/contents/"), get("/api/kernelspecs")
                break
            except OSError:
                time.sleep(0.5)
        assert listing is not None, "JupyterLab did not answer within a minute"
        names = {item["name"] for item in listing["content"]}
        assert {f"{name}.ipynb" for name in NOTEBOOKS} <= names
        assert KERNEL_NAME in kernels["kernelspecs"] and kernels["default"] == KERNEL_NAME
    finally:
        server.terminate()
        server.wait(timeout=30)

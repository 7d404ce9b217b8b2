"""What makes an executed notebook and its outputs the same on every machine: this machine's paths scrubbed
from the executed notebooks, and the SHA-256 of every output that the manifest records."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import nbformat

from mh.io import atomic_output
from mh.repro.outputs import output_folder


def scrub_machine_paths(notebook_path: Path, replacements: dict[str, str]) -> None:
    """Replace this machine's absolute paths (keys) by placeholders (values) in a notebook's outputs and metadata;
    drop the kernel's per-cell timestamps and give papermill's parameters cell a fixed id."""
    ordered = sorted((key for key in replacements if key), key=len, reverse=True)  # longest first: nested paths

    def scrub(text: str) -> str:
        for key in ordered:
            text = text.replace(key, replacements[key])
        return text

    notebook = nbformat.read(notebook_path, as_version=4)
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)  # the kernel's per-cell timestamps (papermill keeps its own)
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell.id = "injected-parameters"  # papermill draws a random id for the cell it adds
        for output in cell.get("outputs", []):
            if "text" in output:
                output["text"] = scrub(output["text"])
            for kind, value in output.get("data", {}).items():
                if kind.startswith("text/") and isinstance(value, str):
                    output["data"][kind] = scrub(value)
            if "traceback" in output:
                output["traceback"] = [scrub(line) for line in output["traceback"]]
    papermill = notebook.metadata.get("papermill", {})
    for key in ("input_path", "output_path"):
        if key in papermill:
            papermill[key] = scrub(papermill[key])
    with atomic_output(notebook_path) as temporary:
        nbformat.write(notebook, temporary)


def machine_paths(root: Path) -> dict[str, str]:
    """Absolute paths that would make an executed notebook differ between machines, and what replaces them
    (the data directory reaches the kernels as $MH_DATA_DIR: ``kernel_environment``)."""
    # braces, not <angle brackets>: in an HTML table output a <name> would be read as a tag and vanish
    paths = {str(root): "{repository}", sys.prefix: "{python-env}", str(Path.home()): "~"}
    data_dir = os.environ.get("MH_DATA_DIR")
    if data_dir:
        paths[data_dir] = paths[str(Path(data_dir).resolve())] = "{MH_DATA_DIR}"
    return paths


def output_digests(root: Path, profile: str) -> dict[str, str]:
    """SHA-256 of every figure, table and timing of ``profile``'s output tree, by path relative to ``root``."""
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for role in ("figures", "tables", "timings")
        for path in sorted((root / output_folder(role, profile)).glob("*"))
        if path.is_file()
    }

"""The layout promises of the code base, checked: small functions, small modules, no citation of a path
outside the repository, and a paper core that stays flat beside the ``baselines``, ``family`` and ``repro`` packages."""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "mh"
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 400
PAPER_CORE = {
    "binary",
    "blocks",
    "checks",
    "cli",
    "codes",
    "config",
    "data",
    "datasets",
    "directions",
    "distributed",
    "encode",
    "engine",
    "fastpath",
    "evaluate",
    "io",
    "losses",
    "manifest",
    "metrics",
    "model",
    "profiles",
    "progress",
    "registry",
    "rundir",
    "scan",
    "scan_chunked",
    "schedules",
    "search",
    "splits",
    "tensordata",
    "ssm",
    "train",
    "weights",
}


def python_files():
    return sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", python_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_functions_and_modules_stay_small(path):
    source = path.read_text()
    assert len(source.splitlines()) <= MAX_MODULE_LINES
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = node.end_lineno - node.lineno + 1
            assert length <= MAX_FUNCTION_LINES, f"{path.name}:{node.lineno} {node.name} has {length} lines"


def test_the_paper_core_is_flat_and_the_rest_is_grouped():
    top_level = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    assert top_level == PAPER_CORE
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and not p.name.startswith("__")} == {
        "baselines",
        "family",
        "repro",
    }


def tracked_text_files():
    suffixes = {".py", ".md", ".ipynb", ".toml", ".yml", ".cfg", ".txt"}
    skip = {".git", ".venv", "results", "figures", "build"}
    return [
        p for p in ROOT.rglob("*") if p.suffix in suffixes and p.is_file() and not skip & set(p.relative_to(ROOT).parts)
    ]


def test_no_file_cites_a_path_outside_the_repository():
    outside = re.compile(r"(\.\./shared/|shared/spec|_SPEC\.md)")
    offenders = [
        str(p.relative_to(ROOT))
        for p in tracked_text_files()
        if p.name != "test_layout.py" and outside.search(p.read_text(errors="ignore"))
    ]
    assert offenders == []

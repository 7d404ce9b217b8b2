"""The notebooks as committed: no outputs, a literal-only `parameters` cell, paired .py in sync, and the
reproduce pipeline's refusal of unknown names (its transactions: tests/test_faults_reproduce.py)."""

import ast
from pathlib import Path

import nbformat
import pytest

from mh.repro.reproduce import NOTEBOOKS
from mh.repro.tuning_cagmh import notebook_parameters

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
REQUIRED_PARAMETERS = {"PROFILE", "SEED", "DEVICE", "DATA_DIR", "OUT_DIR"}


@pytest.fixture(params=NOTEBOOKS)
def notebook(request):
    return nbformat.read(NOTEBOOK_DIR / f"{request.param}.ipynb", as_version=4)


def test_committed_without_outputs(notebook):
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


def test_parameters_cell_is_literal_only_and_complete(notebook):
    tagged = [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1
    tree = ast.parse(tagged[0].source)
    names = set()
    for statement in tree.body:
        assert isinstance(statement, ast.Assign) and len(statement.targets) == 1
        ast.literal_eval(statement.value)  # raises on anything but a literal
        names.add(statement.targets[0].id)
    assert names >= REQUIRED_PARAMETERS
    assert ast.literal_eval(next(s.value for s in tree.body if s.targets[0].id == "PROFILE")) == "auto"


def test_notebooks_define_nothing(notebook):
    for cell in notebook.cells:
        if cell.cell_type == "code":
            tree = ast.parse(cell.source)
            assert not any(isinstance(node, (ast.FunctionDef, ast.ClassDef)) for node in ast.walk(tree))


def test_notebook_opens_by_saying_what_it_shows_and_writes(notebook):
    first = notebook.cells[0]
    assert first.cell_type == "markdown" and "What this shows" in first.source and "What it writes" in first.source


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_paired_script_matches_the_notebook(name):
    import jupytext

    script = jupytext.read(NOTEBOOK_DIR / f"{name}.py")
    notebook = nbformat.read(NOTEBOOK_DIR / f"{name}.ipynb", as_version=4)
    assert [c.source for c in script.cells] == [c.source for c in notebook.cells]


def test_unknown_notebook_is_refused():
    from mh.repro.reproduce import main

    assert main(["--only", "07_missing"]) == 2


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_papermill_reads_every_name_of_the_parameters_cell(name):
    papermill = pytest.importorskip("papermill")
    path = NOTEBOOK_DIR / f"{name}.ipynb"
    # papermill skips (with a warning) a line holding more than one "=", e.g. one inside a trailing comment
    assert set(papermill.inspect_notebook(str(path))) == set(notebook_parameters(path))

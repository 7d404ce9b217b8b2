"""The notebooks as committed: no outputs, a literal-only `parameters` cell, paired .py in sync, and the
reproduce pipeline's bookkeeping (which outputs it clears)."""

import ast
from pathlib import Path

import nbformat
import pytest

from mh.repro.reproduce import NOTEBOOKS, clear_outputs

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


def test_clear_outputs_removes_only_what_will_be_rewritten(tmp_path):
    (tmp_path / "figures").mkdir()
    (tmp_path / "results" / "tables").mkdir(parents=True)
    (tmp_path / "results" / "runs" / "smoke" / "a-run").mkdir(parents=True)
    (tmp_path / "results" / "paper").mkdir()
    for path in (
        "figures/03_curves.png",
        "figures/05_table.png",
        "results/tables/03_training.csv",
        "results/manifest.json",
        "results/paper/paper_numbers.csv",
    ):
        (tmp_path / path).write_text("old")
    clear_outputs(tmp_path, "smoke", ["03_training"])
    assert not (tmp_path / "figures/03_curves.png").exists() and (tmp_path / "figures/05_table.png").exists()
    assert (tmp_path / "results/runs/smoke/a-run").exists()
    clear_outputs(tmp_path, "smoke", list(NOTEBOOKS))
    assert not (tmp_path / "figures/05_table.png").exists() and not (tmp_path / "results/manifest.json").exists()
    assert not (tmp_path / "results/runs/smoke").exists()
    assert (tmp_path / "results/paper/paper_numbers.csv").read_text() == "old"


def test_unknown_notebook_is_refused():
    from mh.repro.reproduce import main

    assert main(["--only", "07_missing"]) == 2


def test_a_missing_dataset_stops_reproduce_before_any_output_is_touched(tmp_path, capsys):
    from mh.repro.reproduce import main, run_notebooks

    (tmp_path / "figures").mkdir()
    (tmp_path / "results" / "runs" / "smoke" / "a-run").mkdir(parents=True)
    (tmp_path / "figures" / "03_curves.png").write_text("old")
    with pytest.raises(FileNotFoundError, match="CIFAR-10 not found"):
        run_notebooks("smoke", str(tmp_path / "nonexistent"), root=tmp_path)
    assert (tmp_path / "figures" / "03_curves.png").read_text() == "old"
    assert (tmp_path / "results" / "runs" / "smoke" / "a-run").is_dir()
    assert main(["--profile", "smoke", "--data-dir", str(tmp_path / "nonexistent"), "--only", "03_training"]) == 2
    assert "CIFAR-10 not found" in capsys.readouterr().err

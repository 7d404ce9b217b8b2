"""The notebooks' exercises: every notebook ends with them, and every worked solution runs and holds."""

import re
import runpy
from pathlib import Path

import pytest

from mh.repro.reproduce import NOTEBOOKS

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
SOLUTIONS = sorted((NOTEBOOK_DIR / "solutions").glob("*_solutions.py"))


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_each_notebook_ends_with_exercises_that_link_their_solutions(name):
    source = (NOTEBOOK_DIR / f"{name}.py").read_text()
    exercises = source[source.rindex("## Exercises") :]
    titles = re.findall(r"^# \d\. \*\*(.+?)\*\*", exercises, flags=re.M)
    assert len(titles) in (3, 4)
    assert any(title.startswith("Experiment:") for title in titles), "each notebook asks for one experiment"
    linked = re.findall(r"\]\((solutions/\w+\.py)\)", exercises)
    assert linked and all((NOTEBOOK_DIR / path).exists() for path in linked)


@pytest.mark.parametrize("path", SOLUTIONS, ids=[path.stem for path in SOLUTIONS])
def test_worked_solution_runs_and_its_checks_hold(path, monkeypatch):
    monkeypatch.chdir(NOTEBOOK_DIR)
    runpy.run_path(str(path), run_name="__main__")  # each solution asserts its predictions


def test_every_notebook_has_a_solutions_file():
    assert {path.name[:2] for path in SOLUTIONS} == {name[:2] for name in NOTEBOOKS}

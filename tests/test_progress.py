"""Progress bars: on for a reader, off when the caller says so, and off for a whole batch run ($TQDM_DISABLE),
so that executed notebooks hold no frozen bars."""

import json

import pytest
from test_faults_reproduce import PARAMETERS, fake_repository

from mh.progress import progress_bar
from mh.repro.reproduce import execute


@pytest.mark.parametrize(
    ("variable", "enabled", "shown"),
    [(None, True, True), (None, False, False), ("1", True, False), ("0", True, True), ("false", True, True)],
)
def test_a_bar_shows_when_enabled_unless_the_process_switched_bars_off(monkeypatch, variable, enabled, shown):
    if variable is None:
        monkeypatch.delenv("TQDM_DISABLE", raising=False)
    else:
        monkeypatch.setenv("TQDM_DISABLE", variable)
    bar = progress_bar(range(3), "steps", enabled)
    assert bar.disable is not shown  # read before iterating: tqdm sets it when a bar closes
    assert list(bar) == [0, 1, 2]


def test_an_executed_notebook_holds_no_progress_bar(tmp_path):
    loop = "from mh.progress import progress_bar\nsum(progress_bar(range(5), 'epoch 1/1', leave=False))"
    root = fake_repository(tmp_path, ["PROFILE = 'auto'", loop])
    execute("01_ssm_zoh_discretization", root, PARAMETERS, None)
    executed = json.loads((root / "notebooks/executed/smoke/01_ssm_zoh_discretization.ipynb").read_text())
    outputs = [output for cell in executed["cells"] for output in cell.get("outputs", [])]
    assert ["".join(output["data"]["text/plain"]) for output in outputs] == ["10"]


def test_every_bar_in_the_package_goes_through_progress_bar():
    import re
    from pathlib import Path

    import mh

    package = Path(mh.__file__).parent
    direct = [
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if path.name != "progress.py" and re.search(r"\btqdm\(", path.read_text())
    ]
    assert direct == [], f"{direct} build tqdm bars directly; $TQDM_DISABLE would not switch them off"

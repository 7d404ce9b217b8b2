"""Outputs a reader can trust to stay put: byte-stable figures, machine paths scrubbed from executed
notebooks, the manifest kept when nothing changed, timings reused until what they measure changes."""

import json
import subprocess

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import nbformat
import numpy as np
import pandas as pd
import pytest

import mh.binary
from mh.manifest import git_commit
from mh.repro.scrub import machine_paths, output_digests, scrub_machine_paths
from mh.repro.timings import cached_measurement, describe_measurement
from mh.repro.workspace import save_figure_stable


@pytest.mark.parametrize("suffix", ["png", "pdf"])
def test_saving_the_same_figure_twice_gives_identical_bytes(tmp_path, suffix):
    fig, ax = plt.subplots()
    ax.plot([0, 1, 4]), ax.set_title("stable")
    first = save_figure_stable(fig, tmp_path / f"a.{suffix}").read_bytes()
    second = save_figure_stable(fig, tmp_path / f"b.{suffix}").read_bytes()
    plt.close(fig)
    assert first == second
    assert b"CreationDate" not in first


def test_figures_of_another_format_are_refused(tmp_path):
    fig = plt.figure()
    with pytest.raises(ValueError, match=r"\.png or \.pdf"):
        save_figure_stable(fig, tmp_path / "a.svg")
    plt.close(fig)


def test_machine_paths_are_scrubbed_from_outputs_and_papermill_metadata(tmp_path):
    root = tmp_path / "checkout"
    notebook = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("print(1)")
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stderr", text=f"{root}/mh/x.py:3: UserWarning\n"),
        nbformat.v4.new_output("execute_result", data={"text/plain": f"'{root}/results/runs/a'"}, execution_count=1),
    ]
    cell.metadata["execution"] = {"iopub.execute_input": "2026-11-23T19:44:50.275223Z"}
    injected = nbformat.v4.new_code_cell("PROFILE = 'smoke'", metadata={"tags": ["injected-parameters"]})
    notebook.cells = [injected, cell]
    notebook.metadata["papermill"] = {"input_path": f"{root}/notebooks/a.ipynb", "output_path": "x"}
    path = tmp_path / "a.ipynb"
    nbformat.write(notebook, path)
    scrub_machine_paths(path, machine_paths(root))
    text = path.read_text()
    assert str(root) not in text and "{repository}/mh/x.py" in text and "{repository}/notebooks/a.ipynb" in text
    assert "iopub" not in text and '"id": "injected-parameters"' in text


def test_output_digests_cover_one_profiles_figures_tables_and_timings(tmp_path):
    mine = ("figures/smoke/a.png", "results/tables/smoke/b.csv", "results/timings/smoke/c.csv")
    others = ("figures/cpu/a.png", "results/tables/cpu/b.csv", "results/runs/smoke/x/d.csv")
    for relative in (*mine, *others):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(relative)
    assert set(output_digests(tmp_path, "smoke")) == set(mine)


def test_a_timing_is_reused_until_its_parameters_or_code_change(tmp_path):
    calls = []

    def measure():
        calls.append(1)
        return pd.DataFrame({"size": [10, 100], "ms": [0.1 * len(calls), 0.2]})

    parameters = {"sizes": [10, 100], "balance": np.full(8, 0.5)}
    first, record = cached_measurement("t", measure, parameters, (mh.binary,), tmp_path)
    again, reused = cached_measurement("t", measure, parameters, (mh.binary,), tmp_path)
    assert len(calls) == 1 and reused["reused"] and not record["reused"]
    pd.testing.assert_frame_equal(first, again)
    assert describe_measurement(record) == describe_measurement(reused)
    cached_measurement("t", measure, {**parameters, "balance": np.full(8, 0.4)}, (mh.binary,), tmp_path)
    assert len(calls) == 2
    cached_measurement("t", measure, parameters, (mh.binary,), tmp_path, remeasure=True)
    assert len(calls) == 3
    stored = json.loads((tmp_path / "t.json").read_text())
    assert stored["fingerprint"]["machine"]["cores"] >= 1 and len(stored["fingerprint"]["code_sha256"]) == 64


def test_the_manifest_commit_is_dirty_for_changed_code_not_for_regenerated_outputs(tmp_path):
    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "plot.png").write_bytes(b"one")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "start")
    (tmp_path / "figures" / "plot.png").write_bytes(b"two")
    assert not git_commit(tmp_path).endswith("+dirty")
    (tmp_path / "code.py").write_text("x = 2\n")
    assert git_commit(tmp_path).endswith("+dirty")

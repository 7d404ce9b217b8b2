"""One reproduce at a time, and a ``kill -9`` at any stage leaves a tree the next run completes.

The stages are killed for real (``SIGKILL`` in a child process, which runs no clean-up): while a run trains
(``ensure_run``), while papermill executes a notebook, and between two renames of the promotion of a
notebook's outputs. After each, a second run completes and leaves exactly the outputs an uninterrupted run
leaves; the lock of the killed run is taken over.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_faults_reproduce import WRITE_FIGURES, fake_repository
from test_train import tiny_config, tiny_data

from mh.repro.checkout_lock import LOCK_FILE, CheckoutBusy, checkout_lock
from mh.repro.reproduce import main as reproduce_main
from mh.repro.reproduce import run_notebooks
from mh.repro.run_cache import ensure_run
from mh.rundir import RunDirectory

TESTS = str(Path(__file__).parent)
HOLD_THE_LOCK = """
import sys, time
from pathlib import Path
from mh.repro.checkout_lock import checkout_lock
with checkout_lock(Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(60)
"""


def start(script: str, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", script, *map(str, args)], stdout=subprocess.PIPE, text=True)


def locked(holder: subprocess.Popen) -> bool:
    """Whether ``holder`` took the lock (it may first say that it took over a killed run's)."""
    return any(line.strip() == "locked" for line in holder.stdout)


def test_a_second_reproduce_refuses_at_once_naming_the_first_ones_process(tmp_path, capsys):
    holder = start(HOLD_THE_LOCK, tmp_path)
    try:
        assert locked(holder)
        began = time.perf_counter()
        with pytest.raises(CheckoutBusy, match=f"another make reproduce \\(process {holder.pid}\\) is running"):
            run_notebooks("smoke", notebooks=["01_ssm_zoh_discretization"], root=tmp_path)
        assert time.perf_counter() - began < 1
    finally:
        holder.kill()
        holder.wait()


def test_a_lock_left_by_a_killed_run_is_taken_over(tmp_path, capsys):
    holder = start(HOLD_THE_LOCK, tmp_path)
    assert locked(holder)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert (tmp_path / LOCK_FILE).read_text() == str(holder.pid)
    with checkout_lock(tmp_path):
        assert (tmp_path / LOCK_FILE).read_text() == str(os.getpid())
    assert f"the lock of process {holder.pid} was left by a run that ended early" in capsys.readouterr().out


def test_the_command_reports_a_busy_checkout_as_one_error_line(tmp_path, monkeypatch, capsys):
    holder = start(HOLD_THE_LOCK, Path(__file__).resolve().parent.parent)
    try:
        assert locked(holder)
        assert reproduce_main(["--only", "01_ssm_zoh_discretization"]) == 2
        error = capsys.readouterr().err.strip()
        assert (
            error.startswith(f"error: another make reproduce (process {holder.pid})") and len(error.splitlines()) == 1
        )
    finally:
        holder.kill()
        holder.wait()


RUN_AND_DIE = """
import os, signal, sys
from pathlib import Path
sys.path.insert(0, sys.argv[3])
import mh.repro.reproduce as reproduce
stage = sys.argv[2]
if stage == "promote":  # die between the first and the second rename of a notebook's outputs
    real_replace, renames = os.replace, []
    def replace_then_die(source, target):
        renames.append(target)
        if len(renames) == 2:
            os.kill(os.getpid(), signal.SIGKILL)
        real_replace(source, target)
    reproduce.os.replace = replace_then_die
reproduce.run_notebooks("smoke", notebooks=["01_ssm_zoh_discretization"], root=Path(sys.argv[1]))
"""
SLOW_CELL = "import pathlib, time\npathlib.Path('executing').touch()\ntime.sleep(60)"


def outputs(root: Path) -> dict[str, str]:
    figures = root / "figures" / "smoke"
    return {str(p.relative_to(root)): p.read_text() for p in sorted(figures.glob("*")) if p.is_file()}


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["execute", "promote"])
def test_a_reproduce_killed_while_executing_or_promoting_is_completed_by_the_next_run(tmp_path, stage):
    cells = ["PROFILE = 'auto'", WRITE_FIGURES] + ([SLOW_CELL] if stage == "execute" else [])
    root = fake_repository(tmp_path / "repo", cells)
    (root / "results/manifests/smoke.json").unlink()
    child = start(RUN_AND_DIE, root, stage, TESTS)
    if stage == "execute":
        marker = root / "notebooks" / "executing"
        deadline = time.monotonic() + 120
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert marker.exists(), "the notebook never started"
        child.send_signal(signal.SIGKILL)
    assert child.wait(timeout=180) == -signal.SIGKILL
    assert not (root / "results/manifests/smoke.json").exists()
    if stage == "execute":
        nb_path = root / "notebooks" / "01_ssm_zoh_discretization.ipynb"
        nb_path.write_text(nb_path.read_text().replace("time.sleep(60)", "time.sleep(0)"))
    manifest = run_notebooks("smoke", notebooks=["01_ssm_zoh_discretization"], root=root)
    assert outputs(root) == {
        "figures/smoke/01_fresh.png": "new",
        "figures/smoke/01_kept.png": "new",
        "figures/smoke/02_other.png": "old figures/smoke/02_other.png",
    }
    assert manifest["rerun"] == ["01_ssm_zoh_discretization"] and not list((root / "results/cache/staging").glob("*"))


KILL_WHILE_TRAINING = """
import os, signal, sys
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from test_train import tiny_config, tiny_data
import mh.train
from mh.repro.run_cache import ensure_run
original = mh.train.finish_epoch
def finish_or_die(training, *args):
    if len(training.history) == 1:  # the second epoch is trained, not yet recorded
        os.kill(os.getpid(), signal.SIGKILL)
    original(training, *args)
mh.train.finish_epoch = finish_or_die
ensure_run(tiny_config(Path(sys.argv[1]), run_name="killed"), tiny_data(), progress=False)
"""


@pytest.mark.slow
def test_a_run_killed_while_training_is_trained_again_by_the_cache_to_the_uninterrupted_result(tmp_path):
    child = start(KILL_WHILE_TRAINING, tmp_path, TESTS)
    assert child.wait(timeout=300) == -signal.SIGKILL
    assert RunDirectory(tmp_path / "killed").status() == "running"
    data = tiny_data()
    again = ensure_run(tiny_config(tmp_path, run_name="killed"), data, progress=False)
    straight = ensure_run(tiny_config(tmp_path, run_name="straight"), data, progress=False)
    assert RunDirectory(again.run_dir).status() == "finished" and again.metrics["map"] == straight.metrics["map"]
    assert list((tmp_path.parent / f"{tmp_path.name}-superseded").glob("killed-*"))  # the killed run, kept aside


def test_a_warm_rerun_keeps_the_record_of_the_cold_run_that_trained_its_networks():
    from mh.repro.reproduce import trained_by

    cold = {
        "commit": "c0ld",
        "time_utc": "t",
        "device": "cpu",
        "total_wall_seconds": 9556.0,
        "notebooks_wall_seconds": {"03": 3371.0},
        "runs_trained": ["a", "b"],
        "runs_reused": [],
    }
    warm = {"runs_trained": [], "runs_reused": ["a", "b"], "total_wall_seconds": 600.0}
    record = trained_by(cold, warm)
    assert record["commit"] == "c0ld" and record["total_wall_seconds"] == 9556.0
    assert trained_by({**warm, "trained_by": record}, warm) == record  # a second warm re-run keeps it
    assert trained_by(cold, {"runs_trained": ["a"], "runs_reused": ["b"]}) is None  # it trained: its own cost
    assert trained_by(cold, {"runs_trained": [], "runs_reused": ["a", "z"]}) is None  # z came from elsewhere

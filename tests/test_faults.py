"""Faults a demanding user meets, each with the message it must give and the record it must keep intact:
resume that would rewrite a run, a resume with nothing to resume, a log ahead of its checkpoint, unfinished
runs, unreadable images (found before the first step, by path)."""

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from test_train import tiny_config, tiny_data

from mh.data import BadImageError, HashingData, ImagePool, PoolSubset, build_transform, verify_images
from mh.datasets import DATASETS
from mh.evaluate import evaluate_run
from mh.evaluate import main as evaluate_main
from mh.io import DamagedFileError
from mh.profiles import PROFILES
from mh.rundir import RunDirectory, RunDirectoryError, truncate_step_log
from mh.train import fit
from mh.train import main as train_main


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    result = fit(tiny_config(runs, epochs=1), progress=False, data=tiny_data())
    return runs, result.run_dir


@pytest.mark.parametrize(
    ("change", "listed"),
    [
        ({"learning_rate": 1e-3}, f"learning_rate: run has {PROFILES['smoke'].learning_rate!r}, requested 0.001"),
        ({"seed": 7}, "seed: run has 2025, requested 7"),
        ({"bits": 32}, "bits: run has 16, requested 32"),
        ({"epochs": 3}, "--extend-epochs"),
        ({"optimizer": "adam"}, "optimizer: run has 'rmsprop', requested 'adam'"),
    ],
)
def test_a_resume_that_would_change_the_record_is_refused(finished_run, change, listed):
    runs, run_dir = finished_run
    before = {name: (run_dir / name).read_bytes() for name in ("config.json", "metrics.json", "losses.csv")}
    with pytest.raises(RunDirectoryError, match="would change the record") as refused:
        fit(tiny_config(runs, **{"epochs": 1, **change}), resume=True, progress=False, data=tiny_data())
    assert listed in str(refused.value)
    assert before == {name: (run_dir / name).read_bytes() for name in before}


def test_a_resume_may_change_where_it_runs_and_may_extend_epochs_when_asked(tmp_path):
    data = tiny_data()
    fit(tiny_config(tmp_path, epochs=1), progress=False, data=data)
    fit(tiny_config(tmp_path, epochs=1, log_every=3, device="cpu"), resume=True, progress=False, data=data)
    extended = fit(tiny_config(tmp_path, epochs=2), resume=True, progress=False, data=data, extend_epochs=True)
    assert extended.metrics["epochs"] == 2 and RunDirectory(extended.run_dir).status() == "finished"


def test_resume_without_a_checkpoint_is_refused_when_the_directory_holds_files(tmp_path):
    (tmp_path / "tiny").mkdir()
    (tmp_path / "tiny" / "losses.csv").write_text("epoch,step,loss\n1,1,0.5\n")
    with pytest.raises(RunDirectoryError, match="no checkpoint.ckpt"):
        fit(tiny_config(tmp_path, epochs=1), resume=True, progress=False, data=tiny_data())
    assert (tmp_path / "tiny" / "losses.csv").read_text().count("\n") == 2


def test_resume_with_an_empty_directory_starts_the_run(tmp_path):
    (tmp_path / "tiny").mkdir()
    result = fit(tiny_config(tmp_path, epochs=1), resume=True, progress=False, data=tiny_data())
    assert RunDirectory(result.run_dir).status() == "finished"


def test_a_damaged_config_is_named_on_resume(finished_run, tmp_path):
    runs, run_dir = finished_run
    copy = tmp_path / "tiny"
    copy.mkdir()
    (copy / "checkpoint.ckpt").write_bytes((run_dir / "checkpoint.ckpt").read_bytes())
    (copy / "config.json").write_text("{not json")
    with pytest.raises(DamagedFileError, match="config.json is not a readable run configuration"):
        fit(tiny_config(tmp_path, epochs=1), resume=True, progress=False, data=tiny_data())


def test_the_step_log_is_cut_back_to_the_checkpoint_on_resume(tmp_path):
    data = tiny_data()
    straight = fit(tiny_config(tmp_path, run_name="straight"), progress=False, data=data)
    killed = fit(tiny_config(tmp_path, run_name="killed", epochs=1), progress=False, data=data)
    log = killed.run_dir / "losses.csv"
    rows = pd.read_csv(log)
    pd.concat([rows, rows.assign(epoch=2)]).to_csv(log, index=False)  # epoch 2 logged, its checkpoint never written
    resumed = fit(tiny_config(tmp_path, run_name="killed"), resume=True, progress=False, data=data, extend_epochs=True)
    pd.testing.assert_frame_equal(
        pd.read_csv(straight.run_dir / "losses.csv"), pd.read_csv(resumed.run_dir / "losses.csv")
    )


def test_truncate_step_log_keeps_finished_epochs_only(tmp_path):
    log = tmp_path / "losses.csv"
    log.write_text("epoch,step,loss\n1,1,0.5\n1,2,0.4\n2,3,0.3\n")
    assert truncate_step_log(log, 1) == 1 and log.read_text() == "epoch,step,loss\n1,1,0.5\n1,2,0.4\n"
    assert truncate_step_log(log, 1) == 0 and truncate_step_log(tmp_path / "absent.csv", 1) == 0


def test_a_failing_run_is_marked_failed_and_evaluate_refuses_it(tmp_path, capsys):
    class Exploding:
        def __len__(self):
            return 1

        def __iter__(self):
            raise RuntimeError("disk went away")

    with pytest.raises(RuntimeError, match="disk went away"):
        fit(tiny_config(tmp_path, epochs=1), progress=False, data=tiny_data(), sampler=Exploding())
    run_dir = tmp_path / "tiny"
    assert json.loads((run_dir / "status.json").read_text()) == {
        "status": "failed",
        "error": "RuntimeError: disk went away",
    }
    with pytest.raises(RunDirectoryError, match="not a finished run"):
        evaluate_run(run_dir)
    assert evaluate_main([str(run_dir)]) == 2
    assert "--allow-unfinished" in capsys.readouterr().err


def test_evaluate_refuses_a_running_run_unless_told(finished_run, tmp_path):
    _, run_dir = finished_run
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("codes.npz", "config.json"):
        (copy / name).write_bytes((run_dir / name).read_bytes())
    (copy / "status.json").write_text('{"status": "running"}')
    with pytest.raises(RunDirectoryError, match="status: running"):
        evaluate_run(copy)
    assert evaluate_run(copy, allow_unfinished=True)["map"] >= 0


def _image_files(tmp_path, count=8) -> list:
    paths = []
    for index in range(count):
        path = tmp_path / f"{index}.jpg"
        Image.fromarray(np.full((32, 32, 3), 20 * index, dtype=np.uint8)).save(path, quality=95)
        paths.append(path)
    return paths


def _file_data(paths) -> HashingData:
    pool = ImagePool(np.arange(len(paths)) % 4, "files", paths=paths)
    part = lambda train: PoolSubset(pool, np.arange(len(paths)), 10, build_transform(train, 32))  # noqa: E731
    return HashingData(
        part(True), part(False), part(False), DATASETS["cifar10"].protocol, {"dataset": "files", "sizes": {}}
    )


@pytest.mark.parametrize(
    ("damage", "level"),
    [
        (lambda path: path.write_bytes(b""), "header"),
        (lambda path: path.write_bytes(b"this is not a JPEG at all" * 10), "header"),
        (lambda path: path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2]), "full"),
    ],
    ids=["zero-byte", "garbage", "truncated"],
)
def test_an_unreadable_image_is_named_before_the_first_step(tmp_path, damage, level):
    paths = _image_files(tmp_path)
    damage(paths[3])
    with pytest.raises(BadImageError, match=r"1 of the 8 train images cannot be read:\n  .*3\.jpg"):
        fit(tiny_config(tmp_path / "runs", epochs=1, verify_data=level), progress=False, data=_file_data(paths))
    assert not (tmp_path / "runs" / "tiny" / "losses.csv").exists()  # no step was taken


def test_each_verify_level_checks_what_it_says(tmp_path):
    paths = _image_files(tmp_path)
    subset = _file_data(paths).train
    assert verify_images(subset, "header") == verify_images(subset, "full") == 8
    paths[0].write_bytes(paths[0].read_bytes()[:300])
    with pytest.raises(BadImageError, match="0.jpg"):
        verify_images(subset, "full")
    assert verify_images(subset, "none") == 0
    with pytest.raises(ValueError, match="verify level"):
        verify_images(subset, "quick")


def test_the_train_command_line_reports_a_refused_resume_with_exit_code_2(finished_run, capsys):
    runs, _ = finished_run
    argv = [
        "--profile",
        "smoke",
        "--bits",
        "16",
        "--runs-dir",
        str(runs),
        "--run-name",
        "tiny",
        "--resume",
        "--lr",
        "0.5",
        "--device",
        "cpu",
        "--no-progress",
    ]
    assert train_main(argv) == 2
    assert "would change the record" in capsys.readouterr().err


KILL_DURING_SECOND_EPOCH = """
import os, signal, sys
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from test_train import tiny_config, tiny_data
import mh.train

original = mh.train.save_checkpoint


def save_or_die(run):
    if len(run.history) == 2:  # epoch 2's steps are logged, its checkpoint not yet written
        os.kill(os.getpid(), signal.SIGKILL)
    original(run)


mh.train.save_checkpoint = save_or_die
mh.train.fit(tiny_config(Path(sys.argv[1]), run_name="killed"), progress=False, data=tiny_data())
"""


def test_a_resume_after_sigkill_is_bit_identical_to_an_uninterrupted_run(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    import torch

    killed = subprocess.run(
        [sys.executable, "-c", KILL_DURING_SECOND_EPOCH, str(tmp_path), str(Path(__file__).parent)], check=False
    )
    assert killed.returncode == -9 and RunDirectory(tmp_path / "killed").status() == "running"
    data = tiny_data()
    resumed = fit(tiny_config(tmp_path, run_name="killed"), resume=True, progress=False, data=data)
    straight = fit(tiny_config(tmp_path, run_name="straight"), progress=False, data=data)
    a, b = (torch.load(r.run_dir / "checkpoint.ckpt", weights_only=False)["model"] for r in (resumed, straight))
    assert all(torch.equal(a[key], b[key]) for key in a)
    pd.testing.assert_frame_equal(
        pd.read_csv(resumed.run_dir / "losses.csv"), pd.read_csv(straight.run_dir / "losses.csv")
    )
    assert resumed.metrics["map"] == straight.metrics["map"]

"""``make reproduce`` as a transaction: inputs checked before any output is touched, each notebook's outputs
swapped in only when it ran to the end, trained runs never deleted (a stale one is moved aside)."""

import hashlib
import json
import os
from pathlib import Path

import nbformat
import pytest
from test_train import tiny_config, tiny_data

from mh.repro.reproduce import (
    ALLOCATOR_SETTINGS,
    NotebookFailed,
    ReproduceInputError,
    execute,
    main,
    promote,
    run_notebooks,
    run_stamps,
    supersede_profile_runs,
    trained_profiles,
)
from mh.repro.run_cache import ensure_run
from mh.rundir import FINGERPRINT_FILE

ROOT = Path(__file__).resolve().parent.parent
PARAMETERS = {"PROFILE": "smoke", "SEED": 0, "DEVICE": "cpu"}


def tree_digest(root: Path, folders=("figures", "results", "notebooks/executed")) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for folder in folders
        for path in sorted((root / folder).rglob("*"))
        if path.is_file() and "cache" not in path.parts
    }


def fake_repository(tmp_path: Path, cells: list[str]) -> Path:
    """A repository with committed outputs and notebook 01 replaced by ``cells`` (the first is the parameters)."""
    for relative in (
        "figures/smoke/01_old.png",
        "figures/smoke/01_kept.png",
        "figures/smoke/02_other.png",
        "figures/cpu/01_old.png",  # another profile's tree: never touched by a smoke run
        "notebooks/executed/cpu/01_ssm_zoh_discretization.ipynb",
        "results/manifests/cpu.json",
        "results/manifests/smoke.json",
        "results/tables/smoke/01_table.csv",
        "notebooks/executed/smoke/01_ssm_zoh_discretization.ipynb",
        "results/runs/smoke/a-run/metrics.json",
    ):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(f"old {relative}")
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in cells])
    notebook.cells[0].metadata["tags"] = ["parameters"]
    notebook.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Python 3"}
    nbformat.write(notebook, tmp_path / "notebooks" / "01_ssm_zoh_discretization.ipynb")
    return tmp_path


WRITE_FIGURES = (
    "import os, pathlib\n"
    "stage = pathlib.Path(os.environ['MH_STAGING_DIR'])\n"
    "(stage / 'figures' / 'smoke').mkdir(parents=True, exist_ok=True)\n"
    "(stage / 'figures' / 'smoke' / '01_kept.png').write_text('new')\n"
    "(stage / 'figures' / 'smoke' / '01_fresh.png').write_text('new')"
)


def test_a_missing_dataset_stops_reproduce_before_any_output_is_touched(tmp_path, capsys):
    root = fake_repository(tmp_path, ["PROFILE = 'auto'"])
    before = tree_digest(root)
    with pytest.raises(ReproduceInputError, match="cannot start:(.|\n)*CIFAR-10 not found"):
        run_notebooks("smoke", str(tmp_path / "nonexistent"), root=root)
    assert tree_digest(root) == before


def test_every_missing_input_is_listed_at_once(tmp_path):
    root = fake_repository(tmp_path, ["PROFILE = 'auto'"])
    with pytest.raises(ReproduceInputError) as refused:
        run_notebooks(
            "smoke", str(tmp_path / "nonexistent"), notebooks=["01_ssm_zoh_discretization", "03_training"], root=root
        )
    assert "03_training.ipynb is missing: run `jupytext" in str(refused.value)
    assert "CIFAR-10 not found" in str(refused.value)


def test_the_real_command_with_a_bad_data_dir_changes_nothing_in_the_repository(capsys):
    before = tree_digest(ROOT)
    assert main(["--profile", "smoke", "--data-dir", "/nonexistent"]) == 2
    assert tree_digest(ROOT) == before
    error = capsys.readouterr().err
    assert error.startswith("error: cannot start:") and "Traceback" not in error


def test_a_failing_notebook_leaves_its_previous_outputs_and_keeps_the_failed_copy(tmp_path):
    root = fake_repository(tmp_path, ["PROFILE = 'auto'", WRITE_FIGURES, "raise RuntimeError('cell 3 broke')"])
    before = tree_digest(root)
    with pytest.raises(NotebookFailed, match="previous outputs are unchanged") as failed:
        execute("01_ssm_zoh_discretization", root, PARAMETERS, None)
    assert tree_digest(root) == before
    kept = (
        root / "results/cache/failed/01_ssm_zoh_discretization/notebooks/executed/smoke/01_ssm_zoh_discretization.ipynb"
    )
    assert str(kept) in str(failed.value) and "cell 3 broke" in kept.read_text()


def test_a_notebook_that_ran_replaces_exactly_its_own_outputs(tmp_path):
    root = fake_repository(tmp_path, ["PROFILE = 'auto'", WRITE_FIGURES])
    execute("01_ssm_zoh_discretization", root, PARAMETERS, None)
    assert (root / "figures/smoke/01_kept.png").read_text() == "new" and (root / "figures/smoke/01_fresh.png").exists()
    assert not (root / "figures/smoke/01_old.png").exists()
    assert not (root / "results/tables/smoke/01_table.csv").exists()
    assert (root / "figures/smoke/02_other.png").read_text() == "old figures/smoke/02_other.png"
    for other_profile in ("figures/cpu/01_old.png", "notebooks/executed/cpu/01_ssm_zoh_discretization.ipynb"):
        assert (root / other_profile).read_text() == f"old {other_profile}"
    assert (root / "results/runs/smoke/a-run/metrics.json").exists()
    executed = nbformat.read(root / "notebooks/executed/smoke/01_ssm_zoh_discretization.ipynb", as_version=4)
    assert executed.metadata.papermill.parameters["PROFILE"] == "smoke"
    assert not (root / "results/cache/staging/01_ssm_zoh_discretization").exists()


def kernel_records(file_name: str, text: str, setup: str = "") -> str:
    """Notebook source that runs ``setup``, then writes the expression ``text`` to results/tables/smoke/``file_name``
    in the kernel's staging directory: what the kernel saw, for the test to read."""
    return (
        f"import os, pathlib\n{setup}"
        "stage = pathlib.Path(os.environ['MH_STAGING_DIR']) / 'results' / 'tables' / 'smoke'\n"
        "stage.mkdir(parents=True, exist_ok=True)\n"
        f"(stage / {file_name!r}).write_text({text})"
    )


def test_the_kernel_talks_over_private_unix_sockets_and_prints_no_tcp_warning(tmp_path, capfd):
    setup = "from ipykernel.kernelapp import IPKernelApp\n"
    record_transport = kernel_records("01_transport.txt", "IPKernelApp.instance().transport", setup)
    root = fake_repository(tmp_path, ["PROFILE = 'auto'", record_transport])
    execute("01_ssm_zoh_discretization", root, PARAMETERS, None)
    assert (root / "results/tables/smoke/01_transport.txt").read_text() == "ipc"
    assert "without encryption" not in capfd.readouterr().err


def test_the_kernel_starts_with_the_allocator_settings_and_a_users_own_value_wins(tmp_path, monkeypatch):
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    monkeypatch.setenv("MALLOC_TOP_PAD_", "12345")
    setup = "import json\nnames = ['MALLOC_MMAP_THRESHOLD_', 'MALLOC_TRIM_THRESHOLD_', 'MALLOC_TOP_PAD_']\n"
    text = "json.dumps({name: os.environ.get(name) for name in names})"
    record_environment = kernel_records("01_environment.json", text, setup)
    root = fake_repository(tmp_path, ["PROFILE = 'auto'", record_environment])
    execute("01_ssm_zoh_discretization", root, PARAMETERS, None)
    seen = json.loads((root / "results/tables/smoke/01_environment.json").read_text())
    assert seen == {**ALLOCATOR_SETTINGS, "MALLOC_TOP_PAD_": "12345"}
    assert "MALLOC_MMAP_THRESHOLD_" not in os.environ  # this process is left as it was


def test_an_output_without_the_notebooks_prefix_is_refused(tmp_path):
    stage = tmp_path / "stage"
    (stage / "figures" / "smoke").mkdir(parents=True)
    (stage / "figures" / "smoke" / "05_wrong.png").write_text("x")
    with pytest.raises(ReproduceInputError, match="without its 01_ prefix"):
        promote(stage, tmp_path, "01_ssm_zoh_discretization", "smoke")


def test_a_matching_run_is_reused_and_a_stale_one_moved_aside_never_deleted(tmp_path, capsys):
    data = tiny_data()
    first = ensure_run(tiny_config(tmp_path, epochs=1), data, progress=False)
    stamp = (first.run_dir / "metrics.json").stat().st_mtime_ns
    assert (first.run_dir / FINGERPRINT_FILE).exists()
    again = ensure_run(tiny_config(tmp_path, epochs=1), data, progress=False)
    assert (again.run_dir / "metrics.json").stat().st_mtime_ns == stamp
    fingerprint = json.loads((first.run_dir / FINGERPRINT_FILE).read_text())
    fingerprint["code_sha256"] = "older code"
    (first.run_dir / FINGERPRINT_FILE).write_text(json.dumps(fingerprint))
    ensure_run(tiny_config(tmp_path, epochs=1), data, progress=False)
    superseded = list((tmp_path.parent / f"{tmp_path.name}-superseded").glob("tiny-*"))
    assert len(superseded) == 1 and (superseded[0] / "metrics.json").exists()
    assert "its code_sha256 differ from this one's; moved to" in capsys.readouterr().out


def test_an_unfinished_run_is_moved_aside_and_trained_again(tmp_path):
    data = tiny_data()
    run = tmp_path / "tiny"
    run.mkdir()
    (run / "status.json").write_text('{"status": "failed"}')
    record = ensure_run(tiny_config(tmp_path, epochs=1), data, progress=False)
    assert record.metrics["epochs"] == 1
    assert (next((tmp_path.parent / f"{tmp_path.name}-superseded").glob("tiny-*")) / "status.json").exists()


def test_a_run_evaluated_more_often_is_reused_and_one_evaluated_less_often_is_not(tmp_path):
    data = tiny_data()
    every_epoch = ensure_run(tiny_config(tmp_path, epochs=2, eval_every=1), data, progress=False)
    stamp = (every_epoch.run_dir / "metrics.json").stat().st_mtime_ns
    ensure_run(tiny_config(tmp_path, epochs=2, eval_every=2), data, progress=False)
    assert (every_epoch.run_dir / "metrics.json").stat().st_mtime_ns == stamp
    last_only = ensure_run(tiny_config(tmp_path, run_name="sparse", epochs=2, eval_every=2), data, progress=False)
    again = ensure_run(tiny_config(tmp_path, run_name="sparse", epochs=2, eval_every=1), data, progress=False)
    assert again.history["map"].notna().sum() == 2 and last_only.history["map"].notna().sum() == 1


def test_a_run_without_a_fingerprint_is_not_trusted(tmp_path, capsys):
    data = tiny_data()
    first = ensure_run(tiny_config(tmp_path, epochs=1), data, progress=False)
    (first.run_dir / FINGERPRINT_FILE).unlink()
    ensure_run(tiny_config(tmp_path, epochs=1), data, progress=False)
    assert "has no fingerprint.json" in capsys.readouterr().out
    assert (first.run_dir / FINGERPRINT_FILE).exists()


def test_fresh_runs_moves_every_run_aside_without_deleting_it(tmp_path):
    root = fake_repository(tmp_path, ["PROFILE = 'auto'"])
    compared = root / "results/runs/smoke_compare/a-table-run/metrics.json"
    compared.parent.mkdir(parents=True)
    compared.write_text("{}")
    assert set(run_stamps(root, "smoke")) == {"a-run", "a-table-run"}
    moved = supersede_profile_runs(root, "smoke")
    assert [path.name.startswith(("a-run-", "a-table-run-")) for path in moved] == [True, True]
    assert moved[0].parent == root / "results/runs/smoke-superseded" and (moved[0] / "metrics.json").exists()
    assert moved[1].parent == root / "results/runs/smoke_compare-superseded"
    assert not (root / "results/runs/smoke/a-run").exists() and not compared.exists()
    assert trained_profiles("gpu") == ("gpu",)


@pytest.mark.slow
def test_the_manifest_is_kept_for_identical_outputs_and_rewritten_for_another_lock(tmp_path, monkeypatch):
    root = fake_repository(tmp_path, ["PROFILE = 'auto'", WRITE_FIGURES])
    (root / "results/manifests/smoke.json").unlink()
    first = run_notebooks("smoke", notebooks=["01_ssm_zoh_discretization"], root=root)
    assert first["environment"]["lock"]["file"] == "requirements/cpu.lock"
    again = run_notebooks("smoke", notebooks=["01_ssm_zoh_discretization"], root=root)
    assert json.loads((root / "results/manifests/smoke.json").read_text())["time_utc"] == first["time_utc"]
    assert "this_run" in again
    other_lock = {"file": "requirements/cpu.lock", "sha256": "0" * 64}
    monkeypatch.setattr("mh.repro.reproduce.lock_record", lambda: other_lock)
    monkeypatch.setattr("mh.manifest.lock_record", lambda: other_lock)
    rewritten = run_notebooks("smoke", notebooks=["01_ssm_zoh_discretization"], root=root)
    assert "this_run" not in rewritten and rewritten["environment"]["lock"] == other_lock
    assert json.loads((root / "results/manifests/smoke.json").read_text())["environment"]["lock"] == other_lock

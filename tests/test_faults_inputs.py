"""Faults of the second kind: inputs that would give a plausible wrong number (metrics, retrieval, encoding,
models), damaged files, a failing write or evaluation in the middle of training, and the error style every
command line shares. Each asserts the message and that nothing was lost."""

import errno
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from test_train import tiny_config, tiny_data

import mh.rundir
import mh.train
from mh.binary import as_sign_codes, label_rows
from mh.cli import cli_errors, returns_status
from mh.codes import CodeSet
from mh.datasets import DATASETS
from mh.encode import encode, resolve_device
from mh.evaluate import main as evaluate_main
from mh.io import DamagedFileError, read_json
from mh.metrics import mean_average_precision
from mh.model import MambaHash
from mh.rundir import RunDirectory
from mh.search import CodeIndex
from mh.splits import cifar_split
from mh.train import fit
from mh.train import main as train_main
from mh.weights import load_weights

RNG = np.random.default_rng(0)
CODES = np.where(RNG.random((6, 16)) > 0.5, 1.0, -1.0)
LABELS = np.array([0, 1, 2, 0, 1, 2])


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    return fit(tiny_config(runs, epochs=1), progress=False, data=tiny_data()).run_dir


def copy_run(run_dir, tmp_path):
    return shutil.copytree(run_dir, tmp_path / run_dir.name)


# --- metrics ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "database", "message"),
    [
        (np.where(CODES > 0, np.nan, -1.0), CODES, "query codes hold 3|non-finite"),
        (CODES, CODES[:, :8], "query codes have 16 bits, database codes 8"),
        (CODES[:0], CODES, "nothing to rank: 0 query codes"),
    ],
)
def test_metrics_refuse_codes_that_would_give_a_number_anyway(query, database, message):
    with pytest.raises(ValueError, match=message):
        mean_average_precision(query, database, LABELS[: len(query)], LABELS)


def test_codes_said_to_be_signs_must_be_signs():
    zero_one = (CODES > 0).astype(float)
    with pytest.raises(ValueError, match="given as sign codes but hold other values"):
        mean_average_precision(zero_one, zero_one, LABELS, LABELS, code_form="sign")
    assert as_sign_codes(zero_one, "binary01").equal(torch.as_tensor(CODES, dtype=torch.float32))


@pytest.mark.parametrize("topk", [0, -3, 2.5, True])
def test_an_invalid_topk_is_named(topk):
    with pytest.raises(
        ValueError, match="topk must be a positive integer; got .* \\(or None for the whole database\\)"
    ):
        mean_average_precision(CODES, CODES, LABELS, LABELS, topk=topk)


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (np.array([0, -1, 2]), "class indices must be ≥ 0"),
        (np.array([[0, 2], [1, 0]]), "must hold only 0 and 1"),
        (np.array([0.0, 1.0]), "must be integer class indices"),
    ],
)
def test_malformed_labels_are_named(labels, message):
    with pytest.raises(ValueError, match=message):
        label_rows(labels)


def test_a_class_index_beyond_the_class_count_is_an_error():
    with pytest.raises(ValueError, match="class index 9 is out of range for 4 classes"):
        label_rows(np.array([1, 9]), num_classes=4)


def test_labels_and_codes_must_pair_up():
    with pytest.raises(ValueError, match="each code needs one label row"):
        mean_average_precision(CODES, CODES, LABELS[:4], LABELS)


# --- retrieval -------------------------------------------------------------------------------------------


def test_an_index_refuses_queries_of_another_length_and_a_bad_k():
    index = CodeIndex.build(CodeSet.from_codes(CODES, LABELS), progress=False)
    with pytest.raises(ValueError, match="holds 16-bit codes; the queries have 8 bits"):
        index.search(CODES[:, :8], 3)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        index.search(CODES, 0)


def test_a_damaged_index_record_is_named(finished_run, tmp_path):
    from mh.search import build_run_index

    run_dir = copy_run(finished_run, tmp_path)
    path = build_run_index(run_dir, "flat")
    (path.parent / (path.name + ".meta.npz")).write_bytes(b"not an archive")
    with pytest.raises(DamagedFileError, match="is not a readable index record.*build the index again"):
        CodeIndex.load(path)


# --- encoding and models ----------------------------------------------------------------------------------


class Diverged(torch.nn.Module):
    def forward(self, images):
        return torch.full((len(images), 16), float("nan"))


def test_encoding_refuses_a_diverged_network_instead_of_writing_minus_ones():
    with pytest.raises(ValueError, match="non-finite outputs.*items 0..7"):
        encode(Diverged(), tiny_data().query, batch_size=8, progress=False)


@pytest.mark.parametrize("name", ["gpu", "cuda:x", "tpu0"])
def test_an_unknown_device_is_named(name):
    with pytest.raises(ValueError, match=f"unknown device {name!r}"):
        resolve_device(name)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"bits": 48, "depths": (1, 1, 0, 1)}, "depths must be 4 positive block counts"),
        ({"bits": 48, "dims": (32, 64, 130, 256)}, "dims must be 4 widths, each a positive multiple of 4"),
        ({"bits": 48, "variant": "no_both"}, "unknown variant"),
    ],
)
def test_bad_model_arguments_fail_at_construction_with_their_name(arguments, message):
    with pytest.raises(ValueError, match=message):
        MambaHash(**arguments)


@pytest.mark.parametrize(
    ("images", "message"),
    [
        (torch.zeros(1, 3, 32, 32, dtype=torch.uint8), "images are torch.uint8; the network takes normalised"),
        (torch.zeros(1, 3, 32, 32, dtype=torch.float64), "images are torch.float64 but the network's weights are"),
    ],
)
def test_images_of_another_dtype_are_named_with_the_conversion(images, message):
    with pytest.raises(ValueError, match=message):
        MambaHash(16, depths=(1, 1, 1, 1), dims=(16, 16, 16, 16))(images)


def test_the_model_runs_in_float64_end_to_end():
    model = MambaHash(16, depths=(1, 1, 1, 1), dims=(16, 16, 16, 16)).double().eval()
    images = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        outputs = model(images)
    assert outputs.dtype == torch.float64 and torch.isfinite(outputs).all()


def test_a_groupmamba_checkpoint_with_ema_weights_loads_the_ema_ones(tmp_path):
    model = MambaHash(16, depths=(1, 1, 1, 1), dims=(16, 16, 16, 16))
    state = model.state_dict()
    ema = {key: torch.full_like(value, 0.5) if value.is_floating_point() else value for key, value in state.items()}
    path = tmp_path / "groupmamba_small.pth"
    torch.save({"model": state, "model_ema": ema}, path)
    report = load_weights(model, path)
    assert report.nested_under == ["model_ema"] and "['model_ema']" in str(report)
    assert torch.equal(model.hash.weight, torch.full_like(model.hash.weight, 0.5))


# --- files ---------------------------------------------------------------------------------------------------


def test_a_damaged_checkpoint_is_named_on_resume(finished_run, tmp_path):
    run_dir = copy_run(finished_run, tmp_path)
    (run_dir / "checkpoint.ckpt").write_bytes(b"\x80\x02 truncated")
    with pytest.raises(DamagedFileError, match="checkpoint.ckpt is not a readable checkpoint"):
        fit(tiny_config(tmp_path, epochs=1), resume=True, progress=False, data=tiny_data())


def test_damaged_codes_are_named_by_evaluate_with_exit_status_2(finished_run, tmp_path, capsys):
    run_dir = copy_run(finished_run, tmp_path)
    (run_dir / "codes.npz").write_bytes(b"PK\x03\x04 broken zip")
    assert evaluate_main([str(run_dir)]) == 2
    error = capsys.readouterr().err
    assert "codes.npz is not a readable code archive" in error and "Traceback" not in error


def test_a_damaged_split_file_is_named(tmp_path):
    (tmp_path / "cifar10-seed2025.npz").write_bytes(b"garbage")
    with pytest.raises(DamagedFileError, match="cifar10-seed2025.npz is not a readable split file.*delete it"):
        cifar_split(np.arange(100) % 10, DATASETS["cifar10"].protocol, 2025, tmp_path)


def test_a_json_file_that_is_not_json_is_named(tmp_path):
    (tmp_path / "metrics.json").write_text("{'single': quotes}")
    with pytest.raises(DamagedFileError, match="metrics.json is not a readable JSON file"):
        read_json(tmp_path / "metrics.json")


# --- training: failing writes and evaluations ------------------------------------------------------------


def test_a_disk_full_checkpoint_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    data = tiny_data()
    fit(tiny_config(tmp_path, epochs=1), progress=False, data=data)
    run_dir = tmp_path / "tiny"
    before = (run_dir / "checkpoint.ckpt").read_bytes()

    def disk_full(state, path):
        Path(path).write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(mh.rundir.torch, "save", disk_full)
    with pytest.raises(OSError, match="No space left"):
        fit(tiny_config(tmp_path, epochs=2), resume=True, extend_epochs=True, progress=False, data=data)
    assert (run_dir / "checkpoint.ckpt").read_bytes() == before
    assert not list(run_dir.glob(".*.tmp*")) and RunDirectory(run_dir).status() == "failed"


def test_a_failing_evaluation_costs_no_training(tmp_path, monkeypatch):
    data = tiny_data()
    real = mh.train.evaluate_model
    monkeypatch.setattr(mh.train, "evaluate_model", lambda *a, **k: (_ for _ in ()).throw(MemoryError("encode")))
    with pytest.raises(MemoryError):
        fit(tiny_config(tmp_path, epochs=1), progress=False, data=data)
    state = torch.load(tmp_path / "tiny" / "checkpoint.ckpt", weights_only=False)
    assert state["epoch"] == 1 and state["history"][0]["map"] is None
    monkeypatch.setattr(mh.train, "evaluate_model", real)
    resumed = fit(tiny_config(tmp_path, epochs=1), resume=True, progress=False, data=data)
    uninterrupted = fit(tiny_config(tmp_path, epochs=1, run_name="straight"), progress=False, data=data)
    assert resumed.metrics["map"] == uninterrupted.metrics["map"] and (resumed.run_dir / "codes.npz").exists()


# --- one error style for every command line ------------------------------------------------------------------


def test_a_user_error_is_one_line_with_exit_status_2(capsys):
    assert train_main(["--device", "gpu", "--no-progress"]) == 2
    error = capsys.readouterr().err
    assert error.strip() == "error: unknown device 'gpu'; expected auto, cpu, cuda or cuda:N"


def test_a_failure_exits_1_with_a_hint_and_debug_shows_the_traceback(monkeypatch, capsys):
    @returns_status
    def command(argv):
        with cli_errors(debug=False):
            raise RuntimeError("kernel died")

    assert command(None) == 1
    assert "failed: RuntimeError: kernel died" in capsys.readouterr().err
    monkeypatch.setenv("MH_DEBUG", "1")
    with pytest.raises(RuntimeError, match="kernel died"):
        command(None)


def test_disk_full_and_permission_errors_say_so(capsys):
    @returns_status
    def command(error):
        with cli_errors():
            raise error

    assert command(OSError(errno.ENOSPC, "No space left on device", "/runs/x/checkpoint.ckpt")) == 1
    assert "the disk is full (/runs/x/checkpoint.ckpt)" in capsys.readouterr().err
    assert command(PermissionError(errno.EACCES, "Permission denied", "/results/runs")) == 2
    assert "no permission to write /results/runs" in capsys.readouterr().err

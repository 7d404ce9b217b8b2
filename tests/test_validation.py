"""Every public entry point names a bad argument, its value and the fix; every command line answers a malformed
flag with one ``error:`` line and exit status 2, never a traceback.

The cases are tables: model constructors; the same rule through ``mh.codes``, ``mh.search`` and ``mh.metrics``;
the automatic code form; damaged or foreign files; and the flags of ``mh.train``, ``mh.evaluate``,
``mh.search`` and the reproduce, each with a wrong type and an out-of-range value.
"""

import json

import numpy as np
import pytest
import torch

from mh.binary import as_sign_codes, detect_code_form, pack_codes
from mh.codes import CodeSet, retrieve, save_code_sets
from mh.evaluate import main as evaluate_main
from mh.metrics import mean_average_precision, precision_within_radius
from mh.model import MambaHash
from mh.registry import build_hashing_model
from mh.repro.reproduce import main as reproduce_main
from mh.search import CodeIndex
from mh.search import main as search_main
from mh.train import main as train_main

SMALL = {"depths": (1, 1, 1, 1), "dims": (8, 8, 8, 8)}
MPVH = {"image_size": 32, "patch_size": 8, "embed_dim": 96, "depth": 1, "num_heads": 4, "d_state": 8}

CONSTRUCTORS = [
    (lambda: MambaHash(16, afem_ratio=0, **SMALL), "afem_ratio (AFEM's λ) must be a positive integer; got 0"),
    (lambda: MambaHash(16, afem_ratio=1.5, **SMALL), "afem_ratio (AFEM's λ) must be a positive integer; got 1.5"),
    (lambda: MambaHash(16, ciam_kernel=4, **SMALL), "CIAM kernel size must be a positive odd integer; got 4"),
    (lambda: MambaHash(16, depths=(1, 1, 1, 1), dims=("a", 8, 8, 8)), "dims must be 4 widths"),
    (lambda: MambaHash(0, **SMALL), "bits must be a positive integer"),
    (lambda: build_hashing_model("vit_l_32", 16, num_layers=0), "ViT-L/32's num_layers must be a positive integer"),
    (lambda: build_hashing_model("resnet50", 16, blocks=(0, 1, 1, 1)), "blocks must be 4 positive"),
    (lambda: build_hashing_model("hybridhash", 16, image_size=33), "multiple of 16"),
    (lambda: build_hashing_model("mpvh", 16, **{**MPVH, "num_heads": 0}), "MpVH's num_heads must be a positive"),
    (lambda: build_hashing_model("mpvh", 16, **{**MPVH, "embed_dim": 97}), "embed_dim 97 must be a multiple of"),
    (lambda: build_hashing_model("mpvh", 16, **{**MPVH, "depth": 0}), "MpVH's depth must be a positive integer"),
    (lambda: build_hashing_model("mpvh", 16, **MPVH, gate_threshold=2.0), "gate_threshold must be a number in"),
    (lambda: build_hashing_model("alexnet", 16), "unknown model 'alexnet'; expected one of"),
    (lambda: build_hashing_model("resnet50", 16, size="huge"), "unknown model size 'huge'"),
]


@pytest.mark.parametrize("make, message", CONSTRUCTORS, ids=[m for _, m in CONSTRUCTORS])
def test_model_constructors_name_the_bad_argument(make, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make()


@pytest.fixture(scope="module")
def codes():
    rng = np.random.default_rng(0)
    database = np.where(rng.random((30, 16)) > 0.5, 1, -1)
    return database, rng.integers(0, 3, 30), CodeSet.from_codes(database, rng.integers(0, 3, 30))


@pytest.mark.parametrize("bad_k", [0, -3, 2.5, True, "5"])
def test_k_follows_one_rule_through_retrieve_the_index_and_map(codes, bad_k):
    database, labels, code_set = codes
    index = CodeIndex.build(code_set, progress=False)
    for call in (
        lambda: retrieve(database[0], code_set, k=bad_k),
        lambda: index.search(database[:2], k=bad_k),
        lambda: mean_average_precision(database[:2], database, labels[:2], labels, topk=bad_k),
    ):
        with pytest.raises(ValueError, match=f"(k|topk) must be a positive integer; got {bad_k!r}"):
            call()


@pytest.mark.parametrize("bad_radius", [-1, 17, 1.5])
def test_a_radius_follows_one_rule_through_the_index_and_the_metric(codes, bad_radius):
    database, labels, code_set = codes
    with pytest.raises(ValueError, match=f"radius must be an integer in 0..16; got {bad_radius!r}"):
        CodeIndex.build(code_set, progress=False).within_radius(database[:1], bad_radius)
    with pytest.raises(ValueError, match=f"radius must be an integer in 0..16; got {bad_radius!r}"):
        precision_within_radius(database[:2], database, labels[:2], labels, radius=bad_radius)


def test_retrieve_refuses_a_query_of_another_length_and_unpacked_databases(codes):
    database, _, code_set = codes
    with pytest.raises(ValueError, match="the database holds 16-bit codes; query_code has 12 values"):
        retrieve(database[0, :12], code_set)
    with pytest.raises(ValueError, match="database must be a CodeSet or packed"):
        retrieve(database[0], database)
    assert retrieve(pack_codes(database[:1])[0], code_set, k=1)[0].tolist() == [0]


def test_the_automatic_code_form_takes_signs_bits_or_real_outputs_and_says_which():
    assert detect_code_form(np.array([[1, -1]])) == "sign"
    assert detect_code_form(np.array([[0, 1]])) == "binary01"
    assert detect_code_form(torch.tensor([[0.3, -2.0]])) == "real"
    with pytest.raises(ValueError, match=r"integers but neither ±1 nor 0/1 \(found values \[0, 2, 3\]"):
        as_sign_codes(np.array([[2, 3], [0, 2]]))
    with pytest.raises(ValueError, match="integers but neither"):
        mean_average_precision(np.array([[2, 3]]), np.array([[2, 3]]), np.array([0]), np.array([0]))


def finished_run(tmp_path, dataset="cifar10"):
    rng = np.random.default_rng(1)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    sets = {
        name: CodeSet.from_codes(np.where(rng.random((n, 16)) > 0.5, 1, -1), rng.integers(0, 3, n))
        for name, n in (("query", 4), ("database", 20))
    }
    save_code_sets(run_dir / "codes.npz", **sets)
    (run_dir / "config.json").write_text(json.dumps({"dataset": dataset, "model": "mambahash", "bits": 16}))
    (run_dir / "status.json").write_text(json.dumps({"status": "finished"}))
    return run_dir


def one_error_line(capsys) -> str:
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and error.startswith("error: ") and "Traceback" not in error, error
    return error


def test_a_damaged_faiss_index_is_named_with_exit_status_2(tmp_path, capsys):
    run_dir = finished_run(tmp_path)
    assert search_main(["build", str(run_dir)]) == 0
    index_path = run_dir / "database-flat.faissindex"
    index_path.write_bytes(b"this is not a FAISS index")
    capsys.readouterr()
    assert search_main(["query", str(index_path), "--query-id", "0"]) == 2
    assert "is not a readable FAISS binary index" in one_error_line(capsys)


def test_a_config_naming_an_unknown_dataset_is_a_user_error_that_lists_the_known_ones(tmp_path, capsys):
    assert evaluate_main([str(finished_run(tmp_path, dataset="mnist"))]) == 2
    assert "unknown dataset 'mnist'; expected one of cifar10, cifar10-1" in one_error_line(capsys)


MALFORMED = [
    (train_main, ["--bits", "forty"], "argument --bits: invalid int value"),
    (train_main, ["--bits", "24"], "argument --bits: invalid choice: 24"),
    (train_main, ["--epochs", "two"], "argument --epochs: invalid int value"),
    (train_main, ["--epochs", "0"], "epochs must be at least 1; got 0"),
    (train_main, ["--batch-size", "0"], "batch_size must be at least 1; got 0"),
    (train_main, ["--lr", "fast"], "argument --lr: invalid float value"),
    (train_main, ["--lr", "-1"], "learning_rate must be at least 0.0; got -1.0"),
    (train_main, ["--weight-decay=-1e-7"], "weight_decay must be at least 0.0"),
    (train_main, ["--image-size", "16"], "image_size must be at least 32; got 16"),
    (train_main, ["--eval-every", "0"], "eval_every must be at least 1"),
    (train_main, ["--num-workers", "-1"], "num_workers must be at least 0"),
    (train_main, ["--encode-batch-size", "0"], "encode_batch_size must be at least 1"),
    (train_main, ["--transform-style", "fancy"], "argument --transform-style: invalid choice"),
    (train_main, ["--model-size", "huge"], "argument --model-size: invalid choice"),
    (train_main, ["--optimizer", "lion"], "unknown optimizer 'lion'"),
    (train_main, ["--loss", "hinge"], "unknown loss 'hinge'"),
    (train_main, ["--model", "alexnet"], "unknown model 'alexnet'"),
    (train_main, ["--dataset", "mnist"], "argument --dataset: invalid choice"),
    (train_main, ["--profile", "huge"], "argument --profile: invalid choice"),
    (train_main, ["--seed", "x"], "argument --seed: invalid int value"),
    (train_main, ["--seed", "-1"], "seed must be an integer in 0..4294967295; got -1"),
    (train_main, ["--log-every", "0"], "log_every must be positive; got 0"),
    (train_main, ["--verify-data", "some"], "argument --verify-data: invalid choice"),
    (train_main, ["--device", "tpu"], "unknown device 'tpu'"),
    (train_main, ["--unknown-flag"], "unrecognized arguments: --unknown-flag"),
    (evaluate_main, [], "the following arguments are required: run_dir"),
    (evaluate_main, ["RUN", "--topk", "many"], "argument --topk: invalid int value"),
    (evaluate_main, ["RUN", "--topk", "-5"], "--topk must be a positive number"),
    (evaluate_main, ["RUN"], "codes.npz is missing"),
    (search_main, [], "the following arguments are required: command"),
    (search_main, ["build", "RUN", "--index", "btree"], "argument --index: invalid choice"),
    (search_main, ["build", "RUN"], "codes.npz is missing"),
    (search_main, ["query", "INDEX", "--query-id", "one"], "argument --query-id: invalid int value"),
    (search_main, ["query", "INDEX", "--query-id", "0", "-k", "x"], "argument -k: invalid int value"),
    (search_main, ["query", "INDEX"], "one of the arguments --image --query-id is required"),
    (search_main, ["query", "INDEX", "--query-id", "0"], "does not exist; build the index"),
    (reproduce_main, ["--profile", "huge"], "argument --profile: invalid choice"),
    (reproduce_main, ["--seed", "x"], "argument --seed: invalid int value"),
    (reproduce_main, ["--seed", "-1"], "--seed must be an integer in 0..4294967295; got -1"),
    (reproduce_main, ["--only", "99_missing"], "unknown notebooks ['99_missing']"),
]


@pytest.mark.parametrize("command, argv, message", MALFORMED, ids=[" ".join(a) or "(none)" for _, a, _ in MALFORMED])
def test_a_malformed_command_line_is_one_error_line_and_exit_status_2(command, argv, message, capsys, tmp_path):
    argv = [str(tmp_path / arg) if arg in ("RUN", "INDEX") else arg for arg in argv]
    assert command(argv) == 2
    assert message.replace("RUN", "") in one_error_line(capsys)


def test_a_damaged_reproduce_manifest_is_named_before_any_notebook_runs(tmp_path):
    from test_faults_reproduce import fake_repository

    from mh.io import DamagedFileError
    from mh.repro.reproduce import run_notebooks

    root = fake_repository(tmp_path, ["PROFILE = 'auto'"])  # its results/manifests/smoke.json is not JSON
    with pytest.raises(DamagedFileError, match="smoke.json is not a readable reproduce manifest"):
        run_notebooks("smoke", notebooks=["01_ssm_zoh_discretization"], root=root)
    assert not (root / "notebooks/executed/smoke/01_ssm_zoh_discretization.ipynb").read_text().startswith("{")


@pytest.mark.parametrize(
    "kind, options, message",
    [
        ("multihash", {"tables": 0}, "tables must be an integer in 1..16; got 0"),
        ("hash", {"hash_bits": 0}, "hash_bits must be an integer in 1..16; got 0"),
        ("ivf", {"cells": 0}, "cells must be an integer in 1..30; got 0"),
        ("hnsw", {"neighbours": 2.5}, "neighbours must be an integer in 1..1024; got 2.5"),
        ("flat", {"nprobe": 4}, r"the flat index takes no options \['nprobe'\]; it takes none"),
        ("ivf", {"nflip": 1}, r"the ivf index takes no options \['nflip'\]; it takes \['cells', 'nprobe'\]"),
        ("btree", {}, "unknown index kind 'btree'; expected one of flat, hash"),
    ],
)
def test_index_options_are_named_when_unknown_or_out_of_range(codes, kind, options, message):
    with pytest.raises(ValueError, match=message):
        CodeIndex.build(codes[2], kind, progress=False, **options)


@pytest.mark.parametrize("size", [0, -5, 2.5])
def test_a_subset_size_is_named(size, tmp_path):
    from mh.datasets import load_hashing_data

    with pytest.raises(ValueError, match=f"subset\\['train'\\] must be a positive integer; got {size!r}"):
        load_hashing_data("imagenet", tmp_path, image_size=32, subset={"train": size})

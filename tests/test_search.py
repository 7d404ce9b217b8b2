"""mh.search: FAISS binary indexes give mh.metrics' exact ranking, radius search equals brute force, files
round-trip, and bad queries are explained."""

import json

import numpy as np
import pytest
import torch

from mh.binary import hamming_distances, pack_codes
from mh.codes import CodeSet, save_code_sets
from mh.metrics import mean_average_precision
from mh.search import CodeIndex, index_mean_average_precision, main, meta_path

pytest.importorskip("faiss")


def code_set(rng, n, bits, classes, multi_label=False, metadata=None):
    codes = rng.choice([-1.0, 1.0], size=(n, bits))
    if multi_label:
        labels = (rng.random((n, classes)) < 0.3).astype(np.float32)
    else:
        labels = np.eye(classes, dtype=np.float32)[rng.integers(0, classes, n)]
    return CodeSet.from_codes(codes, labels, metadata)


def clustered_code_set(rng, n, bits, classes, flip=0.2):
    """Codes near one centre per class: what a trained network gives, with far fewer ties than random codes."""
    centres = rng.choice([-1.0, 1.0], size=(classes, bits))
    labels = rng.integers(0, classes, n)
    codes = np.where(rng.random((n, bits)) < flip, -centres[labels], centres[labels])
    return CodeSet.from_codes(codes, np.eye(classes, dtype=np.float32)[labels])


CASES = {  # (bits, database size, classes, multi-label): 8 and 16 bits over hundreds of items → many ties
    "8 bits, single label": (8, 400, 5, False),
    "16 bits, multi-label": (16, 300, 6, True),
    "16 bits, single label": (16, 500, 10, False),
    "64 bits, clustered": (64, 600, 10, None),
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("topk", [None, 50])
def test_flat_index_map_equals_mh_metrics(case, topk):
    bits, size, classes, multi_label = CASES[case]
    rng = np.random.default_rng(bits + size)
    if multi_label is None:
        database, queries = clustered_code_set(rng, size, bits, classes), clustered_code_set(rng, 40, bits, classes)
    else:
        database = code_set(rng, size, bits, classes, multi_label)
        queries = code_set(rng, 40, bits, classes, multi_label)
    index = CodeIndex.build(database, "flat", progress=False)
    expected = mean_average_precision(queries.codes, database.codes, queries.labels, database.labels, topk=topk)
    assert abs(index_mean_average_precision(index, queries, topk) - expected) <= 1e-9


def test_flat_ranking_breaks_ties_by_position_like_brute_force():
    rng = np.random.default_rng(3)
    database, queries = code_set(rng, 300, 8, 3), code_set(rng, 20, 8, 3)
    distances, positions = CodeIndex.build(database, progress=False).search(queries, k=37)
    brute = hamming_distances(queries.packed, np.ascontiguousarray(database.packed.T)).astype(np.int64)
    order = np.argsort(brute, axis=1, kind="stable")[:, :37]
    np.testing.assert_array_equal(positions, order)
    np.testing.assert_array_equal(distances, np.take_along_axis(brute, order, 1))


@pytest.mark.parametrize("kind", ["flat", "hash", "multihash", "ivf"])
def test_radius_search_equals_brute_force(kind):
    rng = np.random.default_rng(4)
    database, queries = clustered_code_set(rng, 2000, 32, 8, flip=0.05), clustered_code_set(rng, 25, 32, 8, 0.05)
    options = {"flat": {}, "hash": {"nflip": 2}, "multihash": {"nflip": 2}, "ivf": {"nprobe": 10_000}}[kind]
    index = CodeIndex.build(database, kind, progress=False, **options)
    brute = hamming_distances(queries.packed, np.ascontiguousarray(database.packed.T)).astype(np.int64)
    for radius in (0, 1, 2):
        for row, (distances, positions) in enumerate(index.within_radius(queries, radius)):
            expected = np.flatnonzero(brute[row] <= radius)
            np.testing.assert_array_equal(np.sort(positions), expected)
            np.testing.assert_array_equal(distances, brute[row, positions])
            assert list(zip(distances, positions, strict=True)) == sorted(zip(distances, positions, strict=True))


@pytest.mark.parametrize("kind", ["flat", "multihash", "ivf", "hnsw"])
def test_save_load_gives_identical_results(tmp_path, kind):
    rng = np.random.default_rng(5)
    database, queries = clustered_code_set(rng, 1500, 64, 10), clustered_code_set(rng, 30, 64, 10)
    index = CodeIndex.build(database, kind, ids=np.arange(1500) * 7 + 3, metadata={"run": "x"}, progress=False)
    path = index.save(tmp_path / f"{kind}.faissindex")
    loaded = CodeIndex.load(path)
    assert (loaded.kind, loaded.bits, loaded.metadata) == (kind, 64, {"run": "x"})
    np.testing.assert_array_equal(loaded.ids, index.ids)
    np.testing.assert_array_equal(loaded.labels, database.labels)
    for a, b in zip(index.search(queries, 20), loaded.search(queries, 20), strict=True):
        np.testing.assert_array_equal(a, b)


def test_approximate_indexes_find_most_exact_neighbours():
    rng = np.random.default_rng(6)
    database, queries = clustered_code_set(rng, 5000, 64, 10), clustered_code_set(rng, 50, 64, 10)
    _, exact = CodeIndex.build(database, progress=False).search(queries, 100)
    for kind in ("ivf", "hnsw"):
        distances, positions = CodeIndex.build(database, kind, progress=False).search(queries, 100)
        recall = np.mean([len(set(a) & set(b)) / 100 for a, b in zip(positions, exact, strict=True)])
        assert recall > 0.5, kind
        assert (np.diff(distances, axis=1) >= 0).all()


def test_wrong_code_length_and_bad_arguments_are_explained(tmp_path):
    rng = np.random.default_rng(7)
    index = CodeIndex.build(code_set(rng, 100, 64, 4), progress=False)
    with pytest.raises(ValueError, match="holds 64-bit codes; the queries have 48 bits"):
        index.search(rng.choice([-1.0, 1.0], size=(2, 48)), 5)
    with pytest.raises(ValueError, match="holds 64-bit codes; the queries have 48 bits"):
        index.search(pack_codes(rng.choice([-1.0, 1.0], size=(2, 48))), 5)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        index.search(rng.choice([-1.0, 1.0], size=(2, 64)), 0)
    with pytest.raises(ValueError, match="radius must be an integer"):
        index.within_radius(rng.choice([-1.0, 1.0], size=(2, 64)), 65)
    with pytest.raises(ValueError, match="multiple of 8 bits"):
        CodeIndex.build(code_set(rng, 10, 12, 2), progress=False)
    with pytest.raises(ValueError, match="unknown index kind"):
        CodeIndex.build(code_set(rng, 10, 16, 2), "lsh", progress=False)
    with pytest.raises(ValueError, match="no range search"):
        CodeIndex.build(code_set(rng, 50, 16, 2), "hnsw", progress=False).within_radius(np.ones((1, 16)), 1)


def test_an_index_that_disagrees_with_its_record_is_refused(tmp_path):
    rng = np.random.default_rng(8)
    path = CodeIndex.build(code_set(rng, 100, 32, 4), progress=False).save(tmp_path / "a.faissindex")
    other = CodeIndex.build(code_set(rng, 100, 64, 4), "hnsw", progress=False).save(tmp_path / "b.faissindex")
    meta_path(other).replace(meta_path(path))
    with pytest.raises(ValueError, match=r"kind: index flat, record hnsw; bits: index 32, record 64"):
        CodeIndex.load(path)
    with pytest.raises(FileNotFoundError, match="python -m mh.search build"):
        CodeIndex.load(tmp_path / "missing.faissindex")


def test_command_line_build_and_query(tmp_path, capsys):
    rng = np.random.default_rng(9)
    database, queries = clustered_code_set(rng, 300, 16, 4), clustered_code_set(rng, 5, 16, 4)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    save_code_sets(run_dir / "codes.npz", query=queries, database=database)
    assert main(["build", str(run_dir), "--index", "flat"]) == 0
    index_path = run_dir / "database-flat.faissindex"
    assert index_path.is_file() and meta_path(index_path).is_file()
    capsys.readouterr()
    assert main(["query", str(index_path), "--query-id", "2", "-k", "4", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    _, expected = CodeIndex.load(index_path).search(queries.packed[2:3], 4)
    assert [row["position"] for row in printed["results"]] == expected[0].tolist()
    first = printed["results"][0]
    assert first["labels"] == [int(database.labels[first["position"]].argmax())] and first["id"] == first["position"]
    assert main(["query", str(index_path), "--query-id", "99"]) == 2
    assert "--query-id must be in 0..4" in capsys.readouterr().err


def test_command_line_encodes_an_image_with_the_runs_network(tmp_path, capsys):
    from PIL import Image

    from mh.registry import build_hashing_model

    torch.manual_seed(0)
    model = build_hashing_model("mambahash", 16, image_size=32)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    profile = {"image_size": 32, "transform_style": "paper"}
    (run_dir / "config.json").write_text(json.dumps({"model": "mambahash", "bits": 16, "resolved_profile": profile}))
    torch.save({"model": model.state_dict()}, run_dir / "checkpoint.ckpt")
    rng = np.random.default_rng(10)
    save_code_sets(run_dir / "codes.npz", query=code_set(rng, 3, 16, 2), database=code_set(rng, 50, 16, 2))
    assert main(["build", str(run_dir)]) == 0
    image_path = tmp_path / "query.png"
    Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(image_path)
    capsys.readouterr()
    assert main(["query", str(run_dir / "database-flat.faissindex"), "--image", str(image_path), "-k", "3"]) == 0
    assert "top 3 of 50 (flat index, 16 bits)" in capsys.readouterr().out
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    assert main(["query", str(run_dir / "database-flat.faissindex"), "--image", str(tmp_path / "broken.jpg")]) == 2
    assert "cannot read the image" in capsys.readouterr().err


def test_without_faiss_the_error_names_the_install_command(monkeypatch):
    import importlib

    import mh.search

    real_import = importlib.import_module
    monkeypatch.setattr(
        importlib,
        "import_module",
        lambda name: (_ for _ in ()).throw(ImportError(name)) if name == "faiss" else real_import(name),
    )
    with pytest.raises(ImportError, match="pip install faiss-cpu"):
        mh.search.faiss_module()


def test_scaling_study_rows_and_tie_aware_recall():
    from mh.repro.scaling import bit_balance, scaling_study, tie_aware_recall

    exact = np.array([[1, 2, 3, 3]])
    assert tie_aware_recall(np.array([[1, 3, 3, 3]]), exact) == 1.0  # any item tied at the 4th distance counts
    assert tie_aware_recall(np.array([[1, 2, 4, -1]]), exact) == 0.5  # too far, and not found
    balance = bit_balance(np.where(np.random.default_rng(0).random((50, 48)) < 0.7, 1, -1), 64)
    assert balance.shape == (64,) and 0.6 < balance.mean() < 0.8
    study = scaling_study(
        balance, [3000], [16], ["flat", "ivf", "hnsw"], {"hnsw": 1000}, queries=10, k=20, timed=5, brute_force_at=3000
    )
    assert list(study["index"]) == [
        "flat",
        "flat (FAISS tie order)",
        "ivf",
        "float IndexFlatL2",
        "mh.codes.retrieve (numpy)",
    ]  # hnsw skipped above its size cap
    flat = study.set_index("index").loc[["flat", "flat (FAISS tie order)"]]
    assert (
        (flat["recall@20"] == 1.0).all()
        and (study["queries/s"] > 0).all()
        and (study["p99 ms"] >= study["p50 ms"]).all()
    )
    assert study.set_index("index").loc["float IndexFlatL2", "bytes/item"] == 64 and flat["bytes/item"].eq(2).all()

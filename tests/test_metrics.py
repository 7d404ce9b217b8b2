"""Hashing metrics against per-query float64 references and hand-checked examples."""

import numpy as np
import pytest
import torch

from mh.binary import as_sign_codes, hamming_distances, label_rows, pack_codes, unpack_codes
from mh.codes import CodeSet, load_code_sets, retrieve, save_code_sets
from mh.metrics import (
    average_precisions,
    chance_map,
    mean_average_precision,
    pr_curve_by_radius,
    precision_recall_at_n,
    precision_within_radius,
    reference_mean_average_precision,
)


def random_data(rng, n_q, n_db, bits, classes, multi_label):
    q = rng.choice([-1.0, 1.0], size=(n_q, bits))
    d = rng.choice([-1.0, 1.0], size=(n_db, bits))
    if multi_label:
        ql = (rng.random((n_q, classes)) < 0.3).astype(float)
        dl = (rng.random((n_db, classes)) < 0.3).astype(float)
    else:
        ql = np.eye(classes)[rng.integers(0, classes, n_q)]
        dl = np.eye(classes)[rng.integers(0, classes, n_db)]
    return q, d, ql, dl


@pytest.mark.parametrize("multi_label", [False, True])
@pytest.mark.parametrize("topk", [None, 1, 17, 300])
def test_map_equals_per_query_reference(multi_label, topk):
    rng = np.random.default_rng(1)
    q, d, ql, dl = random_data(rng, 23, 211, 8, 5, multi_label)  # 8 bits: many ties
    got = mean_average_precision(q, d, ql, dl, topk=topk, query_chunk=7)
    assert abs(got - reference_mean_average_precision(q, d, ql, dl, topk)) < 1e-9


def test_deephash_compat_drops_the_last_item():
    rng = np.random.default_rng(2)
    q, d, ql, dl = random_data(rng, 11, 50, 16, 3, False)
    got = mean_average_precision(q, d, ql, dl, deephash_compat=True)
    assert abs(got - reference_mean_average_precision(q, d, ql, dl, deephash_compat=True)) < 1e-9
    assert mean_average_precision(q, d, ql, dl, topk=10, deephash_compat=True) == mean_average_precision(
        q, d, ql, dl, topk=10
    )


def test_map_accepts_01_codes_torch_and_class_indices():
    rng = np.random.default_rng(3)
    q, d, ql, dl = random_data(rng, 9, 40, 12, 4, False)
    expected = mean_average_precision(q, d, ql, dl)
    got = mean_average_precision(torch.tensor((q + 1) / 2), (d + 1) / 2, ql.argmax(1), torch.tensor(dl.argmax(1)))
    assert got == pytest.approx(expected, abs=1e-12)
    assert mean_average_precision(0.3 * q, d * 0.9, ql, dl) == pytest.approx(expected, abs=1e-12)  # real: sign


def test_hand_checked_example():
    # 2-bit codes; query 0 = (+1, +1), label 0. Database distances: 0, 1, 1, 2 with labels 0, 1, 0, 0.
    q = np.array([[1, 1]])
    d = np.array([[1, 1], [1, -1], [-1, 1], [-1, -1]])
    ql, dl = np.array([0]), np.array([0, 1, 0, 0])
    # ranking 0, 1, 2, 3 (ties 1/2 by index): relevant at ranks 1, 3, 4 → AP = (1/1 + 2/3 + 3/4) / 3
    assert mean_average_precision(q, d, ql, dl) == pytest.approx((1 + 2 / 3 + 3 / 4) / 3)
    assert reference_mean_average_precision(q, d, ql, dl) == pytest.approx((1 + 2 / 3 + 3 / 4) / 3)
    assert reference_mean_average_precision(q, d, ql, dl, topk=2) == pytest.approx(1.0)
    # top-2: relevant at rank 1 only
    assert mean_average_precision(q, d, ql, dl, topk=2) == pytest.approx(1.0)
    pr = pr_curve_by_radius(q, d, ql, dl)
    np.testing.assert_allclose(pr["precision"], [1.0, 2 / 3, 3 / 4])
    np.testing.assert_allclose(pr["recall"], [1 / 3, 2 / 3, 1.0])
    at_n = precision_recall_at_n(q, d, ql, dl, [1, 2, 3, 4])
    np.testing.assert_allclose(at_n["precision"], [1.0, 1 / 2, 2 / 3, 3 / 4])
    np.testing.assert_allclose(at_n["recall"], [1 / 3, 1 / 3, 2 / 3, 1.0])
    assert precision_within_radius(q, d, ql, dl, radius=1) == pytest.approx(2 / 3)


def test_precision_within_radius_counts_empty_queries_as_zero():
    q = np.array([[1, 1, 1, 1], [-1, -1, -1, -1]])
    d = np.array([[1, 1, 1, -1], [1, 1, 1, 1]])  # second query: nearest item at distance 3
    labels_q, labels_d = np.array([0, 0]), np.array([0, 1])
    # query 1: within radius 2 → items 0 (relevant) and 1 (not): 1/2. query 2: nothing → 0.
    assert precision_within_radius(q, d, labels_q, labels_d, radius=2) == pytest.approx(0.25)


def test_bad_inputs_are_explained():
    q, d = np.ones((2, 8)), np.ones((3, 16))
    with pytest.raises(ValueError, match="8 bits, database codes 16"):
        mean_average_precision(q, d, [0, 1], [0, 1, 0])
    with pytest.raises(ValueError, match="one label row"):
        mean_average_precision(q, np.ones((3, 8)), [0, 1, 1], [0, 1, 0])
    with pytest.raises(ValueError, match="topk"):
        mean_average_precision(q, np.ones((3, 8)), [0, 1], [0, 1, 0], topk=0)
    with pytest.raises(ValueError, match=r"codes must be \(n, bits\)"):
        as_sign_codes(np.ones(8))


def test_packing_round_trip_and_popcount_distances(tmp_path):
    rng = np.random.default_rng(4)
    codes = rng.choice([-1, 1], size=(30, 48))
    packed = pack_codes(codes)
    assert packed.shape == (30, 6) and packed.dtype == np.uint8
    assert np.array_equal(unpack_codes(packed, 48), codes)
    expected = 0.5 * (48 - codes[:5] @ codes.T)
    assert np.array_equal(hamming_distances(packed[:5], np.ascontiguousarray(packed.T)), expected.astype(np.int64))

    code_set = CodeSet.from_codes(codes, np.arange(30) % 3, {"bits": 48, "split": "database"})
    save_code_sets(tmp_path / "codes.npz", database=code_set, query=CodeSet.from_codes(codes[:4], [0, 1, 2, 0]))
    loaded = load_code_sets(tmp_path / "codes.npz")
    assert set(loaded) == {"database", "query"}
    assert np.array_equal(loaded["database"].codes, codes) and loaded["database"].metadata["split"] == "database"

    indices, distances = retrieve(codes[7], loaded["database"], k=5)
    assert indices[0] == 7 and distances[0] == 0
    assert list(distances) == sorted(distances)
    full = hamming_distances(packed[7], np.ascontiguousarray(packed.T))[0]
    assert list(indices) == list(np.argsort(full, kind="stable")[:5])


def test_showcase_queries_follow_the_stated_rule():
    from mh.metrics import showcase_queries

    aps = np.array([0.5, 0.1, 0.9, 0.5, 0.3])
    assert showcase_queries(aps) == [2, 0, 1]  # best, median (tie at 0.5: the lower position), worst
    assert showcase_queries(aps, quantiles=(0.25,)) == [4]


def test_per_query_aps_average_to_the_map():
    from mh.metrics import mean_average_precision, query_average_precisions

    rng = np.random.default_rng(0)
    q, d = rng.choice([-1, 1], (6, 16)), rng.choice([-1, 1], (30, 16))
    ql, dl = np.eye(3)[rng.integers(0, 3, 6)], np.eye(3)[rng.integers(0, 3, 30)]
    aps = query_average_precisions(q, d, ql, dl)
    assert aps.shape == (6,) and np.isclose(aps.mean(), mean_average_precision(q, d, ql, dl))


@pytest.mark.parametrize("multi_label", [False, True])
def test_the_chance_level_in_closed_form_equals_random_rankings_averaged(multi_label):
    """chance_map's formula == the mAP of many uniformly random rankings (the module's own AP); for a database
    as large as CIFAR-10's it is R/N to three decimals (small databases sit above R/N: the H_N/N term)."""
    generator = np.random.default_rng(5)
    n_q, n_db = 20, 60
    if multi_label:
        query_labels = torch.as_tensor(generator.random((n_q, 4)) < 0.3, dtype=torch.float32)
        db_labels = torch.as_tensor(generator.random((n_db, 4)) < 0.3, dtype=torch.float32)
    else:
        query_labels = torch.as_tensor(generator.integers(0, 5, n_q))
        db_labels = torch.as_tensor(generator.integers(0, 5, n_db))
    relevant = (label_rows(query_labels, 5) @ label_rows(db_labels, 5).t() > 0).numpy()
    draws = 4000
    ranked = np.stack([relevant[:, generator.permutation(n_db)] for _ in range(draws)]).reshape(draws * n_q, n_db)
    simulated = average_precisions(ranked).mean()
    assert chance_map(query_labels, db_labels) == pytest.approx(simulated, abs=3e-3)
    cifar_like = chance_map(torch.arange(10), torch.arange(54000) % 10)
    assert cifar_like == pytest.approx(0.1002, abs=5e-5)

"""Invariants a hashing library must keep, checked by Hypothesis on drawn codes and labels.

Each property draws ``EXAMPLES`` cases (``settings(max_examples=...)``); Hypothesis shrinks a failure to its
smallest case. The tie rule (``mh.metrics.RANKING_CONVENTION``: ties by database index) decides an AP only
when one Hamming distance holds both relevant and irrelevant items, so the database-permutation property
draws one query whose relevant items are those at chosen distances, where no tie is mixed.
"""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mh.binary import as_sign_codes, hamming_distances, pack_codes, pack_words, unpack_codes
from mh.metrics import mean_average_precision
from mh.search import CodeIndex

EXAMPLES = 200
BITS = st.sampled_from([8, 16, 24, 48, 64, 72])


@st.composite
def code_sets(draw, min_items=1, max_items=40):
    """(n, K) ±1 int8 codes for a drawn K and n."""
    bits, items = draw(BITS), draw(st.integers(min_items, max_items))
    signs = draw(arrays(np.bool_, (items, bits)))
    return np.where(signs, 1, -1).astype(np.int8)


@st.composite
def retrieval_problems(draw):
    """Query codes, database codes and class labels of both."""
    database = draw(code_sets(min_items=2))
    bits = database.shape[1]
    queries = np.where(draw(arrays(np.bool_, (draw(st.integers(1, 8)), bits))), 1, -1).astype(np.int8)
    classes = draw(st.integers(2, 5))
    query_labels = draw(arrays(np.int64, len(queries), elements=st.integers(0, classes - 1)))
    db_labels = draw(arrays(np.int64, len(database), elements=st.integers(0, classes - 1)))
    return queries, database, query_labels, db_labels


def distances(queries, database) -> np.ndarray:
    return hamming_distances(pack_codes(queries), np.ascontiguousarray(pack_codes(database).T)).astype(np.int64)


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.data())
def test_map_is_invariant_to_permuting_the_database_with_its_labels_when_no_tie_is_mixed(data):
    database = data.draw(code_sets(min_items=2))
    query = np.where(data.draw(arrays(np.bool_, (1, database.shape[1]))), 1, -1).astype(np.int8)
    found = distances(query, database)[0]
    relevant_distances = data.draw(st.sets(st.sampled_from(sorted(set(found.tolist())))))
    db_labels = np.isin(found, sorted(relevant_distances)).astype(np.int64)  # class 1 = relevant to the query
    order = data.draw(st.permutations(range(len(database))))
    before = mean_average_precision(query, database, np.array([1]), db_labels)
    after = mean_average_precision(query, database[order], np.array([1]), db_labels[order])
    assert after == before


@settings(max_examples=EXAMPLES, deadline=None)
@given(retrieval_problems(), st.data())
def test_map_is_invariant_to_permuting_the_queries_and_to_flipping_one_bit_everywhere(problem, data):
    queries, database, query_labels, db_labels = problem
    reference = mean_average_precision(queries, database, query_labels, db_labels)
    order = data.draw(st.permutations(range(len(queries))))
    assert np.isclose(mean_average_precision(queries[order], database, query_labels[order], db_labels), reference)
    bit = data.draw(st.integers(0, queries.shape[1] - 1))
    flipped_queries, flipped_database = queries.copy(), database.copy()
    flipped_queries[:, bit] *= -1
    flipped_database[:, bit] *= -1
    assert mean_average_precision(flipped_queries, flipped_database, query_labels, db_labels) == reference


@settings(max_examples=EXAMPLES, deadline=None)
@given(code_sets())
def test_pack_unpack_and_sign_binary_round_trips(codes):
    assert np.array_equal(unpack_codes(pack_codes(codes), codes.shape[1]), codes)
    zero_one = (codes > 0).astype(np.uint8)
    assert np.array_equal(as_sign_codes(zero_one).numpy(), codes)
    assert np.array_equal((as_sign_codes(codes).numpy() > 0).astype(np.uint8), zero_one)
    assert np.array_equal(pack_codes(zero_one), pack_codes(codes))


@settings(max_examples=EXAMPLES, deadline=None)
@given(code_sets(), code_sets())
def test_hamming_distances_agree_across_the_byte_and_word_layouts(queries, database):
    database = database[:, : queries.shape[1]] if database.shape[1] >= queries.shape[1] else None
    if database is None:
        return
    by_bytes = distances(queries, database)
    by_words = hamming_distances(pack_words(queries), np.ascontiguousarray(pack_words(database).T))
    brute = (queries[:, None, :] != database[None, :, :]).sum(-1)
    assert np.array_equal(by_bytes, brute) and np.array_equal(by_words.astype(np.int64), brute)


@settings(max_examples=EXAMPLES, deadline=None)
@given(retrieval_problems(), st.integers(1, 50))
def test_the_flat_index_top_k_equals_brute_force(problem, k):
    queries, database, _, _ = problem
    index = CodeIndex.build(pack_codes(database), kind="flat", bits=database.shape[1], progress=False)
    found_distances, positions = index.search(queries, k=k)
    brute = distances(queries, database)
    expected = np.argsort(brute, axis=1, kind="stable")[:, : min(k, len(database))]
    assert np.array_equal(positions, expected)
    assert np.array_equal(found_distances, np.take_along_axis(brute, expected, 1))


@settings(max_examples=EXAMPLES, deadline=None)
@given(retrieval_problems(), st.data())
def test_radius_results_are_exactly_the_items_within_the_radius(problem, data):
    queries, database, _, _ = problem
    radius = data.draw(st.integers(0, database.shape[1]))
    hits = CodeIndex.build(pack_codes(database), kind="flat", bits=database.shape[1], progress=False).within_radius(
        queries, radius
    )
    brute = distances(queries, database)
    for row, (found, positions) in zip(brute, hits, strict=True):
        assert sorted(positions.tolist()) == np.flatnonzero(row <= radius).tolist()
        assert np.array_equal(found, row[positions])

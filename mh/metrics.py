"""Hashing metrics: mAP@topK, precision–recall curves, precision@N, precision within Hamming radius 2.

Convention (written into every results file as ``RANKING_CONVENTION``):
    * codes are compared by Hamming distance; ranking is by distance, ties broken by database index
      (a stable sort), so results never depend on the sorting algorithm;
    * a database item is relevant to a query when they share at least one label;
    * AP of a query = Σ_k P@k · rel_k / Σ_k rel_k over its top K (K = topk, or the whole database when
      topk is None); a query with no relevant item in its top K adds AP 0 to the mean;
    * ``deephash_compat=True`` reproduces one thing of DeepHash-pytorch's CalcTopMap with topK = −1: its
      ``[0:-1]`` slice, which drops the last-ranked database item. It does not reproduce CalcTopMap's tie
      order: CalcTopMap ranks with ``np.argsort`` (quicksort, not stable), so among items at the same Hamming
      distance its order depends on NumPy's sort implementation and the input order; here ties stay in
      database-index order. The two agree exactly when no distance holds both relevant and irrelevant items
      (within every query's ranking); otherwise they may differ in the last digits. Queries with no relevant
      item count as AP 0 in both (CalcTopMap skips them but divides by the number of queries).

Inputs: codes (n, K) as {−1, +1}, {0, 1} or real values (their sign is taken), numpy or torch; ``code_form``
says which one the caller means, and a mismatch, a non-finite value, an empty set or a bit-width difference
is an error naming the argument; labels (n,) class indices (≥ 0) or (n, C) 0/1 rows. Everything is
vectorised and chunked over queries, so 5,000 queries against 200,000 database items fit in memory.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from mh.binary import as_sign_codes, hamming_distances, matching_label_rows, pack_words
from mh.checks import int_in_range, positive_int

RANKING_CONVENTION = (
    "rank by Hamming distance, ties by database index (stable); relevant = shares >= 1 label; "
    "AP over top-K (K = whole database when topk is None); a query without relevant items in its top-K adds 0"
)
DEFAULT_QUERY_CHUNK = 16  # small chunks keep each step's arrays in cache: 1.7× faster than 256


def _prepare(query_codes, db_codes, query_labels, db_labels, device="cpu", code_form="auto"):
    q = as_sign_codes(query_codes, code_form, "query codes")
    d = as_sign_codes(db_codes, code_form, "database codes")
    if not len(q) or not len(d):
        raise ValueError(f"nothing to rank: {len(q)} query codes and {len(d)} database codes; both sets need items")
    if q.shape[1] != d.shape[1]:
        raise ValueError(f"query codes have {q.shape[1]} bits, database codes {d.shape[1]}")
    ql, dl = matching_label_rows(query_labels, db_labels)
    if ql.shape[0] != q.shape[0] or dl.shape[0] != d.shape[0]:
        raise ValueError(
            "each code needs one label row: "
            f"{q.shape[0]} query codes / {ql.shape[0]} labels, {d.shape[0]} database codes / {dl.shape[0]} labels"
        )
    return q.to(device), d.to(device), ql.to(device), dl.to(device)


def hamming_distance_matrix(query_codes: torch.Tensor, db_codes: torch.Tensor) -> torch.Tensor:
    """(n_q, K) and (n_db, K) ±1 codes → (n_q, n_db) integer Hamming distances, via ½(K − q·dᵀ)."""
    bits = query_codes.shape[1]
    return ((bits - query_codes @ db_codes.t()) / 2).round().to(torch.int64)


def reference_mean_average_precision(
    query_codes, db_codes, query_labels, db_labels, topk: int | None = None, deephash_compat: bool = False
) -> float:
    """mAP@topK one query at a time, in float64, straight from the definition: the readable version that
    ``mean_average_precision`` is tested and benchmarked against (as the scan's "reference" backend is).

    The loop of DeepHash-pytorch's CalcTopMap, with a stable sort so that ties go by database index.
    """
    q, d, ql, dl = (tensor.double().numpy() for tensor in _prepare(query_codes, db_codes, query_labels, db_labels))
    depth = d.shape[0] if topk is None else topk
    if deephash_compat and topk is None:
        depth = d.shape[0] - 1
    per_query = []
    for i in range(q.shape[0]):
        hamming = 0.5 * (q.shape[1] - d @ q[i])
        relevant = (dl @ ql[i] > 0)[np.argsort(hamming, kind="stable")][:depth]
        hits = np.cumsum(relevant)
        precision_at_hits = hits[relevant] / (np.flatnonzero(relevant) + 1.0)
        per_query.append(precision_at_hits.mean() if relevant.any() else 0.0)
    return float(np.mean(per_query))


class _Ranking:
    """Ranks the database for chunks of queries: distances, relevance, and relevance in ranked order.

    On the CPU everything runs on bit-packed codes and labels with numpy (popcount of XOR for Hamming
    distances, AND for "shares a label", radix argsort of 8/16-bit distances), which is memory-bound and
    ~7× faster than float matmuls and torch.sort; on a GPU, torch (matmul and a stable torch.sort).
    """

    def __init__(self, q, d, ql, dl):
        self.bits, self.n_db, self.on_gpu = q.shape[1], d.shape[0], q.is_cuda
        if self.on_gpu:
            self.q, self.d, self.ql, self.dl = q, d, ql, dl
        else:
            self.q, self.ql = pack_words(q), pack_words(ql)
            # database words stored word-major so each word is one contiguous row
            self.d, self.dl = np.ascontiguousarray(pack_words(d).T), np.ascontiguousarray(pack_words(dl).T)

    def distances(self, rows: slice):
        if self.on_gpu:
            return hamming_distance_matrix(self.q[rows], self.d)
        return hamming_distances(self.q[rows], self.d)

    def relevance(self, rows: slice):
        if self.on_gpu:
            return self.ql[rows] @ self.dl.t() > 0
        shared = np.zeros((len(self.ql[rows]), self.n_db), dtype=bool)
        for word in range(self.ql.shape[1]):
            shared |= (self.ql[rows, word, None] & self.dl[word]) != 0
        return shared

    def ranked_relevance(self, rows: slice, depth: int):
        """Relevance (bool, n_q × depth) of the database items in ranked order (stable: ties by index)."""
        distances, relevant = self.distances(rows), self.relevance(rows)
        if self.on_gpu:
            order = torch.sort(distances, dim=1, stable=True).indices[:, :depth]
            return relevant.gather(1, order).cpu().numpy()
        order = np.argsort(distances, axis=1, kind="stable")[:, :depth]
        return np.take_along_axis(relevant, order, axis=1)


def average_precisions(ranked: np.ndarray) -> np.ndarray:
    """(n_q, depth) bool relevance in ranked order → (n_q,) AP in float64, touching only the relevant entries.

    AP = Σ_k P@k · rel_k / Σ_k rel_k over the given depth; a query without a relevant item gets 0."""
    query, position = np.nonzero(ranked)
    per_query = np.bincount(query, minlength=ranked.shape[0])
    first = np.concatenate(([0], np.cumsum(per_query)[:-1]))
    hits_so_far = np.arange(len(query)) - first[query] + 1
    precision_sum = np.bincount(query, weights=hits_so_far / (position + 1.0), minlength=ranked.shape[0])
    return precision_sum / np.maximum(per_query, 1)


def _chunks(n: int, size: int) -> list[slice]:
    return [slice(start, min(start + size, n)) for start in range(0, n, size)]


def _map_over_chunks(function, n_queries: int, query_chunk: int, parallel: bool) -> list:
    """``function(slice)`` for each query chunk; on the CPU two chunks at a time (numpy releases the GIL)."""
    chunks = _chunks(n_queries, query_chunk)
    if not parallel or len(chunks) == 1:
        return [function(rows) for rows in chunks]
    with ThreadPoolExecutor(max_workers=max(1, min(torch.get_num_threads(), 8))) as pool:
        return list(pool.map(function, chunks))


def mean_average_precision(*args, **kwargs) -> float:
    """mAP@topK under the module's convention: the mean of ``query_average_precisions`` over the queries, with
    the same arguments (codes, labels, ``topk``, ``deephash_compat``, ``query_chunk``, ``device``, ``code_form``).
    Returns a float in [0, 1]."""
    return float(query_average_precisions(*args, **kwargs).mean())


def chance_map(query_labels, db_labels, deephash_compat: bool = False) -> float:
    """The chance level: the expected mAP (over the whole database) of a ranking drawn uniformly at random, in
    closed form. For a query with R relevant items among N, a relevant item lands at position p (uniform on
    1…N) with on average (R − 1)(p − 1)/(N − 1) other relevant items above it, so

        E[AP] = H_N / N + (R − 1)/(N − 1) · (1 − H_N / N),    H_N = 1 + 1/2 + … + 1/N,

    about R/N: 0.1002 for CIFAR-10's protocol (R = 5,400 of N = 54,000). Averaged over the queries (a query
    without a relevant item counts 0, as in ``average_precisions``). ``deephash_compat`` drops the last
    database item, as the released code does. Labels: (n_q,) or (n_q, C), (n_db,) or (n_db, C)."""
    ql, dl = matching_label_rows(query_labels, db_labels)
    if deephash_compat:
        dl = dl[:-1]
    relevant = ((ql @ dl.t()) > 0).sum(dim=1).double().numpy()
    n = dl.shape[0]
    harmonic = float(np.sum(1.0 / np.arange(1, n + 1)))
    expected = harmonic / n + (relevant - 1) / max(n - 1, 1) * (1 - harmonic / n)
    return float(np.where(relevant > 0, expected, 0.0).mean())


def showcase_queries(aps: np.ndarray, quantiles=(1.0, 0.5, 0.0)) -> list[int]:
    """The stated rule that picks the queries a figure shows: for each quantile of the per-query AP (1: the best,
    0.5: the median, 0: the worst), the query whose AP is that order statistic (ties: the lower position).
    (n_q,) → one query position per quantile, never chosen by hand."""
    order = np.lexsort((np.arange(len(aps)), aps))  # ascending AP, ties by position
    return [int(order[round(q * (len(aps) - 1))]) for q in quantiles]


def query_average_precisions(
    query_codes,
    db_codes,
    query_labels,
    db_labels,
    topk: int | None = None,
    deephash_compat: bool = False,
    query_chunk: int = DEFAULT_QUERY_CHUNK,
    device="cpu",
    code_form: str = "auto",
) -> np.ndarray:
    """AP@topK of every query, (n_q,) float64: what ``mean_average_precision`` averages."""
    if topk is not None:
        positive_int(topk, "topk", "or None for the whole database")
    positive_int(query_chunk, "query_chunk")
    q, d, ql, dl = _prepare(query_codes, db_codes, query_labels, db_labels, device, code_form)
    n_db = d.shape[0]
    depth = n_db if topk is None else min(topk, n_db)
    if deephash_compat and topk is None:
        depth = n_db - 1
    ranking = _Ranking(q, d, ql, dl)
    aps = _map_over_chunks(
        lambda rows: average_precisions(ranking.ranked_relevance(rows, depth)),
        q.shape[0],
        query_chunk,
        parallel=not ranking.on_gpu,
    )
    return np.concatenate(aps)


def _counts_by_distance(ranking: _Ranking, n_queries: int, query_chunk: int):
    """Per query: number of database items, and of relevant ones, at each distance 0..K. → 2 × (n_q, K+1)."""
    width = ranking.bits + 1

    def count(rows: slice):
        distances = np.asarray(torch.as_tensor(ranking.distances(rows)).cpu(), dtype=np.int64)
        relevant = np.asarray(torch.as_tensor(ranking.relevance(rows)).cpu())
        keys = distances + (np.arange(distances.shape[0]) * width)[:, None]
        size, shape = distances.shape[0] * width, (distances.shape[0], width)
        return (
            np.bincount(keys.ravel(), minlength=size).reshape(shape),
            np.bincount(keys[relevant], minlength=size).reshape(shape),
        )

    parts = _map_over_chunks(count, n_queries, query_chunk, parallel=not ranking.on_gpu)
    return (
        np.concatenate([p[0] for p in parts]).astype(np.float64),
        np.concatenate([p[1] for p in parts]).astype(np.float64),
    )


def pr_curve_by_radius(query_codes, db_codes, query_labels, db_labels, query_chunk: int = DEFAULT_QUERY_CHUNK):
    """Precision and recall of "retrieve everything within Hamming radius r", r = 0..K.

    Returns a dict of numpy arrays ``radius``, ``precision``, ``recall``: averaged over queries; a query
    that retrieves nothing within r counts precision 0; a query with no relevant item counts recall 0.
    """
    q, d, ql, dl = _prepare(query_codes, db_codes, query_labels, db_labels)
    all_counts, relevant_counts = _counts_by_distance(_Ranking(q, d, ql, dl), q.shape[0], query_chunk)
    retrieved, hits = all_counts.cumsum(1), relevant_counts.cumsum(1)
    precision = np.where(retrieved > 0, hits / np.maximum(retrieved, 1), 0.0).mean(0)
    total_relevant = relevant_counts.sum(1, keepdims=True)
    recall = np.where(total_relevant > 0, hits / np.maximum(total_relevant, 1), 0.0).mean(0)
    return {"radius": np.arange(q.shape[1] + 1), "precision": precision, "recall": recall}


def precision_recall_at_n(
    query_codes, db_codes, query_labels, db_labels, n_values, query_chunk: int = DEFAULT_QUERY_CHUNK
):
    """Precision@N and recall@N of the ranked list (stable ties) for each N in ``n_values``.

    Returns a dict of numpy arrays ``n``, ``precision``, ``recall`` (recall 0 for queries with no relevant item).
    """
    q, d, ql, dl = _prepare(query_codes, db_codes, query_labels, db_labels)
    n_values = np.asarray(sorted({int(n) for n in n_values}))
    if n_values.size == 0 or n_values[0] < 1 or n_values[-1] > d.shape[0]:
        raise ValueError(f"each N must be in 1..{d.shape[0]} (database size); got {n_values.tolist()}")
    ranking = _Ranking(q, d, ql, dl)

    def sums(rows: slice):
        ranked = ranking.ranked_relevance(rows, int(n_values[-1]))
        hits = np.cumsum(ranked, axis=1, dtype=np.int64)[:, n_values - 1].astype(np.float64)
        total_relevant = np.asarray(ranking.relevance(rows)).sum(1, keepdims=True).astype(np.float64)
        recall = np.where(total_relevant > 0, hits / np.maximum(total_relevant, 1), 0.0)
        return (hits / n_values).sum(0), recall.sum(0)

    parts = _map_over_chunks(sums, q.shape[0], query_chunk, parallel=True)
    n_queries = q.shape[0]
    return {
        "n": n_values,
        "precision": sum(p[0] for p in parts) / n_queries,
        "recall": sum(p[1] for p in parts) / n_queries,
    }


def precision_within_radius(
    query_codes, db_codes, query_labels, db_labels, radius: int = 2, query_chunk: int = DEFAULT_QUERY_CHUNK
) -> float:
    """P@H≤r: mean over queries of the precision among items within Hamming radius r (0 if none)."""
    curve = pr_curve_by_radius(query_codes, db_codes, query_labels, db_labels, query_chunk)
    radius = int_in_range(radius, "radius", 0, len(curve["precision"]) - 1, "a Hamming radius of these codes")
    return float(curve["precision"][radius])


def released_crossmodal_map(query_codes, db_codes, query_labels, db_labels) -> float:
    """mAP@all as DSPH's and CAGMH's ``calc_map_k_matrix`` computes it (for comparison, not the default):
    ``torch.sign`` codes (an exact 0 stays 0), distance ½(K − qᵀr), ``torch.sort`` (not stable: ties in the
    implementation's order), AP = mean over the relevant items of (rank among relevant)/(position); a query
    without a relevant item is skipped in the sum but counted in the mean. Labels (n, C) 0/1 rows."""
    q, d = (torch.sign(torch.as_tensor(np.asarray(c), dtype=torch.float64)) for c in (query_codes, db_codes))
    ql, dl = (torch.as_tensor(np.asarray(labels), dtype=torch.float64) for labels in (query_labels, db_labels))
    if q.shape[1] != d.shape[1] or ql.shape[1] != dl.shape[1]:
        raise ValueError(f"code or label widths differ: codes {q.shape} vs {d.shape}, labels {ql.shape} vs {dl.shape}")
    total = 0.0
    for i in range(len(q)):
        relevant = (ql[i] @ dl.t() > 0).double()
        count = int(relevant.sum())
        if count == 0:
            continue
        order = torch.sort(0.5 * (q.shape[1] - d @ q[i])).indices
        positions = torch.nonzero(relevant[order]).squeeze(1).double() + 1
        total += float((torch.arange(1, count + 1, dtype=torch.float64) / positions).mean())
    return total / len(q)


def crossmodal_map(
    image_queries, text_queries, image_db, text_db, query_labels, db_labels, convention: str = "project"
) -> dict[str, float]:
    """Both retrieval directions: ``{"i2t": image queries vs database texts, "t2i": text queries vs database
    images}``, mAP@all. ``convention="project"`` is this module's (stable ties, ``mean_average_precision``),
    ``"released"`` is ``released_crossmodal_map``."""
    if convention not in ("project", "released"):
        raise ValueError(f"convention must be 'project' or 'released'; got {convention!r}")
    score = mean_average_precision if convention == "project" else released_crossmodal_map
    return {
        "i2t": score(image_queries, text_db, query_labels, db_labels),
        "t2i": score(text_queries, image_db, query_labels, db_labels),
    }

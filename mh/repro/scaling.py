"""What hashing buys at scale: FAISS index types timed on synthetic codes (notebook 07).

The database is synthetic: independent bits drawn with the per-bit balance (fraction of +1) of a trained
network's codes, cycled to the code length studied. Queries are near-duplicates of database items (each
bit flipped with probability ``flip``), the situation a retrieval index is built for. Every index is
compared with exact search (the flat index) on the same queries.

The flat index is timed twice: with ``mh.metrics``' tie order (ties by position, which costs a second
pass over the database) and with FAISS's own (one pass). Recall@k is tie-aware: the fraction of the k
returned items whose distance is within the exact k-th distance (with Hamming distances, many items tie
at the k-th distance and any of them is a correct answer).
Float embeddings of the same dimension in ``faiss.IndexFlatL2`` are the reference a reader would otherwise use.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from mh.binary import unpack_codes
from mh.codes import retrieve
from mh.progress import progress_bar
from mh.search import CodeIndex, faiss_module

GENERATION_CHUNK = 200_000


def bit_balance(codes: np.ndarray, bits: int) -> np.ndarray:
    """Fraction of +1 per bit of (n, K) ±1 ``codes``, cycled to ``bits`` values."""
    return np.resize((np.asarray(codes) > 0).mean(axis=0), bits)


def synthetic_codes(balance: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """``size`` packed codes (size, K/8) uint8 whose bit j is +1 with probability ``balance[j]``."""
    chunks = []
    for start in range(0, size, GENERATION_CHUNK):
        rows = min(GENERATION_CHUNK, size - start)
        chunks.append(np.packbits(rng.random((rows, len(balance)), dtype=np.float32) < balance, axis=1))
    return np.concatenate(chunks)


def near_duplicates(packed: np.ndarray, bits: int, count: int, flip: float, rng: np.random.Generator) -> np.ndarray:
    """``count`` queries: random database rows with each bit flipped with probability ``flip`` (packed)."""
    rows = unpack_codes(packed[rng.choice(len(packed), count, replace=False)], bits) > 0
    return np.packbits(rows ^ (rng.random(rows.shape) < flip), axis=1)


def _latencies(search, queries: np.ndarray, timed: int) -> np.ndarray:
    """Milliseconds of one query at a time, for the first ``timed`` queries (after one untimed warm-up query)."""
    search(queries[-1:])
    times = []
    for row in queries[:timed]:
        started = time.perf_counter()
        search(row[None])
        times.append(1000 * (time.perf_counter() - started))
    return np.asarray(times)


def _timed_row(
    name: str, build_seconds: float, search, queries: np.ndarray, timed: int, bytes_per_item: int, repeats: int = 3
) -> tuple[dict, object]:
    """One table row: p50/p99 latency of single queries, and the median throughput of ``repeats`` batch
    searches of all ``queries``; also returns the batch search's result."""
    latencies = _latencies(search, queries, timed)
    batch_seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = search(queries)
        batch_seconds.append(time.perf_counter() - started)
    row = {
        "index": name,
        "build s": build_seconds,
        "p50 ms": np.percentile(latencies, 50),
        "p99 ms": np.percentile(latencies, 99),
        "queries/s": len(queries) / np.median(batch_seconds),
        "bytes/item": bytes_per_item,
    }
    return row, result


def tie_aware_recall(found_distances: np.ndarray, exact_distances: np.ndarray) -> float:
    """Mean fraction of returned items within the exact k-th distance (items not found count as misses)."""
    k = exact_distances.shape[1]
    good = (found_distances >= 0) & (found_distances <= exact_distances[:, -1:])
    return float(good.sum(axis=1).clip(max=k).mean() / k)


def time_index(
    kind: str,
    database: np.ndarray,
    bits: int,
    queries: np.ndarray,
    k: int,
    exact: np.ndarray | None,
    timed: int,
    ties: str = "position",
    **options,
) -> dict:
    """Build ``kind`` over packed ``database``; time single queries and a batch; recall@k against ``exact``."""
    started = time.perf_counter()
    index = CodeIndex.build(database, kind, bits=bits, progress=False, **options)
    build_seconds = time.perf_counter() - started
    name = kind if kind != "flat" or ties == "position" else "flat (FAISS tie order)"
    row, (distances, _) = _timed_row(
        name, build_seconds, lambda rows: index.search(rows, k, ties), queries, timed, bits // 8
    )
    recall = 1.0 if exact is None else tie_aware_recall(distances, exact)
    return {**row, f"recall@{k}": recall, "distances": distances}


def time_float_reference(size: int, dim: int, count: int, k: int, timed: int, rng: np.random.Generator) -> dict:
    """``faiss.IndexFlatL2`` over ``size`` float32 vectors of ``dim`` values, near-duplicate queries."""
    faiss = faiss_module()
    vectors = rng.standard_normal((size, dim), dtype=np.float32)
    queries = vectors[rng.choice(size, count, replace=False)] + 0.3 * rng.standard_normal((count, dim), np.float32)
    started = time.perf_counter()
    index = faiss.IndexFlatL2(dim)
    index.add(vectors)
    build_seconds = time.perf_counter() - started
    row, _ = _timed_row("float IndexFlatL2", build_seconds, lambda rows: index.search(rows, k), queries, timed, 4 * dim)
    return {**row, f"recall@{k}": 1.0}


def time_brute_force(database: np.ndarray, bits: int, queries: np.ndarray, k: int, timed: int) -> dict:
    """``mh.codes.retrieve`` (numpy popcount and a stable sort, one query at a time) on the first ``timed`` queries."""

    def one_at_a_time(rows):
        return [retrieve(row, database, k) for row in rows]

    row, _ = _timed_row("mh.codes.retrieve (numpy)", 0.0, one_at_a_time, queries[:timed], timed, bits // 8, repeats=1)
    return {**row, f"recall@{k}": 1.0}


def scaling_study(
    balance: np.ndarray,
    sizes: list[int],
    bit_lengths: list[int],
    kinds: list[str],
    max_size: dict[str, int],
    queries: int = 100,
    k: int = 100,
    timed: int = 50,
    flip: float = 0.1,
    seed: int = 2025,
    brute_force_at: int | None = None,
) -> pd.DataFrame:
    """One row per (size, bits, index): build time, p50/p99 latency, batch throughput, recall@k, bytes/item.

    ``max_size`` caps the database size per index kind (e.g. HNSW builds slowly on a CPU); the float
    reference and, at ``brute_force_at`` items, ``mh.codes.retrieve`` are timed beside the binary indexes."""
    rng = np.random.default_rng(seed)
    rows = []
    for size in progress_bar(sizes, "database sizes"):
        for bits in bit_lengths:
            database = synthetic_codes(np.resize(balance, bits), size, rng)
            query_codes = near_duplicates(database, bits, queries, flip, rng)
            flat = time_index("flat", database, bits, query_codes, k, None, timed)
            found = [flat, time_index("flat", database, bits, query_codes, k, flat["distances"], timed, "any")]
            found += [
                time_index(kind, database, bits, query_codes, k, flat["distances"], timed)
                for kind in kinds
                if kind != "flat" and size <= max_size.get(kind, size)
            ]
            found.append(time_float_reference(size, bits, queries, k, timed, rng))
            if size == brute_force_at:
                found.append(time_brute_force(database, bits, query_codes, k, min(timed, 20)))
            rows += [
                {
                    "database size": size,
                    "bits": bits,
                    **{key: value for key, value in row.items() if key != "distances"},
                }
                for row in found
            ]
    return pd.DataFrame(rows)

"""Binary codes on disk and retrieval by Hamming distance on packed bits.

A code set is stored in one ``.npz``: ``codes`` packed with ``np.packbits`` (bit = 1 for +1), ``labels``,
``bits`` and a JSON ``metadata`` string. Hamming distances between packed codes are popcounts of XOR
(``mh.binary.hamming_distances``): 64-bit codes take 8 bytes per image and no floating point at all.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import numpy as np

from mh.binary import as_sign_codes, hamming_distances, pack_codes, unpack_codes
from mh.checks import positive_int
from mh.io import atomic_output, reading


@dataclass
class CodeSet:
    """Packed codes (n, ⌈K/8⌉) with their labels (n,) or (n, C), free-form metadata and, when known, the
    dataset id (pool index) of each item."""

    packed: np.ndarray
    labels: np.ndarray
    bits: int
    metadata: dict = field(default_factory=dict)
    ids: np.ndarray | None = None

    def __len__(self) -> int:
        return self.packed.shape[0]

    @property
    def codes(self) -> np.ndarray:
        """The codes unpacked, (n, K) int8 in {−1, +1}."""
        return unpack_codes(self.packed, self.bits)

    @classmethod
    def from_codes(cls, codes, labels, metadata: dict | None = None, ids=None) -> CodeSet:
        codes_array = as_sign_codes(codes)
        labels = np.asarray(labels.cpu() if hasattr(labels, "cpu") else labels)
        if labels.shape[0] != codes_array.shape[0] or (ids is not None and len(ids) != codes_array.shape[0]):
            raise ValueError(
                f"{codes_array.shape[0]} codes but {labels.shape[0]} labels"
                + ("" if ids is None else f" and {len(ids)} ids")
            )
        ids = None if ids is None else np.asarray(ids, dtype=np.int64)
        return cls(pack_codes(codes_array), labels, codes_array.shape[1], dict(metadata or {}), ids)


def save_code_sets(path, **code_sets: CodeSet) -> None:
    """Write named code sets (e.g. query=..., database=...) to one ``.npz``, atomically."""
    arrays = {}
    for name, code_set in code_sets.items():
        arrays[f"{name}_codes"] = code_set.packed
        arrays[f"{name}_labels"] = code_set.labels
        arrays[f"{name}_bits"] = np.array(code_set.bits)
        arrays[f"{name}_metadata"] = np.array(json.dumps(code_set.metadata))
        if code_set.ids is not None:
            arrays[f"{name}_ids"] = code_set.ids
    with atomic_output(path, suffix=".npz") as temporary:
        np.savez_compressed(temporary, **arrays)


def load_code_sets(path) -> dict[str, CodeSet]:
    """Read what ``save_code_sets`` wrote: {name: CodeSet}."""
    with (
        reading(path, "code archive (codes.npz)", "encode the run again (python -m mh.evaluate re-reads it)"),
        np.load(os.fspath(path)) as archive,
    ):
        names = sorted({key.rsplit("_", 1)[0] for key in archive.files})
        return {
            name: CodeSet(
                archive[f"{name}_codes"],
                archive[f"{name}_labels"],
                int(archive[f"{name}_bits"]),
                json.loads(str(archive[f"{name}_metadata"])),
                archive[f"{name}_ids"] if f"{name}_ids" in archive.files else None,
            )
            for name in names
        }


def retrieve(query_code, database, k: int = 10):
    """Top-k database items for one query code: (indices (k,), distances (k,)), ties by database index.

    ``query_code``: (K,) code (±1, 0/1 or real) or (⌈K/8⌉,) packed uint8; ``database``: a CodeSet or
    packed (n, ⌈K/8⌉) uint8 array. ``k`` above the database size returns the whole database, ranked. The same
    rules as ``mh.search.CodeIndex.search``: a code length that differs from the database's is an error.
    """
    k = positive_int(k, "k", "how many database items to return")
    if isinstance(database, CodeSet):
        db_packed, bits = database.packed, database.bits
    else:
        db_packed = np.asarray(database)
        if db_packed.ndim != 2 or db_packed.dtype != np.uint8:
            raise ValueError(
                f"database must be a CodeSet or packed (n, K/8) uint8 codes; got {db_packed.dtype} {db_packed.shape}"
                " (pack ±1 codes with mh.binary.pack_codes)"
            )
        bits = db_packed.shape[1] * 8
    query = np.asarray(query_code.cpu() if hasattr(query_code, "cpu") else query_code)
    if query.ndim != 1:
        raise ValueError(f"query_code must be one code, (K,) or packed (K/8,); got shape {query.shape}")
    already_packed = query.dtype == np.uint8 and query.shape[0] == db_packed.shape[1]
    if not already_packed:
        if query.shape[0] != bits:
            raise ValueError(
                f"the database holds {bits}-bit codes; query_code has {query.shape[0]} values "
                "(pass a code of the database's length, or its packed bytes)"
            )
        query = pack_codes(query.reshape(1, -1))
    distances = hamming_distances(query.reshape(1, -1), np.ascontiguousarray(db_packed.T))[0]
    order = np.argsort(distances, kind="stable")[:k]
    return order, distances[order].astype(np.int64)

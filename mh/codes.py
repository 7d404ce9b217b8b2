"""Binary codes on disk and retrieval by Hamming distance on packed bits.

A code set is stored in one ``.npz``: ``codes`` packed with ``np.packbits`` (bit = 1 for +1), ``labels``,
``bits`` and a JSON ``metadata`` string. Hamming distances between packed codes are popcounts of XOR
(``np.bitwise_count``): 64-bit codes take 8 bytes per image and no floating point at all.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import numpy as np

from mh.metrics import as_sign_codes


def pack_codes(codes) -> np.ndarray:
    """(n, K) codes (±1, 0/1 or real: sign taken) → (n, ⌈K/8⌉) uint8, bit 1 where the code is +1."""
    return np.packbits(as_sign_codes(codes).numpy() > 0, axis=1)


def unpack_codes(packed: np.ndarray, bits: int) -> np.ndarray:
    """Inverse of ``pack_codes``: (n, ⌈K/8⌉) uint8 → (n, K) int8 in {−1, +1}."""
    return np.unpackbits(packed, axis=1, count=bits).astype(np.int8) * 2 - 1


def hamming_packed(query_packed: np.ndarray, db_packed: np.ndarray) -> np.ndarray:
    """(n_q, B) and (n_db, B) packed codes → (n_q, n_db) Hamming distances (popcount of XOR)."""
    query_packed, db_packed = np.atleast_2d(query_packed), np.atleast_2d(db_packed)
    if query_packed.shape[1] != db_packed.shape[1]:
        raise ValueError(f"packed widths differ: {query_packed.shape[1]} vs {db_packed.shape[1]} bytes")
    xor = np.bitwise_xor(query_packed[:, None, :], db_packed[None, :, :])
    return np.bitwise_count(xor).sum(axis=2, dtype=np.int64)


@dataclass
class CodeSet:
    """Packed codes (n, ⌈K/8⌉) with their labels (n,) or (n, C) and free-form metadata."""

    packed: np.ndarray
    labels: np.ndarray
    bits: int
    metadata: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return self.packed.shape[0]

    @property
    def codes(self) -> np.ndarray:
        """The codes unpacked, (n, K) int8 in {−1, +1}."""
        return unpack_codes(self.packed, self.bits)

    @classmethod
    def from_codes(cls, codes, labels, metadata: dict | None = None) -> "CodeSet":
        codes_array = as_sign_codes(codes)
        labels = np.asarray(labels.cpu() if hasattr(labels, "cpu") else labels)
        if labels.shape[0] != codes_array.shape[0]:
            raise ValueError(f"{codes_array.shape[0]} codes but {labels.shape[0]} labels")
        return cls(pack_codes(codes_array), labels, codes_array.shape[1], dict(metadata or {}))


def save_code_sets(path, **code_sets: CodeSet) -> None:
    """Write named code sets (e.g. query=..., database=...) to one ``.npz``, atomically."""
    arrays = {}
    for name, code_set in code_sets.items():
        arrays[f"{name}_codes"] = code_set.packed
        arrays[f"{name}_labels"] = code_set.labels
        arrays[f"{name}_bits"] = np.array(code_set.bits)
        arrays[f"{name}_metadata"] = np.array(json.dumps(code_set.metadata))
    path = os.fspath(path)
    temporary = path + ".tmp.npz"
    np.savez_compressed(temporary, **arrays)
    os.replace(temporary, path)


def load_code_sets(path) -> dict[str, CodeSet]:
    """Read what ``save_code_sets`` wrote: {name: CodeSet}."""
    with np.load(os.fspath(path)) as archive:
        names = sorted({key.rsplit("_", 1)[0] for key in archive.files})
        return {
            name: CodeSet(archive[f"{name}_codes"], archive[f"{name}_labels"], int(archive[f"{name}_bits"]),
                          json.loads(str(archive[f"{name}_metadata"])))
            for name in names
        }


def retrieve(query_code, database, k: int = 10):
    """Top-k database items for one query code: (indices (k,), distances (k,)), ties by database index.

    ``query_code``: (K,) code (±1, 0/1 or real) or (⌈K/8⌉,) packed uint8; ``database``: a CodeSet or
    packed (n, ⌈K/8⌉) uint8 array.
    """
    db_packed = database.packed if isinstance(database, CodeSet) else np.asarray(database)
    query = np.asarray(query_code.cpu() if hasattr(query_code, "cpu") else query_code)
    if query.dtype != np.uint8 or query.shape[-1] != db_packed.shape[1]:
        query = pack_codes(query.reshape(1, -1))
    distances = hamming_packed(query.reshape(1, -1), db_packed)[0]
    order = np.argsort(distances, kind="stable")[:k]
    return order, distances[order]

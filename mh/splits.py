"""Retrieval protocols and their splits (§4.1, DeepHash-pytorch conventions).

* ``Protocol``: a dataset's classes, mAP@topK, the quantization weight η and, for CIFAR-10, how many images
  per class go to the query and training sets (each dataset's own is in its entry of ``mh.datasets``).
* CIFAR-10 ("cifar10", "cifar10-1", "cifar10-2"): all 60,000 images pooled and split per class with a fixed
  seed, the way the released code does it; the split is written once to a small file and reused.
* ``stratified_subset``: seeded, class-balanced subsets for the quick profiles.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mh.io import atomic_output, reading

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR10_TRAIN_PER_CLASS, CIFAR10_TEST_PER_CLASS = 5000, 1000
SPLIT_SEED = 2025  # the released code seeds numpy with 2025 just before drawing the split


@dataclass(frozen=True)
class Protocol:
    """How a dataset is split and scored. ``query_per_class``/``train_per_class`` only for CIFAR-10."""

    name: str
    num_classes: int
    topk: int | None  # mAP@topk; None = whole database
    quantization_weight: float  # η of Eq. 18 (code: alpha)
    query_per_class: int = 0
    train_per_class: int = 0
    database: str = "rest"  # CIFAR-10: "rest", "rest+train" (cifar10-1) or "train" (cifar10-2)
    description: str = ""


@dataclass
class Split:
    """Pool indices of the query, train and database sets, and where they came from."""

    query: np.ndarray
    train: np.ndarray
    database: np.ndarray
    protocol: str
    seed: int
    sha256: str = field(default="")

    def sizes(self) -> dict[str, int]:
        return {"query": len(self.query), "train": len(self.train), "database": len(self.database)}


def draw_cifar_split(labels: np.ndarray, protocol: Protocol, seed: int = SPLIT_SEED) -> Split:
    """The released code's per-class split: for class 0..9 in order, a permutation (one shared RandomState
    seeded once) of that class's pool indices; the first ``query_per_class`` are queries, the next
    ``train_per_class`` training images, the rest (by protocol) the database.

    Membership is exactly the released code's. Its sets are concatenated class by class, though, and our
    metrics break Hamming ties by database index: a class-sorted database would reward ties (a network
    whose codes are all equal would score mAP ≈ 0.21 instead of ≈ 0.10 on CIFAR-10). So each set's
    *order* is then shuffled with a second RandomState(seed + 1).
    """
    random = np.random.RandomState(seed)
    query, train, rest = [], [], []
    for label in range(protocol.num_classes):
        members = np.flatnonzero(labels == label)
        members = members[random.permutation(len(members))]
        cut = protocol.query_per_class + protocol.train_per_class
        query.append(members[: protocol.query_per_class])
        train.append(members[protocol.query_per_class : cut])
        rest.append(members[cut:])
    query, train, rest = (np.concatenate(part) for part in (query, train, rest))
    if protocol.database == "rest+train":
        database = np.concatenate([train, rest])
    elif protocol.database == "train":
        train = np.concatenate([train, rest])
        database = train
    else:
        database = rest
    order = np.random.RandomState(seed + 1)
    query, train = query[order.permutation(len(query))], train[order.permutation(len(train))]
    database = train if protocol.database == "train" else database[order.permutation(len(database))]
    return Split(query, train, database, protocol.name, seed)


def _split_digest(split: Split) -> str:
    digest = hashlib.sha256()
    for part in (split.query, split.train, split.database):
        digest.update(np.ascontiguousarray(part, dtype=np.int64).tobytes())
    return digest.hexdigest()


def cifar_split(
    labels: np.ndarray,
    protocol: Protocol,
    seed: int = SPLIT_SEED,
    split_dir: str | os.PathLike = "results/splits",
) -> Split:
    """The split for ``protocol``, read from ``split_dir/<protocol>-seed<seed>.npz`` when it exists (and
    matches the pool), else drawn and written there. Every run and notebook therefore sees one split."""
    if not (protocol.query_per_class and protocol.train_per_class):
        raise ValueError(f"{protocol.name} is not split per class (it has no per-class query and training counts)")
    path = Path(split_dir) / f"{protocol.name}-seed{seed}.npz"
    if path.exists():
        with reading(path, "split file", "delete it to draw the split again"):
            stored = dict(np.load(path))
            split = Split(
                stored["query"], stored["train"], stored["database"], protocol.name, seed, str(stored["sha256"])
            )
            pool_size, pool_labels = int(stored["pool_size"]), stored["pool_labels"]
        if pool_size != len(labels) or not np.array_equal(pool_labels, labels):
            raise ValueError(
                f"{path} was written for a different image pool ({pool_size} images); "
                "delete it to draw a new split, or point --data-dir at the matching data."
            )
        if _split_digest(split) != split.sha256:
            raise ValueError(f"{path} is corrupt (its checksum does not match its indices); delete it to redraw.")
        return split
    split = draw_cifar_split(labels, protocol, seed)
    split.sha256 = _split_digest(split)
    with atomic_output(path, suffix=".npz") as temporary:
        np.savez_compressed(
            temporary,
            query=split.query,
            train=split.train,
            database=split.database,
            pool_size=len(labels),
            pool_labels=labels,
            sha256=split.sha256,
        )
    return split


def stratified_subset(indices: np.ndarray, labels: np.ndarray, size: int | None, seed: int) -> np.ndarray:
    """``size`` of ``indices`` drawn evenly over classes (seeded), kept in their original order; None = all."""
    if size is None or size >= len(indices):
        return indices
    random = np.random.RandomState(seed)
    classes = np.unique(labels[indices])
    per_class = np.array_split(np.arange(size), len(classes))
    keep = []
    for label, share in zip(classes, per_class, strict=True):
        members = np.flatnonzero(labels[indices] == label)
        keep.append(random.choice(members, size=min(len(share), len(members)), replace=False))
    return indices[np.sort(np.concatenate(keep))]

"""Every dataset by name, each one entry: its retrieval protocol and the loader of its images (§4.1).

    data = load_hashing_data("cifar10", data_dir, image_size=32, subset={"train": 500, ...})
    DATASETS["cifar10"].locate(data_dir)       # where its files would be read from, or DataNotFoundError

A ``DatasetEntry`` holds the ``Protocol`` (classes, mAP@topK, η, per-class split sizes) and two functions:
``locate`` (are the files there? — what ``make reproduce`` asks before it starts) and ``load_sets`` (the image
pools and indices of the train / query / database sets, and a record of the split). A new dataset is one entry
of ``DATASETS``: ``mh.train --dataset``, the run fingerprint, ``mh.evaluate`` and the reproduce read it there.

* CIFAR-10 ("cifar10", "cifar10-1", "cifar10-2"): the 60,000 images of an image folder or torchvision's files,
  split per class by ``mh.splits.cifar_split``.
* NUS-WIDE and ImageNet-100: DeepHash-pytorch list files ``<data_dir>/<name>/{train,test,database}.txt``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mh.checks import positive_int
from mh.data import (
    DataNotFoundError,
    HashingData,
    ImagePool,
    PoolSubset,
    build_transform,
    load_cifar10_pool,
    locate_cifar10,
    read_list_file,
    resolve_data_dir,
)
from mh.splits import SPLIT_SEED, Protocol, cifar_split, stratified_subset

PARTS = ("train", "query", "database")


@dataclass
class SourceSets:
    """What a dataset's loader returns: for each of ``PARTS``, an image pool and the pool indices of that set;
    ``split`` records where the split came from (written into every run's config.json)."""

    parts: dict[str, tuple[ImagePool, np.ndarray]]
    split: dict


@dataclass(frozen=True)
class DatasetEntry:
    """One dataset: how it is scored and split (``protocol``), where its files are (``locate(data_dir)`` →
    the path read, or DataNotFoundError saying how to get them) and how its sets are read
    (``load_sets(data_dir, protocol, seed, split_dir, download)`` → ``SourceSets``)."""

    protocol: Protocol
    locate: Callable[[Path], Path]
    load_sets: Callable[[Path, Protocol, int, Path, bool], SourceSets]


def _cifar10_sets(data_dir: Path, protocol: Protocol, seed: int, split_dir: Path, download: bool) -> SourceSets:
    pool = load_cifar10_pool(data_dir, download)
    split = cifar_split(pool.labels, protocol, seed, split_dir)
    record = {"file": str(Path(split_dir) / f"{protocol.name}-seed{seed}.npz"), "sha256": split.sha256, "seed": seed}
    return SourceSets(
        {"train": (pool, split.train), "query": (pool, split.query), "database": (pool, split.database)}, record
    )


LIST_FILES = {"train": "train.txt", "query": "test.txt", "database": "database.txt"}  # DeepHash-pytorch's names


def _locate_list_files(data_dir: Path, name: str) -> Path:
    root = data_dir / name
    missing = [file for file in LIST_FILES.values() if not (root / file).is_file()]
    if missing:
        raise DataNotFoundError(
            f"{name}: {root} lacks {', '.join(missing)}; DeepHash-pytorch's lists go in "
            f"<data-dir>/{name}/{{train,test,database}}.txt, with image paths relative to <data-dir>"
        )
    return root


def _list_file_sets(data_dir: Path, protocol: Protocol, seed: int, split_dir: Path, download: bool) -> SourceSets:
    root = data_dir / protocol.name
    parts = {}
    for part, file_name in LIST_FILES.items():
        pool = read_list_file(root / file_name, data_dir, protocol.num_classes)
        parts[part] = (pool, np.arange(len(pool)))
    return SourceSets(parts, {"files": [str(root / name) for name in LIST_FILES.values()]})


def _cifar10(protocol: Protocol) -> DatasetEntry:
    return DatasetEntry(protocol, locate_cifar10, _cifar10_sets)


def _list_files(protocol: Protocol) -> DatasetEntry:
    return DatasetEntry(protocol, lambda data_dir: _locate_list_files(data_dir, protocol.name), _list_file_sets)


DATASETS: dict[str, DatasetEntry] = {
    "cifar10": _cifar10(
        Protocol(
            "cifar10", 10, None, 0.01, 100, 500, "rest",
            "per class 100 query / 500 train / rest database: 1,000 / 5,000 / 54,000",
        )
    ),
    "cifar10-1": _cifar10(
        Protocol(
            "cifar10-1", 10, None, 0.01, 100, 500, "rest+train",
            "per class 100 query / 500 train, database = all but queries: 1,000 / 5,000 / 59,000",
        )
    ),
    "cifar10-2": _cifar10(
        Protocol(
            "cifar10-2", 10, None, 0.01, 1000, 5000, "train",
            "per class 1,000 query / 5,000 train, database = train: 10,000 / 50,000 / 50,000",
        )
    ),
    "nuswide_21": _list_files(
        Protocol(
            "nuswide_21", 21, 5000, 0.05,
            description="DeepHash-pytorch lists: 2,100 query / 10,500 train / 193,734 database",
        )
    ),
    "imagenet": _list_files(
        Protocol(
            "imagenet", 100, 1000, 0.05,
            description="ImageNet-100 lists: 5,000 query / 13,000 train / 128,503 database",
        )
    ),
}  # fmt: skip


def dataset_entry(name: str) -> DatasetEntry:
    """The entry of ``name``; ValueError listing the known names otherwise."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {', '.join(DATASETS)}")
    return DATASETS[name]


def load_hashing_data(
    dataset: str = "cifar10",
    data_dir=None,
    image_size: int = 224,
    transform_style: str = "paper",
    subset: dict[str, int] | None = None,
    seed: int = SPLIT_SEED,
    split_dir: str | os.PathLike = "results/splits",
    download: bool = False,
) -> HashingData:
    """Train / query / database sets of ``dataset`` (a key of ``DATASETS``).

    ``subset`` (e.g. ``{"train": 500, "query": 100, "database": 2000}``) draws class-balanced, seeded
    subsets of each set for quick profiles; the underlying split stays the protocol's.
    """
    entry, data_dir = dataset_entry(dataset), resolve_data_dir(data_dir)
    protocol = entry.protocol
    subset = subset or {}
    unknown = set(subset) - set(PARTS)
    if unknown:
        raise ValueError(f"subset keys must be train/query/database; got {sorted(unknown)}")
    for part, size in subset.items():
        positive_int(size, f"subset[{part!r}]", "how many images of that set to keep")
    source = entry.load_sets(data_dir, protocol, seed, Path(split_dir), download)
    sets = {}
    for offset, part in enumerate(PARTS):
        pool, indices = source.parts[part]
        labels = pool.labels if pool.labels.ndim == 1 else pool.labels.argmax(1)
        chosen = stratified_subset(indices, labels, subset.get(part), seed + offset)
        transform = build_transform(part == "train", image_size, transform_style)
        sets[part] = PoolSubset(pool, chosen, protocol.num_classes, transform)
    record = {
        "dataset": dataset,
        "protocol": protocol.description,
        "source": sets["train"].pool.source,
        "image_size": image_size,
        "transform": transform_style,
        "split": source.split,
        "sizes": {part: len(items) for part, items in sets.items()},
        "subset": subset or None,
    }
    return HashingData(sets["train"], sets["query"], sets["database"], protocol, record)

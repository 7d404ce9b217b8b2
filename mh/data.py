"""Datasets, splits and transforms of the paper's protocols (§4.1, DeepHash-pytorch conventions).

* CIFAR-10 ("cifar10", "cifar10-1", "cifar10-2"): all 60,000 images pooled and split per class with a fixed
  seed, the way the released code does it; the split is written once to a small file and reused.
* NUS-WIDE and ImageNet-100: DeepHash-pytorch list files (``<relative path> <0/1 label vector>`` per line).

Every item is ``(image (3, S, S) float tensor, label (C,) 0/1 float tensor, index)``.

Where data comes from is one setting: the ``data_dir`` argument, else ``$MH_DATA_DIR``, else ``./data``.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import transforms

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR10_TRAIN_PER_CLASS, CIFAR10_TEST_PER_CLASS = 5000, 1000
SPLIT_SEED = 2025  # the released code seeds numpy with 2025 just before drawing the split
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


@dataclass(frozen=True)
class Protocol:
    """How a dataset is split and scored. ``query_per_class``/``train_per_class`` only for CIFAR-10."""

    name: str
    num_classes: int
    topk: int | None           # mAP@topk; None = whole database
    quantization_weight: float  # η of Eq. 18 (code: alpha)
    query_per_class: int = 0
    train_per_class: int = 0
    database: str = "rest"      # CIFAR-10: "rest", "rest+train" (cifar10-1) or "train" (cifar10-2)
    description: str = ""


PROTOCOLS = {
    "cifar10": Protocol("cifar10", 10, None, 0.01, 100, 500, "rest",
                        "per class 100 query / 500 train / rest database: 1,000 / 5,000 / 54,000"),
    "cifar10-1": Protocol("cifar10-1", 10, None, 0.01, 100, 500, "rest+train",
                          "per class 100 query / 500 train, database = all but queries: 1,000 / 5,000 / 59,000"),
    "cifar10-2": Protocol("cifar10-2", 10, None, 0.01, 1000, 5000, "train",
                          "per class 1,000 query / 5,000 train, database = train: 10,000 / 50,000 / 50,000"),
    "nuswide_21": Protocol("nuswide_21", 21, 5000, 0.05,
                           description="DeepHash-pytorch lists: 2,100 query / 10,500 train / 193,734 database"),
    "imagenet": Protocol("imagenet", 100, 1000, 0.05,
                         description="ImageNet-100 lists: 5,000 query / 13,000 train / 128,503 database"),
}


class DataNotFoundError(FileNotFoundError):
    """The data source is missing or incomplete; the message says where we looked and how to get it."""


class ListFileError(ValueError):
    """A malformed DeepHash list file; the message starts with ``file:line``."""


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The data directory: the argument, else ``$MH_DATA_DIR``, else ``./data``."""
    return Path(data_dir or os.environ.get("MH_DATA_DIR") or "data").expanduser()


def build_transform(train: bool, image_size: int = 224, style: str = "paper") -> transforms.Compose:
    """Image → normalised (3, image_size, image_size) tensor.

    ``style="paper"`` (§4.1): resize to 256/224·S, then random crop S + horizontal flip (train) or centre
    crop S (test). ``style="released_cifar"``: what the released code does for CIFAR-10 on every split —
    only a resize of the 32×32 image to S×S, no crop, no flip.
    """
    if image_size < 32:
        raise ValueError(f"image_size must be at least 32 pixels (MambaHash downsamples by 32); got {image_size}")
    normalize = [transforms.ToTensor(), transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    if style == "released_cifar":
        return transforms.Compose([transforms.Resize((image_size, image_size)), *normalize])
    if style != "paper":
        raise ValueError(f"unknown transform style {style!r}; expected 'paper' or 'released_cifar'")
    resize = transforms.Resize(round(image_size * 256 / 224))
    if train:
        return transforms.Compose([resize, transforms.RandomCrop(image_size), transforms.RandomHorizontalFlip(),
                                   *normalize])
    return transforms.Compose([resize, transforms.CenterCrop(image_size), *normalize])


@dataclass
class ImagePool:
    """All images of a dataset with integer class labels, in a canonical order; ``load(i)`` → PIL RGB image."""

    labels: np.ndarray                     # (N,) int64 class index, or (N, C) 0/1 for multi-label lists
    source: str
    paths: list[Path] | None = None        # image files, or …
    arrays: np.ndarray | None = None       # … decoded uint8 images (N, H, W, 3)

    def __len__(self) -> int:
        return len(self.labels)

    def load(self, index: int) -> Image.Image:
        if self.arrays is not None:
            return Image.fromarray(self.arrays[index])
        return Image.open(self.paths[index]).convert("RGB")


def _cifar_folder_root(data_dir: Path) -> Path | None:
    for root in (data_dir, data_dir / "cifar10"):
        if (root / "train").is_dir() and (root / "test").is_dir():
            return root
    return None


def _how_to_get_cifar10(data_dir: Path) -> str:
    return (f"looked in {data_dir} (and {data_dir / 'cifar10'}) for an image-folder tree train/<class>/*.jpg + "
            f"test/<class>/*.jpg, and for torchvision's {data_dir / 'cifar-10-batches-py'}. Fix: set "
            "--data-dir / MH_DATA_DIR to an extracted copy (e.g. `tar xzf cifar10-jpg.tar.gz -C data`), or pass "
            "download=True (--download) to let torchvision fetch CIFAR-10 into that directory.")


def _load_cifar10_folder(root: Path) -> ImagePool:
    paths, labels = [], []
    for label, name in enumerate(CIFAR10_CLASSES):
        for part, expected in (("train", CIFAR10_TRAIN_PER_CLASS), ("test", CIFAR10_TEST_PER_CLASS)):
            folder = root / part / name
            files = sorted(p for p in folder.glob("*") if p.suffix.lower() in IMAGE_SUFFIXES) if folder.is_dir() else []
            if len(files) != expected:
                raise DataNotFoundError(
                    f"CIFAR-10 image folder is incomplete: {folder} holds {len(files)} images, expected {expected}. "
                    "Re-extract the archive (all 60,000 images are needed for the paper's split).")
            paths += files
            labels += [label] * expected
    return ImagePool(np.asarray(labels, dtype=np.int64), f"image folder {root}", paths=paths)


def _load_cifar10_torchvision(data_dir: Path, download: bool) -> ImagePool:
    from torchvision.datasets import CIFAR10

    try:
        parts = [CIFAR10(str(data_dir), train=train, download=download) for train in (True, False)]
    except (RuntimeError, OSError) as error:
        raise DataNotFoundError(f"torchvision could not provide CIFAR-10 ({error}); {_how_to_get_cifar10(data_dir)}")
    images = np.concatenate([part.data for part in parts])
    targets = np.concatenate([np.asarray(part.targets) for part in parts])
    # class-major, train before test within a class: the same order as the image-folder tree
    order = np.argsort(targets, kind="stable")
    return ImagePool(targets[order].astype(np.int64), f"torchvision CIFAR10 in {data_dir}", arrays=images[order])


def load_cifar10_pool(data_dir=None, download: bool = False) -> ImagePool:
    """All 60,000 CIFAR-10 images, class-major (class 0: its 5,000 train then 1,000 test images, class 1, …).

    This is the pooled order the released split draws from, restricted to one class at a time, so the same
    split indices mean the same images whichever source holds them.
    """
    data_dir = resolve_data_dir(data_dir)
    folder = _cifar_folder_root(data_dir)
    if folder is not None:
        return _load_cifar10_folder(folder)
    if (data_dir / "cifar-10-batches-py").is_dir() or download:
        return _load_cifar10_torchvision(data_dir, download)
    raise DataNotFoundError(f"CIFAR-10 not found: {_how_to_get_cifar10(data_dir)}")


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


def draw_cifar_split(labels: np.ndarray, protocol: str = "cifar10", seed: int = SPLIT_SEED) -> Split:
    """The released code's per-class split: for class 0..9 in order, a permutation (one shared RandomState
    seeded once) of that class's pool indices; the first ``query_per_class`` are queries, the next
    ``train_per_class`` training images, the rest (by protocol) the database.

    Membership is exactly the released code's. Its sets are concatenated class by class, though, and our
    metrics break Hamming ties by database index: a class-sorted database would reward ties (a network
    whose codes are all equal would score mAP ≈ 0.21 instead of ≈ 0.10 on CIFAR-10). So each set's
    *order* is then shuffled with a second RandomState(seed + 1).
    """
    spec = PROTOCOLS[protocol]
    random = np.random.RandomState(seed)
    query, train, rest = [], [], []
    for label in range(spec.num_classes):
        members = np.flatnonzero(labels == label)
        members = members[random.permutation(len(members))]
        cut = spec.query_per_class + spec.train_per_class
        query.append(members[:spec.query_per_class])
        train.append(members[spec.query_per_class:cut])
        rest.append(members[cut:])
    query, train, rest = (np.concatenate(part) for part in (query, train, rest))
    if spec.database == "rest+train":
        database = np.concatenate([train, rest])
    elif spec.database == "train":
        train = np.concatenate([train, rest])
        database = train
    else:
        database = rest
    order = np.random.RandomState(seed + 1)
    query, train = query[order.permutation(len(query))], train[order.permutation(len(train))]
    database = train if spec.database == "train" else database[order.permutation(len(database))]
    return Split(query, train, database, protocol, seed)


def _split_digest(split: Split) -> str:
    digest = hashlib.sha256()
    for part in (split.query, split.train, split.database):
        digest.update(np.ascontiguousarray(part, dtype=np.int64).tobytes())
    return digest.hexdigest()


def cifar_split(labels: np.ndarray, protocol: str = "cifar10", seed: int = SPLIT_SEED,
                split_dir: str | os.PathLike = "results/splits") -> Split:
    """The split for ``protocol``, read from ``split_dir/<protocol>-seed<seed>.npz`` when it exists (and
    matches the pool), else drawn and written there. Every run and notebook therefore sees one split."""
    if protocol not in PROTOCOLS or not protocol.startswith("cifar10"):
        raise ValueError(f"unknown CIFAR-10 protocol {protocol!r}; expected one of cifar10, cifar10-1, cifar10-2")
    path = Path(split_dir) / f"{protocol}-seed{seed}.npz"
    if path.exists():
        stored = np.load(path)
        split = Split(stored["query"], stored["train"], stored["database"], protocol, seed, str(stored["sha256"]))
        if int(stored["pool_size"]) != len(labels) or not np.array_equal(stored["pool_labels"], labels):
            raise ValueError(f"{path} was written for a different image pool ({int(stored['pool_size'])} images); "
                             "delete it to draw a new split, or point --data-dir at the matching data.")
        if _split_digest(split) != split.sha256:
            raise ValueError(f"{path} is corrupt (its checksum does not match its indices); delete it to redraw.")
        return split
    split = draw_cifar_split(labels, protocol, seed)
    split.sha256 = _split_digest(split)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp.npz")
    np.savez_compressed(temporary, query=split.query, train=split.train, database=split.database,
                        pool_size=len(labels), pool_labels=labels, sha256=split.sha256)
    temporary.replace(path)
    return split


def stratified_subset(indices: np.ndarray, labels: np.ndarray, size: int | None, seed: int) -> np.ndarray:
    """``size`` of ``indices`` drawn evenly over classes (seeded), kept in their original order; None = all."""
    if size is None or size >= len(indices):
        return indices
    random = np.random.RandomState(seed)
    classes = np.unique(labels[indices])
    per_class = np.array_split(np.arange(size), len(classes))
    keep = []
    for label, share in zip(classes, per_class):
        members = np.flatnonzero(labels[indices] == label)
        keep.append(random.choice(members, size=min(len(share), len(members)), replace=False))
    return indices[np.sort(np.concatenate(keep))]


class PoolSubset(Dataset):
    """Items ``indices`` of an ImagePool as ``(image, one-hot label, position)``."""

    def __init__(self, pool: ImagePool, indices: np.ndarray, num_classes: int, transform):
        self.pool, self.indices, self.transform = pool, np.asarray(indices), transform
        labels = pool.labels[self.indices]
        self.labels = (torch.nn.functional.one_hot(torch.as_tensor(labels), num_classes).float()
                       if labels.ndim == 1 else torch.as_tensor(labels, dtype=torch.float32))

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, position: int):
        return self.transform(self.pool.load(int(self.indices[position]))), self.labels[position], position


def read_list_file(list_file: str | os.PathLike, image_root: str | os.PathLike, num_classes: int | None = None,
                   check_files: bool = True) -> ImagePool:
    """Parse a DeepHash-pytorch list file: ``<path relative to image_root> <0/1> <0/1> …`` per line.

    Blank lines are skipped. Raises ``ListFileError("file:line: reason")`` on a missing label vector, a
    label that is not 0/1, a width other than ``num_classes`` (or the first line's), or (``check_files``)
    an image that does not exist.
    """
    list_file, image_root = Path(list_file), Path(image_root)
    if not list_file.is_file():
        raise DataNotFoundError(f"list file {list_file} does not exist; DeepHash-pytorch's lists go in "
                                "<data-dir>/<dataset>/{train,test,database}.txt")
    paths, rows = [], []
    for number, line in enumerate(list_file.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{list_file}:{number}"
        name, *tokens = line.split()
        if not tokens:
            raise ListFileError(f"{where}: no label vector after {name!r}")
        if any(token not in ("0", "1") for token in tokens):
            raise ListFileError(f"{where}: labels must be 0 or 1; got {' '.join(tokens[:8])}")
        width = num_classes if num_classes is not None else (len(rows[0]) if rows else len(tokens))
        if len(tokens) != width:
            raise ListFileError(f"{where}: label vector has {len(tokens)} entries, expected {width}")
        path = image_root / name
        if check_files and not path.is_file():
            raise ListFileError(f"{where}: image {path} does not exist (image root {image_root})")
        paths.append(path)
        rows.append([int(token) for token in tokens])
    if not rows:
        raise ListFileError(f"{list_file}: no entries")
    return ImagePool(np.asarray(rows, dtype=np.int64), f"list file {list_file}", paths=paths)


@dataclass
class HashingData:
    """The three sets of a retrieval protocol, ready for DataLoaders, and a record of where they came from."""

    train: PoolSubset
    query: PoolSubset
    database: PoolSubset
    protocol: Protocol
    record: dict


def load_hashing_data(dataset: str = "cifar10", data_dir=None, image_size: int = 224, transform_style: str = "paper",
                      subset: dict[str, int] | None = None, seed: int = SPLIT_SEED,
                      split_dir: str | os.PathLike = "results/splits", download: bool = False) -> HashingData:
    """Train / query / database sets of ``dataset`` (a key of PROTOCOLS).

    ``subset`` (e.g. ``{"train": 500, "query": 100, "database": 2000}``) draws class-balanced, seeded
    subsets of each set for quick profiles; the underlying split stays the protocol's.
    """
    if dataset not in PROTOCOLS:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {', '.join(PROTOCOLS)}")
    protocol, data_dir = PROTOCOLS[dataset], resolve_data_dir(data_dir)
    if dataset.startswith("cifar10"):
        pool = load_cifar10_pool(data_dir, download)
        split = cifar_split(pool.labels, dataset, seed, split_dir)
        parts = {"train": (pool, split.train), "query": (pool, split.query), "database": (pool, split.database)}
        split_record = {"file": str(Path(split_dir) / f"{dataset}-seed{seed}.npz"), "sha256": split.sha256,
                        "seed": seed}
    else:
        root = data_dir / dataset
        parts = {}
        for part, file_name in (("train", "train.txt"), ("query", "test.txt"), ("database", "database.txt")):
            part_pool = read_list_file(root / file_name, data_dir, protocol.num_classes)
            parts[part] = (part_pool, np.arange(len(part_pool)))
        split_record = {"files": [str(root / name) for name in ("train.txt", "test.txt", "database.txt")]}
    subset = subset or {}
    unknown = set(subset) - {"train", "query", "database"}
    if unknown:
        raise ValueError(f"subset keys must be train/query/database; got {sorted(unknown)}")
    sets = {}
    for offset, (part, (part_pool, indices)) in enumerate(parts.items()):
        labels = part_pool.labels if part_pool.labels.ndim == 1 else part_pool.labels.argmax(1)
        chosen = stratified_subset(indices, labels, subset.get(part), seed + offset)
        sets[part] = PoolSubset(part_pool, chosen, protocol.num_classes,
                                build_transform(part == "train", image_size, transform_style))
    record = {"dataset": dataset, "protocol": protocol.description, "source": sets["train"].pool.source,
              "image_size": image_size, "transform": transform_style, "split": split_record,
              "sizes": {part: len(items) for part, items in sets.items()}, "subset": subset or None}
    return HashingData(sets["train"], sets["query"], sets["database"], protocol, record)

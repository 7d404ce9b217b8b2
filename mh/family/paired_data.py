"""Image–text pairs for cross-modal hashing: the DSPH list files and a synthetic paired set built from CIFAR-10.

DSPH layout (MIRFlickr-25K, NUS-WIDE; the layout CAGMH reads), one folder per dataset:
    index.mat    key ``index``: image paths, relative to the folder (or absolute)
    caption.mat  key ``caption``: one caption per image (MIRFlickr: its tags joined by spaces);
                 NUS-WIDE ships ``caption.txt`` instead, one line per image
    label.mat    key ``category``: multi-hot labels (N, C)
Split (DSPH/CAGMH): one NumPy permutation seeded with 1814; the first ``query`` samples are the queries, the
next ``train`` the training set, every sample but the queries the retrieval database (train ⊂ database).

Synthetic CIFAR-10 mosaics (**synthetic**, made here, not a benchmark): each sample is a mosaic of four (2 × 2)
or two (side by side) CIFAR-10 images, or one image alone, its caption generated from the class names in
reading order ("a cat, a ship and two dogs"), its label either the multi-hot set of its classes (relevant: a
shared class) or the one set of classes it shows (relevant: the same set; a low chance level). Train, query
and database mosaics take their tiles from disjoint CIFAR-10 images. Seeded: the same arguments give the same
mosaics.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.io
import torch
from torch.utils.data import Dataset

from mh.data import ImagePool

DSPH_SPLIT_SEED = 1814
DSPH_DATASETS = {"mirflickr25k": 24, "nuswide": 21}  # classes of the DSPH lists
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
NUMBER_WORDS = {2: "two", 3: "three", 4: "four"}
TILE = 32


@dataclass
class PairedSet(ImagePool):
    """An ImagePool (images as files or arrays, ``load(i)`` → PIL image; labels (N, C) multi-hot) with one
    caption per image."""

    captions: list[str] = field(default_factory=list)


def _strings(array, name: str) -> list[str]:
    """A .mat string column (char matrix, cell array or string array) → stripped Python strings."""
    array = np.asarray(array)
    if array.dtype == object:
        return [str(np.asarray(item).squeeze()) if np.asarray(item).size else "" for item in array.ravel()]
    if array.dtype.kind in "US":  # loadmat's chars_as_strings turns a char matrix into one string per row
        return [str(item).strip() for item in array.ravel()]
    raise ValueError(f"{name}: expected strings, found a {array.dtype} array of shape {array.shape}")


def _load_mat(path: Path, key: str):
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: a DSPH dataset folder holds index.mat, caption.mat and label.mat")
    contents = scipy.io.loadmat(path)
    if key not in contents:
        found = sorted(k for k in contents if not k.startswith("__"))
        raise ValueError(f"{path} has no variable {key!r} (found {found}); is it a DSPH {path.name}?")
    return contents[key]


def load_dsph_pairs(folder: str | os.PathLike) -> PairedSet:
    """A DSPH dataset folder → PairedSet; image paths are resolved against the folder. Counts must agree."""
    folder = Path(folder)
    paths = [
        Path(p) if os.path.isabs(p) else folder / p for p in _strings(_load_mat(folder / "index.mat", "index"), "index")
    ]
    if (folder / "caption.txt").is_file():
        captions = (folder / "caption.txt").read_text(encoding="utf-8").splitlines()
    else:
        captions = _strings(_load_mat(folder / "caption.mat", "caption"), "caption")
    labels = np.asarray(_load_mat(folder / "label.mat", "category"), dtype=np.float32)
    if labels.ndim != 2 or not np.isin(labels, (0, 1)).all():
        raise ValueError(f"{folder / 'label.mat'}: 'category' must be a 0/1 matrix (N, C); got shape {labels.shape}")
    counts = {"index.mat": len(paths), "captions": len(captions), "label.mat": len(labels)}
    if len(set(counts.values())) != 1:
        raise ValueError(f"{folder}: the files disagree on the number of samples: {counts}")
    return PairedSet(labels, f"DSPH lists in {folder}", paths=paths, captions=captions)


def dsph_split(size: int, query: int, train: int, seed: int = DSPH_SPLIT_SEED) -> dict[str, np.ndarray]:
    """Indices of the DSPH split: ``query``, ``train`` (the next ones), ``database`` (all but the queries)."""
    if query + train > size:
        raise ValueError(f"{query} queries + {train} training samples exceed the {size} pairs")
    order = np.random.RandomState(seed).permutation(size)
    return {"query": order[:query], "train": order[query : query + train], "database": order[query:]}


def carve_validation(train: PairedSet, query: int, database: int, seed: int = 0) -> dict[str, PairedSet]:
    """Validation pairs held out of the training pairs, so that settings are chosen without the query set:
    {"train": the rest, "validation_query": ``query`` pairs, "validation_database": ``database`` pairs} (a
    seeded permutation; the validation database is never trained on, as the protocol's database is not)."""
    if query < 1 or database < 1 or query + database >= len(train):
        raise ValueError(
            f"{query} validation queries + {database} validation database pairs must be at least 1 each and "
            f"leave training pairs out of {len(train)}; ask for fewer"
        )
    order = np.random.default_rng(seed).permutation(len(train))
    chosen = {
        "train": order[query + database :],
        "validation_query": order[:query],
        "validation_database": order[query : query + database],
    }

    def part(name: str, indices: np.ndarray) -> PairedSet:
        return PairedSet(
            train.labels[indices],
            f"{train.source}, {name} ({len(indices)} of its pairs, seed {seed})",
            paths=[train.paths[i] for i in indices] if train.paths is not None else None,
            arrays=train.arrays[indices] if train.arrays is not None else None,
            captions=[train.captions[i] for i in indices],
        )

    return {name: part(name, np.sort(indices)) for name, indices in chosen.items()}


def caption_for(classes: list[int]) -> str:
    """Tile classes in reading order → "a cat, a ship and two dogs" (classes named in first-seen order)."""
    counts = {}
    for label in classes:
        counts[label] = counts.get(label, 0) + 1
    phrases = []
    for label, count in counts.items():
        name = CIFAR10_CLASSES[label]
        plural = name if name == "deer" else name + "s"
        article = "an" if name[0] in "aeiou" else "a"
        phrases.append(f"{article} {name}" if count == 1 else f"{NUMBER_WORDS[count]} {plural}")
    return phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]


RELEVANCE = ("shared_class", "class_set")
LAYOUTS = {4: (2, 2), 2: (1, 2), 1: (1, 1)}  # tiles per mosaic → (rows, columns)


def class_sets(tiles: int, classes: int = len(CIFAR10_CLASSES)) -> list[tuple[int, ...]]:
    """Every multiset of ``tiles`` classes, sorted: the label space of ``relevance="class_set"`` mosaics
    (the 10 classes for 1 tile, 55 sets for 2 tiles of 10 classes, 715 for 4)."""
    return list(itertools.combinations_with_replacement(range(classes), tiles))


def synthetic_mosaics(
    pool: ImagePool, sizes: dict[str, int], seed: int = 0, tiles: int = 4, relevance: str = "shared_class"
) -> dict[str, PairedSet]:
    """**Synthetic** CIFAR-10 mosaics: {part: PairedSet of ``sizes[part]`` mosaics of ``tiles`` 32 × 32 images}
    (4: a 2 × 2 grid, 64 × 64 px; 2: side by side, 32 × 64 px; 1: the image alone, captioned "a cat"); tiles of
    different parts come from disjoint CIFAR-10 images (a seeded permutation of the pool, cut in consecutive
    blocks).

    ``relevance`` says which mosaics count as relevant to each other through the labels it writes:
    ``shared_class`` — multi-hot class rows (N, 10), relevant when they share a class (as on MIRFlickr); with 4
    tiles nearly every pair shares one, so a random ranking already scores about 0.8 mAP. ``class_set`` — one-hot
    rows over ``class_sets(tiles)``, relevant only when the mosaics show the same set of classes: a random
    ranking scores about 0.02 with 2 tiles, about 0.1 with 1 (``mh.metrics.chance_map`` states it exactly)."""
    if tiles not in LAYOUTS:
        raise ValueError(f"tiles must be one of {sorted(LAYOUTS)}; got {tiles}")
    if relevance not in RELEVANCE:
        raise ValueError(f"relevance must be one of {', '.join(RELEVANCE)}; got {relevance!r}")
    needed = tiles * sum(sizes.values())
    if needed > len(pool):
        raise ValueError(f"{needed} tiles needed but the pool has {len(pool)} images; ask for fewer mosaics")
    rows, columns = LAYOUTS[tiles]
    set_index = {classes: position for position, classes in enumerate(class_sets(tiles))}
    width = len(CIFAR10_CLASSES) if relevance == "shared_class" else len(set_index)
    generator = np.random.default_rng(seed)
    order, start, parts = generator.permutation(len(pool)), 0, {}
    for part, count in sizes.items():
        chosen = order[start : start + tiles * count].reshape(count, tiles)
        start += tiles * count
        arrays = np.zeros((count, rows * TILE, columns * TILE, 3), dtype=np.uint8)
        labels = np.zeros((count, width), dtype=np.float32)
        captions = []
        for sample, indices in enumerate(chosen):
            for position, index in enumerate(indices):
                row, col = divmod(position, columns)
                image = pool.load(int(index)).resize((TILE, TILE))
                arrays[sample, row * TILE : (row + 1) * TILE, col * TILE : (col + 1) * TILE] = np.asarray(image)
            classes = [int(pool.labels[i]) for i in indices]
            if relevance == "shared_class":
                labels[sample, classes] = 1
            else:
                labels[sample, set_index[tuple(sorted(classes))]] = 1
            captions.append(caption_for(classes))
        source = f"synthetic CIFAR-10 mosaics ({part}, {tiles} tiles, relevance {relevance}, seed {seed})"
        parts[part] = PairedSet(labels, source, arrays=arrays, captions=captions)
    return parts


class PairedDataset(Dataset):
    """A PairedSet as ``(image tensor, token ids (context,), label row (C,), position)`` items."""

    def __init__(self, pairs: PairedSet, transform, tokens: torch.Tensor):
        if len(tokens) != len(pairs):
            raise ValueError(f"{len(tokens)} token rows for {len(pairs)} pairs")
        self.pairs, self.transform, self.tokens = pairs, transform, tokens
        self.labels = torch.as_tensor(pairs.labels, dtype=torch.float32)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, position: int):
        return self.transform(self.pairs.load(position)), self.tokens[position], self.labels[position], position

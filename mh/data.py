"""Images and transforms: the paper's datasets as ``(image, label, index)`` items (§4.1).

* CIFAR-10: all 60,000 images from an image-folder tree or torchvision's files, in one canonical order, split
  by ``mh.splits``.
* NUS-WIDE and ImageNet-100: DeepHash-pytorch list files (``<relative path> <0/1 label vector>`` per line).

Which dataset name reads which files, under which protocol, is ``mh.datasets`` (one entry per dataset), whose
``load_hashing_data`` returns the three sets as a ``HashingData``.

Every item is ``(image (3, S, S) float tensor, label (C,) 0/1 float tensor, index)``.

Where data comes from is one rule, for every command and notebook (``resolve_data_dir``): the ``data_dir``
argument, else ``$MH_DATA_DIR``, else ``data/`` in the project's checkout.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from torch.utils.data import Dataset
from torchvision import transforms

from mh.binary import label_rows
from mh.io import PROJECT_ROOT
from mh.splits import CIFAR10_CLASSES, CIFAR10_TEST_PER_CLASS, CIFAR10_TRAIN_PER_CLASS, Protocol

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


class DataNotFoundError(FileNotFoundError):
    """The data source is missing or incomplete; the message says where we looked and how to get it."""


class ListFileError(ValueError):
    """A malformed DeepHash list file; the message starts with ``file:line``."""


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The data directory: the argument, else ``$MH_DATA_DIR``, else ``data/`` in the project's checkout."""
    return Path(data_dir or os.environ.get("MH_DATA_DIR") or PROJECT_ROOT / "data").expanduser()


class ImagePipeline(transforms.Compose):
    """A ``Compose`` that says what it is — training or evaluation, image size, style — so that the fast path
    (``mh.tensordata``) can run the same pipeline on a uint8 cache."""

    def __init__(self, steps: list, train: bool, image_size: int, style: str):
        super().__init__(steps)
        self.train, self.image_size, self.style = train, image_size, style


TRANSFORM_STYLES = ("paper", "released_cifar")  # the image pipelines build_transform knows


def build_transform(train: bool, image_size: int = 224, style: str = "paper") -> ImagePipeline:
    """Image → normalised (3, image_size, image_size) tensor.

    ``style="paper"`` (§4.1): resize to 256/224·S, then random crop S + horizontal flip (train) or centre
    crop S (test). ``style="released_cifar"``: what the released code does for CIFAR-10 on every split —
    only a resize of the 32×32 image to S×S, no crop, no flip.
    """
    if image_size < 32:
        raise ValueError(f"image_size must be at least 32 pixels (MambaHash downsamples by 32); got {image_size}")
    normalize = [transforms.ToTensor(), transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    if style == "released_cifar":
        return ImagePipeline([transforms.Resize((image_size, image_size)), *normalize], train, image_size, style)
    if style not in TRANSFORM_STYLES:
        raise ValueError(f"unknown transform style {style!r}; expected one of {', '.join(TRANSFORM_STYLES)}")
    resize = transforms.Resize(round(image_size * 256 / 224))
    if train:
        steps = [resize, transforms.RandomCrop(image_size), transforms.RandomHorizontalFlip(), *normalize]
        return ImagePipeline(steps, train, image_size, style)
    return ImagePipeline([resize, transforms.CenterCrop(image_size), *normalize], train, image_size, style)


@dataclass
class ImagePool:
    """All images of a dataset with integer class labels, in a canonical order; ``load(i)`` → PIL RGB image."""

    labels: np.ndarray  # (N,) int64 class index, or (N, C) 0/1 for multi-label lists
    source: str
    paths: list[Path] | None = None  # image files, or …
    arrays: np.ndarray | None = None  # … decoded uint8 images (N, H, W, 3)

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
    return (
        f"looked in {data_dir} (and {data_dir / 'cifar10'}) for an image-folder tree train/<class>/*.jpg + "
        f"test/<class>/*.jpg, and for torchvision's {data_dir / 'cifar-10-batches-py'}. Fix: set "
        "--data-dir / MH_DATA_DIR to an extracted copy (e.g. `tar xzf cifar10-jpg.tar.gz -C data`), or pass "
        "download=True (--download) to let torchvision fetch CIFAR-10 into that directory."
    )


def _load_cifar10_folder(root: Path) -> ImagePool:
    paths, labels = [], []
    for label, name in enumerate(CIFAR10_CLASSES):
        for part, expected in (("train", CIFAR10_TRAIN_PER_CLASS), ("test", CIFAR10_TEST_PER_CLASS)):
            folder = root / part / name
            files = sorted(p for p in folder.glob("*") if p.suffix.lower() in IMAGE_SUFFIXES) if folder.is_dir() else []
            if len(files) != expected:
                raise DataNotFoundError(
                    f"CIFAR-10 image folder is incomplete: {folder} holds {len(files)} images, expected {expected}. "
                    "Re-extract the archive (all 60,000 images are needed for the paper's split)."
                )
            paths += files
            labels += [label] * expected
    return ImagePool(np.asarray(labels, dtype=np.int64), f"image folder {root}", paths=paths)


def _load_cifar10_torchvision(data_dir: Path, download: bool) -> ImagePool:
    from torchvision.datasets import CIFAR10

    try:
        parts = [CIFAR10(str(data_dir), train=train, download=download) for train in (True, False)]
    except (RuntimeError, OSError) as error:
        raise DataNotFoundError(
            f"torchvision could not provide CIFAR-10 ({error}); {_how_to_get_cifar10(data_dir)}"
        ) from error
    images = np.concatenate([part.data for part in parts])
    targets = np.concatenate([np.asarray(part.targets) for part in parts])
    # class-major, train before test within a class: the same order as the image-folder tree
    order = np.argsort(targets, kind="stable")
    return ImagePool(targets[order].astype(np.int64), f"torchvision CIFAR10 in {data_dir}", arrays=images[order])


def locate_cifar10(data_dir=None) -> Path:
    """Where CIFAR-10 would be read from (an image-folder root or torchvision's directory), without reading
    it; DataNotFoundError, saying where it looked and how to get the data, when there is none."""
    data_dir = resolve_data_dir(data_dir)
    folder = _cifar_folder_root(data_dir)
    if folder is not None:
        return folder
    if (data_dir / "cifar-10-batches-py").is_dir():
        return data_dir
    raise DataNotFoundError(f"CIFAR-10 not found: {_how_to_get_cifar10(data_dir)}")


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


VERIFY_LEVELS = ("none", "header", "full")


class BadImageError(ValueError):
    """Images that cannot be read; the message names them and the fix."""


def _image_problem(path: Path, level: str) -> str | None:
    try:
        with Image.open(path) as image:
            if level == "header":
                image.verify()
            else:
                image.load()
    except (OSError, SyntaxError, ValueError) as error:  # PIL raises all three for broken files
        return f"{path}: {type(error).__name__}: {error}"
    return None


def verify_images(subset: PoolSubset, level: str = "full", name: str = "images", progress: bool = False) -> int:
    """Open every image of ``subset`` before training starts; returns how many were checked.

    ``level``: ``header`` (PIL's verify: format and header, fast), ``full`` (decode every pixel: catches
    truncated files; cheap at CIFAR size) or ``none``. Raises BadImageError listing the unreadable files.
    """
    if level not in VERIFY_LEVELS:
        raise ValueError(f"verify level must be one of {VERIFY_LEVELS}; got {level!r}")
    if level == "none" or subset.pool.paths is None:  # decoded arrays (torchvision's batches) need no check
        return 0
    from mh.progress import progress_bar  # tqdm.auto only when images are verified

    paths = [subset.pool.paths[int(index)] for index in subset.indices]
    problems = [
        problem
        for path in progress_bar(paths, f"verify {name}", progress, leave=False)
        if (problem := _image_problem(path, level)) is not None
    ]
    if problems:
        shown = "\n  ".join(problems[:10]) + (f"\n  … and {len(problems) - 10} more" if len(problems) > 10 else "")
        raise BadImageError(
            f"{len(problems)} of the {len(paths)} {name} cannot be read:\n  {shown}\n"
            "replace them with intact copies (re-extract the dataset) or remove them from the list file; "
            "--verify-data none skips this check"
        )
    return len(paths)


class PoolSubset(Dataset):
    """Items ``indices`` of an ImagePool as ``(image, one-hot label, position)``."""

    def __init__(self, pool: ImagePool, indices: np.ndarray, num_classes: int, transform):
        self.pool, self.indices, self.transform = pool, np.asarray(indices), transform
        self.labels = label_rows(pool.labels[self.indices], num_classes)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, position: int):
        return self.transform(self.image(position)), self.labels[position], position

    def image(self, position: int) -> Image.Image:
        """The item at ``position`` as the untransformed PIL image (for showing it)."""
        return self.pool.load(int(self.indices[position]))

    def class_indices(self) -> np.ndarray:
        """(N,) class index of each item (the first label of a multi-label row)."""
        return self.labels.argmax(1).numpy()


def read_list_file(
    list_file: str | os.PathLike,
    image_root: str | os.PathLike,
    num_classes: int | None = None,
    check_files: bool = True,
) -> ImagePool:
    """Parse a DeepHash-pytorch list file: ``<path relative to image_root> <0/1> <0/1> …`` per line.

    Blank lines are skipped. Raises ``ListFileError("file:line: reason")`` on a missing label vector, a
    label that is not 0/1, a width other than ``num_classes`` (or the first line's), or (``check_files``)
    an image that does not exist.
    """
    list_file, image_root = Path(list_file), Path(image_root)
    if not list_file.is_file():
        raise DataNotFoundError(
            f"list file {list_file} does not exist; DeepHash-pytorch's lists go in "
            "<data-dir>/<dataset>/{train,test,database}.txt"
        )
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

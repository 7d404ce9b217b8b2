"""The fast path's data: every image decoded once into a uint8 tensor cache, augmented in batches on the device.

The reference path (``mh.data.build_transform`` in a DataLoader) decodes and resizes every image with PIL,
every epoch, one image at a time; at 224 px that alone cannot feed a GPU. Here the deterministic part of the
paper's pipeline (§4.1: resize to R = round(S·256/224), square) runs once per image, with the same PIL
operation, into a uint8 cache (N, 3, R, R) kept in host memory; what is random (a crop of S and a horizontal
flip) and the normalisation run per batch on the device:

    cache = ImageCache.build(subset)     # decode once (PIL, as the reference), per the set's ImagePipeline
    draws = crop_draws(len(cache), R, S, generator)                      # each item's crop and flip this epoch
    images = augment_batch(cache.images[rows].to(device), S, "paper", draws, rows)   # (B, 3, S, S) float

Crops are integer windows of the cached image, so for square images (CIFAR-10) a crop at the same offset
equals the reference pipeline's output bit for bit (``tests/test_fastpath.py``); only the random draws differ:
each epoch draws every item's crop and flip at once, from the training loop's generator (reseeded from
(seed, epoch)), and a batch takes its items' rows — so the draws do not depend on how items fall into batches or
onto ``torchrun``'s ranks, and N processes see what one process sees. Non-square images are cached as the centre
square of the resized image, so their random crops never reach the outer strips of the long side: a
documented approximation of the reference ``RandomCrop`` on the fast path only.

``style="released_cifar"`` (the released code's plain resize to S×S) caches the resized image itself; training
adds no augmentation, as there.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from mh.data import IMAGENET_MEAN, IMAGENET_STD, TRANSFORM_STYLES, ImagePipeline, PoolSubset
from mh.progress import progress_bar


def cached_size(image_size: int, style: str) -> int:
    """Side R of the cached square: the paper's resize before the crop (256/224 of S), or S itself."""
    if style not in TRANSFORM_STYLES:
        raise ValueError(f"unknown transform style {style!r}; expected one of {', '.join(TRANSFORM_STYLES)}")
    return round(image_size * 256 / 224) if style == "paper" else image_size


class _Decoded(Dataset):
    """Items of ``subset`` as uint8 (3, R, R) tensors: PIL resize (the reference's own op), centre square."""

    def __init__(self, subset: PoolSubset, side: int, style: str):
        self.subset = subset
        resize = transforms.Resize((side, side)) if style == "released_cifar" else transforms.Resize(side)
        self.prepare = transforms.Compose([resize, transforms.CenterCrop(side), transforms.PILToTensor()])

    def __len__(self) -> int:
        return len(self.subset)

    def __getitem__(self, position: int) -> torch.Tensor:
        return self.prepare(self.subset.image(position))


_CACHES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@dataclass
class ImageCache:
    """One set's images, decoded once: ``images`` (N, 3, R, R) uint8 in host memory, with the set's labels."""

    images: torch.Tensor
    labels: torch.Tensor  # (N, C) 0/1 float, as the set's items
    image_size: int
    style: str
    train: bool  # the set's pipeline augments (random crop and flip): a training pipeline

    def __len__(self) -> int:
        return len(self.images)

    @classmethod
    def build(cls, subset: PoolSubset, num_workers: int = 0, progress: bool = False) -> ImageCache:
        """Decode ``subset`` once, for the size and style of its ``ImagePipeline`` (memoised per set: the
        notebooks' runs share one cache)."""
        pipeline = getattr(subset, "transform", None)
        if not isinstance(pipeline, ImagePipeline):
            raise ValueError(
                f"the fast path caches sets whose transform is an mh.data.ImagePipeline (mh.data.build_transform); "
                f"this {type(subset).__name__} has {type(pipeline).__name__}: use fast_path='off' for it"
            )
        image_size, style = pipeline.image_size, pipeline.style
        key = (image_size, style)
        per_set = _CACHES.setdefault(subset, {})
        if key not in per_set:
            side = cached_size(image_size, style)
            loader = DataLoader(_Decoded(subset, side, style), batch_size=256, num_workers=num_workers)
            chunks = list(progress_bar(loader, f"decode {len(subset)} images once", progress, leave=False))
            images = torch.cat(chunks) if chunks else torch.empty(0, 3, side, side, dtype=torch.uint8)
            per_set[key] = cls(images, subset.labels, image_size, style, pipeline.train)
        return per_set[key]


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B, 3, H, W) → float (B, 3, H, W), as ToTensor then Normalize(ImageNet mean, std) (same ops)."""
    mean = torch.tensor(IMAGENET_MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=images.device).view(1, 3, 1, 1)
    return images.float().div(255).sub(mean).div(std)


def crop_windows(images: torch.Tensor, size: int, tops: torch.Tensor, lefts: torch.Tensor) -> torch.Tensor:
    """Window (top, left, size × size) of each image. (B, C, R, R), (B,), (B,) → (B, C, size, size)."""
    steps = torch.arange(size, device=images.device)
    rows = (tops.to(images.device).view(-1, 1) + steps).view(-1, 1, size, 1)
    columns = (lefts.to(images.device).view(-1, 1) + steps).view(-1, 1, 1, size)
    batch = torch.arange(len(images), device=images.device).view(-1, 1, 1, 1)
    channel = torch.arange(images.shape[1], device=images.device).view(1, -1, 1, 1)
    return images[batch, channel, rows, columns]


def centre_offset(side: int, size: int) -> int:
    """torchvision CenterCrop's offset: int(round((side − size) / 2))."""
    return int(round((side - size) / 2.0))


def crop_draws(count: int, side: int, image_size: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    """Every item's random crop (top, left) and horizontal flip for one epoch: three (count,) tensors drawn from
    ``generator`` (a CPU generator, reseeded by the training loop every epoch)."""
    tops = torch.randint(0, side - image_size + 1, (count,), generator=generator)
    lefts = torch.randint(0, side - image_size + 1, (count,), generator=generator)
    flips = torch.rand(count, generator=generator) < 0.5
    return tops, lefts, flips


def augment_batch(
    images: torch.Tensor, image_size: int, style: str, draws: tuple | None = None, rows: torch.Tensor | None = None
) -> torch.Tensor:
    """Cached uint8 images (B, 3, R, R) on the device → normalised (B, 3, S, S). ``draws`` (``crop_draws``, indexed
    by ``rows``, the batch's item positions) give the ``paper`` style's training crop and flip; None gives the
    evaluation pipeline (centre crop)."""
    side = images.shape[-1]
    if style == "released_cifar" or side == image_size:
        return normalize(images)
    if draws is None:
        offset = torch.full((len(images),), centre_offset(side, image_size))
        return normalize(crop_windows(images, image_size, offset, offset))
    tops, lefts, flips = (draw[rows] for draw in draws)
    cropped = crop_windows(images, image_size, tops, lefts)
    flips = flips.to(images.device).view(-1, 1, 1, 1)
    return normalize(torch.where(flips, cropped.flip(-1), cropped))


class CachedBatches:
    """The training loader of the fast path: batches in ``sampler``'s order from an ``ImageCache``, augmented on
    ``device``; yields (images, labels, positions) like ``mh.engine.train_loader``'s DataLoader."""

    def __init__(self, cache: ImageCache, sampler, batch_size: int, device: torch.device, generator: torch.Generator):
        self.cache, self.sampler, self.batch_size = cache, sampler, batch_size
        self.device, self.generator = device, generator

    def __len__(self) -> int:
        return -(-len(self.sampler) // self.batch_size)

    def __iter__(self):
        cache = self.cache
        side = cache.images.shape[-1]
        draws = crop_draws(len(cache), side, cache.image_size, self.generator) if cache.train else None
        order = torch.as_tensor(list(self.sampler), dtype=torch.long)
        for batch in order.split(self.batch_size):
            images = cache.images[batch].to(self.device, non_blocking=True)
            yield augment_batch(images, cache.image_size, cache.style, draws, batch), cache.labels[batch], batch


def cached_eval_batches(cache: ImageCache, batch_size: int, device: torch.device, rows: range | None = None):
    """(images, labels) batches of the evaluation pipeline (centre crop), in order, over ``rows`` (default all)."""
    positions = torch.arange(len(cache)) if rows is None else torch.as_tensor(list(rows), dtype=torch.long)
    for batch in positions.split(batch_size):
        images = cache.images[batch].to(device, non_blocking=True)
        yield augment_batch(images, cache.image_size, cache.style), cache.labels[batch]

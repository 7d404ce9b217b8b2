"""Encoding (inference): images → binary codes b = sign(h) (§3.4), in dataset order.

    codes, labels = encode(model, dataset, batch_size=256, device="cuda")

The profile's fast path (``mh.fastpath``) applies as in training: ``fast_path="fused"`` or ``"compiled"`` encodes
from the set's uint8 image cache (``mh.tensordata``), with bf16 autocast where it pays on the device; codes are
taken from the float32 view of the outputs. The device rule of every command: an explicit name, else CUDA when
available, else the CPU.
"""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Subset

from mh.binary import binarize
from mh.fastpath import fast_plan
from mh.progress import progress_bar
from mh.tensordata import ImageCache, cached_eval_batches


def resolve_device(name: str | None = None) -> torch.device:
    """``name`` as a device ("cpu", "cuda", "cuda:1"); None or "auto": CUDA when available, else the CPU."""
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device {name!r}; expected auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but torch.cuda.is_available() is False; use --device cpu")
    return device


@torch.no_grad()
def encode(
    model: torch.nn.Module,
    dataset,
    batch_size: int = 256,
    device="cpu",
    num_workers: int = 0,
    progress: bool = True,
    description: str = "encode",
    fast_path: str = "off",
    rows: range | None = None,
    forward=None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sign codes (n, K) in {−1, +1} and labels (n, C) of every ``(image, label, index)`` item of ``dataset``
    (of its items ``rows`` when given). ``forward`` runs ``model`` when given (it under torch.compile)."""
    device = torch.device(device)
    plan = fast_plan(fast_path, device)
    was_training = model.training
    model.eval()
    batches = _batches(dataset, batch_size, device, num_workers, plan.tensor_data, rows)
    codes, labels = [], []
    for images, batch_labels in progress_bar(batches, description, progress, leave=False):
        output = plan.run(forward or model, images.to(device, non_blocking=True), device)
        if not bool(torch.isfinite(output).all()):
            raise ValueError(
                f"{description}: the network gave non-finite outputs (NaN or ±inf) for items "
                f"{len(codes) * batch_size}..{len(codes) * batch_size + len(images) - 1}; its weights have "
                "diverged: train again with a lower learning rate, or encode from an earlier checkpoint"
            )
        codes.append(binarize(output.float()).cpu())
        labels.append(batch_labels)
    model.train(was_training)
    return torch.cat(codes), torch.cat(labels)


def _batches(dataset, batch_size: int, device: torch.device, num_workers: int, cached: bool, rows: range | None):
    """(images, labels) batches in order: from the set's uint8 cache (fast path), else a DataLoader."""
    if cached:
        cache = ImageCache.build(dataset, num_workers)
        return cached_eval_batches(cache, batch_size, device, rows)
    shard = dataset if rows is None else Subset(dataset, rows)
    loader = DataLoader(shard, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    return ((images, labels) for images, labels, _ in loader)

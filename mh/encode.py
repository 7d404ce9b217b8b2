"""Encoding (inference): images → binary codes b = sign(h) (§3.4), in dataset order.

    codes, labels = encode(model, dataset, batch_size=256, device="cuda")

On CUDA the network runs under bf16 autocast (the training loop's precision); codes are taken from the
float32 view of its outputs. The device rule of every command: an explicit name, else CUDA when
available, else the CPU.
"""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from mh.binary import binarize


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


def autocast(device: torch.device):
    """bf16 autocast on CUDA (no GradScaler needed), full precision elsewhere."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


@torch.no_grad()
def encode(
    model: torch.nn.Module,
    dataset,
    batch_size: int = 256,
    device="cpu",
    num_workers: int = 0,
    progress: bool = True,
    description: str = "encode",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sign codes (n, K) in {−1, +1} and labels (n, C) of every ``(image, label, index)`` item of ``dataset``."""
    device = torch.device(device)
    was_training = model.training
    model.eval()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    codes, labels = [], []
    for images, batch_labels, _ in tqdm(loader, desc=description, disable=not progress, leave=False):
        with autocast(device):
            output = model(images.to(device, non_blocking=True))
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

"""Training, encoding and evaluating CAGMH on image–text pairs (one process, CPU or one GPU).

Objective per step (spec of the released ``hash_train.py``): L = L_proxy(u^v, u^t, Y) + L_cb(u^v, Y) + L_cb(u^t, Y),
one class-balance loss shared by both modalities (``mh.family.cagmh_losses``). The optimiser differs from the released
BertAdam (weight decay 1.4, warm-up cosine, Mamba left out): AdamW in three groups — CLIP at ``clip_lr``, the
Mamba block and heads at ``lr``, the loss's proxies and weight at ``lr`` — because training from random CLIP
weights here is not the released fine-tuning of OpenAI's; all parameters, the Mamba block included, are
optimised.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import DataLoader

from mh.binary import binarize
from mh.engine import seed_everything
from mh.family.cagmh import CAGMH
from mh.family.cagmh_losses import ClassBalanceCentreLoss, MultimodalProxyLoss
from mh.family.paired_data import PairedDataset
from mh.metrics import crossmodal_map
from mh.progress import progress_bar


@dataclass
class CagmhTraining:
    """What ``train_cagmh`` returns: the per-epoch mean loss and the loss modules (with their proxies)."""

    history: list[dict] = field(default_factory=list)
    proxy_loss: MultimodalProxyLoss | None = None
    centre_loss: ClassBalanceCentreLoss | None = None


def train_cagmh(
    model: CAGMH,
    train_set: PairedDataset,
    epochs: int,
    batch_size: int = 32,
    lr: float = 1e-3,
    clip_lr: float = 1e-4,
    weight_decay: float = 1e-4,
    cubic: str = "fixed",
    seed: int = 0,
    progress: bool = True,
    after_epoch: Callable[[CAGMH], dict] | None = None,
) -> CagmhTraining:
    """Train ``model`` in place for ``epochs`` over ``train_set``; returns the loss history (seeded).
    ``after_epoch(model)``, when given, measures the model after each epoch (e.g. validation mAP); its dict joins
    that epoch's history row."""
    seed_everything(seed)
    num_classes = train_set.labels.shape[1]
    result = CagmhTraining(
        proxy_loss=MultimodalProxyLoss(num_classes, model.bits, seed=seed),
        centre_loss=ClassBalanceCentreLoss(num_classes, model.bits, cubic=cubic, seed=seed),
    )
    device = next(model.parameters()).device
    result.proxy_loss.to(device), result.centre_loss.to(device)
    groups = [
        {"params": model.clip.parameters(), "lr": clip_lr},
        {"params": [*model.mamba.parameters(), *model.image_hash.parameters(), *model.text_hash.parameters()]},
        {"params": [*result.proxy_loss.parameters(), *result.centre_loss.parameters()], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay)
    loader = DataLoader(
        train_set, batch_size, shuffle=True, drop_last=True, generator=torch.Generator().manual_seed(seed)
    )
    if len(loader) == 0:
        raise ValueError(f"{len(train_set)} training pairs make no batch of {batch_size}: lower the batch size")
    model.train()
    for epoch in range(1, epochs + 1):
        losses = []
        for images, tokens, labels, _ in progress_bar(loader, f"CAGMH epoch {epoch}/{epochs}", progress):
            images, tokens, labels = images.to(device), tokens.to(device), labels.to(device)
            image_codes, text_codes = model(images, tokens)
            loss = result.proxy_loss(image_codes, text_codes, labels)
            loss = loss + result.centre_loss(image_codes, labels) + result.centre_loss(text_codes, labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        row = {"epoch": epoch, "loss": float(np.mean(losses))}
        if after_epoch is not None:
            with torch.random.fork_rng(devices=[]):  # measuring must not change the training that follows
                row |= after_epoch(model)
            model.train()
        result.history.append(row)
    return result


@torch.no_grad()
def encode_pairs(model: CAGMH, pairs: PairedDataset, batch_size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """Sign codes (N, K) int8 of every image and every caption of ``pairs``, in dataset order (eval mode).
    Mode "modality" encodes each modality alone; the other modes need the pairs (see ``mh.family.cagmh``)."""
    model.eval()
    device = next(model.parameters()).device
    image_codes, text_codes = [], []
    for images, tokens, _, _ in DataLoader(pairs, batch_size, shuffle=False):
        images, tokens = images.to(device), tokens.to(device)
        if model.sequence_axis == "modality":
            codes = model.encode_image(images), model.encode_text(tokens)
        else:
            codes = model(images, tokens)
        image_codes.append(binarize(codes[0]).to(torch.int8).cpu())
        text_codes.append(binarize(codes[1]).to(torch.int8).cpu())
    return torch.cat(image_codes).numpy(), torch.cat(text_codes).numpy()


def evaluate_cagmh(
    model: CAGMH, queries: PairedDataset, database: PairedDataset, convention: str = "project", batch_size=128
) -> dict[str, float]:
    """I→T and T→I mAP@all (``mh.metrics.crossmodal_map``) of query pairs against database pairs."""
    query_images, query_texts = encode_pairs(model, queries, batch_size)
    db_images, db_texts = encode_pairs(model, database, batch_size)
    return crossmodal_map(
        query_images, query_texts, db_images, db_texts, queries.labels.numpy(), database.labels.numpy(), convention
    )

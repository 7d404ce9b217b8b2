"""The parts the training loop is made of, each small and replaceable (§3.5, §4.1).

    parts = build_training(config, profile, data, device)     # model, loss, optimizer from the registries
    step_rows = train_one_epoch(parts, loader, device, epoch, ...)
    metrics, code_sets = evaluate_model(parts.model, data, profile, device, ...)
    writer.checkpoint({**parts.state_dict(), ...})

``mh.train.fit`` strings them together. What changes for a new loss, optimizer or a distributed run is
local: a loss or optimizer is an entry of ``mh.registry``; a sampler goes to ``train_loader``; the memory
bank is updated by its own step, from the codes ``TrainingParts.collective`` gathers (a batch's own in one
process, every rank's under ``torch.distributed``, see ``mh.distributed``); every file goes through
``RunWriter``, whose one guard lets a single process write.

Loss terms stay on the device during an epoch and are read to the host every ``log_every`` steps, one
synchronisation for many steps (``StepLog``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Sampler, Subset
from tqdm.auto import tqdm

from mh.codes import CodeSet, save_code_sets
from mh.data import HashingData
from mh.encode import autocast, encode
from mh.io import append_csv, atomic_output, write_csv, write_json
from mh.metrics import mean_average_precision
from mh.registry import LOSSES, MODELS, OPTIMIZERS, build_hashing_model
from mh.repro.profiles import Profile


def is_main_process() -> bool:
    """True outside ``torch.distributed`` and on its rank 0: the one process that writes files."""
    return not (torch.distributed.is_available() and torch.distributed.is_initialized()) or (
        torch.distributed.get_rank() == 0
    )


class RunWriter:
    """A run directory and every file written into it, atomically, by the main process only."""

    def __init__(self, run_dir: str | Path, is_writer: bool | None = None):
        self.run_dir = Path(run_dir)
        self.is_writer = is_main_process() if is_writer is None else is_writer

    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / "checkpoint.ckpt"

    def json(self, name: str, payload: dict) -> None:
        if self.is_writer:
            write_json(self.run_dir / name, payload)

    def table(self, name: str, rows: list[dict], append: bool = False) -> None:
        if self.is_writer and rows:
            (append_csv if append else write_csv)(self.run_dir / name, rows)

    def codes(self, **code_sets: CodeSet) -> None:
        if self.is_writer:
            save_code_sets(self.run_dir / "codes.npz", **code_sets)

    def checkpoint(self, state: dict) -> None:
        if self.is_writer:
            with atomic_output(self.checkpoint_path) as temporary:
                torch.save(state, temporary)


class SingleProcess:
    """The collective operations of a one-process run: nothing to share (``mh.distributed.Collective`` is
    the many-process one)."""

    rank, world_size, backend = 0, 1, None

    def gather(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tensors

    def mean(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor

    def gather_in_order(self, rows: torch.Tensor, total: int) -> torch.Tensor:
        return rows

    def barrier(self) -> None:
        """Nothing to wait for."""


def unwrap(model: nn.Module) -> nn.Module:
    """The network inside a DDP wrapper (whose state dict has the single-process key names)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


@dataclass
class TrainingParts:
    """What one training step needs. ``collective`` gathers each step's (codes, labels, indices) for the
    memory bank and averages logged terms: a no-op in one process, all ranks' batches in a distributed run."""

    model: nn.Module
    criterion: nn.Module
    optimizer: torch.optim.Optimizer
    collective: SingleProcess = field(default_factory=SingleProcess)

    def state_dict(self) -> dict:
        return {
            "model": unwrap(self.model).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "criterion": self.criterion.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        unwrap(self.model).load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.criterion.load_state_dict(state["criterion"])


def build_training(
    model_name: str,
    bits: int,
    profile: Profile,
    data: HashingData,
    device: torch.device,
    quantization_weight: float,
    loss: str | None = None,
    optimizer: str | None = None,
    pretrained=None,
) -> TrainingParts:
    """Model, loss and optimizer for ``model_name``: the loss and optimizer of its registry entry unless
    ``loss``/``optimizer`` name others (``mh.registry.LOSSES`` / ``OPTIMIZERS``)."""
    entry = MODELS[model_name]
    model = build_hashing_model(
        model_name, bits, pretrained=pretrained, image_size=profile.image_size, size=profile.model_size
    ).to(device)
    criterion = LOSSES[loss or entry.loss](len(data.train), bits, data.protocol.num_classes, quantization_weight)
    return TrainingParts(
        model,
        criterion.to(device),
        OPTIMIZERS[optimizer or profile.optimizer or entry.optimizer](
            model, profile.learning_rate, profile.weight_decay
        ),
    )


def seed_everything(seed: int, generator: torch.Generator | None = None) -> None:
    """Seed torch, numpy and (when given) a data loader's generator with ``seed``."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    if generator is not None:
        generator.manual_seed(seed)


def epoch_seed(seed: int, epoch: int) -> int:
    """Every epoch reseeds from (seed, epoch), so a resumed run continues exactly as an uninterrupted one."""
    return seed * 1000 + epoch


class GlobalBatchSampler(Sampler):
    """The epoch's order, a permutation drawn from (seed, epoch) alone, with rank r of N taking slice r of
    every global batch (one process: the whole permutation). The order depends on nothing else — not on the
    data loader, its workers or the progress bar — so N processes see exactly what one process sees.
    """

    def __init__(self, size: int, global_batch: int, rank: int, world_size: int, seed: int):
        if global_batch % world_size:
            raise ValueError(f"the global batch size {global_batch} must divide evenly over {world_size} processes")
        last = size % global_batch
        if last and last < world_size:
            raise ValueError(
                f"the last batch of an epoch would hold {last} images for {world_size} processes; "
                "choose a batch size that leaves at least one image per process"
            )
        self.size, self.global_batch, self.rank, self.world_size, self.seed = size, global_batch, rank, world_size, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _order(self) -> list[int]:
        generator = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch))
        return torch.randperm(self.size, generator=generator).tolist()

    def __iter__(self):
        order = self._order()
        for start in range(0, self.size, self.global_batch):
            yield from np.array_split(order[start : start + self.global_batch], self.world_size)[self.rank].tolist()

    def __len__(self) -> int:
        return sum(
            len(np.array_split(range(min(self.global_batch, self.size - start)), self.world_size)[self.rank])
            for start in range(0, self.size, self.global_batch)
        )


def train_loader(
    dataset,
    profile: Profile,
    device: torch.device,
    generator: torch.Generator,
    sampler: Sampler,
    batch_size: int | None = None,
) -> DataLoader:
    """The training loader, built once: items in ``sampler``'s order (call its ``set_epoch`` each epoch);
    ``generator``, reseeded each epoch, feeds the loader's own draws (worker seeds), so they never touch the
    global random state. ``batch_size`` (one rank's share of the global batch) defaults to the profile's."""
    return DataLoader(
        dataset,
        batch_size=batch_size or profile.batch_size,
        sampler=sampler,
        generator=generator,
        num_workers=profile.num_workers,
        pin_memory=device.type == "cuda",
    )


def training_step(parts: TrainingParts, images, labels, indices, device, accumulate_gradients: bool) -> dict:
    """One optimisation step (Eq. 18): forward, memory-bank update, loss, backward, optimizer.

    Returns the loss terms as detached device tensors (no host synchronisation)."""
    with autocast(device):
        codes = parts.model(images)
    if getattr(parts.criterion, "memory_bank", False):
        parts.criterion.update_bank(*parts.collective.gather(codes.detach(), labels, indices))
    loss = parts.criterion(codes, labels)
    loss.backward()
    parts.optimizer.step()
    if not accumulate_gradients:
        parts.optimizer.zero_grad(set_to_none=True)
    return {"loss": loss.detach(), **getattr(parts.criterion, "last_terms", {})}


class StepLog:
    """Per-step loss terms of one epoch, kept on the device and read to the host every ``every`` steps
    (averaged over ranks by ``collective`` at each read)."""

    def __init__(self, epoch: int, every: int, bar: tqdm, collective=None):
        self.epoch, self.every, self.bar = epoch, every, bar
        self.collective = collective or SingleProcess()
        self.pending: list[tuple[int, dict]] = []
        self.rows: list[dict] = []

    def add(self, step: int, terms: dict) -> None:
        self.pending.append((step, terms))
        if len(self.pending) >= self.every:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        stacked = torch.stack([torch.stack(list(terms.values())).float() for _, terms in self.pending])
        values = self.collective.mean(stacked).tolist()
        for (step, terms), numbers in zip(self.pending, values, strict=True):
            row = {"epoch": self.epoch, "step": step, **dict(zip(terms, numbers, strict=True))}
            if not math.isfinite(row["loss"]):
                raise FloatingPointError(
                    f"loss became {row['loss']} at epoch {self.epoch}, step {step}; lower the learning rate"
                )
            self.rows.append(row)
        self.pending = []
        self.bar.set_postfix(loss=f"{self.rows[-1]['loss']:.4f}")


def train_one_epoch(
    parts: TrainingParts,
    loader: DataLoader,
    device: torch.device,
    epoch: int,
    epochs: int,
    accumulate_gradients: bool = False,
    log_every: int = 25,
    progress: bool = True,
) -> list[dict]:
    """Train one epoch over ``loader``; returns one row per step (epoch, step, loss and its terms)."""
    bar = tqdm(loader, desc=f"epoch {epoch + 1}/{epochs}", disable=not progress, leave=False)
    log = StepLog(epoch + 1, log_every, bar, parts.collective)
    for step, (images, labels, indices) in enumerate(bar):
        batch = images.to(device, non_blocking=True), labels.to(device), indices.to(device)
        log.add(step, training_step(parts, *batch, device, accumulate_gradients))
    log.flush()
    return log.rows


def evaluate_model(
    model: nn.Module,
    data: HashingData,
    profile: Profile,
    device: torch.device,
    progress: bool = True,
    metadata: dict | None = None,
    collective=None,
) -> tuple[dict, dict[str, CodeSet]]:
    """Encode query and database sets, mAP@topK of the protocol; returns (scalars, {"query", "database"} code sets).

    With a many-process ``collective`` each rank encodes every N-th item and all get the codes in dataset order."""
    collective = collective or SingleProcess()
    started = time.perf_counter()
    sets = {}
    for name in ("query", "database"):
        dataset = getattr(data, name)
        shard = Subset(dataset, range(collective.rank, len(dataset), collective.world_size))
        encoded = encode(
            unwrap(model), shard, profile.encode_batch_size, device, profile.num_workers, progress, f"encode {name}"
        )
        codes, labels = (collective.gather_in_order(rows.to(device), len(dataset)).cpu() for rows in encoded)
        metadata_of_set = {**(metadata or {}), "set": name}
        sets[name] = CodeSet.from_codes(codes, labels.numpy(), metadata_of_set, getattr(dataset, "indices", None))
    encode_seconds = time.perf_counter() - started
    query, database = sets["query"], sets["database"]
    mean_ap = mean_average_precision(
        query.codes, database.codes, query.labels, database.labels, topk=data.protocol.topk
    )
    scalars = {"map": mean_ap, "encode_img_per_s": (len(query) + len(database)) / encode_seconds}
    return scalars, sets


def elapsed_seconds(started: float, device: torch.device) -> float:
    """Wall time since ``started`` once the device has finished its queued work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - started

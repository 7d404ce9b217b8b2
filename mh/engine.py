"""The parts the training loop is made of, each small and replaceable (§3.5, §4.1).

    parts = mh.registry.build_training(...)                   # model, loss, optimizer from the registries
    step_rows = train_one_epoch(parts, loader, device, epoch, ...)
    metrics, code_sets = evaluate_model(parts.model, data, profile, device, ...)

``mh.train.fit`` strings them together and writes the run directory (``mh.rundir``). What changes for a new
loss, optimizer or a distributed run is local: a loss (a ``mh.losses.HashingLoss``) or an optimizer is an
entry of ``mh.registry``; a sampler goes to ``train_loader``; the memory bank is updated by its own step, from
the codes ``TrainingParts.collective`` gathers (a batch's own in one process, every rank's under
``torch.distributed``: ``mh.distributed``).

Loss terms stay on the device during an epoch and are read to the host every ``log_every`` steps, one
synchronisation for many steps (``StepLog``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Sampler
from tqdm.auto import tqdm

from mh.codes import CodeSet
from mh.data import HashingData
from mh.distributed import SingleProcess
from mh.encode import encode
from mh.fastpath import Compiled, FastPlan, fast_plan, set_learning_rates
from mh.losses import HashingLoss
from mh.metrics import mean_average_precision
from mh.profiles import Profile
from mh.progress import progress_bar
from mh.schedules import rate_factor
from mh.tensordata import CachedBatches, ImageCache


def unwrap(model: nn.Module) -> nn.Module:
    """The network inside a DDP wrapper (whose state dict has the single-process key names)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


@dataclass
class TrainingParts:
    """What one training step needs. ``collective`` gathers each step's (codes, labels, indices) for the
    memory bank and averages logged terms: a no-op in one process, all ranks' batches in a distributed run."""

    model: nn.Module
    criterion: HashingLoss
    optimizer: torch.optim.Optimizer
    collective: SingleProcess = field(default_factory=SingleProcess)
    plan: FastPlan = field(default_factory=lambda: FastPlan("off"))
    forward: object = None  # what runs the model: the model itself, or it under torch.compile (``compile_network``)
    base_rates: list[float] = field(default_factory=list)  # each parameter group's rate after warm-up

    def __post_init__(self):
        self.base_rates = self.base_rates or [float(group["lr"]) for group in self.optimizer.param_groups]

    def run(self, images: torch.Tensor) -> torch.Tensor:
        return (self.forward or self.model)(images)

    def compile_network(self) -> None:
        """Under a compiled plan, run the (possibly DDP-wrapped) model through ``torch.compile`` from now on."""
        if self.plan.compile:
            self.forward = Compiled(self.model, "network")

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
    progress: bool = False,
):
    """The training loader, built once: items in ``sampler``'s order (call its ``set_epoch`` each epoch);
    ``generator``, reseeded each epoch, feeds the loader's own draws (worker seeds, or the fast path's crops and
    flips), so they never touch the global random state. ``batch_size`` (one rank's share of the global batch)
    defaults to the profile's. Under a fast path (``mh.fastpath``) the images are decoded once into a uint8
    cache and augmented in batches on ``device`` (``mh.tensordata.CachedBatches``)."""
    if fast_plan(profile.fast_path, device).tensor_data:
        cache = ImageCache.build(dataset, profile.num_workers, progress)
        return CachedBatches(cache, sampler, batch_size or profile.batch_size, device, generator)
    return DataLoader(
        dataset,
        batch_size=batch_size or profile.batch_size,
        sampler=sampler,
        generator=generator,
        num_workers=profile.num_workers,
        pin_memory=device.type == "cuda",
    )


def training_step(
    parts: TrainingParts, images, labels, indices, device, accumulate_gradients: bool, clip_grad_norm: float = 0.0
) -> dict:
    """One optimisation step (Eq. 18): forward, memory-bank update, loss, backward, optimizer; gradients
    clipped to norm ``clip_grad_norm`` first when it is positive.

    Returns the loss terms as detached device tensors (no host synchronisation)."""
    codes = parts.plan.run(parts.run, images, device)
    if parts.criterion.memory_bank:
        parts.criterion.update_bank(*parts.collective.gather(codes.detach(), labels, indices))
    loss = parts.criterion(codes, labels)
    loss.backward()
    if clip_grad_norm > 0:
        nn.utils.clip_grad_norm_(parts.model.parameters(), clip_grad_norm)
    parts.optimizer.step()
    if not accumulate_gradients:
        parts.optimizer.zero_grad(set_to_none=True)
    return {"loss": loss.detach(), **parts.criterion.last_terms}


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
    warmup_steps: int = 0,
    clip_grad_norm: float = 0.0,
    schedule: str = "constant",
) -> list[dict]:
    """Train one epoch over ``loader``; returns one row per step (epoch, step, loss and its terms). The rate
    follows ``rate_factor`` over the run's ``epochs × len(loader)`` steps: a linear warm-up over the first
    ``warmup_steps``, then ``schedule`` (steps counted from epoch 0, so a resumed run continues the same
    schedule)."""
    bar = progress_bar(loader, f"epoch {epoch + 1}/{epochs}", progress, leave=False)
    log = StepLog(epoch + 1, log_every, bar, parts.collective)
    for step, (images, labels, indices) in enumerate(bar):
        if warmup_steps > 0 or schedule != "constant":
            factor = rate_factor(epoch * len(loader) + step, epochs * len(loader), warmup_steps, schedule)
            set_learning_rates(parts.optimizer, [rate * factor for rate in parts.base_rates])
        batch = images.to(device, non_blocking=True), labels.to(device), indices.to(device)
        log.add(step, training_step(parts, *batch, device, accumulate_gradients, clip_grad_norm))
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
    forward=None,
) -> tuple[dict, dict[str, CodeSet]]:
    """Encode query and database sets, mAP@topK of the protocol; returns (scalars, {"query", "database"} code sets).
    ``forward`` runs the model when given (``TrainingParts.forward``: it under torch.compile).

    With a many-process ``collective`` each rank encodes every N-th item and all get the codes in dataset order."""
    collective = collective or SingleProcess()
    started = time.perf_counter()
    sets = {}
    for name in ("query", "database"):
        dataset = getattr(data, name)
        encoded = encode(
            unwrap(model),
            dataset,
            profile.encode_batch_size,
            device,
            profile.num_workers,
            progress,
            f"encode {name}",
            fast_path=profile.fast_path,
            rows=range(collective.rank, len(dataset), collective.world_size),
            forward=forward,
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

"""Training on several processes: ``torch.distributed`` (DDP) under ``torchrun``, the same loop as one process.

    torchrun --nproc-per-node 4 -m mh.train --profile gpu --bits 48
    torchrun --nnodes 2 --nproc-per-node 8 --rdzv-backend c10d --rdzv-endpoint HOST:29500 -m mh.train …

What is sharded, and how it stays the single-process computation:

* every global batch of B images (``--batch-size`` is global) is cut into N slices of B/N, slice r to rank r,
  in the single-process order (``mh.engine.GlobalBatchSampler``): N ranks see, step for step, the images one
  process would see;
* the loss is each rank's mean over its slice; DDP averages gradients over ranks, which is the gradient of
  the global batch's mean loss — the same objective as one process (exactly so when B/N divides every batch);
* the DPSH memory bank is replicated: each step's codes, labels and indices are all-gathered before the
  bank update (``Collective.gather``), so every rank holds the single-process bank;
* logged loss terms are averaged over ranks at each read (``Collective.mean``);
* encoding is sharded (rank r encodes items r, r + N, …) and gathered back in dataset order.

Replicated: the model (DDP broadcasts it at start), the optimizer state, the bank. Only rank 0 writes files
(``mh.rundir.RunDirectory``). On CUDA (NCCL) BatchNorm layers become SyncBatchNorm, so batch statistics are
the global batch's; PyTorch's SyncBatchNorm runs on GPUs only, so on CPU (gloo) a network with BatchNorm
keeps per-rank statistics — a warning says so.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


def is_main_process() -> bool:
    """True outside ``torch.distributed`` and on its rank 0: the one process that writes files."""
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


class SingleProcess:
    """The collective operations of a one-process run: nothing to share (``Collective`` is the many-process one)."""

    rank, world_size, backend = 0, 1, None

    def gather(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tensors

    def mean(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor

    def gather_in_order(self, rows: torch.Tensor, total: int) -> torch.Tensor:
        return rows

    def barrier(self) -> None:
        """Nothing to wait for."""


@dataclass
class Collective:
    """The collective operations of a ``torch.distributed`` run (one process per rank)."""

    rank: int
    world_size: int
    backend: str

    def gather(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Each tensor concatenated over ranks in rank order (equal first dimensions on every rank)."""
        gathered = []
        for tensor in tensors:
            parts = [torch.empty_like(tensor) for _ in range(self.world_size)]
            dist.all_gather(parts, tensor.contiguous())
            gathered.append(torch.cat(parts))
        return tuple(gathered)

    def barrier(self) -> None:
        dist.barrier()

    def mean(self, tensor: torch.Tensor) -> torch.Tensor:
        total = tensor.clone()
        dist.all_reduce(total)
        return total / self.world_size

    def gather_in_order(self, rows: torch.Tensor, total: int) -> torch.Tensor:
        """Rows encoded by a strided shard (rank r holds items r, r + N, …) back in dataset order, on every rank."""
        per_rank = -(-total // self.world_size)
        padded = torch.zeros((per_rank, *rows.shape[1:]), dtype=rows.dtype, device=rows.device)
        padded[: len(rows)] = rows
        (by_rank,) = self.gather(padded)  # rank-major: rank r's j-th row is item j·N + r
        interleaved = by_rank.reshape(self.world_size, per_rank, *rows.shape[1:]).transpose(0, 1)
        return interleaved.reshape(per_rank * self.world_size, *rows.shape[1:])[:total]


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_collective(device: torch.device) -> tuple[Collective | SingleProcess, torch.device]:
    """Join the process group torchrun describes (NCCL on CUDA, gloo on the CPU); one process: SingleProcess."""
    if not launched_by_torchrun():
        return SingleProcess(), device
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend)
    return Collective(dist.get_rank(), dist.get_world_size(), backend), device


def leave_process_group() -> None:
    """End this process's part in a ``torch.distributed`` run (nothing to do in a one-process run)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def distribute_model(model: nn.Module, collective, device: torch.device) -> nn.Module:
    """DDP around ``model`` (SyncBatchNorm on CUDA); ``model`` itself when running as one process."""
    if isinstance(collective, SingleProcess):
        return model
    has_batch_norm = any(isinstance(module, nn.modules.batchnorm._BatchNorm) for module in model.modules())
    if device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    elif has_batch_norm:
        warnings.warn(
            "BatchNorm statistics stay per rank on the CPU (PyTorch's SyncBatchNorm needs GPUs): "
            "training is close to, not equal to, one process with the same global batch",
            stacklevel=2,
        )
    return nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

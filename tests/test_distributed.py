"""DDP == one process: two CPU processes (gloo) train, log and encode exactly as one process with the same
global batch, and only rank 0 writes the run directory.

The network here has no BatchNorm (PyTorch's SyncBatchNorm runs on GPUs only; see ``mh.distributed``) and
the training transform has no randomness (augmentation draws are per rank); everything else is the real
engine: the memory-bank DPSH loss, RMSprop, evaluation and checkpoints.
"""

import json
import os
import socket

import numpy as np
import pandas as pd
import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from mh.codes import load_code_sets
from mh.data import HashingData, ImagePool, PoolSubset, build_transform
from mh.datasets import DATASETS
from mh.engine import GlobalBatchSampler
from mh.registry import MODELS, ModelEntry
from mh.train import TrainConfig, fit

TINY = "tiny-groupnorm"


class TinyHashNet(nn.Module):
    """conv → GroupNorm → ReLU → pool → Linear → tanh: small, and every sample normalised on its own."""

    def __init__(self, bits: int):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.GroupNorm(2, 8), nn.ReLU())
        self.hash = nn.Linear(8, bits)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.hash(self.features(images).mean(dim=(2, 3))))


def register_tiny_model() -> None:
    MODELS[TINY] = ModelEntry("tiny", lambda bits, image_size, **options: TinyHashNet(bits))


def deterministic_data() -> HashingData:
    """Colour-coded 32×32 images of 4 classes: 36 train (batches 8, 8, 8, 8, 4), 8 query, 20 database."""
    rng = np.random.default_rng(0)
    sizes = (36, 8, 20)
    labels = np.arange(sum(sizes)) % 4
    palette = np.array([[220, 30, 30], [30, 200, 30], [30, 30, 220], [200, 200, 30]], dtype=np.float64)
    images = palette[labels][:, None, None, :] + rng.normal(0, 25, (sum(sizes), 32, 32, 3))
    pool = ImagePool(labels, "synthetic", arrays=images.clip(0, 255).astype(np.uint8))
    cuts = np.cumsum((0, *sizes))
    transform = build_transform(False, 32)
    sets = [PoolSubset(pool, np.arange(cuts[i], cuts[i + 1]), 10, transform) for i in range(3)]
    return HashingData(*sets, DATASETS["cifar10"].protocol, {"dataset": "synthetic"})


def tiny_config(runs_dir, run_name) -> TrainConfig:
    return TrainConfig(
        model=TINY,
        bits=16,
        profile="smoke",
        epochs=2,
        batch_size=8,
        image_size=32,
        device="cpu",
        runs_dir=str(runs_dir),
        run_name=run_name,
        log_every=3,
    )


def train_on_rank(rank: int, world_size: int, port: int, runs_dir: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank)
    )
    torch.set_num_threads(1)
    register_tiny_model()
    if rank:  # only rank 0 may write: any write from here fails the run
        import mh.rundir

        def forbidden(*args, **kwargs):
            raise AssertionError(f"rank {rank} wrote a file")

        for name in ("write_json", "write_csv", "append_csv", "save_code_sets", "atomic_output"):
            setattr(mh.rundir, name, forbidden)
    fit(tiny_config(runs_dir, "two-processes"), progress=False, data=deterministic_data())
    torch.distributed.destroy_process_group()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_sampler_deals_each_global_batch_out_in_the_single_process_order():
    single = list(GlobalBatchSampler(36, 8, 0, 1, seed=5))
    ranks = [list(GlobalBatchSampler(36, 8, rank, 2, seed=5)) for rank in range(2)]
    for start, stop in ((0, 8), (8, 16), (16, 24), (24, 32), (32, 36)):
        half = (stop - start) // 2
        batch = single[start:stop]
        assert (
            batch[:half] == ranks[0][start // 2 : start // 2 + half]
            and batch[half:] == ranks[1][start // 2 : start // 2 + half]
        )
    with pytest.raises(ValueError, match="must divide evenly"):
        GlobalBatchSampler(36, 7, 0, 2, seed=5)
    with pytest.raises(ValueError, match="last batch of an epoch would hold 1"):
        GlobalBatchSampler(33, 8, 0, 2, seed=5)


@pytest.mark.slow
def test_two_gloo_processes_equal_one_process(tmp_path):
    register_tiny_model()
    single = fit(tiny_config(tmp_path, "one-process"), progress=False, data=deterministic_data())
    mp.spawn(train_on_rank, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    double = tmp_path / "two-processes"

    assert sorted(p.name for p in double.iterdir()) == sorted(p.name for p in single.run_dir.iterdir())
    pd.testing.assert_frame_equal(
        pd.read_csv(double / "losses.csv"), pd.read_csv(single.run_dir / "losses.csv"), atol=1e-5, rtol=0
    )
    weights = torch.load(double / "checkpoint.ckpt", weights_only=False)
    expected = torch.load(single.run_dir / "checkpoint.ckpt", weights_only=False)
    for key, value in expected["model"].items():
        torch.testing.assert_close(weights["model"][key], value, atol=1e-5, rtol=0)
    torch.testing.assert_close(
        weights["criterion"]["bank_codes"], expected["criterion"]["bank_codes"], atol=1e-5, rtol=0
    )
    for name in ("query", "database"):
        ours, theirs = load_code_sets(double / "codes.npz")[name], load_code_sets(single.run_dir / "codes.npz")[name]
        np.testing.assert_array_equal(ours.packed, theirs.packed)
        np.testing.assert_array_equal(ours.labels, theirs.labels)
    manifest = json.loads((double / "manifest.json").read_text())
    assert manifest["world_size"] == 2 and manifest["backend"] == "gloo"
    assert json.loads((single.run_dir / "manifest.json").read_text())["world_size"] == 1

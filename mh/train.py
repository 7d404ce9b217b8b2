"""Training: one thin loop for every hashing network (§3.5, §4.1), over the parts in ``mh.engine``.

    python -m mh.train --dataset cifar10 --bits 48 --model mambahash --profile smoke

The model's registry entry (``mh.registry``) names its loss and optimizer: for MambaHash and the Table 3
backbones, DPSH's pairwise likelihood with quantization (Eq. 17–18) against a memory bank of the training
codes, as in the released code, and RMSprop; for MpVH its pairwise regression loss (``mh.losses``) and SGD in
two learning-rate groups. ``--loss`` and ``--optimizer`` choose others. Differences
from the released ``newtrain.py``, each a choice:

* gradients are zeroed every step; the released code calls ``zero_grad`` once before the epoch loop, so
  gradients accumulate across the whole run (``accumulate_gradients=True`` reproduces that, for study);
* bf16 autocast (no GradScaler needed) instead of fp16 + GradScaler, under the fast path (``mh.fastpath``)
  where it pays (CUDA); fp32 otherwise;
* the numbers reported are the last epoch's; the best mAP over epochs, measured on the query set (the
  released code's model selection on test queries), is kept only under the name ``best_on_query``.

Every run writes ``results/runs/<name>/``: config.json, manifest.json, history.csv (per epoch),
losses.csv (per step), metrics.json, codes.npz (query and database codes) and checkpoint.ckpt.
Checkpoints are written atomically after every epoch; ``resume=True`` continues from the last one and, on
the CPU, gives exactly the result of an uninterrupted run (each epoch reseeds every random source). A resume
keeps the run's settings (``mh.rundir.RunDirectory.check_resume``: a change is refused, ``extend_epochs`` lets
it train longer); ``status.json`` records running / finished / failed; every image is opened before the first
step. The profile's knobs (``mh.profiles.KNOBS``: epochs, batch size, rate, …) are ``TrainConfig`` fields and
command-line flags without being listed here.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mh.cli import OneLineParser, add_debug_flag, cli_errors, returns_status
from mh.config import TrainConfig, validate_config
from mh.data import VERIFY_LEVELS, HashingData, verify_images
from mh.datasets import DATASETS, load_hashing_data
from mh.distributed import distribute_model, init_collective, is_main_process, leave_process_group
from mh.encode import resolve_device
from mh.engine import (
    GlobalBatchSampler,
    TrainingParts,
    elapsed_seconds,
    epoch_seed,
    evaluate_model,
    seed_everything,
    train_loader,
    train_one_epoch,
)
from mh.io import load_checkpoint
from mh.manifest import run_manifest
from mh.metrics import RANKING_CONVENTION
from mh.model import PAPER_BITS
from mh.profiles import PROFILES, Profile, add_knob_flags
from mh.registry import (
    LOSSES,
    available_models,
    build_training,
    default_quantization_weight,
    resolve_model_name,
    training_recipe,
)
from mh.rundir import RunDirectory, fingerprint
from mh.splits import SPLIT_SEED


@dataclass
class Training:
    """One training in progress: its settings, data, parts and its run directory."""

    config: TrainConfig
    profile: Profile
    device: torch.device
    data: HashingData
    parts: TrainingParts
    run_dir: RunDirectory
    progress: bool = True
    history: list[dict] = dataclasses.field(default_factory=list)
    train_seconds: float = 0.0


@dataclass
class TrainingOutcome:
    """What ``fit`` returns: the run directory it wrote, the final metrics and the per-epoch history."""

    run_dir: Path
    metrics: dict
    history: list[dict]


def start_training(
    config: TrainConfig, resume: bool, progress: bool, data: HashingData | None, extend_epochs: bool = False
) -> Training:
    """Validate, open the directory, load and verify data, seed, build (model, loss, optimizer), restore a
    checkpoint (a resume must keep the run's settings: ``RunDirectory.check_resume``)."""
    validate_config(config)
    profile = config.resolved_profile()
    path = config.run_path()
    if resume:
        RunDirectory(path).check_resume(dataclasses.asdict(config), dataclasses.asdict(profile), extend_epochs)
    collective, device = init_collective(resolve_device(config.device))
    run_dir = RunDirectory.open(path, resume, collective)
    data = data or load_hashing_data(
        config.dataset,
        config.data_dir,
        profile.image_size,
        profile.transform_style,
        profile.subset,
        config.data_seed(),
        config.split_dir,
        config.download,
    )
    for part in ("train", "query", "database"):
        verify_images(getattr(data, part), config.verify_data, f"{part} images", progress)
    loss_name, optimizer_name = training_recipe(config.model, profile, config.loss)
    eta = config.quantization_weight
    if eta is None:
        eta = default_quantization_weight(loss_name, data.protocol.quantization_weight)
    seed_everything(config.seed)
    parts = build_training(
        config.model,
        config.bits,
        profile,
        len(data.train),
        data.protocol.num_classes,
        eta,
        device,
        config.loss,
        config.pretrained,
    )
    parts.model, parts.collective = distribute_model(parts.model, collective, device), collective
    parts.compile_network()
    training = Training(config, profile, device, data, parts, run_dir, progress)
    if resume and run_dir.checkpoint_path.exists():
        state = load_checkpoint(run_dir.checkpoint_path, map_location=device)
        parts.load_state_dict(state)
        training.history, training.train_seconds = state["history"], state["train_seconds"]
        run_dir.cut_step_log(len(training.history))
    run_dir.write_json(
        "config.json",
        {
            **dataclasses.asdict(config),
            "resolved_profile": dataclasses.asdict(profile),
            "quantization_weight": eta,
            "loss": loss_name,
            "optimizer": optimizer_name,
            "data": data.record,
        },
    )
    return training


def fit(
    config: TrainConfig,
    resume: bool = False,
    progress: bool = True,
    data: HashingData | None = None,
    sampler=None,
    extend_epochs: bool = False,
) -> TrainingOutcome:
    """Train ``config.model`` on ``config.dataset`` under ``config.profile``; write the run directory.

    ``data`` skips loading (notebooks share one loaded dataset); ``sampler`` replaces the seeded shuffle
    (``GlobalBatchSampler``: a permutation drawn from (seed, epoch)). ``resume`` continues the run's last
    checkpoint with the run's own settings (``extend_epochs`` lets ``epochs`` grow). ``status.json`` says
    running, finished or failed. Under ``torchrun`` the batch size is global: each of the N ranks takes
    its 1/N of every batch.
    """
    training = start_training(config, resume, progress, data, extend_epochs)
    training.run_dir.set_status("running")
    try:
        return train_epochs(training, sampler)
    except BaseException as error:
        training.run_dir.set_status("failed", error=f"{type(error).__name__}: {error}"[:2000])
        raise


def train_epochs(training: Training, sampler=None) -> TrainingOutcome:
    """The epoch loop of ``fit``: from the last finished epoch to the profile's last."""
    config, profile, ranks = training.config, training.profile, training.parts.collective
    if sampler is None:
        sampler = GlobalBatchSampler(
            len(training.data.train), profile.batch_size, ranks.rank, ranks.world_size, config.seed
        )
    generator = torch.Generator()
    loader = train_loader(
        training.data.train,
        profile,
        training.device,
        generator,
        sampler,
        profile.batch_size // ranks.world_size,
        training.progress,
    )
    if training.history:
        evaluate_if_due(training)  # a resume after an evaluation that failed
    training.parts.model.train()
    training.parts.optimizer.zero_grad(set_to_none=True)
    for epoch in range(len(training.history), profile.epochs):
        seed_everything(epoch_seed(config.seed, epoch), generator)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
        started = time.perf_counter()
        step_rows = train_one_epoch(
            training.parts,
            loader,
            training.device,
            epoch,
            profile.epochs,
            config.accumulate_gradients,
            config.log_every,
            training.progress,
            profile.warmup_steps,
            profile.clip_grad_norm,
            profile.schedule,
        )
        finish_epoch(training, epoch, step_rows, elapsed_seconds(started, training.device))
    return finish_training(training)


def finish_epoch(training: Training, epoch: int, step_rows: list[dict], seconds: float) -> None:
    """Log the epoch and write its checkpoint; then evaluate when due (the last epoch always, saving its codes)
    and write the checkpoint again with the result, so that a failing evaluation costs no training."""
    training.train_seconds += seconds
    training.history.append(
        {
            "epoch": epoch + 1,
            "loss": float(np.mean([r["loss"] for r in step_rows])),
            "train_seconds": seconds,
            "train_img_per_s": len(training.data.train) / seconds,
            "map": None,
            "encode_img_per_s": None,
        }
    )
    training.run_dir.write_table("losses.csv", step_rows, append=True)
    save_checkpoint(training)
    evaluate_if_due(training)


def save_checkpoint(training: Training) -> None:
    state = {**training.parts.state_dict(), "epoch": len(training.history), "history": training.history}
    training.run_dir.save_checkpoint({**state, "train_seconds": training.train_seconds})


def evaluate_if_due(training: Training) -> None:
    """Evaluate the last finished epoch unless it is not due or was evaluated (a resume after a failed one)."""
    row, epochs, profile = training.history[-1], len(training.history), training.profile
    last_epoch = epochs == profile.epochs
    if row["map"] is not None or not (last_epoch or epochs % profile.eval_every == 0):
        return
    config = training.config
    metadata = {"dataset": config.dataset, "model": config.model, "bits": config.bits, "profile": profile.name}
    scalars, code_sets = evaluate_model(
        training.parts.model,
        training.data,
        profile,
        training.device,
        training.progress,
        metadata,
        training.parts.collective,
        # a DDP model's forward synchronises the ranks, whose shards may differ in size: encode unwrapped
        forward=training.parts.forward if training.parts.collective.world_size == 1 else None,
    )
    row.update(scalars)
    if last_epoch:
        training.run_dir.save_codes(**code_sets)
    save_checkpoint(training)


def finish_training(training: Training) -> TrainingOutcome:
    """The final record (``RunDirectory.finish``) of a training whose epochs are all done: the last epoch's
    mAP as the result, the best over epochs (selected on the query set) kept apart as ``best_on_query``."""
    config, history, profile = training.config, training.history, training.profile
    metrics = {
        "map": history[-1]["map"],
        "topk": training.data.protocol.topk,
        "epochs": len(history),
        "bits": config.bits,
        "model": config.model,
        "dataset": config.dataset,
        "profile": profile.describe(),
        "best_on_query": max(row["map"] for row in history if row["map"] is not None),
        "best_on_query_note": "best over epochs, selected on the query set (released code's practice)",
        "ranking_convention": RANKING_CONVENTION,
    }
    manifest = run_manifest(
        profile.name,
        training.device,
        run=training.run_dir.name,
        profile_description=profile.describe(),
        train_wall_seconds=training.train_seconds,
        train_img_per_s=float(np.mean([row["train_img_per_s"] for row in history])),
        encode_img_per_s=history[-1]["encode_img_per_s"],
        world_size=training.parts.collective.world_size,
        backend=training.parts.collective.backend,
    )
    training.run_dir.finish(history, metrics, fingerprint(config), manifest)
    return TrainingOutcome(training.run_dir.path, metrics, history)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python -m mh.train", description="Train a hashing network with its registry loss and optimizer."
    )
    parser.add_argument("--dataset", default="cifar10", choices=list(DATASETS))
    parser.add_argument("--bits", type=int, default=48, choices=PAPER_BITS)
    parser.add_argument(
        "--model",
        "--variant",
        dest="model",
        default="mambahash",
        help=f"one of {', '.join(available_models())}; a bare variant name (no_ciam, …) also works",
    )
    parser.add_argument("--loss", help=f"one of {', '.join(LOSSES)} (default: the model's)")
    parser.add_argument("--log-every", type=int, default=25, help="read loss terms to the host every N steps")
    parser.add_argument("--profile", default="auto", choices=["auto", *PROFILES])
    add_knob_flags(parser)  # --epochs, --batch-size, --lr, --optimizer, …: one per knob of mh.profiles.Profile
    parser.add_argument("--seed", type=int, default=SPLIT_SEED)
    parser.add_argument(
        "--data-dir",
        help="image folder, torchvision root or list-file root (default $MH_DATA_DIR, else <checkout>/data)",
    )
    parser.add_argument("--download", action="store_true", help="let torchvision download CIFAR-10 into --data-dir")
    parser.add_argument("--runs-dir", default="results/runs")
    parser.add_argument("--split-dir", default="results/splits", help="where split files are written and reused")
    parser.add_argument("--run-name")
    parser.add_argument("--device")
    parser.add_argument("--pretrained", help="weights file to load into the backbone (e.g. groupmamba_small_ema.pth)")
    parser.add_argument(
        "--accumulate-gradients",
        action="store_true",
        help="reproduce the released code's never-cleared gradients (a bug; for study only)",
    )
    parser.add_argument("--resume", action="store_true", help="continue the run from its last checkpoint")
    parser.add_argument(
        "--extend-epochs", action="store_true", help="with --resume: allow more epochs than the run was started with"
    )
    parser.add_argument(
        "--verify-data", choices=list(VERIFY_LEVELS), default="full", help="check every image before training"
    )
    parser.add_argument("--no-progress", action="store_true")
    return add_debug_flag(parser)


@returns_status
def main(argv: list[str] | None = None) -> int:
    args = vars(build_parser().parse_args(argv))
    resume, progress, extend = args.pop("resume"), not args.pop("no_progress"), args.pop("extend_epochs")
    with cli_errors(args.pop("debug")):
        try:
            config = TrainConfig(**{**args, "model": resolve_model_name(args["model"])})
            result = fit(config, resume=resume, progress=progress, extend_epochs=extend)
            main_process = is_main_process()  # before the process group is left
        finally:
            leave_process_group()
    if main_process:
        print(
            json.dumps({"run_dir": str(result.run_dir), **{k: result.metrics[k] for k in ("map", "profile")}}, indent=2)
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Training: one thin loop for every hashing network (§3.5, §4.1), over the parts in ``mh.engine``.

    python -m mh.train --dataset cifar10 --bits 48 --model mambahash --profile smoke

The model's registry entry (``mh.registry``) names its loss and optimizer: for MambaHash and the Table 3
backbones, DPSH's pairwise likelihood with quantization (Eq. 17–18) against a memory bank of the training
codes, as in the released code, and RMSprop; for MpVH its pairwise regression loss (``mh.losses``) and SGD in
two learning-rate groups. ``--loss`` and ``--optimizer`` choose others. Differences
from the released ``newtrain.py``, each a choice:

* gradients are zeroed every step; the released code calls ``zero_grad`` once before the epoch loop, so
  gradients accumulate across the whole run (``accumulate_gradients=True`` reproduces that, for study);
* bf16 autocast on CUDA (no GradScaler needed) instead of fp16 + GradScaler; fp32 on the CPU;
* the numbers reported are the last epoch's; the best mAP over epochs, measured on the query set (the
  released code's model selection on test queries), is kept only under the name ``best_on_query``.

Every run writes ``results/runs/<name>/``: config.json, manifest.json, history.csv (per epoch),
losses.csv (per step), metrics.json, codes.npz (query and database codes) and checkpoint.ckpt.
Checkpoints are written atomically after every epoch; ``resume=True`` continues from the last one and, on
the CPU, gives exactly the result of an uninterrupted run (each epoch reseeds every random source). A resume
keeps the run's settings (``mh.runrecord``: a change is refused, ``extend_epochs`` lets it train longer);
``status.json`` records running / finished / failed; every image is opened before the first step.
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

from mh.cli import add_debug_flag, cli_errors, returns_status
from mh.data import VERIFY_LEVELS, HashingData, load_hashing_data, verify_images
from mh.distributed import distribute_model, init_collective, leave_process_group
from mh.encode import resolve_device
from mh.engine import (
    GlobalBatchSampler,
    RunWriter,
    TrainingParts,
    build_training,
    elapsed_seconds,
    epoch_seed,
    evaluate_model,
    is_main_process,
    seed_everything,
    train_loader,
    train_one_epoch,
)
from mh.io import load_checkpoint
from mh.model import PAPER_BITS, check_bits
from mh.registry import (
    LOSSES,
    MODEL_SIZES,
    MODELS,
    OPTIMIZERS,
    available_models,
    default_quantization_weight,
    resolve_model_name,
)
from mh.repro.profiles import PROFILES, Profile, resolve_profile
from mh.runrecord import RunResult, check_resume, finish_run, open_run_directory, truncate_step_log, write_status
from mh.splits import PROTOCOLS, SPLIT_SEED


@dataclass
class TrainConfig:
    """Everything a run depends on; written to ``config.json``."""

    dataset: str = "cifar10"
    bits: int = 48
    model: str = "mambahash"
    profile: str = "smoke"
    seed: int = SPLIT_SEED
    epochs: int | None = None  # None: the profile's value (same for the fields below)
    batch_size: int | None = None
    learning_rate: float | None = None
    image_size: int | None = None
    transform_style: str | None = None  # "paper" or "released_cifar" (mh.data.build_transform)
    model_size: str | None = None  # "paper" or "reduced" (mh.registry); None: the profile's
    eval_every: int | None = None  # evaluate every N epochs (the last epoch always)
    quantization_weight: float | None = None  # η; None: the loss's own (MpVH 1), else the dataset's (0.01 CIFAR-10)
    accumulate_gradients: bool = False
    data_dir: str | None = None
    runs_dir: str = "results/runs"
    split_dir: str = "results/splits"
    run_name: str | None = None
    device: str | None = None  # None: cuda when available, else cpu
    pretrained: str | None = None
    download: bool = False
    loss: str | None = None  # None: the model's (mh.registry.MODELS)
    optimizer: str | None = None  # None: the model's
    log_every: int = 25  # read loss terms to the host every N steps
    verify_data: str = "full"  # open every image before the first step: none, header or full (mh.data)

    def resolved_profile(self) -> Profile:
        return resolve_profile(self.profile).with_overrides(
            epochs=self.epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            image_size=self.image_size,
            transform_style=self.transform_style,
            model_size=self.model_size,
            eval_every=self.eval_every,
        )

    def name(self) -> str:
        return self.run_name or f"{self.dataset}-{self.model}-{self.bits}bits-{self.resolved_profile().name}"


def validate_config(config: TrainConfig) -> None:
    """Clear errors for bad settings, before any data is read."""
    if config.dataset not in PROTOCOLS:
        raise ValueError(f"unknown dataset {config.dataset!r}; expected one of {', '.join(PROTOCOLS)}")
    if config.model not in MODELS:
        raise ValueError(f"unknown model {config.model!r}; expected one of {', '.join(available_models())}")
    for kind, name, table in (("loss", config.loss, LOSSES), ("optimizer", config.optimizer, OPTIMIZERS)):
        if name is not None and name not in table:
            raise ValueError(f"unknown {kind} {name!r}; expected one of {', '.join(table)}")
    check_bits(config.bits)
    profile = config.resolved_profile()
    for field_name in ("epochs", "batch_size", "image_size", "eval_every"):
        if getattr(profile, field_name) < 1:
            raise ValueError(f"{field_name} must be positive; got {getattr(profile, field_name)}")
    if config.log_every < 1:
        raise ValueError(f"log_every must be positive; got {config.log_every}")
    if config.verify_data not in VERIFY_LEVELS:
        raise ValueError(f"verify_data must be one of {VERIFY_LEVELS}; got {config.verify_data!r}")
    if profile.model_size not in MODEL_SIZES:
        raise ValueError(f"model_size must be one of {MODEL_SIZES}; got {profile.model_size!r}")


@dataclass
class Run:
    """One training run in progress: its settings, data, parts and the writer of its directory."""

    config: TrainConfig
    profile: Profile
    device: torch.device
    data: HashingData
    parts: TrainingParts
    writer: RunWriter
    progress: bool = True
    history: list[dict] = dataclasses.field(default_factory=list)
    train_seconds: float = 0.0


def start_run(
    config: TrainConfig, resume: bool, progress: bool, data: HashingData | None, extend_epochs: bool = False
) -> Run:
    """Validate, open the directory, load and verify data, seed, build (model, loss, optimizer), restore a
    checkpoint (a resume must keep the run's settings: ``mh.runrecord``)."""
    validate_config(config)
    profile = config.resolved_profile()
    if resume:
        check_resume(
            Path(config.runs_dir) / config.name(),
            dataclasses.asdict(config),
            dataclasses.asdict(profile),
            extend_epochs,
        )
    collective, device = init_collective(resolve_device(config.device))
    writer = open_run_directory(config, resume, collective)
    data = data or load_hashing_data(
        config.dataset,
        config.data_dir,
        profile.image_size,
        profile.transform_style,
        profile.subset,
        config.seed,
        config.split_dir,
        config.download,
    )
    for part in ("train", "query", "database"):
        verify_images(getattr(data, part), config.verify_data, f"{part} images", progress)
    loss_name = config.loss or MODELS[config.model].loss
    eta = config.quantization_weight
    if eta is None:
        eta = default_quantization_weight(loss_name, data.protocol.quantization_weight)
    seed_everything(config.seed)
    parts = build_training(
        config.model, config.bits, profile, data, device, eta, config.loss, config.optimizer, config.pretrained
    )
    parts.model, parts.collective = distribute_model(parts.model, collective, device), collective
    run = Run(config, profile, device, data, parts, writer, progress)
    if resume and writer.checkpoint_path.exists():
        state = load_checkpoint(writer.checkpoint_path, map_location=device)
        parts.load_state_dict(state)
        run.history, run.train_seconds = state["history"], state["train_seconds"]
        if writer.is_writer:
            truncate_step_log(writer.run_dir / "losses.csv", len(run.history))
    entry = MODELS[config.model]
    writer.json(
        "config.json",
        {
            **dataclasses.asdict(config),
            "resolved_profile": dataclasses.asdict(profile),
            "quantization_weight": eta,
            "loss": loss_name,
            "optimizer": config.optimizer or profile.optimizer or entry.optimizer,
            "data": data.record,
        },
    )
    return run


def fit(
    config: TrainConfig,
    resume: bool = False,
    progress: bool = True,
    data: HashingData | None = None,
    sampler=None,
    extend_epochs: bool = False,
) -> RunResult:
    """Train ``config.model`` on ``config.dataset`` under ``config.profile``; write the run directory.

    ``data`` skips loading (notebooks share one loaded dataset); ``sampler`` replaces the seeded shuffle
    (``GlobalBatchSampler``: a permutation drawn from (seed, epoch)). ``resume`` continues the run's last
    checkpoint with the run's own settings (``extend_epochs`` lets ``epochs`` grow). ``status.json`` says
    running, finished or failed. Under ``torchrun`` the batch size is global: each of the N ranks takes
    its 1/N of every batch.
    """
    run = start_run(config, resume, progress, data, extend_epochs)
    if run.writer.is_writer:
        write_status(run.writer.run_dir, "running")
    try:
        return train_epochs(run, sampler)
    except BaseException as error:
        if run.writer.is_writer:
            write_status(run.writer.run_dir, "failed", error=f"{type(error).__name__}: {error}"[:2000])
        raise


def train_epochs(run: Run, sampler=None) -> RunResult:
    """The epoch loop of ``fit``: from the run's last finished epoch to the profile's last."""
    config, progress = run.config, run.progress
    ranks = run.parts.collective
    if sampler is None:
        sampler = GlobalBatchSampler(
            len(run.data.train), run.profile.batch_size, ranks.rank, ranks.world_size, config.seed
        )
    generator = torch.Generator()
    loader = train_loader(
        run.data.train, run.profile, run.device, generator, sampler, run.profile.batch_size // ranks.world_size
    )
    if run.history:
        evaluate_if_due(run)  # a resume after an evaluation that failed
    run.parts.model.train()
    run.parts.optimizer.zero_grad(set_to_none=True)
    for epoch in range(len(run.history), run.profile.epochs):
        seed_everything(epoch_seed(config.seed, epoch), generator)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
        started = time.perf_counter()
        step_rows = train_one_epoch(
            run.parts,
            loader,
            run.device,
            epoch,
            run.profile.epochs,
            config.accumulate_gradients,
            config.log_every,
            progress,
        )
        finish_epoch(run, epoch, step_rows, elapsed_seconds(started, run.device))
    return finish_run(run)


def finish_epoch(run: Run, epoch: int, step_rows: list[dict], seconds: float) -> None:
    """Log the epoch and write its checkpoint; then evaluate when due (the last epoch always, saving its codes)
    and write the checkpoint again with the result, so that a failing evaluation costs no training."""
    run.train_seconds += seconds
    run.history.append(
        {
            "epoch": epoch + 1,
            "loss": float(np.mean([r["loss"] for r in step_rows])),
            "train_seconds": seconds,
            "train_img_per_s": len(run.data.train) / seconds,
            "map": None,
            "encode_img_per_s": None,
        }
    )
    run.writer.table("losses.csv", step_rows, append=True)
    save_checkpoint(run)
    evaluate_if_due(run)


def save_checkpoint(run: Run) -> None:
    state = {**run.parts.state_dict(), "epoch": len(run.history), "history": run.history}
    run.writer.checkpoint({**state, "train_seconds": run.train_seconds})


def evaluate_if_due(run: Run) -> None:
    """Evaluate the last finished epoch unless it is not due or was evaluated (a resume after a failed one)."""
    row, epochs = run.history[-1], len(run.history)
    last_epoch = epochs == run.profile.epochs
    if row["map"] is not None or not (last_epoch or epochs % run.profile.eval_every == 0):
        return
    config = run.config
    metadata = {"dataset": config.dataset, "model": config.model, "bits": config.bits, "profile": run.profile.name}
    scalars, code_sets = evaluate_model(
        run.parts.model, run.data, run.profile, run.device, run.progress, metadata, run.parts.collective
    )
    row.update(scalars)
    if last_epoch:
        run.writer.codes(**code_sets)
    save_checkpoint(run)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mh.train", description="Train a hashing network with its registry loss and optimizer."
    )
    parser.add_argument("--dataset", default="cifar10", choices=list(PROTOCOLS))
    parser.add_argument("--bits", type=int, default=48, choices=PAPER_BITS)
    parser.add_argument(
        "--model",
        "--variant",
        dest="model",
        default="mambahash",
        help=f"one of {', '.join(available_models())}; a bare variant name (no_ciam, …) also works",
    )
    parser.add_argument("--loss", help=f"one of {', '.join(LOSSES)} (default: the model's)")
    parser.add_argument("--optimizer", help=f"one of {', '.join(OPTIMIZERS)} (default: the model's)")
    parser.add_argument("--log-every", type=int, default=25, help="read loss terms to the host every N steps")
    parser.add_argument("--profile", default="auto", choices=["auto", *PROFILES])
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--lr", type=float, dest="learning_rate")
    parser.add_argument("--image-size", type=int)
    parser.add_argument(
        "--transform-style", choices=["paper", "released_cifar"], help="image pipeline (default: the profile's)"
    )
    parser.add_argument(
        "--model-size", choices=["paper", "reduced"], help="reduced: fewer blocks, same widths (default: the profile's)"
    )
    parser.add_argument("--eval-every", type=int, help="evaluate every N epochs (the last epoch always)")
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

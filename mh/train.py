"""Training and encoding: one loop for every hashing network (§3.5, §4.1).

    python -m mh.train --dataset cifar10 --bits 48 --model mambahash --profile smoke

The objective is DPSH's pairwise likelihood with quantization (Eq. 17–18) against a memory bank of the
training codes, as in the released code. Differences from the released ``newtrain.py``, each a choice:

* gradients are zeroed every step; the released code calls ``zero_grad`` once before the epoch loop, so
  gradients accumulate across the whole run (``accumulate_gradients=True`` reproduces that, for study);
* bf16 autocast on CUDA (no GradScaler needed) instead of fp16 + GradScaler; fp32 on the CPU;
* the numbers reported are the last epoch's; the best mAP over epochs, measured on the query set (the
  released code's model selection on test queries), is kept only under the name ``best_on_query``.

Every run writes ``results/runs/<name>/``: config.json, manifest.json, history.csv (per epoch),
losses.csv (per step), metrics.json, codes.npz (query and database codes) and checkpoint.ckpt.
Checkpoints are written atomically after every epoch; ``resume=True`` continues from the last one and, on
the CPU, gives exactly the result of an uninterrupted run (each epoch reseeds every random source).
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from mh.backbones import available_models, build_hashing_model
from mh.codes import CodeSet, save_code_sets
from mh.data import PROTOCOLS, SPLIT_SEED, HashingData, load_hashing_data
from mh.losses import DPSHLoss
from mh.manifest import run_manifest, write_json
from mh.metrics import RANKING_CONVENTION, mean_average_precision
from mh.model import PAPER_BITS, check_bits
from mh.profiles import PROFILES, Profile, resolve_profile


@dataclass
class TrainConfig:
    """Everything a run depends on; written to ``config.json``."""

    dataset: str = "cifar10"
    bits: int = 48
    model: str = "mambahash"
    profile: str = "smoke"
    seed: int = SPLIT_SEED
    epochs: int | None = None            # None: the profile's value (same for the fields below)
    batch_size: int | None = None
    learning_rate: float | None = None
    image_size: int | None = None
    eval_every: int | None = None        # evaluate every N epochs (the last epoch always)
    quantization_weight: float | None = None  # η; None: the dataset's (0.01 CIFAR-10, 0.05 others)
    accumulate_gradients: bool = False
    data_dir: str | None = None
    runs_dir: str = "results/runs"
    split_dir: str = "results/splits"
    run_name: str | None = None
    device: str | None = None            # None: cuda when available, else cpu
    pretrained: str | None = None
    download: bool = False

    def resolved_profile(self) -> Profile:
        return resolve_profile(self.profile).with_overrides(
            epochs=self.epochs, batch_size=self.batch_size, learning_rate=self.learning_rate,
            image_size=self.image_size, eval_every=self.eval_every)

    def name(self) -> str:
        return self.run_name or f"{self.dataset}-{self.model}-{self.bits}bits-{self.resolved_profile().name}"


def validate_config(config: TrainConfig) -> None:
    """Clear errors for bad settings, before any data is read."""
    if config.dataset not in PROTOCOLS:
        raise ValueError(f"unknown dataset {config.dataset!r}; expected one of {', '.join(PROTOCOLS)}")
    if config.model not in available_models():
        raise ValueError(f"unknown model {config.model!r}; expected one of {', '.join(available_models())}")
    check_bits(config.bits)
    profile = config.resolved_profile()
    for field_name in ("epochs", "batch_size", "image_size", "eval_every"):
        if getattr(profile, field_name) < 1:
            raise ValueError(f"{field_name} must be positive; got {getattr(profile, field_name)}")


def _device(config: TrainConfig) -> torch.device:
    device = torch.device(config.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but torch.cuda.is_available() is False")
    return device


def _autocast(device: torch.device):
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)


@torch.no_grad()
def encode(model: torch.nn.Module, dataset, batch_size: int = 256, device="cpu", num_workers: int = 0,
           progress: bool = True, description: str = "encode") -> tuple[torch.Tensor, torch.Tensor]:
    """Sign codes (n, K) in {−1, +1} and labels (n, C) of every item of ``dataset``, in dataset order."""
    device = torch.device(device)
    was_training = model.training
    model.eval()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    codes, labels = [], []
    for images, batch_labels, _ in tqdm(loader, desc=description, disable=not progress, leave=False):
        with _autocast(device):
            output = model(images.to(device, non_blocking=True))
        codes.append(torch.where(output.float() >= 0, 1.0, -1.0).cpu())
        labels.append(batch_labels)
    model.train(was_training)
    return torch.cat(codes), torch.cat(labels)


def evaluate_codes(query: tuple, database: tuple, topk: int | None, device="cpu") -> float:
    """mAP@topk of (codes, labels) pairs under ``mh.metrics``'s convention."""
    return mean_average_precision(query[0], database[0], query[1], database[1], topk=topk, device=device)


def _seed_everything(seed: int) -> torch.Generator:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    return torch.Generator().manual_seed(seed)


def _save_checkpoint(path: Path, state: dict) -> None:
    temporary = path.with_name(path.name + ".tmp")
    torch.save(state, temporary)
    os.replace(temporary, path)


def _append_csv(path: Path, rows: list[dict]) -> None:
    if not rows:
        return
    new_file = not path.exists()
    with path.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        if new_file:
            writer.writeheader()
        writer.writerows(rows)


@dataclass
class RunResult:
    run_dir: Path
    metrics: dict
    history: list[dict]


def train(config: TrainConfig, resume: bool = False, progress: bool = True,
          data: HashingData | None = None) -> RunResult:
    """Train ``config.model`` on ``config.dataset`` under ``config.profile``; write the run directory."""
    validate_config(config)
    profile, device = config.resolved_profile(), _device(config)
    run_dir = Path(config.runs_dir) / config.name()
    checkpoint_path = run_dir / "checkpoint.ckpt"
    if run_dir.exists() and not resume and any(run_dir.iterdir()):
        raise FileExistsError(f"{run_dir} already holds a run; pass resume=True (--resume) to continue it, "
                              "or choose another run name (--run-name)")
    run_dir.mkdir(parents=True, exist_ok=True)
    data = data or load_hashing_data(config.dataset, config.data_dir, profile.image_size, profile.transform_style,
                                     profile.subset, config.seed, config.split_dir, config.download)
    protocol = data.protocol
    eta = protocol.quantization_weight if config.quantization_weight is None else config.quantization_weight

    _seed_everything(config.seed)
    model = build_hashing_model(config.model, config.bits, pretrained=config.pretrained,
                                image_size=profile.image_size).to(device)
    criterion = DPSHLoss(len(data.train), config.bits, protocol.num_classes, eta).to(device)
    optimizer = torch.optim.RMSprop(model.parameters(), lr=profile.learning_rate, weight_decay=profile.weight_decay)
    history, start_epoch, train_seconds = [], 0, 0.0
    if resume and checkpoint_path.exists():
        state = torch.load(checkpoint_path, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        criterion.load_state_dict(state["criterion"])
        history, start_epoch, train_seconds = state["history"], state["epoch"], state["train_seconds"]
    config_record = {**dataclasses.asdict(config), "resolved_profile": dataclasses.asdict(profile),
                     "quantization_weight": eta, "data": data.record}
    write_json(run_dir / "config.json", config_record)

    model.train()
    optimizer.zero_grad(set_to_none=True)
    for epoch in range(start_epoch, profile.epochs):
        generator = _seed_everything(config.seed * 1000 + epoch)  # each epoch reproducible on its own
        loader = DataLoader(data.train, batch_size=profile.batch_size, shuffle=True, generator=generator,
                            num_workers=profile.num_workers, pin_memory=device.type == "cuda")
        step_rows, started = [], time.perf_counter()
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{profile.epochs}", disable=not progress, leave=False)
        for step, (images, labels, indices) in enumerate(bar):
            images, labels = images.to(device, non_blocking=True), labels.to(device)
            with _autocast(device):
                codes = model(images)
            loss = criterion(codes, labels, indices.to(device))
            loss_value = loss.item()
            if not math.isfinite(loss_value):
                raise FloatingPointError(f"loss became {loss_value} at epoch {epoch + 1}, step {step}; "
                                         "lower the learning rate")
            loss.backward()
            optimizer.step()
            if not config.accumulate_gradients:
                optimizer.zero_grad(set_to_none=True)
            step_rows.append({"epoch": epoch + 1, "step": step, "loss": loss_value, **criterion.last_terms})
            bar.set_postfix(loss=f"{loss_value:.4f}")
        if device.type == "cuda":
            torch.cuda.synchronize()
        epoch_seconds = time.perf_counter() - started
        train_seconds += epoch_seconds
        row = {"epoch": epoch + 1, "loss": float(np.mean([r["loss"] for r in step_rows])),
               "train_seconds": epoch_seconds, "train_img_per_s": len(data.train) / epoch_seconds,
               "map": None, "encode_img_per_s": None}
        last_epoch = epoch + 1 == profile.epochs
        if last_epoch or (epoch + 1) % profile.eval_every == 0:
            row.update(_evaluate_epoch(model, data, profile, device, progress, run_dir if last_epoch else None,
                                       config))
        history.append(row)
        _append_csv(run_dir / "losses.csv", step_rows)
        _save_checkpoint(checkpoint_path, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                           "criterion": criterion.state_dict(), "epoch": epoch + 1,
                                           "history": history, "train_seconds": train_seconds})
    return _finish(run_dir, config, profile, device, history, train_seconds, protocol.topk)


def _evaluate_epoch(model, data: HashingData, profile: Profile, device, progress: bool, codes_dir, config) -> dict:
    started = time.perf_counter()
    query = encode(model, data.query, profile.encode_batch_size, device, profile.num_workers, progress, "encode query")
    database = encode(model, data.database, profile.encode_batch_size, device, profile.num_workers, progress,
                      "encode database")
    encode_seconds = time.perf_counter() - started
    result = {"map": evaluate_codes(query, database, data.protocol.topk, device),
              "encode_img_per_s": (len(data.query) + len(data.database)) / encode_seconds}
    if codes_dir is not None:
        metadata = {"dataset": config.dataset, "model": config.model, "bits": config.bits, "profile": profile.name}
        save_code_sets(codes_dir / "codes.npz",
                       query=CodeSet.from_codes(query[0], query[1].numpy(), {**metadata, "set": "query"}),
                       database=CodeSet.from_codes(database[0], database[1].numpy(), {**metadata, "set": "database"}))
    return result


def _finish(run_dir: Path, config: TrainConfig, profile: Profile, device, history, train_seconds, topk) -> RunResult:
    with (run_dir / "history.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)
    evaluated = [row for row in history if row["map"] is not None]
    final = history[-1]
    metrics = {"map": final["map"], "topk": topk, "epochs": len(history), "bits": config.bits,
               "model": config.model, "dataset": config.dataset, "profile": profile.describe(),
               "best_on_query": max(row["map"] for row in evaluated),
               "best_on_query_note": "best over epochs, selected on the query set (released code's practice)",
               "ranking_convention": RANKING_CONVENTION}
    write_json(run_dir / "metrics.json", metrics)
    write_json(run_dir / "manifest.json", run_manifest(
        profile.name, device, run=run_dir.name, profile_description=profile.describe(),
        train_wall_seconds=train_seconds, train_img_per_s=float(np.mean([r["train_img_per_s"] for r in history])),
        encode_img_per_s=final["encode_img_per_s"]))
    return RunResult(run_dir, metrics, history)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mh.train", description="Train a hashing network (DPSH objective).")
    parser.add_argument("--dataset", default="cifar10", choices=list(PROTOCOLS))
    parser.add_argument("--bits", type=int, default=48, choices=PAPER_BITS)
    parser.add_argument("--model", "--variant", dest="model", default="mambahash",
                        help=f"one of {', '.join(available_models())}; a bare variant name (no_ciam, …) also works")
    parser.add_argument("--profile", default="auto", choices=["auto", *PROFILES])
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--lr", type=float, dest="learning_rate")
    parser.add_argument("--image-size", type=int)
    parser.add_argument("--eval-every", type=int, help="evaluate every N epochs (the last epoch always)")
    parser.add_argument("--seed", type=int, default=SPLIT_SEED)
    parser.add_argument("--data-dir", help="CIFAR-10 image folder / torchvision root / list-file root (default $MH_DATA_DIR or ./data)")
    parser.add_argument("--download", action="store_true", help="let torchvision download CIFAR-10 into --data-dir")
    parser.add_argument("--runs-dir", default="results/runs")
    parser.add_argument("--split-dir", default="results/splits", help="where split files are written and reused")
    parser.add_argument("--run-name")
    parser.add_argument("--device")
    parser.add_argument("--pretrained", help="weights file to load into the backbone (e.g. groupmamba_small_ema.pth)")
    parser.add_argument("--accumulate-gradients", action="store_true",
                        help="reproduce the released code's never-cleared gradients (a bug; for study only)")
    parser.add_argument("--resume", action="store_true", help="continue the run from its last checkpoint")
    parser.add_argument("--no-progress", action="store_true")
    args = vars(parser.parse_args(argv))
    if args["model"] in {"full", "no_ciam", "no_afem", "plain"}:
        args["model"] = "mambahash" if args["model"] == "full" else f"mambahash-{args['model']}"
    resume, progress = args.pop("resume"), not args.pop("no_progress")
    config = TrainConfig(**args)
    try:
        result = train(config, resume=resume, progress=progress)
    except (ValueError, FileNotFoundError, FileExistsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps({"run_dir": str(result.run_dir), **{k: result.metrics[k] for k in ("map", "profile")}}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

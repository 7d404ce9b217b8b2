"""Choose a profile's optimiser on a validation split carved from its training images — never the query set.

    python -m mh.repro.tuning --profile smoke [--model mambahash] [--grid rmsprop:2e-5,1e-4 adam:3e-4]
        [--batch-sizes 16 32] [--transform-styles paper released_cifar] [--epochs N]

The paper's 2e-5 (§4.1) is a fine-tuning rate for ImageNet-pretrained weights; the smoke profile trains
from scratch, so its rate is chosen here. ``validation_split`` holds out two class-balanced parts of the
profile's training subset, validation queries and a validation database (eval transform), and trains on
the rest, so that the database is never trained on, as in the protocol. Each setting — (optimizer, rate) of
the grid × batch size × image pipeline (``mh.data.build_transform``: the paper's resize-crop-flip or the
released code's plain resize) — trains the profile's network for the profile's epochs and is scored by
validation mAP after every epoch. The choice — the setting with the best last-epoch validation mAP — and
every curve are written to ``results/tuning/<profile>-<model>-<bits>bits.{csv,json}``; the profile's
``optimizer``, ``learning_rate``, ``batch_size`` and ``transform_style`` must name it (a test checks).

How long to train is a second, cheaper question asked of the chosen setting alone: ``--epochs N`` trains
the given settings for N epochs instead of the profile's and writes
``results/tuning/<profile>-<model>-<bits>bits-epochs.{csv,json}`` with ``chosen_epochs``, the epoch of the
highest validation mAP; the profile's ``epochs`` must equal it (a test checks).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from mh.cli import OneLineParser, add_debug_flag, cli_errors, returns_status
from mh.config import TrainConfig
from mh.data import TRANSFORM_STYLES, HashingData, PoolSubset, build_transform
from mh.datasets import load_hashing_data
from mh.io import PROJECT_ROOT, write_csv, write_json
from mh.manifest import run_manifest
from mh.profiles import PROFILES, resolve_profile
from mh.schedules import RATE_SCHEDULES
from mh.splits import SPLIT_SEED, stratified_subset
from mh.train import fit

TUNING_DIR = PROJECT_ROOT / "results" / "tuning"
DEFAULT_GRID = ("rmsprop:2e-5,5e-5,1e-4,2e-4", "adam:3e-4")  # the paper's RMSprop at 2e-5 first
DEFAULT_BATCH_SIZES = (16, 32)  # the paper's 32 (§4.1) and half of it
SETTING_COLUMNS = ["optimizer", "lr", "batch_size", "transform_style", "warmup_steps", "clip_grad_norm", "schedule"]
TUNED_PROFILE_FIELDS = ("optimizer", "learning_rate", "batch_size", "transform_style", "epochs", "schedule")
EPOCHS_STUDY = "epochs"


class Setting(NamedTuple):
    """One point of the sweep."""

    optimizer: str
    lr: float
    batch_size: int
    transform_style: str
    warmup_steps: int = 0
    clip_grad_norm: float = 0.0
    schedule: str = "constant"


def validation_split(data: HashingData, size: int, database_size: int, seed: int = SPLIT_SEED) -> HashingData:
    """Three disjoint, class-balanced parts of the training images: ``size`` validation queries, a
    ``database_size`` validation database, and the rest to train on — the protocol's shape (the database
    never seen in training) inside the training set.

    A database of the training images themselves would score memorisation: settings that fit the training
    images fastest would win although the real database holds unseen images. Transforms: the training part
    keeps ``data.train``'s, queries and database get the eval transform of the same image size and style. The
    query and database sets of ``data`` are not touched.
    """
    train = data.train
    if size < 1 or database_size < 1 or size + database_size >= len(train):
        raise ValueError(
            f"validation size ({size}) and database size ({database_size}) must be positive and leave training "
            f"images out of the {len(train)}"
        )
    labels = train.labels.argmax(1)
    positions = np.arange(len(train))
    held_out = stratified_subset(positions, labels, size + database_size, seed)
    queries = held_out[stratified_subset(np.arange(len(held_out)), labels[held_out], size, seed)]
    database = np.setdiff1d(held_out, queries)
    kept = np.setdiff1d(positions, held_out)
    record = data.record
    evaluation = build_transform(False, record["image_size"], record["transform"])
    classes = data.protocol.num_classes

    def part(chosen: np.ndarray, transform) -> PoolSubset:
        return PoolSubset(train.pool, train.indices[chosen], classes, transform)

    validation_record = {
        **record,
        "sizes": {"train": len(kept), "query": len(queries), "database": len(database)},
        "validation": f"{size} queries and a {database_size}-image database held out of the {len(train)} "
        "training images; the rest train",
    }
    return HashingData(
        part(kept, train.transform),
        part(queries, evaluation),
        part(database, evaluation),
        data.protocol,
        validation_record,
    )


def sweep(
    profile_name: str,
    model: str,
    bits: int,
    grid: dict[str, tuple[float, ...]],
    validation_size: int,
    data_dir=None,
    seed: int = SPLIT_SEED,
    runs_dir: Path = PROJECT_ROOT / "results" / "runs" / "tuning",
    database_size: int = 400,
    batch_sizes: tuple[int, ...] = DEFAULT_BATCH_SIZES,
    transform_styles: tuple[str, ...] = TRANSFORM_STYLES,
    epochs: int | None = None,
    stabilisers: tuple[tuple[int, float], ...] = ((0, 0.0),),
    schedules: tuple[str, ...] = ("constant",),
) -> pd.DataFrame:
    """Validation mAP per epoch for every setting: (optimizer, rate) of ``grid`` ({optimizer: rates}) × batch
    size × image pipeline × (warm-up steps, gradient-clipping norm) of ``stabilisers`` × rate ``schedules``,
    each trained ``epochs`` epochs (None: the profile's). Columns: the ``Setting`` fields, epoch, loss,
    validation_map."""
    profile = resolve_profile(profile_name)
    rows = []
    for style in transform_styles:
        data = load_hashing_data(
            "cifar10", data_dir, profile.image_size, style, profile.subset, seed, PROJECT_ROOT / "results" / "splits"
        )
        validation = validation_split(data, validation_size, database_size, seed)
        rates = [(name, rate) for name, rates in grid.items() for rate in rates]
        for (optimizer, learning_rate), batch_size, (warmup, clip), schedule in itertools.product(
            rates, batch_sizes, stabilisers, schedules
        ):
            setting = Setting(optimizer, learning_rate, batch_size, style, warmup, clip, schedule)
            print(
                f"[tuning] {model} {bits} bits, {optimizer} lr {learning_rate:g}, batch {batch_size}, {style}, "
                f"warm-up {warmup} steps, clip {clip:g}, {schedule} rate"
            )
            result = _train_setting(profile.name, model, bits, setting, validation, seed, runs_dir, epochs)
            rows += [
                {**setting._asdict(), "epoch": row["epoch"], "loss": row["loss"], "validation_map": row["map"]}
                for row in result.history
            ]
    return pd.DataFrame(rows)


def _train_setting(
    profile: str, model: str, bits: int, setting: Setting, validation: HashingData, seed, runs_dir, epochs
):
    config = TrainConfig(
        bits=bits,
        model=model,
        profile=profile,
        seed=seed,
        learning_rate=setting.lr,
        batch_size=setting.batch_size,
        transform_style=setting.transform_style,
        eval_every=1,
        epochs=epochs,
        optimizer=setting.optimizer,
        warmup_steps=setting.warmup_steps,
        clip_grad_norm=setting.clip_grad_norm,
        schedule=setting.schedule,
        runs_dir=str(runs_dir),
        device="cpu",
        run_name=f"{profile}-{model}-{bits}bits-{setting.optimizer}-lr{setting.lr:g}-bs{setting.batch_size}-"
        f"{setting.transform_style}"
        + (f"-warmup{setting.warmup_steps}-clip{setting.clip_grad_norm:g}" if setting[4:6] != (0, 0.0) else "")
        + (f"-{setting.schedule}" if setting.schedule != "constant" else "")
        + (f"-{epochs}epochs" if epochs else ""),
    )
    run_dir = config.run_path()
    if run_dir.exists():
        for stale in run_dir.iterdir():
            stale.unlink()
    return fit(config, data=validation, progress=False)


def parse_grid(entries: list[str]) -> dict[str, tuple[float, ...]]:
    """``["adam:1e-4,3e-4", "rmsprop:2e-5"]`` → {"adam": (1e-4, 3e-4), "rmsprop": (2e-5,)}."""
    grid = {}
    for entry in entries:
        name, _, rates = entry.partition(":")
        try:
            grid[name] = tuple(float(rate) for rate in rates.split(","))
        except ValueError:
            raise ValueError(f"grid entries look like adam:1e-4,3e-4; got {entry!r}") from None
    return grid


def parse_stabilisers(entries: list[str]) -> tuple[tuple[int, float], ...]:
    """``["0:0", "200:1"]`` → ((0, 0.0), (200, 1.0)): (warm-up steps, gradient-clipping norm) pairs."""
    pairs = []
    for entry in entries:
        warmup, _, clip = entry.partition(":")
        try:
            pairs.append((int(warmup), float(clip or 0)))
        except ValueError:
            raise ValueError(f"--stabilisers entries are WARMUP_STEPS:CLIP_NORM, e.g. 200:1; got {entry!r}") from None
    return tuple(pairs)


def chosen_setting(curves: pd.DataFrame) -> Setting:
    """The setting with the highest last-epoch validation mAP (the earlier one in the sweep on a tie)."""
    columns = [c for c in SETTING_COLUMNS if c in curves]
    last = curves.sort_values("epoch", kind="stable").groupby(columns, sort=False).tail(1)
    best = last.loc[last["validation_map"].idxmax()]
    return Setting(
        str(best["optimizer"]),
        float(best["lr"]),
        int(best.get("batch_size", 32)),
        str(best.get("transform_style", "paper")),
        int(best.get("warmup_steps", 0)),
        float(best.get("clip_grad_norm", 0.0)),
        str(best.get("schedule", "constant")),
    )


def chosen_epochs(curves: pd.DataFrame) -> int:
    """The epoch of the highest validation mAP in an epoch-count study (the earlier one on a tie)."""
    return int(curves.loc[curves["validation_map"].idxmax(), "epoch"])


def tuning_path(profile: str, model: str, bits: int, study: str | None = None) -> Path:
    """results/tuning/<profile>-<model>-<bits>bits[-<study>] (no suffix): the sweep, or the ``epochs`` study."""
    return TUNING_DIR / (f"{profile}-{model}-{bits}bits" + (f"-{study}" if study else ""))


def _committed(profile: str, model: str, bits: int, study: str | None, suffix: str) -> Path:
    path = tuning_path(profile, model, bits, study).with_suffix(suffix)
    if not path.exists():
        how = f"python -m mh.repro.tuning --profile {profile} --model {model}"
        if study == EPOCHS_STUDY:
            how += " --grid <chosen optimizer:rate> --batch-sizes <chosen> --transform-styles <chosen> --epochs N"
        raise FileNotFoundError(f"{path} is missing: run {how}")
    return path


def has_tuning(profile: str, study: str | None = None, model: str = "mambahash", bits: int = 48) -> bool:
    """Whether ``profile`` has a committed sweep (or ``study``) for ``model`` at ``bits``."""
    return tuning_path(profile, model, bits, study).with_suffix(".json").exists()


def read_tuning(profile: str, model: str = "mambahash", bits: int = 48, study: str | None = None) -> pd.DataFrame:
    """The committed curves of a sweep (or of its ``"epochs"`` study); FileNotFoundError says how to produce
    them."""
    return pd.read_csv(_committed(profile, model, bits, study, ".csv"))


def chosen_knobs(profile: str, model: str, bits: int) -> dict:
    """The knobs the committed sweep of ``model`` at ``bits`` chose under ``profile`` (``optimizer``,
    ``learning_rate``, ``batch_size``, …) as training-config overrides; {} when there is no such sweep, so that
    the profile's own knobs apply (they were chosen for MambaHash)."""
    if not has_tuning(profile, model=model, bits=bits):
        return {}
    record = tuning_record(profile, model, bits)
    return {key.removeprefix("chosen_"): value for key, value in record.items() if key.startswith("chosen_")}


def tuning_record(profile: str, model: str = "mambahash", bits: int = 48, study: str | None = None) -> dict:
    """The committed sweep's manifest and choice (``chosen_optimizer``, ``chosen_learning_rate``, …; the
    ``"epochs"`` study's also ``chosen_epochs``)."""
    return json.loads(_committed(profile, model, bits, study, ".json").read_text())


def _record(args: argparse.Namespace, curves: pd.DataFrame, study: str | None) -> dict:
    """The manifest and choice written next to a sweep's (or an epoch-count study's) curves."""
    profile, choice = resolve_profile(args.profile), chosen_setting(curves)
    record = {
        **run_manifest(profile.name, "cpu", model=args.model, bits=args.bits),
        "chosen_optimizer": choice.optimizer,
        "chosen_learning_rate": choice.lr,
        "chosen_batch_size": choice.batch_size,
        "chosen_transform_style": choice.transform_style,
        "chosen_warmup_steps": choice.warmup_steps,
        "chosen_clip_grad_norm": choice.clip_grad_norm,
        "chosen_schedule": choice.schedule,
        "criterion": "highest validation mAP after the last epoch",
        "epochs_per_setting": args.epochs or profile.epochs,
    }
    if study == EPOCHS_STUDY:
        record |= {"chosen_epochs": chosen_epochs(curves), "epochs_criterion": "epoch of the highest validation mAP"}
    return record | {
        "validation_size": args.validation_size,
        "validation_database_size": args.database_size,
        "profile_settings": {
            k: v for k, v in dataclasses.asdict(profile).items() if k not in (*TUNED_PROFILE_FIELDS, "note")
        },
    }


@returns_status
def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m mh.repro.tuning", description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="smoke", choices=list(PROFILES))
    parser.add_argument("--model", default="mambahash")
    parser.add_argument("--bits", type=int, default=48)
    parser.add_argument("--grid", nargs="+", default=list(DEFAULT_GRID), help="optimizer:rate,rate … entries")
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=list(DEFAULT_BATCH_SIZES))
    parser.add_argument("--transform-styles", nargs="+", choices=list(TRANSFORM_STYLES), default=list(TRANSFORM_STYLES))
    parser.add_argument(
        "--stabilisers",
        nargs="+",
        default=["0:0"],
        help="warm-up steps:clipping norm pairs to try (0:0 is neither), e.g. 0:0 200:1",
    )
    parser.add_argument(
        "--schedules", nargs="+", choices=list(RATE_SCHEDULES), default=["constant"], help="rate schedules to try"
    )
    parser.add_argument("--validation-size", type=int, default=200, help="validation queries")
    parser.add_argument("--database-size", type=int, default=400, help="validation database, never trained on")
    parser.add_argument("--data-dir", help="CIFAR-10 location (default $MH_DATA_DIR, else ./data)")
    parser.add_argument(
        "--epochs", type=int, help="epoch-count study: train this many epochs, record the best epoch (-epochs files)"
    )
    args = add_debug_flag(parser).parse_args(argv)
    if args.epochs is not None and args.epochs < 1:
        parser.error(f"--epochs must be at least 1, got {args.epochs}")
    settings = len(args.batch_sizes) * len(args.transform_styles) * sum(map(len, parse_grid(args.grid).values()))
    if args.epochs and settings != 1:
        parser.error(
            f"--epochs studies one setting (the sweep's choice), but the arguments give {settings}: pass one "
            "--grid optimizer:rate, one --batch-sizes value and one --transform-styles value"
        )
    with cli_errors(args.debug):
        curves = sweep(
            args.profile,
            args.model,
            args.bits,
            parse_grid(args.grid),
            args.validation_size,
            args.data_dir,
            batch_sizes=tuple(args.batch_sizes),
            transform_styles=tuple(args.transform_styles),
            database_size=args.database_size,
            epochs=args.epochs,
            stabilisers=parse_stabilisers(args.stabilisers),
            schedules=tuple(args.schedules),
        )
    study = EPOCHS_STUDY if args.epochs else None
    path = tuning_path(args.profile, args.model, args.bits, study)
    write_csv(path.with_suffix(".csv"), curves.to_dict("records"))
    write_json(path.with_suffix(".json"), _record(args, curves, study))
    print(curves.to_string(index=False))
    epochs = f", {chosen_epochs(curves)} epochs" if study else ""
    print(f"[tuning] chosen: {chosen_setting(curves)}{epochs}; set it in mh/profiles.py ({args.profile})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

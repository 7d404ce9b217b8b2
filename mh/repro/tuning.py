"""Choose a profile's optimiser on a validation split carved from its training images — never the query set.

    python -m mh.repro.tuning --profile smoke [--model mambahash] [--grid rmsprop:2e-5,1e-4 adam:3e-4]

The paper's 2e-5 (§4.1) is a fine-tuning rate for ImageNet-pretrained weights; the smoke profile trains
from scratch, so its rate is chosen here. ``validation_split`` holds out a class-balanced part of the
profile's training subset as validation queries and uses the rest as both the training set and the
retrieval database (eval transform). Each (optimizer, rate) of the grid trains the profile's network for
the profile's epochs and is scored by validation mAP after every epoch. The choice — the setting with the
best last-epoch validation mAP — and every curve are written to
``results/tuning/<profile>-<model>-<bits>bits.{csv,json}``; ``Profile.optimizer`` and
``Profile.learning_rate`` must name it (a test checks that they do).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd

from mh.cli import add_debug_flag, cli_errors, returns_status
from mh.data import HashingData, PoolSubset, build_transform, load_hashing_data
from mh.io import PROJECT_ROOT, write_csv, write_json
from mh.repro.manifest import run_manifest
from mh.repro.profiles import PROFILES, resolve_profile
from mh.splits import SPLIT_SEED, stratified_subset
from mh.train import TrainConfig, fit

TUNING_DIR = PROJECT_ROOT / "results" / "tuning"
DEFAULT_GRID = ("rmsprop:2e-5,1e-4,2e-4,3e-4", "adam:3e-4")  # the paper's RMSprop at 2e-5 first


def validation_split(data: HashingData, size: int, seed: int = SPLIT_SEED) -> HashingData:
    """``size`` class-balanced training images as queries; the other training images train and form the database.

    Transforms: the training part keeps ``data.train``'s (augmented), queries and database get the eval
    transform of the same image size and style. The query and database sets of ``data`` are not touched.
    """
    train = data.train
    if not 0 < size < len(train):
        raise ValueError(f"validation size must be between 1 and {len(train) - 1} (the training set); got {size}")
    labels = train.labels.argmax(1)
    positions = np.arange(len(train))
    held_out = stratified_subset(positions, labels, size, seed)
    kept = np.setdiff1d(positions, held_out)
    record = data.record
    evaluation = build_transform(False, record["image_size"], record["transform"])
    classes = data.protocol.num_classes

    def part(chosen: np.ndarray, transform) -> PoolSubset:
        return PoolSubset(train.pool, train.indices[chosen], classes, transform)

    validation_record = {
        **record,
        "sizes": {"train": len(kept), "query": len(held_out), "database": len(kept)},
        "validation": f"{size} of the {len(train)} training images as queries, the rest as training set and database",
    }
    return HashingData(
        part(kept, train.transform),
        part(held_out, evaluation),
        part(kept, evaluation),
        data.protocol,
        validation_record,
    )


def sweep_learning_rates(
    profile_name: str,
    model: str,
    bits: int,
    grid: dict[str, tuple[float, ...]],
    validation_size: int,
    data_dir=None,
    seed: int = SPLIT_SEED,
    runs_dir: Path = PROJECT_ROOT / "results" / "runs" / "tuning",
) -> pd.DataFrame:
    """Validation mAP per epoch for each (optimizer, learning rate) of ``grid`` ({optimizer: rates}):
    columns optimizer, lr, epoch, loss, validation_map."""
    profile = resolve_profile(profile_name)
    data = load_hashing_data(
        "cifar10",
        data_dir,
        profile.image_size,
        profile.transform_style,
        profile.subset,
        seed,
        PROJECT_ROOT / "results" / "splits",
    )
    validation = validation_split(data, validation_size, seed)
    rows = []
    for optimizer, learning_rate in ((name, rate) for name, rates in grid.items() for rate in rates):
        config = TrainConfig(
            bits=bits,
            model=model,
            profile=profile.name,
            seed=seed,
            learning_rate=learning_rate,
            eval_every=1,
            optimizer=optimizer,
            runs_dir=str(runs_dir),
            device="cpu",
            run_name=f"{profile.name}-{model}-{bits}bits-{optimizer}-lr{learning_rate:g}",
        )
        run_dir = runs_dir / config.name()
        if run_dir.exists():
            for stale in run_dir.iterdir():
                stale.unlink()
        print(f"[tuning] {model} {bits} bits, {optimizer} lr {learning_rate:g}", flush=True)
        result = fit(config, data=validation, progress=False)
        rows += [
            {
                "optimizer": optimizer,
                "lr": learning_rate,
                "epoch": row["epoch"],
                "loss": row["loss"],
                "validation_map": row["map"],
            }
            for row in result.history
        ]
    return pd.DataFrame(rows)


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


def chosen_setting(curves: pd.DataFrame) -> tuple[str, float]:
    """(optimizer, rate) with the highest last-epoch validation mAP (the earlier one in the grid on a tie)."""
    last = curves.sort_values("epoch", kind="stable").groupby(["optimizer", "lr"], sort=False).tail(1)
    best = last.loc[last["validation_map"].idxmax()]
    return str(best["optimizer"]), float(best["lr"])


def tuning_path(profile: str, model: str, bits: int) -> Path:
    return TUNING_DIR / f"{profile}-{model}-{bits}bits"


def read_tuning(profile: str, model: str = "mambahash", bits: int = 48) -> pd.DataFrame:
    """The committed curves of a sweep; FileNotFoundError says how to produce them."""
    path = tuning_path(profile, model, bits).with_suffix(".csv")
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run python -m mh.repro.tuning --profile {profile} --model {model}")
    return pd.read_csv(path)


def tuning_record(profile: str, model: str = "mambahash", bits: int = 48) -> dict:
    """The committed sweep's manifest and choice (``chosen_optimizer``, ``chosen_learning_rate``, …)."""
    path = tuning_path(profile, model, bits).with_suffix(".json")
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run python -m mh.repro.tuning --profile {profile} --model {model}")
    return json.loads(path.read_text())


@returns_status
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mh.repro.tuning", description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="smoke", choices=list(PROFILES))
    parser.add_argument("--model", default="mambahash")
    parser.add_argument("--bits", type=int, default=48)
    parser.add_argument("--grid", nargs="+", default=list(DEFAULT_GRID), help="optimizer:rate,rate … entries")
    parser.add_argument("--validation-size", type=int, default=200)
    parser.add_argument("--data-dir", help="CIFAR-10 location (default $MH_DATA_DIR, else ./data)")
    args = add_debug_flag(parser).parse_args(argv)
    with cli_errors(args.debug):
        curves = sweep_learning_rates(
            args.profile, args.model, args.bits, parse_grid(args.grid), args.validation_size, args.data_dir
        )
    optimizer, rate = chosen_setting(curves)
    path = tuning_path(args.profile, args.model, args.bits)
    write_csv(path.with_suffix(".csv"), curves.to_dict("records"))
    profile = resolve_profile(args.profile)
    write_json(
        path.with_suffix(".json"),
        {
            **run_manifest(profile.name, "cpu", model=args.model, bits=args.bits),
            "chosen_optimizer": optimizer,
            "chosen_learning_rate": rate,
            "criterion": "highest validation mAP after the last epoch",
            "validation_size": args.validation_size,
            "profile_settings": {
                k: v for k, v in dataclasses.asdict(profile).items() if k not in ("learning_rate", "optimizer")
            },
        },
    )
    print(curves.to_string(index=False))
    print(f"[tuning] chosen: {optimizer} at {rate:g}; set them in mh/repro/profiles.py ({profile.name})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Choose CAGMH's two learning rates on validation mosaics carved from its training mosaics — never the queries.

    python -m mh.repro.tuning_cagmh --profile cpu --rates 1e-3:1e-4 3e-3:1e-4 1e-3:3e-4
        [--tiles N] [--validation-query 250] [--validation-database 750] [--data-dir DIR]

Notebook 09 trains CAGMH on synthetic CIFAR-10 mosaics with AdamW in three groups: CLIP at ``clip_lr``; the Mamba
block, the hash heads and the losses' proxies at ``lr`` (``mh.family.cagmh_train``). This study reads every other
setting from notebook 09's own parameters cell — tiles, relevance, the profile's mosaic counts and epochs, the
reduced CLIP's shape, batch size, bits, seed — so that it tunes what the notebook trains; ``--tiles`` measures
another mosaic design under the same settings (the evidence behind notebook 09's choice of ``TILES``). From
the profile's training mosaics it holds out validation queries and a validation database
(``mh.family.paired_data.carve_validation``), trains each ``lr:clip_lr`` pair on the rest and scores both
directions after every epoch. The choice — the highest mean of image → text and text → image validation mAP
after the last epoch — and every curve go to ``results/tuning/<profile>-cagmh-<bits>bits-tiles<tiles>.{csv,json}``;
for the notebook's own ``TILES``, notebook 09's ``RATES[profile]`` must name it (a test checks).
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pandas as pd
import torch

from mh.cli import OneLineParser, add_debug_flag, cli_errors, returns_status
from mh.data import ImagePool, load_cifar10_pool
from mh.encode import resolve_device
from mh.family.cagmh import CAGMH, clip_image_transform, tokenize
from mh.family.cagmh_train import evaluate_cagmh, train_cagmh
from mh.family.paired_data import PairedDataset, carve_validation, synthetic_mosaics
from mh.io import PROJECT_ROOT, write_csv, write_json
from mh.manifest import run_manifest
from mh.metrics import chance_map
from mh.profiles import resolve_profile
from mh.repro.tuning import tuning_path

NOTEBOOK = PROJECT_ROOT / "notebooks" / "09_cagmh.ipynb"
MODEL = "cagmh"
CURVE_COLUMNS = [
    "lr",
    "clip_lr",
    "epoch",
    "loss",
    "validation_i2t",
    "validation_t2i",
    "validation_mean",
    "validation_chance",
]


def notebook_parameters(notebook: Path = NOTEBOOK) -> dict:
    """The literal values of a notebook's ``parameters`` cell (one ``NAME = literal`` per statement)."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    tagged = [cell for cell in cells if "parameters" in cell.get("metadata", {}).get("tags", [])]
    if len(tagged) != 1:
        raise ValueError(f"{notebook} must have exactly one cell tagged 'parameters'; found {len(tagged)}")
    tree = ast.parse("".join(tagged[0]["source"]))
    return {statement.targets[0].id: ast.literal_eval(statement.value) for statement in tree.body}


def parse_rates(entries: list[str]) -> list[tuple[float, float]]:
    """``["1e-3:1e-4", …]`` → [(lr, clip_lr), …]."""
    rates = []
    for entry in entries:
        try:
            lr, clip_lr = (float(part) for part in entry.split(":"))
        except ValueError:
            raise ValueError(f"--rates entry {entry!r} is not lr:clip_lr (two numbers, e.g. 1e-3:1e-4)") from None
        if lr <= 0 or clip_lr <= 0:
            raise ValueError(f"--rates entry {entry!r}: both rates must be positive")
        rates.append((lr, clip_lr))
    return rates


def validation_sets(parameters: dict, profile: str, pool: ImagePool, query: int, database: int) -> dict:
    """The notebook's training mosaics for ``profile`` split into train / validation_query / validation_database
    PairedDatasets (the notebook's query and database mosaics are never made). They are the notebook's because
    ``synthetic_mosaics`` cuts its parts in order from one seeded permutation and ``"train"`` comes first."""
    if profile not in parameters["MOSAICS"]:
        raise ValueError(f"notebook 09 has no mosaic counts for profile {profile!r}: {sorted(parameters['MOSAICS'])}")
    train_count = parameters["MOSAICS"][profile]["train"]
    mosaics = synthetic_mosaics(
        pool,
        {"train": train_count},
        seed=parameters["SEED"],
        tiles=parameters["TILES"],
        relevance=parameters["RELEVANCE"],
    )
    parts = carve_validation(mosaics["train"], query, database, seed=parameters["SEED"])
    transform = clip_image_transform(model_shape(parameters, profile).get("image_size", 224))
    return {name: PairedDataset(pairs, transform, tokenize(pairs.captions)) for name, pairs in parts.items()}


def model_shape(parameters: dict, profile: str) -> dict:
    """The CAGMH keyword arguments notebook 09 uses under ``profile``: the reduced CLIP where the profile's
    networks are reduced, else the full CLIP ViT-B/32."""
    return parameters["REDUCED_CLIP"] if resolve_profile(profile).model_size == "reduced" else {}


def sweep(
    rates: list[tuple[float, float]], parameters: dict, profile: str, sets: dict, device: torch.device
) -> pd.DataFrame:
    """Train CAGMH once per (lr, clip_lr) on ``sets["train"]``; validation mAP in both directions after each
    epoch, beside the validation split's chance level (``mh.metrics.chance_map``). Returns the curves
    (``CURVE_COLUMNS``)."""
    chance = chance_map(sets["validation_query"].labels, sets["validation_database"].labels)

    def validation(trained: CAGMH) -> dict:
        scores = evaluate_cagmh(trained, sets["validation_query"], sets["validation_database"])
        return {"validation_i2t": scores["i2t"], "validation_t2i": scores["t2i"]}

    rows = []
    for lr, clip_lr in rates:
        torch.manual_seed(parameters["SEED"])
        model = CAGMH(parameters["BITS"], **model_shape(parameters, profile)).to(device)
        training = train_cagmh(
            model,
            sets["train"],
            parameters["EPOCHS"][profile],
            parameters["BATCH_SIZE"],
            lr=lr,
            clip_lr=clip_lr,
            seed=parameters["SEED"],
            progress=True,
            after_epoch=validation,
        )
        for row in training.history:
            mean = (row["validation_i2t"] + row["validation_t2i"]) / 2
            rows.append({"lr": lr, "clip_lr": clip_lr, **row, "validation_mean": mean, "validation_chance": chance})
        last = rows[-1]["validation_mean"]
        print(f"[tuning] lr {lr:g}, clip_lr {clip_lr:g}: validation mAP {last:.4f} (mean), chance {chance:.4f}")
    return pd.DataFrame(rows, columns=CURVE_COLUMNS)


def chosen_rates(curves: pd.DataFrame) -> tuple[float, float]:
    """(lr, clip_lr) with the highest mean validation mAP after the last epoch (the first listed on a tie)."""
    last = curves[curves["epoch"] == curves["epoch"].max()]
    best = last.loc[last["validation_mean"].idxmax()]
    return float(best["lr"]), float(best["clip_lr"])


@returns_status
def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m mh.repro.tuning_cagmh", description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="cpu", help="a profile with mosaic counts in notebook 09")
    parser.add_argument("--rates", nargs="+", required=True, help="lr:clip_lr pairs, e.g. 1e-3:1e-4 3e-3:1e-4")
    parser.add_argument("--tiles", type=int, help="images per mosaic (default: notebook 09's TILES)")
    parser.add_argument("--validation-query", type=int, default=250, help="validation queries")
    parser.add_argument("--validation-database", type=int, default=750, help="validation database, not trained on")
    parser.add_argument("--data-dir", help="CIFAR-10 location (default $MH_DATA_DIR, else ./data)")
    parser.add_argument("--device", default="auto")
    args = add_debug_flag(parser).parse_args(argv)
    with cli_errors(args.debug):
        rates, parameters = parse_rates(args.rates), notebook_parameters()
        if args.tiles is not None:
            parameters["TILES"] = args.tiles
        pool = load_cifar10_pool(args.data_dir)
        sets = validation_sets(parameters, args.profile, pool, args.validation_query, args.validation_database)
        device = resolve_device(args.device)
        curves = sweep(rates, parameters, args.profile, sets, device)
    path = tuning_path(args.profile, MODEL, parameters["BITS"], study=f"tiles{parameters['TILES']}")
    lr, clip_lr = chosen_rates(curves)
    write_csv(path.with_suffix(".csv"), curves.to_dict("records"))
    settings = ("BITS", "SEED", "TILES", "RELEVANCE", "BATCH_SIZE", "REDUCED_CLIP")
    write_json(
        path.with_suffix(".json"),
        {
            **run_manifest(args.profile, device.type, model=MODEL, bits=parameters["BITS"]),
            "chosen_lr": lr,
            "chosen_clip_lr": clip_lr,
            "criterion": "highest mean of image→text and text→image validation mAP after the last epoch",
            "train_pairs": len(sets["train"]),
            "validation_query": args.validation_query,
            "validation_database": args.validation_database,
            "epochs_per_setting": parameters["EPOCHS"][args.profile],
            "notebook_settings": {name: parameters[name] for name in settings},
        },
    )
    print(curves.to_string(index=False))
    print(f"[tuning] chosen: lr {lr:g}, clip_lr {clip_lr:g}; set RATES[{args.profile!r}] in notebook 09")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

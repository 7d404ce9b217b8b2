"""What every notebook sets up first: profile, device, seed, and where data, runs, figures and tables live.

    ws = open_workspace(PROFILE, SEED, DEVICE, DATA_DIR, OUT_DIR)
    data = ws.data()                                  # CIFAR-10 train / query / database of the profile
    run = ensure_run(ws.train_config("mambahash", 48), data)   # mh.repro.run_cache: trained if missing
    ws.save_figure(fig, "03_loss")          # figures/<profile>/03_loss.png and .pdf
    ws.save_table(frame, "04_table2_map")   # results/tables/<profile>/04_table2_map.csv and .md

Paths are relative to ``OUT_DIR`` (the repository root: ".." from ``notebooks/``, "." under papermill); each
profile has its own output tree (``mh.repro.outputs``).
Under ``make reproduce`` figures and tables go to a staging directory instead (``$MH_STAGING_DIR``, set by
``mh.repro.reproduce``), which replaces the notebook's previous outputs only when the whole notebook ran;
runs, splits and timings are caches that stay under ``OUT_DIR``.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import torch

from mh.config import TrainConfig
from mh.data import HashingData, resolve_data_dir
from mh.datasets import load_hashing_data
from mh.encode import resolve_device
from mh.io import atomic_output
from mh.profiles import Profile, comparison_profile, resolve_profile
from mh.repro.notices import quiet_known_compile_notices
from mh.repro.outputs import output_folder

DATASET = "cifar10"  # the course's dataset
HEADLINE = ("mambahash", 48)  # the network the profiles train under the most seeds


@dataclass
class Workspace:
    root: Path
    profile: Profile
    device: torch.device
    seed: int
    data_dir: Path
    staging: Path | None = None  # where figures and tables go under make reproduce (``STAGING_VARIABLE``)

    @property
    def figures(self) -> Path:
        """figures/<profile>/ (under the staging directory during make reproduce)."""
        return self._dir(output_folder("figures", self.profile.name), self.staging)

    @property
    def tables(self) -> Path:
        """results/tables/<profile>/ (under the staging directory during make reproduce)."""
        return self._dir(output_folder("tables", self.profile.name), self.staging)

    @property
    def timings(self) -> Path:
        """results/timings/<profile>/: measured timings, a cache kept with the profile's outputs."""
        return self._dir(output_folder("timings", self.profile.name))

    @property
    def runs(self) -> Path:
        return self.runs_of(self.profile)

    @property
    def comparison_profile(self) -> Profile:
        """The profile of the comparison networks (Tables 2–3, the family): ``smoke_compare`` under smoke."""
        return comparison_profile(self.profile)

    def runs_of(self, profile: Profile) -> Path:
        """results/runs/<profile>/: the trained runs of one profile."""
        return self._dir(f"results/runs/{profile.name}")

    @property
    def splits(self) -> Path:
        return self._dir("results/splits")

    def _dir(self, relative: str | Path, base: Path | None = None) -> Path:
        path = (base or self.root) / relative
        path.mkdir(parents=True, exist_ok=True)
        return path

    def data(
        self, profile: Profile | None = None, image_size: int | None = None, transform_style: str | None = None
    ) -> HashingData:
        """The course dataset's train / query / database sets under ``profile`` (the workspace's unless given):
        its subset, image size and pipeline (``image_size`` / ``transform_style`` replace the last two)."""
        profile = profile or self.profile
        return load_hashing_data(
            DATASET,
            self.data_dir,
            image_size or profile.image_size,
            transform_style or profile.transform_style,
            profile.subset,
            self.seed,
            self.splits,
        )

    def training_seeds(self, model: str, bits: int, profile: Profile | None = None) -> list[int]:
        """The training seeds of ``model`` at ``bits`` under ``profile`` (the workspace's unless given): the
        workspace seed, +1, … — ``profile.headline_seeds`` of them for MambaHash-48, ``profile.seeds`` for the
        rest. The split stays the workspace seed's; only initialisation, shuffling and augmentation change."""
        profile = profile or self.profile
        count = profile.headline_seeds if (model, bits) == HEADLINE else profile.seeds
        return [self.seed + offset for offset in range(count)]

    def table1_config(self, bits: int, seed: int | None = None) -> TrainConfig:
        """The config of a Table 1 run (MambaHash at ``bits``, under the workspace's profile and ``seed``): the
        headline 48-bit run of the first seed is evaluated after every epoch, so that notebook 04 can show what
        the released code's pick of the best epoch on the query set would have reported; the others at the
        profile's pace (an evaluation of the full protocol encodes 55,000 images)."""
        first_seed = seed is None or seed == self.seed
        eval_every = 1 if (HEADLINE[0], bits) == HEADLINE and first_seed else self.profile.eval_every
        return self.train_config(HEADLINE[0], bits, seed=seed, eval_every=eval_every)

    def train_config(
        self, model: str, bits: int, profile: Profile | None = None, seed: int | None = None, **knobs
    ) -> TrainConfig:
        """The training config of ``model`` at ``bits`` under ``profile`` (the workspace's unless given), with
        the workspace's seed (or ``seed``), device, data, split and runs folders; ``knobs`` override the
        profile's (``epochs=…``, ``eval_every=…``: ``mh.profiles.KNOBS``)."""
        profile = profile or self.profile
        return TrainConfig(
            dataset=DATASET,
            bits=bits,
            model=model,
            profile=profile.name,
            seed=self.seed if seed is None else seed,
            split_seed=self.seed,
            data_dir=str(self.data_dir),
            runs_dir=str(self.runs_of(profile)),
            split_dir=str(self.splits),
            device=str(self.device),
            **knobs,
        )

    def label(self, profile: Profile | None = None) -> str:
        """Profile (the workspace's unless given) and device, for figure titles and table captions."""
        return f"measured, profile {(profile or self.profile).describe()}, {self.device.type.upper()}"

    def save_figure(self, figure, name: str) -> list[Path]:
        """figures/<name>.png and .pdf, byte-identical when the figure is (see ``save_figure_stable``)."""
        return [save_figure_stable(figure, self.figures / f"{name}.{suffix}") for suffix in ("png", "pdf")]

    def save_table(self, frame: pd.DataFrame, name: str, caption: str) -> list[Path]:
        """CSV (data) and Markdown (caption + table) under results/tables/."""
        csv_path, markdown_path = self.tables / f"{name}.csv", self.tables / f"{name}.md"
        frame.to_csv(csv_path, index=False)
        markdown_path.write_text(f"{caption}\n\n{frame.to_markdown(index=False)}\n")
        return [csv_path, markdown_path]


STAGING_VARIABLE = "MH_STAGING_DIR"

# matplotlib stamps PDFs with a creation date; without it, saving the same figure twice gives the same bytes
# (PNGs carry no date). The version stamp stays: a new matplotlib may draw differently anyway.
STABLE_METADATA = {"pdf": {"CreationDate": None}, "png": {}}


def save_figure_stable(figure, path: Path, dpi: int = 150) -> Path:
    """Save ``figure`` to ``path`` (.png or .pdf) without a creation date, atomically. Returns ``path``."""
    suffix = Path(path).suffix.lstrip(".")
    if suffix not in STABLE_METADATA:
        raise ValueError(f"figures are saved as .png or .pdf; got {path}")
    with atomic_output(path) as temporary:
        figure.savefig(temporary, dpi=dpi, bbox_inches="tight", format=suffix, metadata=STABLE_METADATA[suffix])
    return Path(path)


def open_workspace(
    profile: str = "auto", seed: int = 2025, device: str = "auto", data_dir: str | None = None, out_dir: str = ".."
) -> Workspace:
    """Resolve the notebook parameters, seed everything, set the plotting style, quiet the known compile notices."""
    import seaborn as sns

    quiet_known_compile_notices()
    resolved = resolve_profile(profile)
    device = resolve_device(device)
    root = Path(out_dir).resolve()
    data = resolve_data_dir(data_dir)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind")
    matplotlib.rcParams.update({"figure.dpi": 110, "savefig.dpi": 150, "axes.titleweight": "bold"})
    staging = os.environ.get(STAGING_VARIABLE)
    return Workspace(root, resolved, device, seed, data, Path(staging) if staging else None)

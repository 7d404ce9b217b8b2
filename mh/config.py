"""What a training run is: its settings (``TrainConfig``, written to ``config.json``) and their checks.

``TrainConfig`` holds the run's own settings (dataset, bits, model, profile, seed, where files go, …) and one field
per knob of the profile (``mh.profiles.KNOBS``: epochs, batch size, rate, optimizer, …), None meaning "the
profile's value"; ``resolved_profile()`` is the profile with the knobs set. A new knob is a field of
``mh.profiles.Profile`` made with ``knob``, nothing here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from mh import checks
from mh.data import VERIFY_LEVELS
from mh.datasets import dataset_entry
from mh.model import check_bits
from mh.profiles import KNOBS, Profile, knob_problems, resolve_profile
from mh.registry import LOSSES, MODELS, OPTIMIZERS, available_models
from mh.splits import SPLIT_SEED


@dataclass
class RunSettings:
    """What a run is, besides the profile's knobs (``TrainConfig`` adds one field per knob)."""

    dataset: str = "cifar10"
    bits: int = 48
    model: str = "mambahash"
    profile: str = "smoke"
    seed: int = SPLIT_SEED
    split_seed: int | None = None  # the seed of the data split and subsets; None: ``seed`` (one seed for both)
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
    log_every: int = 25  # read loss terms to the host every N steps
    verify_data: str = "full"  # open every image before the first step: none, header or full (mh.data)

    def resolved_profile(self) -> Profile:
        """The named profile with this config's knobs (those not None) in place of its own values."""
        return resolve_profile(self.profile).with_overrides(**{knob.name: getattr(self, knob.name) for knob in KNOBS})

    def name(self) -> str:
        """``<dataset>-<model>-<K>bits-<profile>``, with ``-seed<N>`` when the seed is not the split's (2025)."""
        seed = f"-seed{self.seed}" if self.seed != SPLIT_SEED else ""
        return self.run_name or f"{self.dataset}-{self.model}-{self.bits}bits-{self.resolved_profile().name}{seed}"

    def data_seed(self) -> int:
        """The seed that draws the split and the profile's subsets: ``split_seed``, else ``seed``."""
        return self.seed if self.split_seed is None else self.split_seed

    def run_path(self) -> Path:
        """Where the run's directory is: ``<runs_dir>/<name>``."""
        return Path(self.runs_dir) / self.name()


TrainConfig = dataclasses.make_dataclass(
    "TrainConfig",
    [(knob.name, f"{knob.type} | None", dataclasses.field(default=None)) for knob in KNOBS],
    bases=(RunSettings,),
    namespace={
        "__doc__": "Everything a run depends on; written to ``config.json``. The profile's knobs "
        f"({', '.join(knob.name for knob in KNOBS)}) are fields too: None takes the profile's value.",
        "__module__": __name__,
    },
)


def validate_config(config: TrainConfig) -> None:
    """Clear errors for bad settings, before any data is read."""
    dataset_entry(config.dataset)
    if config.model not in MODELS:
        raise ValueError(f"unknown model {config.model!r}; expected one of {', '.join(available_models())}")
    profile = config.resolved_profile()
    for kind, name, table in (("loss", config.loss, LOSSES), ("optimizer", profile.optimizer, OPTIMIZERS)):
        if name is not None and name not in table:
            raise ValueError(f"unknown {kind} {name!r}; expected one of {', '.join(table)}")
    check_bits(config.bits)
    checks.seed(config.seed)
    if config.split_seed is not None:
        checks.seed(config.split_seed, "split_seed")
    problems = knob_problems(profile)
    if problems:
        raise ValueError("; ".join(problems))
    if config.log_every < 1:
        raise ValueError(f"log_every must be positive; got {config.log_every}")
    if config.verify_data not in VERIFY_LEVELS:
        raise ValueError(f"verify_data must be one of {VERIFY_LEVELS}; got {config.verify_data!r}")

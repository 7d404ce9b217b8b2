"""Run profiles in one place: how big, how long, at what resolution.

``smoke`` is for CPUs and CI (minutes; its comparison networks — Tables 2–3, MpVH — train under the smaller
``smoke_compare``: ``Profile.comparison``), ``gpu`` the full CIFAR-10 protocol sized for about 20 minutes per
four bit lengths on one H100, ``paper`` the paper's own settings (§4.1 and the released code); ``mpvh_paper``
is MpVH's recipe (its paper's §4.1), for ``mh.train --model mpvh`` only. Every measured number names the
profile it came from; ``describe()`` is the label used in tables and figures.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Profile:
    """How big, how long, at what resolution. Optimiser defaults are the paper's (§4.1): RMSprop lr 2e-5,
    weight decay 1e-7, batch 32; a profile states only what it changes."""

    name: str
    image_size: int
    epochs: int
    batch_size: int = 32
    learning_rate: float = 2e-5
    optimizer: str | None = None  # None: the model's (mh.registry.MODELS; RMSprop for MambaHash, as in §4.1)
    weight_decay: float = 1e-7
    eval_every: int = 1
    subset: dict[str, int] | None = None  # seeded, class-balanced subsets of train/query/database
    bits: tuple[int, ...] = (16, 32, 48, 64)
    transform_style: str = "paper"
    num_workers: int = 0
    encode_batch_size: int = 256
    model_size: str = "paper"  # "reduced": fewer blocks, same widths (mh.registry.ModelEntry.reduced)
    comparison: str | None = None  # the profile of the comparison networks (Tables 2–3, the family); None: this one
    note: str = ""

    def describe(self) -> str:
        """Short label for measured numbers, e.g. ``smoke: 2 ep, 32 px, 1000/200/2000 imgs``."""
        sizes = (
            "/".join(str(self.subset[k]) for k in ("train", "query", "database")) + " imgs"
            if self.subset
            else "full split"
        )
        reduced = ", reduced nets" if self.model_size == "reduced" else ""
        return f"{self.name}: {self.epochs} ep, {self.image_size} px, {sizes}{reduced}"

    def with_overrides(self, **changes) -> Profile:
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


SMOKE = Profile(
    "smoke",
    image_size=32,
    subset={"train": 5000, "query": 200, "database": 2000},  # the protocol's whole training set (500 per class)
    bits=(48,),
    encode_batch_size=128,
    model_size="reduced",
    # the next five were chosen on a validation split: results/tuning/smoke-mambahash-48bits{,-epochs}.json
    optimizer="rmsprop",
    learning_rate=2e-4,
    batch_size=16,
    transform_style="paper",
    epochs=5,
    comparison="smoke_compare",
    note="CPU minutes: native 32 px, the protocol's 5,000 training images, class-balanced query and database "
    "subsets, reduced networks (fewer blocks, narrower), no pretrained weights; RMSprop rate, batch size and "
    "image pipeline chosen on a validation split of the training images (python -m mh.repro.tuning): rate "
    "2e-4, not the paper's fine-tuning rate 2e-5, batch 16, the paper's crop-and-flip pipeline, and 5 epochs "
    "(the best of 6 on validation); its numbers show that the pipeline learns, not the paper's accuracy",
)

PROFILES = {
    "smoke": SMOKE,
    # seven comparison networks at SMOKE's size would take ~20 CPU minutes alone; smoke reproduces in 10
    "smoke_compare": dataclasses.replace(
        SMOKE,
        name="smoke_compare",
        epochs=2,
        subset={"train": 600, "query": 200, "database": 2000},
        comparison=None,
        note="smoke's comparison networks (Tables 2–3, MpVH): smoke's settings on 600 class-balanced "
        "training images for 2 epochs, so that seven networks fit the smoke budget; compare its rows with "
        "each other, not with smoke's Table 1",
    ),
    "gpu": Profile(
        "gpu",
        image_size=224,
        epochs=3,
        num_workers=8,
        note="full CIFAR-10 protocol (5,000 / 1,000 / 54,000) at 224 px, sized for ~20 min "
        "for all four bit lengths on one H100",
    ),
    "paper": Profile(
        "paper",
        image_size=224,
        epochs=8,
        num_workers=8,
        note="§4.1 and the released newtrain.py: RMSprop 2e-5, wd 1e-7, batch 32, 8 epochs, "
        "224 px, ImageNet-pretrained GroupMamba-S weights (not obtainable here)",
    ),
    "mpvh_paper": Profile(
        "mpvh_paper",
        image_size=224,
        epochs=300,
        batch_size=16,
        optimizer="sgd_two_groups",
        learning_rate=3e-3,
        weight_decay=1e-6,
        num_workers=8,
        note="MpVH §4.1: SGD, batch 16, 300 epochs, new modules at lr 3e-3 / wd 1e-6 and the ViT-B/16 at "
        "3e-6 / 1e-9 (sgd_two_groups), 224 px, ImageNet-pretrained ViT-B/16 (not obtainable here)",
    ),
}

NOTEBOOK_PROFILES = ("smoke", "gpu", "paper")  # what make reproduce runs; mpvh_paper is one model's recipe


def comparison_profile(profile: Profile) -> Profile:
    """The profile that ``profile``'s comparison networks (Tables 2–3, the family notebooks) train under."""
    return resolve_profile(profile.comparison) if profile.comparison else profile


def resolve_profile(name: str = "auto") -> Profile:
    """A profile by name; ``"auto"`` is ``gpu`` when CUDA is available, else ``smoke``."""
    if name == "auto":
        name = "gpu" if torch.cuda.is_available() else "smoke"
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; expected auto or one of {', '.join(PROFILES)}")
    return PROFILES[name]

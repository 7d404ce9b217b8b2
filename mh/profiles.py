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

from mh.data import TRANSFORM_STYLES
from mh.fastpath import FAST_PATHS
from mh.schedules import RATE_SCHEDULES


def knob(
    default=dataclasses.MISSING, *, help: str, parse=str, flag=None, choices=None, minimum=None, affects_result=True
):
    """A Profile field that a run may override: ``mh.train.TrainConfig`` gets a field of the same name (None: the
    profile's value) and ``python -m mh.train`` a flag (``flag``, else ``--field-name``) with this ``help``."""
    metadata = {"knob": True, "help": help, "parse": parse, "flag": flag, "choices": choices, "minimum": minimum}
    return dataclasses.field(default=default, metadata={**metadata, "affects_result": affects_result})


def label_field(default, help: str):
    """A Profile field that changes no number (a label or a pointer): fingerprints and resume checks skip it."""
    return dataclasses.field(default=default, metadata={"help": help, "affects_result": False})


@dataclass(frozen=True)
class Profile:
    """How big, how long, at what resolution. Optimiser defaults are the paper's (§4.1): RMSprop lr 2e-5,
    weight decay 1e-7, batch 32; a profile states only what it changes.

    A new knob is one field here, made with ``knob``: the run config, its command-line flag, the resume checks
    and the run fingerprint all read it from this class."""

    name: str
    image_size: int = knob(help="input size in pixels (default: the profile's)", parse=int, minimum=32)
    epochs: int = knob(help="training epochs (default: the profile's)", parse=int, minimum=1)
    batch_size: int = knob(32, help="global batch size, split over torchrun's ranks", parse=int, minimum=1)
    learning_rate: float = knob(
        2e-5, help="learning rate (default: the profile's)", parse=float, flag="--lr", minimum=0.0
    )
    # None: the model's (mh.registry.MODELS; RMSprop for MambaHash, as in §4.1)
    optimizer: str | None = knob(
        None, help="a name of mh.registry.OPTIMIZERS (default: the profile's, else the model's)"
    )
    weight_decay: float = knob(1e-7, help="weight decay (default: the profile's)", parse=float, minimum=0.0)
    eval_every: int = knob(1, help="evaluate every N epochs (the last epoch always)", parse=int, minimum=1)
    subset: dict[str, int] | None = None  # seeded, class-balanced subsets of train/query/database
    bits: tuple[int, ...] = (16, 32, 48, 64)
    transform_style: str = knob("paper", help="image pipeline (default: the profile's)", choices=TRANSFORM_STYLES)
    num_workers: int = knob(
        0, help="data-loader worker processes (each draws the augmentation from its own seed)", parse=int, minimum=0
    )
    encode_batch_size: int = knob(256, help="batch size when encoding", parse=int, minimum=1, affects_result=False)
    model_size: str = knob(
        "paper", help="reduced: fewer blocks, same widths (default: the profile's)", choices=("paper", "reduced")
    )
    warmup_steps: int = knob(
        0, help="linear warm-up of the rate over the first N optimisation steps (0: none)", parse=int, minimum=0
    )
    schedule: str = knob(
        "constant",
        help="the rate after warm-up: constant, or cosine (half a cosine down to 0 at the last step)",
        choices=RATE_SCHEDULES,
    )
    clip_grad_norm: float = knob(
        0.0, help="clip the gradients' global norm to this value (0: no clipping)", parse=float, minimum=0.0
    )
    fast_path: str = knob(
        "off",
        help="off: the reference (PIL loader, stock optimizer, fp32); fused: uint8 image cache, batched "
        "augmentation, fused optimizer update; compiled: also torch.compile the network (mh.fastpath)",
        choices=FAST_PATHS,
    )
    seeds: int = label_field(
        1, "training seeds of every trained network (the workspace seed, +1, …): tables give mean and spread"
    )
    headline_seeds: int = label_field(1, "training seeds of the headline network, MambaHash at 48 bits")
    comparison: str | None = label_field(
        None, "the profile of the comparison networks (Tables 2–3, the family); None: this one"
    )
    note: str = label_field("", "what the profile is for")
    pipeline_check: bool = label_field(
        False, "its numbers only show that the pipeline runs: every label of them says so (``describe``)"
    )

    def describe(self) -> str:
        """Short label for measured numbers, e.g. ``smoke (pipeline check): 2 ep, 32 px, 1000/200/2000 imgs``."""
        sizes = (
            "/".join(str(self.subset[k]) for k in ("train", "query", "database")) + " imgs"
            if self.subset
            else "full split"
        )
        reduced = ", reduced nets" if self.model_size == "reduced" else ""
        role = " (pipeline check)" if self.pipeline_check else ""
        return f"{self.name}{role}: {self.epochs} ep, {self.image_size} px, {sizes}{reduced}"

    def with_overrides(self, **changes) -> Profile:
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


KNOBS = tuple(field for field in dataclasses.fields(Profile) if field.metadata.get("knob"))
RESULT_FREE_FIELDS = frozenset(
    field.name for field in dataclasses.fields(Profile) if not field.metadata.get("affects_result", True)
)


def knob_problems(profile: Profile) -> list[str]:
    """One line per knob of ``profile`` outside its stated range or choices."""
    problems = []
    for field in KNOBS:
        value, minimum, choices = getattr(profile, field.name), field.metadata["minimum"], field.metadata["choices"]
        if minimum is not None and value < minimum:
            problems.append(f"{field.name} must be at least {minimum}; got {value}")
        if choices is not None and value not in choices:
            problems.append(f"{field.name} must be one of {', '.join(choices)}; got {value!r}")
    return problems


def add_knob_flags(parser) -> None:
    """One ``argparse`` flag per knob (``--epochs``, ``--lr``, …); each stores into the knob's field name."""
    for field in KNOBS:
        meta = field.metadata
        flag = meta["flag"] or "--" + field.name.replace("_", "-")
        parser.add_argument(flag, dest=field.name, type=meta["parse"], choices=meta["choices"], help=meta["help"])


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
    # the fast path without the network's compilation: the runs are too short to repay it (mh.fastpath)
    fast_path="fused",
    comparison="smoke_compare",
    pipeline_check=True,
    note="CPU minutes: native 32 px, the protocol's 5,000 training images, class-balanced query and database "
    "subsets, reduced networks (fewer blocks, narrower), no pretrained weights; RMSprop rate, batch size and "
    "image pipeline chosen on a validation split of the training images (python -m mh.repro.tuning): rate "
    "2e-4, not the paper's fine-tuning rate 2e-5, batch 16, the paper's crop-and-flip pipeline, and 5 epochs "
    "(the best of 6 on validation); its numbers show that the pipeline learns, not the paper's accuracy",
)

GPU = Profile(
    "gpu",
    image_size=224,
    epochs=3,
    num_workers=8,
    # compiled is faster per step on a CPU (benchmarks/bench_train.py) but unmeasured on a GPU, and tracing the
    # full-size network takes many minutes on a CPU: fused until a GPU session measures compiled
    fast_path="fused",
    # from random weights (no pretrained weights here): the from-scratch recipe chosen on a validation split by
    # results/tuning/scratch_study-mambahash-48bits.json; the smoke rate 2e-4 collapses the full-size network
    optimizer="rmsprop",
    learning_rate=5e-5,
    batch_size=32,
    warmup_steps=0,
    clip_grad_norm=0.0,
    note="full CIFAR-10 protocol (5,000 / 1,000 / 54,000) at 224 px, full-size networks from random weights "
    "with the from-scratch recipe chosen at 32 px on a validation split (RMSprop 5e-5, batch 32; the smoke "
    "rate 2e-4 collapses them); the paper profile keeps 2e-5 for pretrained GroupMamba weights",
)

CPU = Profile(
    "cpu",
    image_size=32,
    subset=None,  # the protocol in full: 5,000 training, 1,000 query and 54,000 database images
    bits=(16, 32, 48, 64),
    encode_batch_size=256,
    model_size="reduced",
    # chosen on a validation split of the training images: results/tuning/cpu-mambahash-48bits.json
    optimizer="rmsprop",
    learning_rate=5e-4,
    batch_size=16,
    transform_style="paper",
    warmup_steps=100,
    schedule="cosine",
    epochs=5,
    eval_every=5,
    fast_path="fused",
    seeds=2,
    headline_seeds=3,
    note="what a reader on a laptop sees: the paper's CIFAR-10 protocol in full (5,000 / 1,000 / 54,000, "
    "mAP@54,000) at native 32 px, the reduced networks, every network trained under 2 seeds and MambaHash-48 "
    "under 3; rate, schedule and epochs chosen on a validation split of the training images "
    "(results/tuning/cpu-mambahash-48bits.json); goal: a cold make reproduce PROFILE=cpu within 90 minutes on 2 "
    "cores (the time measured is in results/manifests/cpu.json)",
)

PROFILES = {
    "smoke": SMOKE,
    "cpu": CPU,
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
    "gpu": GPU,
    # make rehearse (mh.repro.rehearse): the gpu profile's code paths on the CPU, on tens of images
    "rehearse": dataclasses.replace(
        GPU,
        name="rehearse",
        epochs=1,
        subset={"train": 32, "query": 16, "database": 32},
        # batch 32 of full-size MpVH at 224 px needs over 18 GiB on a CPU (killed for memory on a 24 GiB machine)
        batch_size=8,
        note="a rehearsal of the gpu profile on a CPU (make rehearse): its full-size networks at 224 px, four bit "
        "lengths, loader workers and fast path, on 32 training images for one epoch in batches of 8 (to fit a "
        "24 GiB machine); numbers mean nothing",
    ),
    "paper": Profile(
        "paper",
        image_size=224,
        epochs=8,
        num_workers=8,
        fast_path="fused",
        note="§4.1 and the released newtrain.py: RMSprop 2e-5, wd 1e-7, batch 32, 8 epochs, "
        "224 px, ImageNet-pretrained GroupMamba-S weights (not obtainable here)",
    ),
    # where the gpu profile's from-scratch recipe is chosen (python -m mh.repro.tuning --profile scratch_study):
    # the full-size networks at CIFAR's 32 px on a CPU, on 2,000 of the training images, a few epochs
    "scratch_study": Profile(
        "scratch_study",
        image_size=32,
        epochs=3,
        batch_size=32,
        learning_rate=2e-4,
        optimizer="rmsprop",
        subset={"train": 2000, "query": 100, "database": 100},
        fast_path="fused",
        note="the study that chose the gpu profile's from-scratch recipe (rate, warm-up, clipping) for the "
        "full-size networks: 32 px, 2,000 training images split into training and validation parts, 3 epochs",
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

NOTEBOOK_PROFILES = ("smoke", "cpu", "gpu", "paper")  # what make reproduce runs; mpvh_paper is one model's recipe


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

"""Every hashing network by name, with what trains it: the one table of model names (Tables 2–4).

``build_hashing_model(name, bits)`` returns a module mapping (B, 3, H, W) images to tanh codes (B, bits).
Each entry of ``MODELS`` also names the paper's label for it, its Table 2 variant (MambaHash's ablations)
and its training recipe — a loss of ``LOSSES`` and an optimizer of ``OPTIMIZERS`` — so that ``mh.train``
builds (model, loss, optimizer) from the model's name, and a new loss or optimizer is one entry here.

Names: ``mambahash`` and its ablations ``mambahash-no_ciam`` (w/o C), ``mambahash-no_afem`` (w/o F),
``mambahash-plain`` (MambaHash*), then ``resnet50``, ``vit_l_32``, ``hybridhash`` (``mh.baselines``), and
``mpvh`` (the Mamba-prompted ViT of the family, ``mh.family.mpvh``: its own loss and two-group SGD).
A bare variant name (``full``, ``no_ciam``, …) or ``mambahash-full`` is accepted by ``resolve_model_name``.

``pretrained`` is a local weights file (GroupMamba-S for MambaHash, torchvision's resnet50 / vit_l_32,
timm's ``nest_base_jx`` or the authors' checkpoints for HybridHash, timm's ``vit_base_patch16_224`` for MpVH);
what loaded is reported.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from mh.baselines import HybridHash, ResNet50Hash, ViTL32Hash
from mh.engine import TrainingParts
from mh.family import MpVH
from mh.fastpath import FlatOptimizer, fast_plan
from mh.losses import DPSHLoss, HashingLoss, PairwiseRegressionLoss
from mh.model import MambaHash, check_bits, load_groupmamba_weights
from mh.profiles import Profile
from mh.weights import LoadReport, load_weights


@dataclass(frozen=True)
class ModelEntry:
    """One row of the model table: how to build the network and how it is trained and labelled."""

    label: str  # as the paper's tables name it
    build: Callable[..., nn.Module]  # (bits, image_size, **options) → network
    variant: str | None = None  # MambaHash's Table 2 variant
    loss: str = "dpsh"
    optimizer: str = "rmsprop"
    weights_hint: str = ""  # which pretrained file fits, for error messages
    reduced: dict = dataclasses.field(default_factory=dict)  # options of the smoke profile's smaller network


def _mambahash(variant: str) -> Callable[..., nn.Module]:
    return lambda bits, image_size, **options: MambaHash(bits, variant=variant, **options)


def _with_options(build: Callable[..., nn.Module], *accepted: str) -> Callable[..., nn.Module]:
    def checked(bits: int, image_size: int, **options) -> nn.Module:
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            raise ValueError(f"this network takes no options {unknown}; it accepts {list(accepted) or 'none'}")
        return build(check_bits(bits), image_size, **options)

    return checked


# The smoke profile's reduced networks keep every module type and use fewer blocks (MambaHash also half the
# widths), so that a CPU trains seven of them in minutes; their numbers are labelled "reduced nets".
REDUCED_MAMBAHASH = {"depths": (1, 1, 1, 1), "dims": (32, 64, 176, 256)}  # paper: (3, 4, 16, 3), (64, 128, 348, 512)
MODEL_SIZES = ("paper", "reduced")
MPVH_OPTIONS = tuple(inspect.signature(MpVH.__init__).parameters)[3:]  # after self, bits, image_size


MODELS: dict[str, ModelEntry] = {
    "mambahash": ModelEntry("MambaHash", _mambahash("full"), "full", reduced=REDUCED_MAMBAHASH),
    "mambahash-no_ciam": ModelEntry("MambaHash w/o C", _mambahash("no_ciam"), "no_ciam", reduced=REDUCED_MAMBAHASH),
    "mambahash-no_afem": ModelEntry("MambaHash w/o F", _mambahash("no_afem"), "no_afem", reduced=REDUCED_MAMBAHASH),
    "mambahash-plain": ModelEntry("MambaHash*", _mambahash("plain"), "plain", reduced=REDUCED_MAMBAHASH),
    "resnet50": ModelEntry(
        "ResNet50",
        _with_options(lambda bits, size, **options: ResNet50Hash(bits, **options), "blocks"),
        weights_hint="torchvision's resnet50-*.pth",
        reduced={"blocks": (1, 1, 1, 1)},  # paper: (3, 4, 6, 3)
    ),
    "vit_l_32": ModelEntry(
        "ViT-L/32",
        _with_options(ViTL32Hash, "num_layers"),
        weights_hint="torchvision's vit_l_32-*.pth",
        reduced={"num_layers": 1},  # paper: 23
    ),
    "hybridhash": ModelEntry(
        "Hybrid",
        _with_options(HybridHash, "depths", "unused_fc"),
        weights_hint="timm's nest_base_jx weights (jx_nest_base-8bc41011.pth)",
        reduced={"depths": (1, 1, 1)},  # paper: (2, 2, 15)
    ),
    "mpvh": ModelEntry(
        "MpVH",
        _with_options(lambda bits, size, **options: MpVH(bits, image_size=size, **options), *MPVH_OPTIONS),
        loss="mpvh",
        optimizer="sgd_two_groups",
        weights_hint="timm's vit_base_patch16_224 weights (model.safetensors or pytorch_model.bin)",
        # paper: patch 16, width 768, depth 12, 12 heads, d_state 16; patch 8 gives 32 px images a 4×4 grid
        reduced={"patch_size": 8, "embed_dim": 96, "depth": 4, "num_heads": 4, "d_state": 8},
    ),
}
COMPARISON_BACKBONES = ("resnet50", "vit_l_32", "hybridhash", "mambahash")  # Table 3–4 order
TABLE2_MODELS = {entry.variant: name for name, entry in MODELS.items() if entry.variant}


def _rmsprop(model: nn.Module, learning_rate: float, weight_decay: float) -> torch.optim.Optimizer:
    return torch.optim.RMSprop(model.parameters(), lr=learning_rate, weight_decay=weight_decay)


def _adam(model: nn.Module, learning_rate: float, weight_decay: float) -> torch.optim.Optimizer:
    return torch.optim.Adam(model.parameters(), lr=learning_rate, weight_decay=weight_decay)


def _sgd_two_groups(model: nn.Module, learning_rate: float, weight_decay: float) -> torch.optim.Optimizer:
    """MpVH §4.1: SGD with the pretrained backbone at 1/1000 of the new modules' rate and decay (3e-6 / 3e-3,
    1e-9 / 1e-6 in the paper). Momentum is not stated; 0.9 here. Needs ``model.parameter_groups()``."""
    if not hasattr(model, "parameter_groups"):
        raise ValueError("sgd_two_groups needs a network with parameter_groups() (MpVH); choose rmsprop or adam")
    groups = model.parameter_groups()
    return torch.optim.SGD(
        [
            {"params": groups["backbone"], "lr": learning_rate * 1e-3, "weight_decay": weight_decay * 1e-3},
            {"params": groups["prompting"], "lr": learning_rate, "weight_decay": weight_decay},
        ],
        lr=learning_rate,
        momentum=0.9,
    )


# name → a HashingLoss class, built by keyword from the run's facts (num_train, bits, num_classes,
# quantization_weight); its ``default_quantization_weight`` (MpVH's λ₂ = 1) is used when the run sets none
LOSSES: dict[str, type[HashingLoss]] = {"dpsh": DPSHLoss, "mpvh": PairwiseRegressionLoss}
# name → (model, learning_rate, weight_decay) → optimizer
OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "rmsprop": _rmsprop,
    "adam": _adam,
    "sgd_two_groups": _sgd_two_groups,
}


def default_quantization_weight(loss: str, dataset_default: float) -> float:
    """The quantization weight a run uses when none is given: the loss's own, else the dataset's η."""
    own = LOSSES[loss].default_quantization_weight
    return dataset_default if own is None else own


def training_recipe(model_name: str, profile: Profile, loss: str | None = None) -> tuple[str, str]:
    """(loss name, optimizer name) a run of ``model_name`` uses: ``loss`` and the profile's optimizer when
    given, else the model's registry entry."""
    entry = MODELS[model_name]
    return loss or entry.loss, profile.optimizer or entry.optimizer


def build_training(
    model_name: str,
    bits: int,
    profile: Profile,
    num_train: int,
    num_classes: int,
    quantization_weight: float,
    device: torch.device,
    loss: str | None = None,
    pretrained=None,
) -> TrainingParts:
    """Model, loss and optimizer for ``model_name`` (``training_recipe``), the model and loss on ``device``, in
    the form the profile's fast path (``mh.fastpath.fast_plan``) asks for on that device."""
    loss_name, optimizer_name = training_recipe(model_name, profile, loss)
    plan = fast_plan(profile.fast_path, device)
    model = build_hashing_model(
        model_name, bits, pretrained=pretrained, image_size=profile.image_size, size=profile.model_size
    ).to(device)
    if plan.channels_last:
        model = model.to(memory_format=torch.channels_last)
    criterion = LOSSES[loss_name](
        num_train=num_train, bits=bits, num_classes=num_classes, quantization_weight=quantization_weight
    )
    optimizer = OPTIMIZERS[optimizer_name](model, profile.learning_rate, profile.weight_decay)
    if plan.flat_optimizer:
        optimizer = FlatOptimizer(optimizer, compile_update=True)
    return TrainingParts(model, criterion.to(device), optimizer, plan=plan)


def available_models() -> list[str]:
    return sorted(MODELS)


def resolve_model_name(name: str) -> str:
    """The key of ``MODELS`` that ``name`` means; also a bare Table 2 variant (``no_ciam``) or ``mambahash-full``."""
    name = {"mambahash-full": "mambahash"}.get(name, name)
    name = TABLE2_MODELS.get(name, name)
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; expected one of {', '.join(available_models())}")
    return name


def build_hashing_model(
    name: str, bits: int, pretrained=None, image_size: int = 224, size: str = "paper", **options
) -> nn.Module:
    """A hashing network by name (see the module docstring). ``image_size`` matters for ViT and HybridHash,
    whose position embeddings fix the input size; ``size="reduced"`` builds the smoke profile's network
    (fewer blocks, same widths: ``ModelEntry.reduced``); ``options`` go to the network (``ciam_kernel``, …)."""
    name = resolve_model_name(name)
    if size not in MODEL_SIZES:
        raise ValueError(f"unknown model size {size!r}; expected one of {MODEL_SIZES}")
    if size == "reduced":
        options = {**MODELS[name].reduced, **options}
    model = MODELS[name].build(bits, image_size, **options)
    if pretrained:
        print(load_pretrained(model, pretrained, name))
    return model


def _nest_names(state_dict: dict) -> dict:
    """timm's NesT keys already match HybridHash's module names; strip a leading ``model.`` if present."""
    return {key.removeprefix("model."): value for key, value in state_dict.items()}


def load_pretrained(model: nn.Module, path, name: str) -> LoadReport:
    """Load ``path`` into a model built by ``build_hashing_model(name, …)``; returns what loaded.

    torchvision files already use the baselines' module names (their classifier, ``fc`` or ``heads.head``,
    and ViT's 24th layer are reported as unexpected). Raises FileNotFoundError (saying which file is
    expected) or ValueError when no key matches."""
    name = resolve_model_name(name)
    if isinstance(model, MambaHash):
        return load_groupmamba_weights(model, path, verbose=False)
    rename = _nest_names if name == "hybridhash" else dict  # timm's ViT keys are MpVH's backbone keys
    return load_weights(model, path, rename=rename, hint=f"pass the local path of {MODELS[name].weights_hint}")

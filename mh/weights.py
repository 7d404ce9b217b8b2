"""Loading pretrained weights by name, with a report of what loaded and what did not.

MambaHash keeps GroupMamba's module names inside a block (``attn.mamba_g1..4``, ``attn.norm``,
``attn.proj``, ``attn.skip_scale``, ``mlp.fc1/dwconv.dwconv/fc2``), so ImageNet GroupMamba-S weights
(``groupmamba_small_ema.pth``) load into the backbone after a key filter, timm's pattern for checkpoints of
another layout (``to_project_names``):

    patch_embed{i}. / block{i}. / norm{i}.   →  stages.{i−1}.patch_embed. / .blocks. / .norm.
    attn.fc / attn.conv (released CIAM)     →  attn.ciam.fc / attn.ciam.conv
    feature_module.* (released AFEM)        →  afem.expand / branch1 / branch3 / branch5 / reduce

GroupMamba has no CIAM, AFEM or hash layer: those stay at their random initialisation.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

import torch
import torch.nn as nn

_RELEASED_TO_OURS = (
    (re.compile(r"^patch_embed([1-4])\."), lambda match: f"stages.{int(match[1]) - 1}.patch_embed."),
    (re.compile(r"^block([1-4])\."), lambda match: f"stages.{int(match[1]) - 1}.blocks."),
    (re.compile(r"^norm([1-4])\."), lambda match: f"stages.{int(match[1]) - 1}.norm."),
    (re.compile(r"\.attn\.fc\."), ".attn.ciam.fc."),
    (re.compile(r"\.attn\.conv\."), ".attn.ciam.conv."),
    (re.compile(r"^feature_module\.f1\.conv\."), "afem.expand."),
    (re.compile(r"^feature_module\.dwconv1\.conv\."), "afem.branch1."),
    (re.compile(r"^feature_module\.dwconv2\.conv\."), "afem.branch3."),
    (re.compile(r"^feature_module\.dwconv3\.conv\."), "afem.branch5."),
    (re.compile(r"^feature_module\.f2\.conv\."), "afem.reduce."),
)
# a training checkpoint holding both prefers the EMA weights: those are the ones GroupMamba evaluates
_NESTING_KEYS = ("model_ema", "state_dict_ema", "model", "state_dict", "module")


@dataclass
class LoadReport:
    """What ``load_groupmamba_weights`` did. Key lists are sorted; counts are of tensor elements."""

    path: str
    nested_under: list[str] = field(default_factory=list)
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    shape_mismatched: list[tuple[str, tuple, tuple]] = field(default_factory=list)
    loaded_parameters: int = 0
    random_parameters: int = 0

    def __str__(self) -> str:
        nesting = "".join(f"[{key!r}]" for key in self.nested_under)
        lines = [
            f"weights from {self.path}{nesting}:",
            f"  loaded      {len(self.loaded):5d} keys ({self.loaded_parameters / 1e6:.2f} M parameters)",
            f"  missing     {len(self.missing):5d} keys, left at random init "
            f"({self.random_parameters / 1e6:.2f} M parameters)",
            f"  unexpected  {len(self.unexpected):5d} keys of the file, ignored",
            f"  mismatched  {len(self.shape_mismatched):5d} keys with a different shape, ignored",
        ]
        lines += [f"    {k}: file {tuple(f)} vs model {tuple(m)}" for k, f, m in self.shape_mismatched[:10]]
        return "\n".join(lines)


GROUPMAMBA_HINT = (
    "download groupmamba_small_ema.pth from the GroupMamba repository (Amshaker/GroupMamba) and pass its local path"
)


def read_state_dict(
    path, hint: str = GROUPMAMBA_HINT, nested_under: list[str] | None = None
) -> dict[str, torch.Tensor]:
    """A flat {name: tensor} dict from a checkpoint file, unwrapping "model_ema"/"model"/"state_dict"/…
    nesting (the keys taken are appended to ``nested_under``) and a DataParallel "module." prefix.
    Raises FileNotFoundError (with ``hint``) or ValueError."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no weights file at {path!r}; {hint}")
    try:
        if path.endswith(".safetensors"):  # the format of timm's files on the Hugging Face hub
            from safetensors.torch import load_file

            checkpoint = load_file(path)
        else:
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(f"{path!r} is not a PyTorch checkpoint that loads safely: {error}") from error
    while isinstance(checkpoint, dict):
        nested = next((k for k in _NESTING_KEYS if isinstance(checkpoint.get(k), dict)), None)
        if nested is None:
            break
        if nested_under is not None:
            nested_under.append(nested)
        checkpoint = checkpoint[nested]
    if not isinstance(checkpoint, dict) or not any(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        raise ValueError(f"{path!r} holds no state dict (found {type(checkpoint).__name__})")
    tensors = {k: v for k, v in checkpoint.items() if isinstance(v, torch.Tensor)}
    if all(k.startswith("module.") for k in tensors):
        tensors = {k[len("module.") :]: v for k, v in tensors.items()}
    return tensors


def to_project_names(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """GroupMamba's stage keys and the released MambaHash code's CIAM and AFEM keys → this project's names."""
    renamed = {}
    for key, value in state_dict.items():
        for pattern, replacement in _RELEASED_TO_OURS:
            key = pattern.sub(replacement, key)
        renamed[key] = value
    return renamed


def load_weights(model: nn.Module, path, rename=to_project_names, hint: str = GROUPMAMBA_HINT) -> LoadReport:
    """Load every key of ``path`` (names passed through ``rename``) whose name and shape match ``model``;
    report the rest.

    Raises ValueError when nothing matches (the wrong file, or a model of another architecture), so a
    run never silently trains from scratch when it was meant to start from pretrained weights.
    """
    report = LoadReport(path=os.fspath(path))
    source = rename(read_state_dict(path, hint, report.nested_under))
    target = model.state_dict()
    matching = {}
    for key, value in source.items():
        if key not in target:
            report.unexpected.append(key)
        elif value.shape != target[key].shape:
            report.shape_mismatched.append((key, tuple(value.shape), tuple(target[key].shape)))
        else:
            matching[key] = value
    if not matching:
        examples = ", ".join(sorted(source)[:5])
        raise ValueError(
            f"none of the {len(source)} keys in {report.path!r} matches the model "
            f"(first keys: {examples}); is it the right checkpoint for this network?"
        )
    model.load_state_dict(matching, strict=False)
    report.loaded = sorted(matching)
    report.missing = sorted(set(target) - set(matching))
    report.unexpected.sort()
    parameter_names = {name for name, _ in model.named_parameters()}
    report.loaded_parameters = sum(matching[k].numel() for k in matching if k in parameter_names)
    report.random_parameters = sum(target[k].numel() for k in report.missing if k in parameter_names)
    return report

"""Grad-CAM for hashing networks (pytorch-grad-cam), with a target that fits hashing.

A hashing network has no class logits. The target here is the similarity of the image's continuous code
h (B, K) to its class-centre code c (the sign of the mean code of that class on a reference set): Grad-CAM
then shows which pixels pull the image's code towards its class's region of Hamming space.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from pytorch_grad_cam import GradCAM
from torch import nn

from mh.baselines import HybridHash, ResNet50Hash, ViTL32Hash
from mh.binary import binarize
from mh.directions import tokens_to_map
from mh.model import MambaHash


@dataclass
class GradCamTarget:
    """The layer Grad-CAM hooks, and how its output becomes a (B, C, h, w) map."""

    layer: nn.Module
    reshape: Callable[[torch.Tensor], torch.Tensor] | None
    description: str


def gradcam_target(model: nn.Module) -> GradCamTarget:
    """Where to look for each backbone: the last spatial feature map before pooling."""
    if isinstance(model, MambaHash):
        # stage-4 tokens after the stage's norm (B, L, C): the last map before AFEM and pooling
        return GradCamTarget(model.stages[-1].norm, tokens_to_map, "stages[3].norm (stage-4 tokens)")
    if isinstance(model, ResNet50Hash):
        return GradCamTarget(model.layer4[-1], None, "layer4[-1]")
    if isinstance(model, ViTL32Hash):
        return GradCamTarget(
            model.encoder.layers[-1].ln_1,
            lambda tokens: tokens_to_map(tokens[:, 1:]),  # drop the CLS token
            "last encoder layer's ln_1 (patch tokens)",
        )
    if isinstance(model, HybridHash):
        return GradCamTarget(
            model.levels[-1].transformer_encoder[-1],
            lambda tokens: tokens_to_map(tokens[:, 0]),  # (B, 1 block, h·w, C)
            "last stage-3 Transformer layer (one 14×14 block)",
        )
    raise ValueError(f"no Grad-CAM target known for {type(model).__name__}")


class CodeSimilarityTarget:
    """Grad-CAM target: h · c for one image's code h (K,) and a centre code c (K,) in {−1, +1}."""

    def __init__(self, centre: torch.Tensor):
        self.centre = centre

    def __call__(self, code: torch.Tensor) -> torch.Tensor:
        return (code * self.centre.to(code.device, code.dtype)).sum()


@torch.no_grad()
def class_centres(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(num_classes, K) centre codes: sign of each class's mean code over ``images`` (B, 3, H, W), labels (B,)."""
    model.eval()
    codes = torch.cat([model(chunk) for chunk in images.split(16)])
    return binarize(torch.stack([codes[labels == label].mean(0) for label in range(num_classes)]))


def gradcam_maps(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, centres: torch.Tensor) -> np.ndarray:
    """(B, H, W) Grad-CAM heatmaps in [0, 1] of ``images`` for the target "similarity to my class centre"."""
    target = gradcam_target(model)
    model.eval()
    with GradCAM(model=model, target_layers=[target.layer], reshape_transform=target.reshape) as cam:
        return cam(input_tensor=images, targets=[CodeSimilarityTarget(centres[int(label)]) for label in labels])

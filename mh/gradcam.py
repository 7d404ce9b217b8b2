"""Grad-CAM for hashing networks (pytorch-grad-cam), with a target that fits hashing.

A hashing network has no class logits. The target here is the similarity of the image's continuous code
h (B, K) to its class-centre code c (the sign of the mean code of that class on a reference set): Grad-CAM
then shows which pixels pull the image's code towards its class's region of Hamming space.
"""
from __future__ import annotations

import numpy as np
import torch
from pytorch_grad_cam import GradCAM
from torch import nn

from mh.backbones import gradcam_target


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
    centres = torch.stack([codes[labels == label].mean(0) for label in range(num_classes)])
    return torch.where(centres >= 0, 1.0, -1.0)


def gradcam_maps(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, centres: torch.Tensor) -> np.ndarray:
    """(B, H, W) Grad-CAM heatmaps in [0, 1] of ``images`` for the target "similarity to my class centre"."""
    target = gradcam_target(model)
    model.eval()
    with GradCAM(model=model, target_layers=[target.layer], reshape_transform=target.reshape) as cam:
        return cam(input_tensor=images, targets=[CodeSimilarityTarget(centres[int(label)]) for label in labels])

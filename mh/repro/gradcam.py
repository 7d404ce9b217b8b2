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
from mh.repro.references import initial_network
from mh.rundir import RunDirectory


@dataclass
class GradCamTarget:
    """The layer Grad-CAM hooks, and how its output becomes a (B, C, h, w) map."""

    layer: nn.Module
    reshape: Callable[[torch.Tensor], torch.Tensor] | None
    description: str


MIN_MAP_SIDE = 4  # a target map smaller than 4×4 positions says nothing about where a network looks


def _candidates(model: nn.Module) -> list[GradCamTarget]:
    """Each backbone's spatial feature maps, the last before pooling first, then earlier ones."""
    if isinstance(model, MambaHash):
        # stage tokens after each stage's norm (B, L, C); stage 4's is the last map before AFEM and pooling
        return [
            GradCamTarget(stage.norm, tokens_to_map, f"stages[{index}].norm (stage-{index + 1} tokens)")
            for index, stage in reversed(list(enumerate(model.stages)))
        ]
    if isinstance(model, ResNet50Hash):
        return [GradCamTarget(getattr(model, f"layer{i}")[-1], None, f"layer{i}[-1]") for i in (4, 3, 2, 1)]
    if isinstance(model, ViTL32Hash):
        return [
            GradCamTarget(
                model.encoder.layers[-1].ln_1,
                lambda tokens: tokens_to_map(tokens[:, 1:]),  # drop the CLS token
                "last encoder layer's ln_1 (patch tokens)",
            )
        ]
    if isinstance(model, HybridHash):
        # only the last level is one block covering the whole image; earlier levels split it into blocks
        return [
            GradCamTarget(
                model.levels[-1].transformer_encoder[-1],
                lambda tokens: tokens_to_map(tokens[:, 0]),  # (B, 1 block, h·w, C)
                "last level's last Transformer layer (one block)",
            )
        ]
    raise ValueError(f"no Grad-CAM target known for {type(model).__name__}")


def _map_side(model: nn.Module, target: GradCamTarget, image_size: int) -> int:
    """The side of ``target``'s (B, C, h, w) map for one ``image_size`` image (a probe forward pass)."""
    captured = []
    handle = target.layer.register_forward_hook(lambda module, inputs, output: captured.append(output))
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, 3, image_size, image_size, device=next(model.parameters()).device))
    finally:
        handle.remove()
    output = captured[0] if target.reshape is None else target.reshape(captured[0])
    return min(output.shape[2], output.shape[3])


def gradcam_target(model: nn.Module, image_size: int = 224, min_side: int = MIN_MAP_SIDE) -> GradCamTarget | None:
    """Where to look for each backbone at ``image_size``: the last spatial feature map before pooling that has at
    least ``min_side`` × ``min_side`` positions (at 224 px: the last map of every backbone; at CIFAR's 32 px,
    where the last maps are 1×1, an earlier stage). None when the backbone has no such map at that size (ViT-L/32
    sees a 32 px image as one patch)."""
    for target in _candidates(model):
        if _map_side(model, target, image_size) >= min_side:
            return target
    return None


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
    """(B, H, W) Grad-CAM heatmaps in [0, 1] of ``images`` for the target "similarity to my class centre", at
    the layer ``gradcam_target`` picks for their size; ValueError when the backbone has no map there."""
    target = gradcam_target(model, images.shape[-1])
    if target is None:
        raise ValueError(
            f"{type(model).__name__} has no feature map of at least {MIN_MAP_SIDE}×{MIN_MAP_SIDE} positions at "
            f"{images.shape[-1]} px: Grad-CAM cannot say where it looks (use larger images)"
        )
    model.eval()
    with GradCAM(model=model, target_layers=[target.layer], reshape_transform=target.reshape) as cam:
        return cam(input_tensor=images, targets=[CodeSimilarityTarget(centres[int(label)]) for label in labels])


def network_to_explain(config, trained: bool, image_size: int) -> nn.Module | None:
    """``config``'s network (a ``mh.config.TrainConfig``): the checkpoint of its finished run when ``trained``
    (None when that run is missing or was trained at another image size than ``image_size``), else the
    initialisation its training starts from (``mh.repro.references.initial_network``)."""
    model = initial_network(config)
    if trained:
        checkpoint = RunDirectory(config.run_path()).checkpoint_path
        if config.resolved_profile().image_size != image_size or not checkpoint.exists():
            return None
        model.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=False)["model"])
    return model

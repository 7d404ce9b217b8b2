"""One constructor for every hashing network the tables compare (Tables 2–4).

``build_hashing_model(name, bits, pretrained=None, **kw)`` returns a module mapping (B, 3, H, W) images to
tanh codes (B, bits), trained by the same loop and loss (``mh.train``):

* ``mambahash`` and ``mambahash-<variant>`` (full, no_ciam, no_afem, plain): ``mh.model.MambaHash``;
* ``resnet50``: torchvision's ResNet-50 trunk + Linear(2048, K) (N(0, 0.01), bias 0) + tanh, the
  DeepHash-pytorch class the authors use (registered once: their class registers the trunk twice, which
  doubles ptflops' count); 23,606,384 parameters at 48 bits;
* ``vit_l_32``: torchvision's VisionTransformer in the authors' configuration — ViT-L/32 with **23**
  encoder layers (their ``get_l16_config`` sets 23), CLS token → Linear(1024, K) → tanh; 292,963,376
  parameters at 48 bits. torchvision rather than timm because its layout (separate CLS, pre-LN, eps 1e-6,
  fused qkv with the same parameter count as the authors' four Linears) is this exact network with a
  ``num_layers`` argument, and its weights files load by name;
* ``hybridhash``: ``mh.hybridhash.HybridHash`` written from the spec; 55,602,656 parameters at 48 bits.

``pretrained`` is a local weights file (GroupMamba-S for MambaHash, torchvision's resnet50 / vit_l_32,
timm's ``nest_base_jx`` or the authors' checkpoints for HybridHash); what loaded is reported.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn
from torchvision.models.resnet import Bottleneck, ResNet
from torchvision.models.vision_transformer import VisionTransformer

from mh.hybridhash import HybridHash
from mh.model import VARIANTS, MambaHash, check_bits, load_groupmamba_weights
from mh.weights import LoadReport, load_weights

MAMBAHASH_NAMES = {"mambahash": "full", **{f"mambahash-{variant}": variant for variant in VARIANTS}}
COMPARISON_BACKBONES = ("resnet50", "vit_l_32", "hybridhash", "mambahash")  # Table 3–4 order


class ResNet50Hash(ResNet):
    """torchvision ResNet-50 whose ``fc`` is replaced by a hash layer. (B, 3, H, W) → (B, K) in (−1, 1)."""

    def __init__(self, bits: int):
        super().__init__(Bottleneck, [3, 4, 6, 3])
        del self.fc
        self.hash_layer = nn.Linear(2048, bits)
        nn.init.normal_(self.hash_layer.weight, std=0.01)
        nn.init.zeros_(self.hash_layer.bias)

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) → layer4 map (B, 2048, H/32, W/32)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(images))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.hash_layer(torch.flatten(self.avgpool(self.forward_features(images)), 1)))


class ViTL32Hash(VisionTransformer):
    """The authors' ViT-L/32 hashing network: 23 layers, CLS token → Linear(1024, K) → tanh."""

    def __init__(self, bits: int, image_size: int = 224, num_layers: int = 23):
        if image_size % 32:
            raise ValueError(f"ViT-L/32 needs an image size that is a multiple of 32; got {image_size}")
        super().__init__(image_size=image_size, patch_size=32, num_layers=num_layers, num_heads=16,
                         hidden_dim=1024, mlp_dim=4096, dropout=0.1)
        self.heads = nn.Linear(1024, bits)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() != 4 or tuple(images.shape[1:]) != (3, self.image_size, self.image_size):
            raise ValueError(f"ViT-L/32 built for (B, 3, {self.image_size}, {self.image_size}); got {tuple(images.shape)}")
        return torch.tanh(super().forward(images))


COMPARISON_BUILDERS = {  # name → (bits, image_size) → network
    "resnet50": lambda bits, image_size: ResNet50Hash(bits),
    "vit_l_32": ViTL32Hash,
    "hybridhash": HybridHash,
}


def available_models() -> list[str]:
    return sorted([*MAMBAHASH_NAMES, *COMPARISON_BUILDERS])


def _torchvision_names(state_dict: dict) -> dict:
    """torchvision files already use these module names; their classifier (``fc``, ``heads.head``) and
    ViT's 24th layer are reported as unexpected."""
    return state_dict


def _nest_names(state_dict: dict) -> dict:
    """timm's NesT keys already match HybridHash's module names; strip a leading ``model.`` if present."""
    return {key.removeprefix("model."): value for key, value in state_dict.items()}


def build_hashing_model(name: str, bits: int, pretrained=None, image_size: int = 224, **kwargs) -> nn.Module:
    """A hashing network by name (see the module docstring). ``image_size`` matters for ViT and HybridHash,
    whose position embeddings fix the input size; ``kwargs`` go to MambaHash."""
    if name in MAMBAHASH_NAMES:
        model = MambaHash(bits, variant=MAMBAHASH_NAMES[name], **kwargs)
    elif name not in COMPARISON_BUILDERS:
        raise ValueError(f"unknown model {name!r}; expected one of {', '.join(available_models())}")
    elif kwargs:
        raise ValueError(f"{name} takes no options {sorted(kwargs)}")
    else:
        model = COMPARISON_BUILDERS[name](check_bits(bits), image_size)
    if pretrained:
        print(load_pretrained(model, pretrained, name))
    return model


PRETRAINED_SOURCES = {"resnet50": "torchvision's resnet50-*.pth", "vit_l_32": "torchvision's vit_l_32-*.pth",
                      "hybridhash": "timm's nest_base_jx weights (jx_nest_base-8bc41011.pth)"}


def load_pretrained(model: nn.Module, path, name: str) -> LoadReport:
    """Load ``path`` into a model built by ``build_hashing_model(name, …)``; returns what loaded.

    Raises FileNotFoundError (saying which file is expected) or ValueError when no key matches."""
    if name in MAMBAHASH_NAMES:
        return load_groupmamba_weights(model, path, verbose=False)
    rename = _nest_names if name == "hybridhash" else _torchvision_names
    return load_weights(model, path, rename=rename, hint=f"pass the local path of {PRETRAINED_SOURCES[name]}")


@dataclass
class GradCamTarget:
    """The layer Grad-CAM hooks, and how its output becomes a (B, C, h, w) map."""

    layer: nn.Module
    reshape: Callable[[torch.Tensor], torch.Tensor] | None
    description: str


def _square_tokens_to_map(tokens: torch.Tensor) -> torch.Tensor:
    """(B, h·w, C) tokens of a square map, row-major → (B, C, h, w)."""
    side = int(round(tokens.shape[1] ** 0.5))
    return tokens.reshape(tokens.shape[0], side, side, -1).permute(0, 3, 1, 2)


def _vit_tokens_to_map(tokens: torch.Tensor) -> torch.Tensor:
    """(B, 1 + h·w, C) ViT tokens → (B, C, h, w), dropping the CLS token."""
    return _square_tokens_to_map(tokens[:, 1:])


def gradcam_target(model: nn.Module) -> GradCamTarget:
    """Where to look for each backbone: the last spatial feature map before pooling."""
    if isinstance(model, MambaHash):
        # stage-4 tokens after norm4 (B, L, C): the last map before AFEM and pooling
        return GradCamTarget(model.norm4, _square_tokens_to_map, "norm4 (stage-4 tokens)")
    if isinstance(model, ResNet50Hash):
        return GradCamTarget(model.layer4[-1], None, "layer4[-1]")
    if isinstance(model, ViTL32Hash):
        return GradCamTarget(model.encoder.layers[-1].ln_1, _vit_tokens_to_map, "last encoder layer's ln_1 (patch tokens)")
    if isinstance(model, HybridHash):
        return GradCamTarget(model.levels[-1].transformer_encoder[-1], _hybrid_tokens_to_map,
                             "last stage-3 Transformer layer (one 14×14 block)")
    raise ValueError(f"no Grad-CAM target known for {type(model).__name__}")


def _hybrid_tokens_to_map(tokens: torch.Tensor) -> torch.Tensor:
    """(B, 1, h·w, C) stage-3 tokens (a single block) → (B, C, h, w)."""
    return _square_tokens_to_map(tokens[:, 0])

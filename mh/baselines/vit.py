"""ViT-L/32 hashing network (Table 3's "ViT-L/32") in the authors' configuration.

torchvision's VisionTransformer with **23** encoder layers (the authors' ``get_l16_config`` sets 23), patch
32, width 1024, 16 heads, MLP 4096; CLS token → Linear(1024, K) → tanh; 292,963,376 parameters at 48 bits.
torchvision rather than timm because its layout (separate CLS, pre-LN, eps 1e-6, fused qkv with the same
parameter count as the authors' four Linears) is this exact network with a ``num_layers`` argument, and
its weights files load by name.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.vision_transformer import VisionTransformer

from mh.checks import positive_int


class ViTL32Hash(VisionTransformer):
    """The authors' ViT-L/32 hashing network: 23 layers, CLS token → Linear(1024, K) → tanh.

    Shapes: forward((B, 3, S, S)) → (B, K) in (−1, 1), S the ``image_size`` it was built for.
    """

    def __init__(self, bits: int, image_size: int = 224, num_layers: int = 23):
        positive_int(num_layers, "ViT-L/32's num_layers", "the authors' network has 23")
        if image_size % 32:
            raise ValueError(f"ViT-L/32 needs an image size that is a multiple of 32; got {image_size}")
        super().__init__(
            image_size=image_size,
            patch_size=32,
            num_layers=num_layers,
            num_heads=16,
            hidden_dim=1024,
            mlp_dim=4096,
            dropout=0.1,
        )
        self.heads = nn.Linear(1024, bits)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() != 4 or tuple(images.shape[1:]) != (3, self.image_size, self.image_size):
            expected = f"(B, 3, {self.image_size}, {self.image_size})"
            raise ValueError(f"ViT-L/32 built for {expected}; got {tuple(images.shape)}")
        return torch.tanh(super().forward(images))

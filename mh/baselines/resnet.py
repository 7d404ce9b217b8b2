"""ResNet-50 hashing network (Table 3's "ResNet50"): the DeepHash-pytorch class the authors use.

torchvision's ResNet-50 trunk, its classifier replaced by a hash layer Linear(2048, K) (weights N(0, 0.01),
bias 0) and tanh; 23,606,384 parameters at 48 bits. The authors' class registers the trunk twice, which
doubles ptflops' count; here it is registered once.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.resnet import Bottleneck, ResNet


class ResNet50Hash(ResNet):
    """torchvision ResNet-50 whose ``fc`` is replaced by a hash layer. (B, 3, H, W) → (B, K) in (−1, 1).

    ``blocks``: bottlenecks per layer, ResNet-50's (3, 4, 6, 3) by default (the smoke profile uses fewer)."""

    def __init__(self, bits: int, blocks: tuple[int, ...] = (3, 4, 6, 3)):
        if len(blocks) != 4 or any(int(count) < 1 for count in blocks):
            raise ValueError(f"blocks must be 4 positive bottleneck counts, one per layer; got {blocks}")
        super().__init__(Bottleneck, [int(count) for count in blocks])
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

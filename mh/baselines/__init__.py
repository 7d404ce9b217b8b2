"""The comparison networks of Tables 3–4, trained by the same loop and loss as MambaHash.

* ``ResNet50Hash``: torchvision's ResNet-50 trunk + hash layer (``resnet``);
* ``ViTL32Hash``: the authors' ViT-L/32 with 23 layers (``vit``);
* ``HybridHash``: the authors' ICMR 2024 model, written from its facts in ``docs/hybridhash.md`` (``hybridhash``).

Build them by name with ``mh.registry.build_hashing_model``.
"""

from mh.baselines.hybridhash import HybridHash
from mh.baselines.resnet import ResNet50Hash
from mh.baselines.vit import ViTL32Hash

__all__ = ["HybridHash", "ResNet50Hash", "ViTL32Hash"]

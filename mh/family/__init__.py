"""The rest of the Mamba-hashing family: MpVH (Mamba-prompted ViT hashing, ``mh.family.mpvh``) and CAGMH
(cross-modal image ↔ text hashing with CLIP and a Mamba block, ``mh.family.cagmh``; its pairs in
``mh.family.paired_data``, its training loop in ``mh.family.cagmh_train``)."""

from mh.family.cagmh import CAGMH
from mh.family.mpvh import MpVH

__all__ = ["CAGMH", "MpVH"]

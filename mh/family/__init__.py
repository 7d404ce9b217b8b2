"""The rest of the Mamba-hashing family: MpVH (Mamba-prompted ViT hashing, ``mh.family.mpvh``)."""

from mh.family.mpvh import MpVH

__all__ = ["MpVH"]

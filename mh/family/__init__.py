"""The rest of the Mamba-hashing family: MpVH (Mamba-prompted ViT hashing, ``mh.family.mpvh``) and CAGMH
(cross-modal image ↔ text hashing with CLIP and a Mamba block, ``mh.family.cagmh``; its pairs in
``mh.family.paired_data``, its training loop in ``mh.family.cagmh_train``)."""

from mh.family.mpvh import MpVH

__all__ = ["CAGMH", "MpVH"]


def __getattr__(name: str):
    # CAGMH needs open_clip; importing it only when asked keeps MambaHash's training (which imports this package
    # for MpVH) working on machines without open_clip, such as the GPU machine before its kit is installed
    if name == "CAGMH":
        from mh.family.cagmh import CAGMH

        return CAGMH
    raise AttributeError(f"module 'mh.family' has no attribute {name!r}")

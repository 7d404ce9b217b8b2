"""One constructor for every hashing network the tables compare (Tables 2–4).

``build_hashing_model(name, bits, pretrained=None, **kw)`` returns a module mapping (B, 3, H, W) images
to tanh codes (B, bits), trained by the same loop and loss (``mh.train``).
"""
from __future__ import annotations

from torch import nn

from mh.model import VARIANTS, MambaHash, load_groupmamba_weights

MAMBAHASH_NAMES = {"mambahash": "full", **{f"mambahash-{variant}": variant for variant in VARIANTS}}


def available_models() -> list[str]:
    return sorted(MAMBAHASH_NAMES)


def build_hashing_model(name: str, bits: int, pretrained=None, **kwargs) -> nn.Module:
    """``name``: ``mambahash`` or ``mambahash-<variant>`` (full, no_ciam, no_afem, plain).

    ``pretrained``: path of a weights file to load (GroupMamba-S for MambaHash); what loaded is reported.
    """
    if name in MAMBAHASH_NAMES:
        model = MambaHash(bits, variant=MAMBAHASH_NAMES[name], **kwargs)
        if pretrained:
            load_groupmamba_weights(model, pretrained)
        return model
    raise ValueError(f"unknown model {name!r}; expected one of {', '.join(available_models())}")

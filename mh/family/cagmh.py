"""CAGMH (Wang, Cheng, Du & Zou, EAAI 2025): cross-modal image ↔ text hashing with CLIP features and Mamba.

Glossary (code → paper and released code, Rooike111/CAGMH at db9cc48):
    clip                     CLIP ViT-B/32 (open_clip, QuickGELU, OpenAI key names): f^v = E_v(image),
                             f^t = E_t(caption), both 512-d
    mamba                    the Mamba block over the fused 1024-d tokens ("FuseTrans.mamba": d_state 16,
                             expand 2, d_conv 4)
    enhancement              covariance-style feature enhancement: a = Σ_c f^v_c, b = Σ_c f^t_c,
                             S = a aᵀ − b bᵀ, M = (1 − tanh² S) ⊙ σ(S) ⊙ (1 − σ(S)), add 0.1 · M f
    image_hash, text_hash    hash heads: L2-norm → fc1 512→4096 → ReLU → Dropout → tohash 4096→K → tanh → L2-norm
    u^v, u^t                 the codes (B, K): unit-length rows; sign(u) are the binary codes

Pipeline (B samples, 1024 = [image half; text half]):

    f^v, f^t = CLIP(image), CLIP(caption)                            (B, 512) each
    tokens   = [f^v; 0], [0; f^t]            (modality, pair)        (B, 2, 1024)
               [f^v; f^t] as one sequence    (batch, released)       (1, B, 1024)
    y        = Mamba(tokens) + 0.1 · M(tokens) · tokens, L2-normalised over 1024
    u^v      = image_hash(image half of y at the image token)        (B, K)
    u^t      = text_hash(text half of y at the text token)            (B, K)

Where this differs from the released code (``sequence_axis`` reaches the released scan and enhancement):

    ======================  ==================================  ==============================================
    what                    here (default)                      released code
    ======================  ==================================  ==============================================
    Mamba sequence axis     per sample, each modality token     the batch: one causal scan over the fused
                            scanned from a zero state           tokens in loader order, so a code depends on
                            (``sequence_axis="modality"``);     its batch neighbours and their order
                            ``"pair"``: image then text token   (``sequence_axis="batch"``)
    enhancement M           per token: S = a² (image token),    B × B over the batch (mixes samples)
                            −b² (text token), the diagonal of
                            the released S for a lone token
    codes at query time     ``encode_image`` needs no caption,  both codes need the paired other modality
                            ``encode_text`` no image
    Mamba optimised         yes                                 no: absent from every optimiser (random)
    K                       a power of two (Hadamard centres)   same (scipy fails for 48)
    ======================  ==================================  ==============================================

With ``"modality"`` the scan's state never carries one modality into the other, so each code depends only on
its own input: the two towers are aligned by the losses' shared class proxies and centres, as CLIP's towers
are by its contrastive loss. ``"pair"`` lets the text code read the image (the image token comes first, so
the image code still needs no caption). The text tower reads 32 BPE tokens (the released ``max_words``),
so OpenAI's 77 text positions are cut to the first 32 on loading (``load_openai_clip``).
"""

from __future__ import annotations

import re

import open_clip
import torch
import torch.nn as nn
import torch.nn.functional as F
from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg
from torchvision import transforms

from mh.family.mamba1 import Mamba1
from mh.weights import LoadReport, load_weights

SEQUENCE_AXES = ("modality", "pair", "batch")
CONTEXT_LENGTH = 32  # the released max_words: <|startoftext|> + at most 30 BPE tokens + <|endoftext|>
VIT_B_32 = {  # open_clip's ViT-B-32 configuration, the OpenAI weights' shapes
    "embed_dim": 512,
    "image_size": 224,
    "patch_size": 32,
    "vision_width": 768,
    "vision_layers": 12,
    "text_width": 512,
    "text_heads": 8,
    "text_layers": 12,
}
OPENAI_METADATA_KEYS = ("input_resolution", "context_length", "vocab_size")  # ints in OpenAI's archive
RELEASED_PARAMETERS = (162_146_049, 8_194)  # released total = 162,146,049 + 8,194 · K (context 77)
CLIP_HINT = "download OpenAI's ViT-B-32.pt (or open_clip's ViT-B-32 'openai' weights) and pass its local path"


def tokenize(captions: list[str] | str, context_length: int = CONTEXT_LENGTH) -> torch.Tensor:
    """Captions → CLIP BPE token ids (n, context_length), int64: start token, the BPE of the lower-cased,
    cleaned text (cut so that the end token fits), end token, zero padding. open_clip's tokenizer."""
    return open_clip.tokenize([captions] if isinstance(captions, str) else list(captions), context_length)


def clip_image_transform(image_size: int) -> transforms.Compose:
    """PIL image → (3, image_size, image_size) float tensor normalised as OpenAI's CLIP was trained (its mean and
    standard deviation, open_clip's constants). A plain resize to a square for every split: the released loader's
    query/retrieval preprocessing (its training images are resized by the shorter side and centre-cropped)."""
    return transforms.Compose(
        [
            transforms.Resize((image_size, image_size)),
            transforms.ToTensor(),
            transforms.Normalize(OPENAI_DATASET_MEAN, OPENAI_DATASET_STD),
        ]
    )


def decode(tokens: torch.Tensor) -> list[str]:
    """Token ids (n, L) → the captions as the tokenizer cleaned them (lower case; no start, end or padding
    tokens). BPE decoding ends every word with a space, punctuation included; that space is removed."""
    tokenizer = open_clip.tokenizer._tokenizer
    special = {tokenizer.encoder["<start_of_text>"], tokenizer.encoder["<end_of_text>"], 0}
    texts = [tokenizer.decode([int(t) for t in row if int(t) not in special]).strip() for row in tokens]
    return [re.sub(r"\s+([,.;:!?])", r"\1", text) for text in texts]


def build_clip(
    embed_dim, image_size, patch_size, vision_width, vision_layers, text_width, text_heads, text_layers, context
) -> CLIP:
    """open_clip's CLIP with QuickGELU (as OpenAI's weights were trained), head width 64 in the image tower."""
    vision = CLIPVisionCfg(layers=vision_layers, width=vision_width, patch_size=patch_size, image_size=image_size)
    text = CLIPTextCfg(context_length=context, width=text_width, heads=text_heads, layers=text_layers)
    return CLIP(embed_dim, vision, text, quick_gelu=True)


class HashHead(nn.Module):
    """(B, D) → unit-length codes (B, K): L2-norm → fc1 → ReLU → Dropout → tohash → tanh → L2-norm."""

    def __init__(self, dim: int, hidden: int, bits: int, dropout: float):
        super().__init__()
        self.fc1, self.dropout, self.tohash = nn.Linear(dim, hidden), nn.Dropout(dropout), nn.Linear(hidden, bits)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        hidden = self.dropout(F.relu(self.fc1(F.normalize(features, dim=-1))))
        return F.normalize(torch.tanh(self.tohash(hidden)), dim=-1)


def enhancement_weights(scores: torch.Tensor) -> torch.Tensor:
    """M = (1 − tanh² S) ⊙ σ(S) ⊙ (1 − σ(S)), elementwise, any shape."""
    return (1 - torch.tanh(scores).pow(2)) * torch.sigmoid(scores) * (1 - torch.sigmoid(scores))


def check_power_of_two(bits: int) -> int:
    if isinstance(bits, bool) or not isinstance(bits, int) or bits < 2 or bits & (bits - 1):
        raise ValueError(
            f"CAGMH needs a code length that is a power of two (its class centres are Hadamard rows); got {bits!r}. "
            "Use 16, 32 or 64 (the paper's lengths); 48 has no Hadamard matrix."
        )
    return bits


class CAGMH(nn.Module):
    """CAGMH: ``forward(images (B, 3, S, S), tokens (B, L)) → (u^v, u^t)``, each (B, K) with unit rows.

    Args: bits K (a power of two); the CLIP shape (defaults: ViT-B/32, ``VIT_B_32``); context_length (32);
    hash_hidden (4096); Mamba d_state (16), expand (2), d_conv (4); sequence_axis ("modality", "pair",
    "batch"; see the module docstring); enhancement_scale (0.1); image/text head dropout (0.3 / 0.1);
    scan_backend (``mh.scan.selective_scan``'s).
    """

    def __init__(
        self,
        bits: int,
        image_size: int = 224,
        embed_dim: int = 512,
        patch_size: int = 32,
        vision_width: int = 768,
        vision_layers: int = 12,
        text_width: int = 512,
        text_heads: int = 8,
        text_layers: int = 12,
        context_length: int = CONTEXT_LENGTH,
        hash_hidden: int = 4096,
        d_state: int = 16,
        expand: int = 2,
        d_conv: int = 4,
        sequence_axis: str = "modality",
        enhancement_scale: float = 0.1,
        image_dropout: float = 0.3,
        text_dropout: float = 0.1,
        scan_backend="auto",
    ):
        super().__init__()
        if sequence_axis not in SEQUENCE_AXES:
            raise ValueError(f"sequence_axis must be one of {SEQUENCE_AXES}; got {sequence_axis!r}")
        self.bits, self.embed_dim, self.sequence_axis = check_power_of_two(bits), embed_dim, sequence_axis
        self.image_size, self.context_length, self.enhancement_scale = image_size, context_length, enhancement_scale
        shape = (embed_dim, image_size, patch_size, vision_width, vision_layers, text_width, text_heads, text_layers)
        self.clip = build_clip(*shape, context_length)
        self.mamba = Mamba1(2 * embed_dim, d_state, d_conv, expand, scan_backend=scan_backend)
        self.image_hash = HashHead(embed_dim, hash_hidden, bits, image_dropout)
        self.text_hash = HashHead(embed_dim, hash_hidden, bits, text_dropout)

    @property
    def scan_backend(self):
        return self.mamba.scan_backend

    def set_scan_backend(self, backend) -> None:
        self.mamba.set_scan_backend(backend)

    def _check(self, images: torch.Tensor | None, tokens: torch.Tensor | None) -> None:
        size = self.image_size
        if images is not None and (images.dim() != 4 or tuple(images.shape[1:]) != (3, size, size)):
            raise ValueError(f"CAGMH expects images (B, 3, {size}, {size}); got {tuple(images.shape)}")
        if tokens is not None and (tokens.dim() != 2 or tokens.shape[1] != self.context_length):
            raise ValueError(
                f"CAGMH expects token ids (B, {self.context_length}) from mh.family.cagmh.tokenize; "
                f"got {tuple(tokens.shape)}"
            )
        if images is not None and tokens is not None and len(images) != len(tokens):
            raise ValueError(f"{len(images)} images but {len(tokens)} captions: pass one caption per image")

    def _enhanced(self, tokens: torch.Tensor) -> torch.Tensor:
        """Mamba over tokens (N, L, 1024) plus the per-token enhancement, L2-normalised: (N, L, 1024)."""
        half = self.embed_dim
        scores = tokens[..., :half].sum(-1).pow(2) - tokens[..., half:].sum(-1).pow(2)  # a² − b² per token
        enhancement = self.enhancement_scale * enhancement_weights(scores).unsqueeze(-1) * tokens
        return F.normalize(self.mamba(tokens) + enhancement, dim=-1)

    def _batch_axis(self, image_features: torch.Tensor, text_features: torch.Tensor) -> torch.Tensor:
        """The released fusion: one causal scan over the batch and the B × B enhancement, (B, 1024)."""
        fused = torch.cat([image_features, text_features], dim=-1)
        a, b = image_features.sum(-1, keepdim=True), text_features.sum(-1, keepdim=True)
        weights = enhancement_weights(a @ a.t() - b @ b.t())
        enhancement = self.enhancement_scale * torch.cat([weights @ image_features, weights @ text_features], -1)
        return F.normalize(self.mamba(fused.unsqueeze(0)).squeeze(0) + enhancement, dim=-1)

    def _lone_tokens(self, features: torch.Tensor, first_half: bool) -> torch.Tensor:
        zeros = torch.zeros_like(features)
        return torch.cat([features, zeros] if first_half else [zeros, features], dim=-1).unsqueeze(1)

    def forward(self, images: torch.Tensor, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self._check(images, tokens)
        image_features, text_features = self.clip.encode_image(images), self.clip.encode_text(tokens)
        half = self.embed_dim
        if self.sequence_axis == "batch":
            fused = self._batch_axis(image_features, text_features)
            return self.image_hash(fused[:, :half]), self.text_hash(fused[:, half:])
        pair = torch.cat([self._lone_tokens(image_features, True), self._lone_tokens(text_features, False)], 1)
        if self.sequence_axis == "modality":  # two sequences of one token each: no state crosses modalities
            fused = self._enhanced(pair.reshape(-1, 1, 2 * half)).reshape(pair.shape)
        else:
            fused = self._enhanced(pair)
        return self.image_hash(fused[:, 0, :half]), self.text_hash(fused[:, 1, half:])

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """Image codes (B, K) without captions (modes "modality" and "pair": the image token comes first)."""
        self._check(images, None)
        if self.sequence_axis == "batch":
            raise ValueError("sequence_axis='batch' (the released code) needs the paired captions: call model(x, t)")
        return self.image_hash(
            self._enhanced(self._lone_tokens(self.clip.encode_image(images), True))[:, 0, : self.embed_dim]
        )

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """Caption codes (B, K) without images (mode "modality" only: "pair" reads the text after the image)."""
        self._check(None, tokens)
        if self.sequence_axis != "modality":
            raise ValueError(
                f"sequence_axis={self.sequence_axis!r} reads the caption after its image: call model(images, tokens)"
            )
        text_tokens = self._lone_tokens(self.clip.encode_text(tokens), False)
        return self.text_hash(self._enhanced(text_tokens)[:, 0, self.embed_dim :])


def openai_to_project_names(context_length: int):
    """A ``mh.weights.load_weights`` rename for OpenAI CLIP state dicts: prefix ``clip.``, drop the archive's
    metadata entries, keep the first ``context_length`` text positions (the released code does the same)."""

    def rename(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        renamed = {}
        for key, value in state_dict.items():
            if key in OPENAI_METADATA_KEYS:
                continue
            renamed[f"clip.{key}"] = value[:context_length] if key == "positional_embedding" else value
        return renamed

    return rename


def load_openai_clip(model: CAGMH, path) -> LoadReport:
    """OpenAI CLIP ViT-B/32 weights into ``model.clip``; the Mamba block and the heads stay at their
    initialisation. Returns the load report (``mh.weights``).

    ``path``: a state-dict file with OpenAI's key names (open_clip's ``ViT-B-32`` / ``openai`` file). OpenAI's
    own ``ViT-B-32.pt`` is a TorchScript archive, which ``torch.load`` refuses to unpickle safely; save its
    state dict once: ``torch.save(torch.jit.load("ViT-B-32.pt", map_location="cpu").state_dict(), "clip.pt")``.
    """
    return load_weights(model, path, rename=openai_to_project_names(model.context_length), hint=CLIP_HINT)

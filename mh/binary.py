"""Binary codes and labels as arrays: the one home of ±1 binarisation, label rows, bit packing and Hamming
distance by popcount. Everything else in ``mh`` (encoding, metrics, code files, Grad-CAM) calls these.

Conventions:
    * a code bit is +1 where the network's output h is ≥ 0 (b = sign(h) with sign(0) = +1, §3.4's hash
      layer followed by the sign at retrieval time);
    * packed codes store bit 1 for +1, most significant bit first (``np.packbits``): 64-bit codes take
      8 bytes per item;
    * labels are (n,) class indices or (n, C) 0/1 rows (one-hot or multi-hot).
"""

from __future__ import annotations

import numpy as np
import torch


def binarize(outputs: torch.Tensor) -> torch.Tensor:
    """b = sign(h): real outputs (n, K) → float32 codes in {−1, +1}, with 0 → +1."""
    return torch.where(outputs >= 0, 1.0, -1.0)


CODE_FORMS = ("auto", "sign", "binary01", "real")  # what a caller says its codes are (``as_sign_codes``)


def as_sign_codes(codes, form: str = "auto", name: str = "codes") -> torch.Tensor:
    """Codes as a float32 CPU tensor of ±1, (n, K), from numpy or torch.

    ``form`` says what the caller holds: ``sign`` (±1), ``binary01`` (0/1), ``real`` (network outputs, sign
    taken) — each checked, so a mix-up is an error instead of a plausible wrong number — or ``auto``: the form
    ``detect_code_form`` finds (integer codes other than ±1 and 0/1 are an error). Non-finite values are always
    an error; ``name`` labels messages."""
    if form not in CODE_FORMS:
        raise ValueError(f"code form must be one of {', '.join(CODE_FORMS)}; got {form!r}")
    codes, integer = _float_codes(codes, name)
    if form == "auto":
        form = _form_of(codes, integer, name)
    elif form != "real":
        wrong = (codes.abs() != 1) if form == "sign" else ((codes != 0) & (codes != 1))
        if bool(wrong.any()):
            raise ValueError(
                f"{name} were given as {form} codes but hold other values (e.g. {codes[wrong][0].item():g}); pass "
                "form='real' for network outputs, 'sign' for ±1 and 'binary01' for 0/1 codes"
            )
    if form == "binary01":
        return codes * 2 - 1
    return binarize(codes)


def _float_codes(codes, name: str) -> tuple[torch.Tensor, bool]:
    """(n, K) codes from numpy or torch as a finite float32 CPU tensor, and whether they were integers."""
    codes = torch.as_tensor(np.asarray(codes) if not isinstance(codes, torch.Tensor) else codes)
    if codes.dim() != 2:
        raise ValueError(f"{name} must be (n, bits); got shape {tuple(codes.shape)}")
    integer = not (codes.dtype.is_floating_point or codes.dtype.is_complex)
    codes = codes.detach().to("cpu", torch.float32)
    finite = torch.isfinite(codes)
    if not bool(finite.all()):
        raise ValueError(
            f"{name} hold {int((~finite).sum())} non-finite values (NaN or ±inf): a diverged network or a "
            "damaged code file; encode again from an intact checkpoint"
        )
    return codes, integer


def _form_of(codes: torch.Tensor, integer: bool, name: str) -> str:
    if bool(((codes == 0) | (codes == 1)).all()):
        return "binary01"
    if bool((codes.abs() == 1).all()):
        return "sign"
    if integer:
        found = sorted({int(value) for value in torch.unique(codes)[:6].tolist()})
        raise ValueError(
            f"{name} are integers but neither ±1 nor 0/1 (found values {found}…): code_form='auto' takes ±1 codes, "
            "0/1 codes or real network outputs; convert them, or pass the form they are in"
        )
    return "real"


def detect_code_form(codes, name: str = "codes") -> str:
    """What ``code_form="auto"`` takes ``codes`` (n, K) for: ``binary01`` (every value 0 or 1), ``sign`` (every
    value ±1) or ``real`` (floating-point network outputs); integer codes of other values, non-finite values and
    other shapes are errors, as in ``as_sign_codes``."""
    return _form_of(*_float_codes(codes, name), name)


def label_rows(labels, num_classes: int | None = None) -> torch.Tensor:
    """Labels as a (n, C) float32 0/1 tensor on their own device.

    (n,) integer class indices become one-hot rows of width ``num_classes`` (default: largest index + 1);
    (n, C) rows are returned as float32.
    """
    labels = torch.as_tensor(np.asarray(labels) if not isinstance(labels, torch.Tensor) else labels)
    if labels.dim() == 1:
        if labels.dtype.is_floating_point:
            raise ValueError("1-D labels must be integer class indices; pass (n, classes) rows for 0/1 labels")
        if labels.numel() and int(labels.min()) < 0:
            raise ValueError(f"class indices must be ≥ 0; got {int(labels.min())}")
        largest = int(labels.max()) if labels.numel() else -1
        width = largest + 1 if num_classes is None else num_classes
        if largest >= width:
            raise ValueError(f"class index {largest} is out of range for {width} classes (0..{width - 1})")
        return torch.nn.functional.one_hot(labels.long(), width).float()
    if labels.dim() != 2:
        raise ValueError(f"labels must be (n,) class indices or (n, classes) 0/1 rows; got {tuple(labels.shape)}")
    if not bool(((labels == 0) | (labels == 1)).all()):
        raise ValueError("(n, classes) label rows must hold only 0 and 1 (multi-hot); got other values")
    return labels.float()


def matching_label_rows(labels_a, labels_b) -> tuple[torch.Tensor, torch.Tensor]:
    """Two label sets as (n, C) and (m, C) float32 CPU rows of one width: class indices one-hot encoded
    separately may give rows of different widths (their largest index differs); the narrower is zero padded."""
    rows_a, rows_b = label_rows(labels_a).cpu(), label_rows(labels_b).cpu()
    width = max(rows_a.shape[1], rows_b.shape[1])
    pad = torch.nn.functional.pad
    return pad(rows_a, (0, width - rows_a.shape[1])), pad(rows_b, (0, width - rows_b.shape[1]))


def pack_codes(codes) -> np.ndarray:
    """(n, K) codes (±1, 0/1 or real: sign taken) → (n, ⌈K/8⌉) uint8, bit 1 where the code is +1."""
    return np.packbits(as_sign_codes(codes).numpy() > 0, axis=1)


def unpack_codes(packed: np.ndarray, bits: int) -> np.ndarray:
    """Inverse of ``pack_codes``: (n, ⌈K/8⌉) uint8 → (n, K) int8 in {−1, +1}."""
    return np.unpackbits(packed, axis=1, count=bits).astype(np.int8) * 2 - 1


def pack_words(rows) -> np.ndarray:
    """(n, W) codes or 0/1 label rows → (n, ⌈W/64⌉) uint64 words (zero padded): the layout bulk ranking uses."""
    packed = pack_codes(rows)
    padded = np.zeros((packed.shape[0], -(-packed.shape[1] // 8) * 8), dtype=np.uint8)
    padded[:, : packed.shape[1]] = packed
    return padded.view(np.uint64)


def hamming_distances(query_packed: np.ndarray, db_columns: np.ndarray) -> np.ndarray:
    """Hamming distances as popcounts of XOR, accumulated word by word.

    ``query_packed`` (n_q, W) and ``db_columns`` (W, n_db): both packed the same way (uint8 bytes or uint64
    words), the database stored word-major (``np.ascontiguousarray(db_packed.T)``) so that each word is one
    contiguous row. Returns (n_q, n_db) distances, uint8 when codes have fewer than 256 bits, else uint16.
    """
    query_packed = np.atleast_2d(query_packed)
    if query_packed.shape[1] != db_columns.shape[0] or query_packed.dtype != db_columns.dtype:
        raise ValueError(
            f"packed codes differ: queries {query_packed.shape[1]} × {query_packed.dtype}, "
            f"database {db_columns.shape[0]} × {db_columns.dtype}; both must come from the same code length"
        )
    bits = query_packed.shape[1] * query_packed.dtype.itemsize * 8
    dtype = np.uint8 if bits < 256 else np.uint16
    total = np.zeros((query_packed.shape[0], db_columns.shape[1]), dtype=dtype)
    for word in range(query_packed.shape[1]):
        total += np.bitwise_count(query_packed[:, word, None] ^ db_columns[word]).astype(dtype, copy=False)
    return total

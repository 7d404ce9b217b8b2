"""Token layouts: the row-major token ↔ map reshapes, and the four scan orders of the grouped Mamba layer
(paper §3.3.1, Figure 1, Eq. 5).

A stage's features are either tokens (B, L, C) with L = H·W in row-major grid order, or a map (B, C, H, W);
``tokens_to_map`` and ``map_to_tokens`` convert between the two (every module of ``mh`` that reshapes uses them).

A (B, D, H, W) feature map becomes a (B, D, L = H·W) sequence in one of four orders, and the scan's
output goes back to the grid with the exact inverse:

    "row"            left → right, row after row (row-major)                      paper: x_L
    "row_reversed"   the row-major sequence backwards: right → left, bottom → top  paper: x_R
    "col"            top → bottom, column after column (transpose, then flatten)  paper: x_T
    "col_reversed"   the column-major sequence backwards                          paper: x_B

Which channel group scans in which order differs between the paper and the released code:
Eq. 5 concatenates (x_L, x_R, x_T, x_B), the released code gives groups 1–4 row, col, row_reversed,
col_reversed. Both are listed in ``GROUP_ORDERS``; the model takes either by name.
"""

from __future__ import annotations

import torch

ORDERS = ("row", "row_reversed", "col", "col_reversed")
GROUP_ORDERS = {
    "paper": ("row", "row_reversed", "col", "col_reversed"),
    "released": ("row", "col", "row_reversed", "col_reversed"),
}


def tokens_to_map(tokens: torch.Tensor, height: int | None = None, width: int | None = None) -> torch.Tensor:
    """Row-major tokens (B, H·W, C) → map (B, C, H, W). Without ``height``/``width`` the grid is square."""
    if height is None or width is None:
        height = width = round(tokens.shape[1] ** 0.5)
    if height * width != tokens.shape[1]:
        raise ValueError(f"{tokens.shape[1]} tokens do not fill a {height}×{width} grid")
    return tokens.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], height, width)


def map_to_tokens(grid: torch.Tensor) -> torch.Tensor:
    """Map (B, C, H, W) → row-major tokens (B, H·W, C)."""
    return grid.flatten(2).transpose(1, 2)


def _check_order(order: str) -> None:
    if order not in ORDERS:
        raise ValueError(f"unknown scan order {order!r}; expected one of {ORDERS}")


def to_sequence(grid: torch.Tensor, order: str) -> torch.Tensor:
    """Flatten a (B, D, H, W) map into a (B, D, H·W) sequence in the given scan order."""
    _check_order(order)
    if order.startswith("col"):
        grid = grid.transpose(-2, -1)
    sequence = grid.flatten(-2)
    return sequence.flip(-1) if order.endswith("reversed") else sequence


def to_grid(sequence: torch.Tensor, order: str, height: int, width: int) -> torch.Tensor:
    """Inverse of ``to_sequence``: a (B, D, H·W) sequence in ``order`` back to a (B, D, H, W) map."""
    _check_order(order)
    if sequence.shape[-1] != height * width:
        raise ValueError(f"sequence length {sequence.shape[-1]} is not {height}×{width}")
    if order.endswith("reversed"):
        sequence = sequence.flip(-1)
    if order.startswith("col"):
        return sequence.unflatten(-1, (width, height)).transpose(-2, -1)
    return sequence.unflatten(-1, (height, width))


def visit_order(order: str, height: int, width: int) -> torch.Tensor:
    """(H, W) integer map: the scan step at which each grid cell is visited (0 = first)."""
    cells = torch.arange(height * width).view(1, 1, height, width)
    visited = to_sequence(cells, order)[0, 0]  # the cell index seen at each step
    steps = torch.empty_like(visited)
    steps[visited] = torch.arange(height * width)
    return steps.view(height, width)


def neighbour_kinds(order: str, height: int, width: int) -> dict[str, int]:
    """How the scan's consecutive steps move on the grid: counts of "horizontal" and "vertical"
    neighbour steps and of "jump"s (consecutive in 1-D, not adjacent in 2-D). H·W − 1 steps in all."""
    steps = visit_order(order, height, width).flatten()
    rows, cols = torch.empty_like(steps), torch.empty_like(steps)
    rows[steps], cols[steps] = torch.arange(height * width) // width, torch.arange(height * width) % width
    d_row, d_col = rows.diff().abs(), cols.diff().abs()
    horizontal = int(((d_row == 0) & (d_col == 1)).sum())
    vertical = int(((d_row == 1) & (d_col == 0)).sum())
    return {"horizontal": horizontal, "vertical": vertical, "jump": height * width - 1 - horizontal - vertical}

# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 02 · The four scan directions (paper Figure 1)
#
# **What this shows.** A Mamba block reads a 1-D sequence, an image is 2-D. MambaHash splits the channels into
# four groups and lets each group scan the H×W token grid in its own order (§3.3.1, Eq. 5): left→right row
# by row (x_L), its reverse (x_R), top→bottom column by column (x_T), and its reverse (x_B). This notebook
# redraws Figure 1, checks that every order and its inverse round-trip exactly, and counts which 2-D
# neighbours each order puts next to each other in 1-D.
#
# **Paper vs released code.** The paper concatenates the groups as (x_L, x_R, x_T, x_B); the released code
# gives groups 1–4 the orders (row, col, row reversed, col reversed). `MambaHash(direction_order=...)` takes
# either; the default is the paper's. GroupMamba-S weights were trained with the released order.
#
# **What it writes.** `figures/<profile>/02_scan_orders.{png,pdf}`, `figures/<profile>/02_neighbours.{png,pdf}`,
# `results/tables/<profile>/02_round_trip.{csv,md}`.

# %% tags=["parameters"]
PROFILE = "auto"
SEED = 2025
DEVICE = "auto"
DATA_DIR = None
OUT_DIR = ".."

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from mh.directions import GROUP_ORDERS, ORDERS, neighbour_kinds, to_grid, to_sequence, visit_order
from mh.repro.workspace import open_workspace

ws = open_workspace(PROFILE, SEED, DEVICE, DATA_DIR, OUT_DIR)
PAPER_SYMBOL = {"row": "x_L", "row_reversed": "x_R", "col": "x_T", "col_reversed": "x_B"}
HEIGHT, WIDTH = 5, 6

# %% [markdown]
# ## 1. Figure 1, redrawn: where each channel group starts and how it walks
#
# Each panel is one channel group's view of the same 5×6 token grid. The number in a cell is the step at
# which the scan visits it; the arrow traces the path.

# %%
fig, axes = plt.subplots(1, 4, figsize=(16, 3.8))
for group, (ax, order) in enumerate(zip(axes, GROUP_ORDERS["paper"]), start=1):
    steps = visit_order(order, HEIGHT, WIDTH).numpy()
    ax.imshow(steps, cmap="viridis")
    for r in range(HEIGHT):
        for col in range(WIDTH):
            ax.text(col, r, steps[r, col], ha="center", va="center", color="white" if steps[r, col] < 18 else "black", fontsize=9)
    path = np.argsort(steps.ravel())
    ax.plot(path % WIDTH, path // WIDTH, color="white", lw=1, alpha=0.7)
    ax.set_title(f"group {group}: {order} ({PAPER_SYMBOL[order]})")
    ax.set_xticks(range(WIDTH)); ax.set_yticks(range(HEIGHT))
fig.suptitle("Scan order of each channel group over a 5×6 token grid (paper's group order)", fontweight="bold")
ws.save_figure(fig, "02_scan_orders")
plt.show()

# %% [markdown]
# In the model, the four groups scan at once: a (B, C, H, W) map is split along C into four (B, C/4, H, W)
# pieces, each flattened in its order, scanned, and put back with the exact inverse before the groups are
# concatenated again. The released code's group order for comparison:

# %%
pd.DataFrame({"group": [1, 2, 3, 4], "paper (Eq. 5)": GROUP_ORDERS["paper"], "released code": GROUP_ORDERS["released"]})

# %% [markdown]
# ## 2. Every order round-trips exactly
#
# `to_grid(to_sequence(x, order), order, H, W)` must return x bit for bit (it is a pure permutation),
# for square and non-square grids.

# %%
rows = []
for height, width in [(5, 6), (7, 7), (56, 56), (3, 11)]:
    grid = torch.randn(2, 8, height, width, generator=torch.Generator().manual_seed(SEED))
    for order in ORDERS:
        back = to_grid(to_sequence(grid, order), order, height, width)
        rows.append({"grid": f"{height}×{width}", "order": order, "exact round trip": bool(torch.equal(back, grid))})
round_trip = pd.DataFrame(rows)
assert round_trip["exact round trip"].all()
ws.save_table(round_trip, "02_round_trip", "Scan orders: to_grid ∘ to_sequence is the identity (exact equality).")
round_trip.pivot(index="grid", columns="order", values="exact round trip")

# %% [markdown]
# ## 3. Which neighbours become adjacent in 1-D?
#
# A recurrence mixes information most directly between consecutive tokens. Row orders make horizontal
# neighbours consecutive, column orders vertical ones; every order also has "jumps" where it wraps to
# the next row or column. Using both families is how the layer sees both axes — the reversed orders add
# the other direction of causality (each token then sees context from both sides).

# %%
rows = []
for order in ORDERS:
    kinds = neighbour_kinds(order, 14, 14)
    rows += [{"order": f"{order} ({PAPER_SYMBOL[order]})", "step kind": kind, "count": count} for kind, count in kinds.items()]
kinds_frame = pd.DataFrame(rows)
fig, ax = plt.subplots(figsize=(8, 4))
pivot = kinds_frame.pivot(index="order", columns="step kind", values="count")[["horizontal", "vertical", "jump"]]
pivot.plot.bar(ax=ax, stacked=True, rot=0)
ax.legend(title="step kind", bbox_to_anchor=(1.02, 1), loc="upper left")
ax.set_ylabel("consecutive token pairs (of 195)")
ax.set_title("What one scan step moves to on a 14×14 grid (stage 3 at 224 px)")
ws.save_figure(fig, "02_neighbours")
plt.show()
pivot

# %% [markdown]
# ## Exercises
#
# Predict first, then change a line above or write a few lines below and check. The experiment
# changes a setting and runs it at smoke scale: write your prediction down before you run it.
#
# 1. **Vertical neighbours in a row scan.** Predict how many scan steps separate a cell from the cell below
#    it in the row-major order of an H × W map, and check it with `mh.directions.to_sequence`.
# 2. **A fifth order.** Write the snake (boustrophedon) scan — every other row reversed — with
#    `to_sequence`/`to_grid` and a flip. Predict its number of jumps (consecutive steps that are not grid
#    neighbours) against the row scan's, and check that undoing it gives the map back.
# 3. **Experiment: the row scan on the four stage sizes.** Rerun §3's count on the maps of MambaHash's four
#    stages at 224 px (56, 28, 14 and 7 tokens a side). Predict the share of jump steps and how many scan
#    steps separate a token from the token below it in the row and in the column scan, then measure both.
#
# Worked solutions: [`solutions/02_solutions.py`](solutions/02_solutions.py) (run by the test suite).

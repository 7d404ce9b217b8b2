# %% [markdown]
# # Solutions to the exercises of notebook 02 (scan directions)

# %%
import torch

from mh.directions import neighbour_kinds, to_grid, to_sequence, visit_order

height, width = 4, 6
grid = torch.arange(height * width, dtype=torch.float32).reshape(1, 1, height, width)

# %% [markdown]
# ## Exercise 1 — how far apart are vertical neighbours in a row scan?
#
# **Prediction.** In the row-major scan, the cell below (i, j) is W steps later, so a 1-D model needs a
# memory of W tokens to relate vertical neighbours; in the column scan they are adjacent.

# %%
row_sequence = to_sequence(grid, "row")[0, 0]
position = {int(value): step for step, value in enumerate(row_sequence)}
gaps = {position[(i + 1) * width + j] - position[i * width + j] for i in range(height - 1) for j in range(width)}
print("steps between vertical neighbours in the row scan:", gaps)
assert gaps == {width}
assert neighbour_kinds("col", height, width)["vertical"] == (height - 1) * width

# %% [markdown]
# ## Exercise 2 — a fifth order: the snake (boustrophedon) scan
#
# **Prediction.** Reversing every other row makes every consecutive pair of steps adjacent on the grid:
# H·W − 1 neighbour steps and no jump, where the row scan has H − 1 jumps. Undoing it is one more flip.

# %%
snake = grid.clone()
snake[..., 1::2, :] = snake[..., 1::2, :].flip(-1)
snake_sequence = to_sequence(snake, "row")
back = to_grid(snake_sequence, "row", height, width).clone()  # a view otherwise: the flip below would edit it
back[..., 1::2, :] = back[..., 1::2, :].flip(-1)
assert torch.equal(back, grid)
cells = snake_sequence[0, 0].long()
rows, cols = cells // width, cells % width
adjacent = ((rows.diff().abs() + cols.diff().abs()) == 1).sum().item()
row_jumps = neighbour_kinds("row", height, width)["jump"]
print(f"snake: {adjacent} adjacent steps of {height * width - 1}; row scan jumps: {row_jumps}")
assert adjacent == height * width - 1 and row_jumps == height - 1

# %% [markdown]
# ## Exercise 3 — experiment: the row scan on MambaHash's four stage sizes
#
# **Setting changed.** §3 counts step kinds on a 14 × 14 map. Run the same count on the maps of MambaHash's
# four stages at 224 px (56, 28, 14 and 7 tokens a side), and measure how many scan steps separate a token
# from the token below it.
#
# **Prediction.** The row scan wraps once per row, so H − 1 of its H·W − 1 steps are jumps: about 1/W, from
# 12.5 % at 7 × 7 down to 1.8 % at 56 × 56. But the token below is always W steps later, so on the 56 × 56 map
# a row recurrence carries vertical context across 56 steps, each one a decay of e^{−Δ}; the column orders
# make that distance 1, which is why the layer needs both families.

# %%
def steps_to_the_token_below(order: str, side: int) -> float:
    position = visit_order(order, side, side)  # (H, W): the step at which each cell is visited
    return (position[1:, :] - position[:-1, :]).abs().float().mean().item()


for side in (56, 28, 14, 7):
    jumps = neighbour_kinds("row", side, side)["jump"]
    below, below_in_columns = steps_to_the_token_below("row", side), steps_to_the_token_below("col", side)
    print(f"{side:>2} × {side:<2}: jumps are {jumps / (side * side - 1):6.2%} of the steps; the token below is "
          f"{below:.0f} steps away in the row scan, {below_in_columns:.0f} in the column scan")
    assert jumps == side - 1 and below == side and below_in_columns == 1

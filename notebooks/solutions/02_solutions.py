# %% [markdown]
# # Solutions to the exercises of notebook 02 (scan directions)

# %%
import torch

from mh.directions import neighbour_kinds, to_grid, to_sequence

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
print(f"snake: {adjacent} adjacent steps of {height * width - 1}; row scan jumps:", neighbour_kinds("row", height, width)["jump"])
assert adjacent == height * width - 1 and neighbour_kinds("row", height, width)["jump"] == height - 1

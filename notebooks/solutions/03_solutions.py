# %% [markdown]
# # Solutions to the exercises of notebook 03 (training)

# %%
import numpy as np
import torch

from mh.losses import DPSHLoss
from mh.metrics import mean_average_precision

# %% [markdown]
# ## Exercise 1 — what mAP do collapsed codes score?
#
# **Prediction.** If training collapses (every image gets the same code — what a too-high learning rate
# does), every database item is at distance 0 from every query. Ties are broken by database position, so
# the ranking is the database order, and each query's AP is about the share of its class in the
# database: 0.1 for ten balanced classes — the floor that "twice the untrained mAP" is measured against.

# %%
rng = np.random.default_rng(0)
database_labels = np.repeat(np.arange(10), 200)
rng.shuffle(database_labels)
query_labels = np.arange(10).repeat(20)
collapsed_database = torch.ones(len(database_labels), 48)
collapsed_queries = torch.ones(len(query_labels), 48)
collapsed = mean_average_precision(collapsed_queries, collapsed_database, query_labels, database_labels)
print(f"mAP of collapsed codes: {collapsed:.4f}")
assert abs(collapsed - 0.1) < 0.02

# %% [markdown]
# ## Exercise 2 — which rows of the memory bank does one step change?
#
# **Prediction.** `update_bank` writes the batch's codes into the rows named by the batch's dataset
# positions and nothing else; the loss then compares the batch with all rows (stale ones included).

# %%
criterion = DPSHLoss(num_train=100, bits=16, num_classes=10, quantization_weight=0.01)
before = criterion.bank_codes.clone()
positions = torch.tensor([3, 17, 42])
codes = torch.tanh(torch.randn(3, 16))
criterion.update_bank(codes, torch.tensor([1, 2, 3]), positions)
changed = (criterion.bank_codes != before).any(dim=1).nonzero().flatten()
print("rows changed:", changed.tolist())
assert changed.tolist() == positions.tolist() and torch.equal(criterion.bank_codes[positions], codes)

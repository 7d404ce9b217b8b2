# %% [markdown]
# # Solutions to the exercises of notebook 03 (training)

# %%
import numpy as np
import torch
from torch import nn

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

# %% [markdown]
# ## Exercise 3 — experiment: how strong should the quantisation term be?
#
# **Setting changed.** The quantisation weight η of Eq. 18 (0.01 on CIFAR-10). Train the same small hash
# layer — h = tanh(Linear(32, 16)), MambaHash's head, on 600 synthetic features in 10 noisy class clusters,
# full batch, Adam, 300 steps, the memory-bank DPSH loss — with η = 0, 0.01 and 1, from the same initial
# weights.
#
# **Prediction.** η pulls each entry of h towards ±1, so the quantisation error mean (h − sign h)² falls as
# η grows: barely at 0.01 (the tanh head already saturates under the likelihood alone), clearly at 1. But at
# η = 1 the quantisation term outweighs the likelihood (about ln 2 ≈ 0.69 per pair at the start): the
# quickest way down the loss is to saturate every entry at the sign it already has, which freezes the
# initial, random signs — so the retrieval of the sign codes gets *worse*. The paper's small η keeps
# retrieval and still binarises.

# %%
torch.manual_seed(0)
generator = torch.Generator().manual_seed(0)
classes, per_class, dimensions = 10, 60, 32
centres = 2 * torch.randn(classes, dimensions, generator=generator)
labels = torch.arange(classes).repeat_interleave(per_class)
features = centres[labels] + 2 * torch.randn(len(labels), dimensions, generator=generator)
initial = nn.Linear(dimensions, 16)


def train_hash_layer(eta: float) -> tuple[float, float]:
    """(quantisation error, mAP of the sign codes against the training set itself) after 300 steps."""
    layer = nn.Linear(dimensions, 16)
    layer.load_state_dict(initial.state_dict())
    loss = DPSHLoss(num_train=len(labels), bits=16, num_classes=classes, quantization_weight=eta)
    optimizer = torch.optim.Adam(layer.parameters(), lr=1e-2)
    positions = torch.arange(len(labels))
    for _ in range(300):
        codes = torch.tanh(layer(features))
        loss.update_bank(codes, labels, positions)
        optimizer.zero_grad()
        loss(codes, labels).backward()
        optimizer.step()
    with torch.no_grad():
        codes = torch.tanh(layer(features))
    signs = codes.sign()
    return (codes - signs).pow(2).mean().item(), mean_average_precision(signs, signs, labels, labels)


results = {eta: train_hash_layer(eta) for eta in (0.0, 0.01, 1.0)}
for eta, (error, retrieval) in results.items():
    print(f"η = {eta}: quantisation error {error:.3f}, mAP of the sign codes {retrieval:.3f}")
errors = [error for error, _ in results.values()]
assert errors[2] < 0.6 * min(errors[:2])
assert results[1.0][1] < min(results[0.0][1], results[0.01][1]) - 0.05
assert min(retrieval for _, retrieval in results.values()) > 0.5

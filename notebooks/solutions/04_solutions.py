# %% [markdown]
# # Solutions to the exercises of notebook 04 (Tables 1–3)

# %%
import torch

from mh.metrics import mean_average_precision, precision_within_radius
from mh.repro.tables import paper_numbers

# %% [markdown]
# ## Exercise 1 — read the paper's Table 1
#
# **Prediction.** MambaHash is the paper's best method on CIFAR-10 at every bit length, and its margin
# over HybridHash (the authors' previous model) is small — below two mAP points.

# %%
cifar = paper_numbers("table1").query("dataset == 'cifar10'").pivot_table(index="method", columns="bits",
                                                                          values="value")
best = cifar.idxmax()
print("best method per bit length:", best.to_dict())
margin = cifar.loc["MambaHash"] - cifar.drop(index="MambaHash").max()
print("MambaHash minus the runner-up:", margin.round(4).to_dict())
assert (best == "MambaHash").all() and (margin > 0).all() and (margin < 0.02).all()

# %% [markdown]
# ## Exercise 2 — precision within Hamming radius 2 of perfect codes
#
# **Prediction.** If every image's code is its class's code and class codes differ in more than 2 bits,
# everything within radius 2 of a query is of its class: P@H≤2 = 1 and mAP = 1.

# %%
torch.manual_seed(0)
class_codes = torch.sign(torch.randn(10, 32))
labels = torch.arange(10).repeat(30)
distances = (class_codes[:, None] != class_codes[None]).sum(-1) + 99 * torch.eye(10, dtype=torch.long)
assert distances.min() > 2, "draw again: two class codes are too close"
codes = class_codes[labels]
print("P@H≤2 =", precision_within_radius(codes, codes, labels, labels, radius=2),
      "mAP =", mean_average_precision(codes, codes, labels, labels))
assert precision_within_radius(codes, codes, labels, labels, radius=2) == 1.0
assert mean_average_precision(codes, codes, labels, labels) == 1.0

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

# %% [markdown]
# ## Exercise 3 — experiment: noisy codes at 16 and 64 bits
#
# **Setting changed.** The bit length. Give each image its class's random code (10 classes) and flip every
# bit with probability 0.2 — 300 database images and 100 queries, drawn apart — once with 16-bit codes and
# once with 64-bit codes.
#
# **Prediction.** Two images of one class differ in about 2 · 0.2 · 0.8 = 32 % of their bits, two of different
# classes in about 50 %. The gap between the two grows like K while its spread grows like √K, so 64 bits
# separate the classes better: mAP rises with K. P@H≤2 goes the other way: a radius of 2 bits is 12.5 % of a
# 16-bit code but 3 % of a 64-bit one, so at 64 bits almost no noisy neighbour stays inside it (a query with
# nothing inside the ball counts 0) — the same fall the paper's tables show for P@H≤2 at 64 bits.

# %%
generator = torch.Generator().manual_seed(0)
query_labels = torch.arange(10).repeat(10)


def noisy_codes(class_codes: torch.Tensor, image_labels: torch.Tensor) -> torch.Tensor:
    flips = torch.rand(len(image_labels), class_codes.shape[1], generator=generator) < 0.2
    return torch.where(flips, -class_codes[image_labels], class_codes[image_labels])


results = {}
for bits in (16, 64):
    class_codes = torch.sign(torch.randn(10, bits, generator=generator))
    queries, database = noisy_codes(class_codes, query_labels), noisy_codes(class_codes, labels)
    results[bits] = (mean_average_precision(queries, database, query_labels, labels),
                     precision_within_radius(queries, database, query_labels, labels, radius=2))
    print(f"{bits} bits: mAP {results[bits][0]:.3f}, P@H≤2 {results[bits][1]:.3f}")
assert results[64][0] > results[16][0] + 0.1
assert results[64][1] < results[16][1]
